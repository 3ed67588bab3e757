"""Weight-sharing NAS supernets: step time and the cost of one candidate.

Two measurements, each side by side in one process, on a supernet built
from ``configs/_base_/nas_backbones`` (``--space``: the AttentiveNAS
space of BigNAS, the Once-for-All space, or AutoFormer's) inside a
``SearchableImageClassifier`` (1000 classes, input resolution searched):

* **Step.** One subnet is sampled (``--subnet random|min|max``) and
  exported as a static model (``export_fix_subnet(..., slice_weight=True)``:
  plain convs, norms and linears holding the sliced weights). Full training
  steps (forward, cross-entropy, backward, SGD) of the supernet set to that
  subnet and of the static model are timed interleaved, on the same batch
  (``--img-size`` images, resized inside both models to the subnet's
  resolution). Target: supernet / static <= 1.15.
* **Candidate resources.** ``--candidates`` random subnets are costed
  (FLOPs and params) in two ways: ``ResourceEstimator.estimate`` on the
  supernet set to the candidate (no copy; after a first call that traces
  the supernet once, timed apart as setup), and the way without support
  for supernets: deep-copy the supernet, export the static subnet, count
  it. Both give the same numbers (checked here on every candidate).
  Target: copy + count / estimate >= 100.

Example::

    python benchmarks/weight_sharing_nas.py --space attentive
    python benchmarks/weight_sharing_nas.py --space autoformer \\
        --batch-size 4 --subnet min
"""
import argparse
import copy
import os.path as osp
import random
import statistics
import time
from typing import Any, Callable, Dict, List, Tuple

import torch
from _timing import (add_timing_args, make_step, median_ms, run_interleaved,
                     setup_torch)
from mmengine.config import Config

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
SPACES = {
    'attentive': ('attentive_mobilenetv3_supernet.py', 1984),
    'ofa': ('ofa_mobilenetv3_supernet.py', 1280),
    'autoformer': ('autoformer_supernet.py', 624),
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--space', choices=sorted(SPACES),
                        default='attentive')
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--img-size', type=int, default=224)
    parser.add_argument('--subnet', choices=['random', 'min', 'max'],
                        default='random')
    parser.add_argument('--candidates', type=int, default=20,
                        help='random subnets costed both ways')
    add_timing_args(parser)
    return parser.parse_args()


def build_supernet(space: str) -> torch.nn.Module:
    """The classifier over the search space ``space``."""
    from mmrazor.registry import MODELS
    filename, width = SPACES[space]
    cfg = Config.fromfile(
        osp.join(REPO, 'configs', '_base_', 'nas_backbones', filename))
    model = dict(
        type='mmrazor.SearchableImageClassifier',
        backbone=cfg.nas_backbone,
        neck=None if space == 'autoformer' else dict(
            type='mmpretrain.GlobalAveragePooling'),
        head=dict(type='mmrazor.DynamicLinearClsHead', num_classes=1000,
                  in_channels=width,
                  loss=dict(type='mmpretrain.CrossEntropyLoss')),
        connect_head=dict(connect_with_backbone='backbone.last_mutable'
                          if space == 'autoformer' else
                          'backbone.last_mutable_channels'))
    if 'input_resizer_cfg' in cfg:
        model['input_resizer_cfg'] = cfg.input_resizer_cfg
    return MODELS.build(model)


def set_subnet(mutator: Any, kind: str) -> None:
    if kind == 'max':
        mutator.set_max_choices()
    elif kind == 'min':
        mutator.set_min_choices()
    else:
        mutator.set_choices(mutator.sample_choices())


def time_step(supernet: torch.nn.Module, static: torch.nn.Module,
              args: argparse.Namespace) -> Dict[str, float]:
    x = torch.randn(args.batch_size, 3, args.img_size, args.img_size,
                    device=args.device)
    y = torch.randint(0, 1000, (args.batch_size, ), device=args.device)
    supernet.to(args.device).train()
    static.to(args.device).train()
    steps = {'supernet': make_step(supernet, x, y),
             'static': make_step(static, x, y)}
    times = run_interleaved(steps, args.warmup, args.steps)
    return {f'{name}_{clock}': median_ms(times[name], i)
            for name in steps for i, clock in enumerate(('wall', 'cpu'))}


def timed(fn: Callable[[], Any]) -> Tuple[Any, float]:
    start = time.process_time()
    out = fn()
    return out, time.process_time() - start


def time_candidates(supernet: torch.nn.Module, mutator: Any,
                    count: int) -> Dict[str, float]:
    """CPU seconds per candidate of both ways (medians), and the setup."""
    from mmrazor.models.task_modules import ResourceEstimator
    from mmrazor.structures import export_fix_subnet
    supernet.cpu().eval()
    estimator = ResourceEstimator(input_shape=(1, 3, 224, 224))
    mutator.set_max_choices()
    _, setup = timed(lambda: estimator.estimate(supernet))
    direct: List[float] = []
    copied: List[float] = []
    for _ in range(count):
        mutator.set_choices(mutator.sample_choices())
        fast, t_fast = timed(lambda: estimator.estimate(supernet))

        def copy_and_count() -> Dict[str, Any]:
            _, static = export_fix_subnet(
                copy.deepcopy(supernet), slice_weight=True)
            return estimator.estimate(static.eval())

        slow, t_slow = timed(copy_and_count)
        if (fast['flops'], fast['params']) != (slow['flops'],
                                                slow['params']):
            raise AssertionError(
                f'the two ways disagree: supernet {fast["flops"]} FLOPs, '
                f'{fast["params"]} params; exported {slow["flops"]} FLOPs, '
                f'{slow["params"]} params')
        direct.append(t_fast)
        copied.append(t_slow)
    return dict(setup=setup, direct=statistics.median(direct),
                copied=statistics.median(copied))


def main() -> None:
    args = parse_args()
    setup_torch(args.threads, args.seed)
    random.seed(args.seed)
    import mmrazor.models  # noqa: F401 (registers the modules)
    from mmrazor.models.mutators import NasMutator
    from mmrazor.structures import export_fix_subnet

    supernet = build_supernet(args.space)
    mutator = NasMutator()
    mutator.prepare_from_supernet(supernet)
    set_subnet(mutator, args.subnet)
    shape = supernet.input_resizer.active_shape \
        if supernet.input_resizer is not None else None
    _, static = export_fix_subnet(copy.deepcopy(supernet), slice_weight=True)
    n_static = sum(p.numel() for p in static.parameters())
    step = time_step(supernet, static, args)
    print(f'{args.space} space, {args.subnet} subnet ({n_static / 1e6:.2f}M '
          f'params, resolution {shape}), batch {args.batch_size}x3x'
          f'{args.img_size}x{args.img_size}, {args.steps} steps after '
          f'{args.warmup} warm-up, {args.device}, '
          f'{torch.get_num_threads()} threads')
    print('                 wall ms/step   cpu ms/step')
    print(f'supernet:       {step["supernet_wall"]:12.2f} '
          f'{step["supernet_cpu"]:13.2f}')
    print(f'static subnet:  {step["static_wall"]:12.2f} '
          f'{step["static_cpu"]:13.2f}')
    ratio = step['supernet_cpu'] / step['static_cpu']
    print(f'step ratio supernet/static: cpu {ratio:.3f} (target <= 1.15: '
          f'{"met" if ratio <= 1.15 else "NOT met"}), wall '
          f'{step["supernet_wall"] / step["static_wall"]:.3f}')

    cost = time_candidates(supernet, mutator, args.candidates)
    speedup = cost['copied'] / cost['direct']
    print(f'one candidate, CPU ms (median of {args.candidates}): estimate on '
          f'the supernet {cost["direct"] * 1e3:.2f}, copy + export + count '
          f'{cost["copied"] * 1e3:.1f}; first estimate (traces the '
          f'supernet once) {cost["setup"] * 1e3:.0f}')
    print(f'candidate speed-up: {speedup:.0f}x (target >= 100: '
          f'{"met" if speedup >= 100 else "NOT met"})')


if __name__ == '__main__':
    main()
