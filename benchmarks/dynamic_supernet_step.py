"""Training-step time: weight-sharing supernet (dynamic ops) vs static subnet.

Builds ``SearchableMobileNetV2`` (per-block kernel and expand ratio,
per-stage width, all weight-shared through dynamic ops), sets one subnet
(``--subnet random|min|max``), exports it as a static model
(``export_fix_subnet(..., slice_weight=True)``), then times full training
steps (forward, loss, backward, SGD step) of both, interleaved in one
process, and prints the median step times and their ratio. The supernet
pays for slicing its weights every step (and its gradients flow into the
full weight tensors).

Example::

    python benchmarks/dynamic_supernet_step.py --batch-size 16 --img-size 96
"""
import argparse
import random

import torch
import torch.nn as nn
from _timing import (add_timing_args, make_step, median_ms, run_interleaved,
                     setup_torch)

from mmrazor.models.architectures.backbones import SearchableMobileNetV2
from mmrazor.models.mutators import OneShotChannelMutator, OneShotValueMutator
from mmrazor.structures import export_fix_subnet


class Classifier(nn.Module):
    """Backbone + global average pooling + linear head."""

    def __init__(self, backbone: nn.Module, num_classes: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.fc = nn.Linear(1280, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.backbone(x)[-1].mean((2, 3)))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--img-size', type=int, default=64)
    parser.add_argument('--widen-factor', type=float, default=1.0)
    parser.add_argument(
        '--subnet', choices=['random', 'min', 'max'], default='random')
    add_timing_args(parser)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    setup_torch(args.threads, args.seed)
    random.seed(args.seed)

    backbone = SearchableMobileNetV2(widen_factor=args.widen_factor)
    supernet = Classifier(backbone, num_classes=1000)
    mutators = [OneShotChannelMutator(), OneShotValueMutator()]
    for mutator in mutators:
        mutator.prepare_from_supernet(supernet)
        if args.subnet == 'random':
            mutator.set_choices(mutator.sample_choices())
        elif args.subnet == 'min':
            mutator.set_min_choices()
        else:
            mutator.set_max_choices()
    _, static = export_fix_subnet(supernet, slice_weight=True)
    supernet.to(args.device).train()
    static.to(args.device).train()

    x = torch.randn(args.batch_size, 3, args.img_size, args.img_size,
                    device=args.device)
    y = torch.randint(0, 1000, (args.batch_size, ), device=args.device)
    steps = {'supernet': make_step(supernet, x, y),
             'static': make_step(static, x, y)}
    times = run_interleaved(steps, args.warmup, args.steps)

    n_static = sum(p.numel() for p in static.parameters())
    sup, sta = median_ms(times['supernet'], 0), median_ms(times['static'], 0)
    sup_cpu = median_ms(times['supernet'], 1)
    sta_cpu = median_ms(times['static'], 1)
    print(f'input {args.batch_size}x3x{args.img_size}x{args.img_size}, '
          f'{args.subnet} subnet ({n_static / 1e6:.2f}M params), '
          f'{args.steps} steps after {args.warmup} warm-up, {args.device}, '
          f'{torch.get_num_threads()} threads')
    print('                 wall ms/step   cpu ms/step')
    print(f'supernet:       {sup:12.2f} {sup_cpu:13.2f}')
    print(f'static subnet:  {sta:12.2f} {sta_cpu:13.2f}')
    print(f'ratio supernet/static: wall {sup / sta:.3f}, '
          f'cpu {sup_cpu / sta_cpu:.3f}')


if __name__ == '__main__':
    main()
