"""Time to estimate the FLOPs of one candidate subnet of the SPOS supernet.

Side by side, in one process, on the same random subnets:

(a) ``ResourceEstimator.estimate(supernet)``: sums cached per-choice costs
    (each candidate was counted once, on the input shape it sees);
(b) the classic way: ``copy.deepcopy`` the supernet, replace every mutable
    by its chosen candidate, and count conv/linear multiply-adds with
    forward hooks in one forward pass.

Both must give the same FLOPs for every subnet (checked). The one-off cost
of (a) (one forward pass plus counting each of the 80 candidates once) is
reported separately.

Usage:
    python benchmarks/estimate_flops.py [--subnets 20] [--shape 224]
"""
import argparse
import copy
import random
import statistics
import time
from typing import Callable, Dict, List

import torch
from torch import nn


def build_supernet() -> nn.Module:
    """``ImageClassifier(SearchableShuffleNetV2, 1000 classes)``."""
    from mmrazor.registry import MODELS
    from mmrazor.utils import register_all_modules
    register_all_modules()
    return MODELS.build(
        dict(
            type='mmpretrain.ImageClassifier',
            backbone=dict(type='SearchableShuffleNetV2', widen_factor=1.0),
            neck=dict(type='mmpretrain.GlobalAveragePooling'),
            head=dict(
                type='mmpretrain.LinearClsHead',
                num_classes=1000,
                in_channels=1024,
                loss=dict(type='mmpretrain.CrossEntropyLoss'))))


def module_mutables(model: nn.Module) -> Dict[str, nn.Module]:
    """Name -> single-path module mutable."""
    from mmrazor.models.task_modules.estimators.resource_estimator import \
        is_single_path_mutable
    return {
        name: m
        for name, m in model.named_modules() if is_single_path_mutable(m)
    }


def hook_count(model: nn.Module, inputs: torch.Tensor) -> int:
    """Deep copy, make static, count conv/linear MACs with forward hooks.

    Args:
        model (nn.Module): The supernet with its current choices.
        inputs (Tensor): A dummy input.

    Returns:
        int: Multiply-accumulates of the subnet.
    """
    static = copy.deepcopy(model)
    for name, mutable in module_mutables(static).items():
        parent_name, _, attr = name.rpartition('.')
        parent = static.get_submodule(parent_name)
        setattr(parent, attr, mutable.candidates[mutable.current_choice])
    total = [0]

    def conv_hook(m: nn.Conv2d, args, out):
        total[0] += out.numel() * m.in_channels // m.groups * \
            m.kernel_size[0] * m.kernel_size[1]

    def linear_hook(m: nn.Linear, args, out):
        total[0] += out.numel() * m.in_features

    handles = []
    for m in static.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    static.eval()
    with torch.no_grad():
        static(inputs, mode='tensor')
    for h in handles:
        h.remove()
    return total[0]


def timed(fn: Callable[[], int]) -> tuple:
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--subnets', type=int, default=20)
    parser.add_argument('--shape', type=int, default=224)
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    random.seed(args.seed)
    torch.manual_seed(args.seed)

    from mmrazor.models.task_modules import ResourceEstimator
    model = build_supernet()
    mutables = module_mutables(model)
    shape = (1, 3, args.shape, args.shape)
    inputs = torch.randn(shape)
    estimator = ResourceEstimator(input_shape=shape)

    def sample() -> None:
        for m in mutables.values():
            m.current_choice = random.choice(m.choices)

    sample()
    _, first = timed(lambda: estimator.estimate(model)['flops'])
    measured, prep = timed(lambda: estimator.prepare(model))
    print(f'SPOS ShuffleNetV2 supernet (ImageClassifier, 1000 classes), '
          f'input {shape}, {len(mutables)} module mutables, '
          f'torch threads {args.threads}')
    print(f'one-off: first estimate (1 forward pass + current candidates) '
          f'{first * 1e3:.1f} ms; prepare() counting the other {measured} '
          f'candidates {prep * 1e3:.1f} ms')
    ours: List[float] = []
    theirs: List[float] = []
    for _ in range(args.subnets):
        sample()
        flops, t_ours = timed(lambda: estimator.estimate(model)['flops'])
        ref, t_ref = timed(lambda: hook_count(model, inputs))
        if flops != ref:
            raise AssertionError(f'estimator says {flops} FLOPs, the '
                                 f'deep-copy hook count {ref}')
        ours.append(t_ours)
        theirs.append(t_ref)
    med_ours = statistics.median(ours)
    med_ref = statistics.median(theirs)
    print(f'{"method":<40}{"median per subnet":>20}')
    print(f'{"ResourceEstimator (cached choices)":<40}'
          f'{med_ours * 1e3:>17.3f} ms')
    print(f'{"deep copy + forward-hook count":<40}'
          f'{med_ref * 1e3:>17.3f} ms')
    print(f'speed-up: {med_ref / med_ours:.0f}x over {args.subnets} random '
          f'subnets (FLOPs identical for every subnet; target >= 100x)')
    print(f'one-off cost is recovered after '
          f'{(first + prep) / max(med_ref - med_ours, 1e-9):.1f} subnets')


if __name__ == '__main__':
    main()
