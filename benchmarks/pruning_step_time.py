"""Pruning step time: ours against Torch-Pruning's ``step()``, side by side.

The same trained models as ``pruning_vs_torch_pruning.py`` (its cache in
``--work-dir``; trained there when missing), each target FLOPs ratio, in
one process on one torch thread. A round times our step (``L1Importance``:
``prune_to_target`` plus ``deploy_subnet``, the scores read from the
weights inside the step) and Torch-Pruning's ``step()`` (its
``MagnitudeImportance``, global pruning, at the channel ratio that reaches
the target, found beforehand) ``--repeats`` times each on fresh copies, and
keeps the two medians (process CPU time, garbage collection off); rounds
alternate, and the table gives the median over ``--rounds`` rounds and
their ratio (issue 22's bar: ours <= Torch-Pruning's, ratio <= 1). Ours
includes the search for the FLOPs target, Torch-Pruning's does not.

    python benchmarks/pruning_step_time.py
    python benchmarks/pruning_step_time.py --models resnet18 --rounds 5
"""
import argparse
import copy
import statistics
from typing import Any, List, Optional, Tuple

import torch
from torch import nn

import pruning_vs_torch_pruning as bench
from _pruning_bench import (INPUT_SHAPE, add_model_and_target_options,
                            build_model, load_split, prune_ours, prune_tp)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_model_and_target_options(parser)
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--repeats', type=int, default=5,
                        help='steps timed per round and side (median)')
    parser.add_argument('--work-dir', default='/tmp/mmrazor_bench_pruning',
                        help='trained models (pruning_vs_torch_pruning.py)')
    args = parser.parse_args(argv)
    for key in ('rounds', 'repeats'):
        if getattr(args, key) < 1:
            parser.error(f'--{key} must be >= 1, got {getattr(args, key)}')
    return args


def compare_steps(tp: Any, model: nn.Module, classifier: str,
                  target: float, rounds: int,
                  repeats: int) -> Tuple[float, float]:
    """Median step CPU ms of ours and of Torch-Pruning pruning ``model``
    (left unchanged) to ``1 / target`` of its FLOPs, rounds alternating.

    Returns:
        tuple: ``(ours_ms, torch_pruning_ms)``.
    """
    probe = torch.zeros(*INPUT_SHAPE)
    ours, theirs = [], []
    ratio = None  # Torch-Pruning's channel ratio for the target, found once
    for _ in range(rounds):
        result = prune_ours(
            copy.deepcopy(model), 'L1Importance', classifier, 1 / target,
            [], probe, repeats=repeats)
        ours.append(result['step'] * 1e3)
        _, result = prune_tp(tp, model, 'magnitude', classifier, 1 / target,
                             [], repeats=repeats, ratio=ratio)
        ratio = result['ratio']
        theirs.append(result['step'] * 1e3)
    return statistics.median(ours), statistics.median(theirs)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    import torch_pruning as tp
    torch.set_num_threads(1)
    bench.quiet_mmengine()
    import mmrazor.models  # noqa: F401 (registers the criteria)
    defaults = bench.parse_args(['--work-dir', args.work_dir])
    log = bench.Log()
    data = {}
    data['pre_x'], data['pre_y'] = load_split(defaults.data_root, 'train',
                                              defaults.pretrain_per_class)
    print(f'Torch-Pruning {tp.__version__}, torch {torch.__version__}, one '
          f'thread, {args.rounds} rounds x {args.repeats} steps per side')
    print('| model | target | ours ms (L1) | Torch-Pruning ms (magnitude) '
          '| ours / TP |')
    print('|---|---|---|---|---|')
    worst = 0.0
    for name in args.models:
        trained = bench.pretrained(name, defaults, data, log)
        _, classifier = build_model(name)
        for target in args.targets:
            ours, theirs = compare_steps(tp, trained, classifier, target,
                                         args.rounds, args.repeats)
            worst = max(worst, ours / theirs)
            print(f'| {name} | {target:g}x | {ours:.1f} | {theirs:.1f} | '
                  f'{ours / theirs:.2f} |',
                  flush=True)
    print(f'step-time bar (ours <= Torch-Pruning at every pair): '
          f'{"met" if worst <= 1 else "NOT met"} (worst ratio {worst:.2f})')


if __name__ == '__main__':
    main()
