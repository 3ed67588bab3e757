"""Training-step time of the quickstart model: channels_last vs contiguous.

Builds the quickstart classifier from its config (mmpretrain
``ResNet_CIFAR`` depth 18, stem and base width 16, one input channel) twice
with the same weights, converts one copy and its input batch to
``torch.channels_last``, and times full training steps (forward,
cross-entropy, backward, SGD step) of both on the same fixed batch,
interleaved round by round in one process so that machine noise hits both
alike. Prints the median (and minimum) step times and the ratio
contiguous / channels_last: above 1 means channels_last is faster.

Use ``--threads 1`` (the default) on a CPU shared with other processes: the
process CPU time of one thread is then robust to the other load. ``--threads
0`` keeps torch's default thread count, as ``tools/train.py`` does.

Example::

    python benchmarks/channels_last_step.py
    python benchmarks/channels_last_step.py --threads 0 --rounds 3
"""
import argparse
import copy
import statistics
from typing import Dict, List

import torch
import torch.nn as nn
from _timing import (StepTime, add_timing_args, make_step, median_ms,
                     run_interleaved, setup_torch)
from mmengine.config import Config

from mmrazor.registry import MODELS
from mmrazor.utils import register_all_modules

QUICKSTART = 'configs/vanilla/resnet18-w16_fashion-mnist.py'


def parse_args() -> argparse.Namespace:
    """Parse the command line.

    Returns:
        argparse.Namespace: The options.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--config', default=QUICKSTART)
    parser.add_argument('--batch-size', type=int, default=64)
    parser.add_argument('--img-size', type=int, default=28)
    parser.add_argument(
        '--rounds',
        type=int,
        default=1,
        help='repeat the whole interleaved measurement this many times and '
        'print each, to show the spread between repetitions')
    add_timing_args(parser)
    return parser.parse_args()


def build_model(config: str, device: str) -> nn.Module:
    """Build the classifier of a config, in training mode.

    Args:
        config (str): Path of an mmrazor config with an mmpretrain
            ``ImageClassifier`` under ``model``.
        device (str): Where to put it.

    Returns:
        nn.Module: The model; ``model(x)`` returns the class scores.
    """
    register_all_modules(init_default_scope=False)
    cfg = Config.fromfile(config)
    model = MODELS.build(cfg.model)
    return model.to(device).train()


def measure(args: argparse.Namespace) -> Dict[str, List[StepTime]]:
    """Time the two memory formats once, interleaved.

    Args:
        args (argparse.Namespace): The options of :func:`parse_args`.

    Returns:
        dict: ``(wall, cpu)`` seconds per recorded step, by format name.
    """
    contiguous = build_model(args.config, args.device)
    channels_last = copy.deepcopy(contiguous).to(
        memory_format=torch.channels_last)
    in_channels = contiguous.backbone.conv1.in_channels
    x = torch.randn(args.batch_size, in_channels, args.img_size,
                    args.img_size, device=args.device)
    y = torch.randint(0, 10, (args.batch_size, ), device=args.device)
    steps = {
        'contiguous': make_step(contiguous, x, y),
        'channels_last': make_step(
            channels_last, x.contiguous(memory_format=torch.channels_last),
            y),
    }
    return run_interleaved(steps, args.warmup, args.steps)


def main() -> None:
    args = parse_args()
    setup_torch(args.threads, args.seed)
    in_channels = Config.fromfile(args.config).model.backbone.in_channels
    print(f'{args.config}: input {args.batch_size}x{in_channels}x'
          f'{args.img_size}x'
          f'{args.img_size}, {args.steps} steps after {args.warmup} warm-up, '
          f'{args.device}, {torch.get_num_threads()} threads')
    print('round   contiguous ms/step      channels_last ms/step   '
          'ratio contiguous/channels_last')
    print('        wall (min)    cpu       wall (min)    cpu       '
          'wall   cpu')
    ratios = []
    for r in range(args.rounds):
        times = measure(args)
        c, cl = times['contiguous'], times['channels_last']
        c_wall, cl_wall = median_ms(c, 0), median_ms(cl, 0)
        c_cpu, cl_cpu = median_ms(c, 1), median_ms(cl, 1)
        c_min = min(t[0] for t in c) * 1e3
        cl_min = min(t[0] for t in cl) * 1e3
        ratios.append(c_wall / cl_wall)
        print(f'{r:5d}   {c_wall:6.1f} ({c_min:6.1f}) {c_cpu:6.1f}    '
              f'{cl_wall:6.1f} ({cl_min:6.1f}) {cl_cpu:6.1f}    '
              f'{c_wall / cl_wall:5.2f}  {c_cpu / cl_cpu:5.2f}')
    if args.rounds > 1:
        print(f'wall ratio over {args.rounds} rounds: '
              f'{min(ratios):.2f} .. {max(ratios):.2f} '
              f'(median {statistics.median(ratios):.2f})')


if __name__ == '__main__':
    main()
