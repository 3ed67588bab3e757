"""Wall time and top-1 accuracy of the README quickstart.

Runs the quickstart exactly as a new user does::

    python tools/train.py configs/vanilla/resnet18-w16_fashion-mnist.py

(a fresh process each time, work dir under ``--work-root``) and prints, per
run, the wall time from start to exit, the median training-iteration time
mmengine logged and the last epoch's top-1 accuracy; then each figure's range
over the runs. With ``--compare``, every round also trains with
``--cfg-options cpu_channels_last=False`` (NCHW, the layout before
:class:`mmrazor.core.ChannelsLastHook`), alternating which goes first, and
the ratio of the median wall times is printed.

The end-to-end test (``tests/test_e2e/test_quickstart.py``) checks the
accuracy only: how long training takes depends on the machine and its load,
which is what this script measures.

Examples::

    python benchmarks/quickstart_time.py
    python benchmarks/quickstart_time.py --compare --runs 2
    python benchmarks/quickstart_time.py --compare --epochs 1   # quicker
"""
import argparse
import glob
import json
import os
import os.path as osp
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, NamedTuple, Optional

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
QUICKSTART = osp.join('configs', 'vanilla', 'resnet18-w16_fashion-mnist.py')
#: ``--cfg-options`` of each variant.
VARIANTS: Dict[str, List[str]] = {
    'default': [],
    'contiguous': ['cpu_channels_last=False'],
}


class Run(NamedTuple):
    """What one training run measured."""

    wall: float  #: seconds from start to exit
    iter_time: float  #: median logged training-iteration time, seconds
    top1: float  #: top-1 accuracy (%) of the last validation


def parse_args() -> argparse.Namespace:
    """Parse the command line.

    Returns:
        argparse.Namespace: The options.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--runs', type=int, default=1,
                        help='rounds (each trains every variant once)')
    parser.add_argument('--compare', action='store_true',
                        help='also train with cpu_channels_last=False')
    parser.add_argument('--epochs', type=int, default=None,
                        help='train_cfg.max_epochs (default: the config, 6)')
    parser.add_argument(
        '--threads', type=int, default=0,
        help='OMP_NUM_THREADS of the training processes (0: leave it)')
    parser.add_argument('--work-root', default=None,
                        help='work dirs go here (default: a temporary dir)')
    return parser.parse_args()


def read_run(work_dir: str) -> Optional[Run]:
    """Read the iteration times and last top-1 of a finished run.

    Args:
        work_dir (str): The run's ``--work-dir``.

    Returns:
        Run | None: ``wall`` is 0 (the caller fills it in); None when no
        ``scalars.json`` or no accuracy was written.
    """
    found = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                      'scalars.json')))
    if not found:
        return None
    with open(found[-1]) as f:
        records = [json.loads(line) for line in f if line.strip()]
    times = [r['time'] for r in records if 'loss' in r and 'time' in r]
    top1 = [r['accuracy/top1'] for r in records if 'accuracy/top1' in r]
    if not times or not top1:
        return None
    return Run(0.0, statistics.median(times), top1[-1])


def train_once(variant: str, work_dir: str,
               args: argparse.Namespace) -> Run:
    """Run ``tools/train.py`` on the quickstart config once.

    Args:
        variant (str): A key of :data:`VARIANTS`.
        work_dir (str): The run's work dir (must not hold an earlier run).
        args (argparse.Namespace): The options of :func:`parse_args`.

    Returns:
        Run: Its measurements.
    """
    options = list(VARIANTS[variant])
    if args.epochs is not None:
        options.append(f'train_cfg.max_epochs={args.epochs}')
    cmd = [sys.executable, 'tools/train.py', QUICKSTART, '--work-dir',
           work_dir]
    if options:
        cmd += ['--cfg-options', *options]
    env = dict(os.environ)
    if args.threads:
        env['OMP_NUM_THREADS'] = str(args.threads)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True,
                          text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f'{" ".join(cmd)} failed:\n{proc.stderr[-3000:]}')
    run = read_run(work_dir)
    if run is None:
        sys.exit(f'{work_dir}: no iteration times or accuracy logged')
    return run._replace(wall=wall)


def span(values: List[float], fmt: str) -> str:
    """``min .. max (median m)`` of some measurements.

    Args:
        values (list[float]): The measurements.
        fmt (str): Format spec of one value, e.g. ``'.1f'``.

    Returns:
        str: The range and median.
    """
    lo, hi, mid = min(values), max(values), statistics.median(values)
    return f'{lo:{fmt}} .. {hi:{fmt}} (median {mid:{fmt}})'


def main() -> None:
    args = parse_args()
    variants = list(VARIANTS) if args.compare else ['default']
    root = args.work_root or tempfile.mkdtemp(prefix='quickstart_time_')
    print(f'python tools/train.py {QUICKSTART}   '
          f'(epochs: {args.epochs or "config"}, OMP_NUM_THREADS: '
          f'{args.threads or os.environ.get("OMP_NUM_THREADS", "unset")}, '
          f'{os.cpu_count()} CPUs, work dirs under {root})')
    print('round  variant      wall s   s/iter   top-1')
    runs: Dict[str, List[Run]] = {name: [] for name in variants}
    for i in range(args.runs):
        order = variants if i % 2 == 0 else list(reversed(variants))
        for name in order:
            run = train_once(name, osp.join(root, f'{name}_{i}'), args)
            runs[name].append(run)
            print(f'{i:5d}  {name:10s} {run.wall:8.1f} {run.iter_time:8.3f} '
                  f'{run.top1:7.2f}', flush=True)
    for name in variants:
        r = runs[name]
        print(f'{name}: wall {span([x.wall for x in r], ".1f")} s, '
              f'{span([x.iter_time for x in r], ".3f")} s/iter, '
              f'top-1 {span([x.top1 for x in r], ".2f")}')
    if args.compare:
        walls = {n: statistics.median(x.wall for x in runs[n])
                 for n in variants}
        iters = {n: statistics.median(x.iter_time for x in runs[n])
                 for n in variants}
        print(f'ratio contiguous/default: wall '
              f'{walls["contiguous"] / walls["default"]:.2f}, s/iter '
              f'{iters["contiguous"] / iters["default"]:.2f}')


if __name__ == '__main__':
    main()
