"""Timing harness shared by the side-by-side step benchmarks.

``benchmarks/`` is not a package: a script run as
``python benchmarks/NAME.py`` has this folder first on ``sys.path``, so it
imports this module as ``from _timing import ...``.

The harness times two or more steps interleaved round by round in one
process, alternating which goes first, so that machine noise and cache
effects hit all of them alike. Each timed step returns ``(wall, cpu)``
seconds: ``time.perf_counter`` and ``time.process_time`` deltas, taken
after synchronizing CUDA when the work runs there.
"""
import argparse
import statistics
import time
from typing import Callable, Dict, List, Tuple

import torch
import torch.nn as nn

#: ``(wall, cpu)`` seconds of one timed step.
StepTime = Tuple[float, float]
#: A step that runs once and returns its :data:`StepTime`.
TimedStep = Callable[[], StepTime]


def add_timing_args(parser: argparse.ArgumentParser) -> None:
    """Add the common timing flags to a benchmark's argument parser.

    Adds ``--steps`` (20), ``--warmup`` (3), ``--threads`` (1), ``--seed``
    (0) and ``--device`` ('cpu').

    Args:
        parser: The parser to extend.
    """
    parser.add_argument('--steps', type=int, default=20)
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument(
        '--threads',
        type=int,
        default=1,
        help='torch threads (0: leave the default). With 1 thread the '
        'process CPU time is a step time robust to other load.')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--device', default='cpu', help='cpu or cuda')


def setup_torch(threads: int, seed: int) -> None:
    """Set the number of torch threads and seed torch's RNG.

    Args:
        threads: Number of torch threads; 0 (or None) leaves the default.
        seed: Seed for ``torch.manual_seed``.
    """
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)


def make_sync(on_cuda: bool) -> Callable[[], None]:
    """Return the function that waits for pending device work.

    Args:
        on_cuda: Whether the timed work runs on a CUDA device.

    Returns:
        ``torch.cuda.synchronize`` on CUDA, otherwise a no-op.
    """
    return torch.cuda.synchronize if on_cuda else (lambda: None)


def timed(fn: Callable[[], object], sync: Callable[[], None]) -> TimedStep:
    """Wrap ``fn`` so that each call runs it once and times it.

    Args:
        fn: The work to time.
        sync: Called right before the timers start and right before they
            stop (see :func:`make_sync`).

    Returns:
        A function that runs ``fn`` and returns its ``(wall, cpu)`` seconds.
    """

    def step() -> StepTime:
        sync()
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        sync()
        return time.perf_counter() - wall, time.process_time() - cpu

    return step


def make_step(model: nn.Module, x: torch.Tensor,
              y: torch.Tensor) -> TimedStep:
    """Build a timed training step of ``model`` on one fixed batch.

    The step zeroes the gradients, runs forward, a cross-entropy loss and
    backward, then an SGD step (lr 0.01, momentum 0.9).

    Args:
        model: The classifier to train; its parameters get the optimizer.
        x: Input batch.
        y: Class indices of the batch.

    Returns:
        A function that runs one training step and returns its
        ``(wall, cpu)`` seconds.
    """
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    criterion = nn.CrossEntropyLoss()

    def train_step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()

    return timed(train_step, make_sync(x.is_cuda))


def run_interleaved(steps: Dict[str, TimedStep], warmup: int,
                    rounds: int) -> Dict[str, List[StepTime]]:
    """Run the steps interleaved and collect their times.

    Each round runs every step once: in the order of ``steps`` in even
    rounds, in reverse order in odd ones. The first ``warmup`` rounds are
    not recorded.

    Args:
        steps: Timed steps by name.
        warmup: Number of unrecorded rounds first.
        rounds: Number of recorded rounds.

    Returns:
        For each name, its ``(wall, cpu)`` seconds, one per recorded round.
    """
    times: Dict[str, List[StepTime]] = {name: [] for name in steps}
    for i in range(warmup + rounds):
        order = list(steps) if i % 2 == 0 else list(reversed(steps))
        for name in order:
            t = steps[name]()
            if i >= warmup:
                times[name].append(t)
    return times


def median_ms(times: List[StepTime], index: int) -> float:
    """Median of one timer over recorded steps, in milliseconds.

    Args:
        times: ``(wall, cpu)`` seconds per step, as from
            :func:`run_interleaved`.
        index: 0 for wall time, 1 for CPU time.

    Returns:
        The median in milliseconds.
    """
    return statistics.median(t[index] for t in times) * 1e3
