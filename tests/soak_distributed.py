"""Repeat the distributed runs and count clean exits (no retry anywhere).

Run by hand on the machine kind CI uses (a few tens of minutes for the
default 20 rounds on 2 cores)::

    python tests/soak_distributed.py --repeat 20 [--only tests|train|search]

* ``tests``: the multi-process tests of the default suite (``pytest -m
  multiprocess``), one pytest run per round; each test must pass every
  round.
* ``train``: ``torchrun --nproc_per_node 2 tools/train.py`` on the
  Fashion-MNIST quickstart config (one short epoch); exit code 0 every time
  and the same final weights every time.
* ``search``: ``torchrun --nproc_per_node 2 tools/search.py`` of the SPOS
  Fashion-MNIST search config (a small pool) on a supernet trained once at
  the start; exit code 0 every time and the same candidates, scores and
  best subnet every time.

Prints one line per launch and, last, ``N passed, N failed``.
"""
import argparse
import collections
import json
import os
import os.path as osp
import re
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, Dict, List

import torch

HERE = osp.dirname(osp.abspath(__file__))
REPO = osp.dirname(HERE)
sys.path.insert(0, HERE)
from launch import LEFTOVER_GROUP, free_port  # noqa: E402

SHORT_DATA = [
    'train_dataloader.dataset.indices=1024',
    'val_dataloader.dataset.indices=200'
]
TRAIN_CONFIG = 'configs/vanilla/resnet18-w16_fashion-mnist.py'
SUPERNET_CONFIG = 'configs/nas/spos/spos_shufflenet-s_supernet_fashion-mnist.py'
SEARCH_CONFIG = 'configs/nas/spos/spos_shufflenet-s_search_fashion-mnist.py'
SMALL_SEARCH = [
    'searcher.candidate_pool_size=8', 'searcher.max_epoch=2',
    'searcher.num_mutation=3', 'searcher.num_crossover=3',
    'searcher.calib_batches=2'
]


def torchrun(args: List[str], log: str) -> int:
    """Launch ``args`` on 2 gloo ranks; the output goes to ``log``.

    Returns:
        int: The launcher's exit code, or -1 when the output shows a
        process group left referenced at the end.
    """
    cmd = [
        sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node',
        '2', '--master_port',
        str(free_port()), *args, '--launcher', 'pytorch'
    ]
    env = dict(os.environ, OMP_NUM_THREADS='1', CUDA_VISIBLE_DEVICES='')
    with open(log, 'w') as f:
        code = subprocess.run(cmd, cwd=REPO, env=env, stdout=f,
                              stderr=subprocess.STDOUT).returncode
    with open(log) as f:
        if code == 0 and LEFTOVER_GROUP in f.read():
            return -1
    return code


def final_weights(work_dir: str) -> Dict[str, torch.Tensor]:
    """The model weights of the last checkpoint of a training run."""
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        path = f.read().strip()
    from mmrazor.utils import safe_torch_load
    return safe_torch_load(path, map_location='cpu')['state_dict']


def search_result(work_dir: str) -> dict:
    """What a search decided: every candidate with its score, and the best."""
    with open(osp.join(work_dir, 'candidates.json')) as f:
        candidates = json.load(f)
    with open(osp.join(work_dir, 'best_subnet.yaml')) as f:
        best = f.read()
    return dict(candidates=candidates, best=best)


class Tally:
    """Counts passes and failures per item and prints each launch."""

    def __init__(self) -> None:
        self.counts: Dict[str, List[int]] = collections.defaultdict(
            lambda: [0, 0])

    def add(self, item: str, ok: bool, detail: str = '') -> None:
        self.counts[item][0 if ok else 1] += 1
        print(f'{"PASS" if ok else "FAIL"} {item} {detail}', flush=True)

    def summary(self) -> int:
        for item, (good, bad) in sorted(self.counts.items()):
            print(f'{item}: {good} passed, {bad} failed')
        failed = sum(bad for _, bad in self.counts.values())
        passed = sum(good for good, _ in self.counts.values())
        print(f'{passed} passed, {failed} failed')
        return failed


def soak_tests(repeat: int, out: str, tally: Tally) -> None:
    for round_ in range(repeat):
        log = osp.join(out, f'tests_{round_}.log')
        with open(log, 'w') as f:
            subprocess.run([
                sys.executable, '-m', 'pytest', '-m', 'multiprocess', '-rA',
                '-q', '-p', 'no:cacheprovider'
            ],
                           cwd=REPO, stdout=f, stderr=subprocess.STDOUT)
        with open(log) as f:
            text = f.read()
        results = re.findall(r'^(PASSED|FAILED|ERROR) (\S+)', text, re.M)
        if not results:
            tally.add('pytest -m multiprocess', False, f'no result ({log})')
        for outcome, node in results:
            tally.add(node, outcome == 'PASSED', f'round {round_}')


def repeat_launch(name: str, repeat: int, args_of: Callable[[str], List[str]],
                  result_of: Callable[[str], Any], tally: Tally,
                  out: str) -> None:
    """Launch ``args_of(work_dir)`` ``repeat`` times on 2 ranks; each round
    must exit 0 and give the same ``result_of(work_dir)`` as the first."""
    reference = None
    for round_ in range(repeat):
        work = osp.join(out, f'{name}_{round_}')
        start = time.monotonic()
        code = torchrun(args_of(work), work + '.log')
        detail = f'round {round_} exit {code} ({time.monotonic() - start:.0f} s)'
        if code != 0:
            tally.add(name, False, detail)
            continue
        result = result_of(work)
        reference = result if reference is None else reference
        same = same_result(result, reference)
        tally.add(name, same, detail + ('' if same else ', other result'))


def same_result(a: Any, b: Any) -> bool:
    """Equal results; weights compared tensor by tensor."""
    if isinstance(a, dict) and a and all(
            isinstance(v, torch.Tensor) for v in a.values()):
        return a.keys() == b.keys() and all(
            torch.equal(a[k], b[k]) for k in a)
    return a == b


def soak_train(repeat: int, out: str, tally: Tally) -> None:
    repeat_launch(
        'train', repeat, lambda work: [
            'tools/train.py', TRAIN_CONFIG, '--work-dir', work,
            '--cfg-options', 'train_cfg.max_epochs=1', *SHORT_DATA
        ], final_weights, tally, out)


def soak_search(repeat: int, out: str, tally: Tally) -> None:
    supernet = osp.join(out, 'supernet')
    subprocess.run([
        sys.executable, 'tools/train.py', SUPERNET_CONFIG, '--work-dir',
        supernet, '--cfg-options', 'train_cfg.max_epochs=1', *SHORT_DATA
    ],
                   cwd=REPO, check=True, capture_output=True)
    checkpoint = osp.join(supernet, 'epoch_1.pth')
    repeat_launch(
        'search', repeat, lambda work: [
            'tools/search.py', SEARCH_CONFIG, checkpoint, '--work-dir', work,
            '--cfg-options', *SMALL_SEARCH, SHORT_DATA[1]
        ], search_result, tally, out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--repeat', type=int, default=20)
    parser.add_argument('--only', choices=['tests', 'train', 'search'],
                        action='append', help='default: all three')
    parser.add_argument('--out', help='where logs and work dirs go '
                        '(default: a new temporary directory)')
    args = parser.parse_args()
    out = args.out or tempfile.mkdtemp(prefix='soak_distributed_')
    os.makedirs(out, exist_ok=True)
    print(f'logs and work dirs: {out}', flush=True)
    tally = Tally()
    parts = dict(tests=soak_tests, train=soak_train, search=soak_search)
    for name in args.only or list(parts):
        parts[name](args.repeat, out, tally)
    sys.exit(1 if tally.summary() else 0)


if __name__ == '__main__':
    main()
