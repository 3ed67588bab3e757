"""Training-step time: SPOS supernet on one sampled path vs static subnet.

Builds the SPOS ShuffleNetV2 supernet, samples one path, exports that
path as a static model (``export_fix_subnet(..., slice_weight=True)``),
then times full training steps (forward, loss, backward, SGD step) of
both, interleaved in one process so that machine noise hits both alike,
and prints the median step times and their ratio (target <= 1.10).

Example::

    python benchmarks/supernet_step.py --batch-size 16 --img-size 96
"""
import argparse
import random
import time

import numpy as np
import torch
import torch.nn as nn
from _timing import (add_timing_args, make_step, median_ms, run_interleaved,
                     setup_torch)

from mmrazor.models.mutators import OneShotModuleMutator
from mmrazor.registry import MODELS
from mmrazor.structures import export_fix_subnet


class Classifier(nn.Module):
    """Backbone + global average pooling + linear head."""

    def __init__(self, backbone: nn.Module, num_classes: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.fc = nn.Linear(1024, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.backbone(x)[-1]
        return self.fc(feat.mean((2, 3)))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--img-size', type=int, default=64)
    parser.add_argument('--widen-factor', type=float, default=1.0)
    add_timing_args(parser)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    setup_torch(args.threads, args.seed)
    # The sampled path comes from Python's and numpy's generators.
    random.seed(args.seed)
    np.random.seed(args.seed)

    backbone = MODELS.build(
        dict(type='SearchableShuffleNetV2', widen_factor=args.widen_factor))
    supernet = Classifier(backbone, num_classes=1000)
    mutator = OneShotModuleMutator()
    mutator.prepare_from_supernet(supernet)
    mutator.set_choices(mutator.sample_choices())
    _, static = export_fix_subnet(supernet, slice_weight=True)
    supernet.to(args.device).train()
    static.to(args.device).train()

    x = torch.randn(args.batch_size, 3, args.img_size, args.img_size,
                    device=args.device)
    y = torch.randint(0, 1000, (args.batch_size, ), device=args.device)
    steps = {'supernet': make_step(supernet, x, y),
             'static': make_step(static, x, y)}
    times = run_interleaved(steps, args.warmup, args.steps)

    # cost of sampling a new path, which SPOS adds every step
    start = time.perf_counter()
    for _ in range(100):
        mutator.set_choices(mutator.sample_choices())
    sample_ms = (time.perf_counter() - start) * 10

    n_super = sum(p.numel() for p in supernet.parameters())
    n_static = sum(p.numel() for p in static.parameters())
    sup, sta = median_ms(times['supernet'], 0), median_ms(times['static'], 0)
    sup_cpu = median_ms(times['supernet'], 1)
    sta_cpu = median_ms(times['static'], 1)
    print(f'input {args.batch_size}x3x{args.img_size}x{args.img_size}, '
          f'{args.steps} steps after {args.warmup} warm-up, '
          f'{args.device}, {torch.get_num_threads()} threads')
    print('                      wall ms/step   cpu ms/step   params')
    print(f'supernet (one path): {sup:12.2f} {sup_cpu:13.2f}   '
          f'{n_super / 1e6:.2f}M')
    print(f'static subnet:       {sta:12.2f} {sta_cpu:13.2f}   '
          f'{n_static / 1e6:.2f}M')
    print(f'path sampling: {sample_ms:.3f} ms per sampled path')
    print(f'ratio supernet/static: wall {sup / sta:.3f}, '
          f'cpu {sup_cpu / sta_cpu:.3f} (target <= 1.10)')


if __name__ == '__main__':
    main()
