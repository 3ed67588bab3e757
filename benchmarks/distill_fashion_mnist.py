"""Reproduce the Fashion-MNIST table of docs/distillation.md.

Trains, one process at a time, the teacher (once), then for every seed the
student alone and the students distilled by each method (plain KD, and KD
plus a feature loss: FitNets' hint, attention transfer, PKD) with the same
epochs and seed, and prints a Markdown table of the final-epoch top-1
accuracy::

    python benchmarks/distill_fashion_mnist.py --seeds 0 1 2
    python benchmarks/distill_fashion_mnist.py --methods kd at_kd

Runs whose work dir already holds the last checkpoint are not repeated
(``--force`` retrains them). Everything goes under ``--work-root``
(default ``work_dirs/distill_fmnist``); each run's log is next to its
work dir (``<work dir>.log``). Training processes use one OMP thread by
default (``--threads``), which is much faster on a small shared CPU.
"""
import argparse
import glob
import json
import os
import os.path as osp
import statistics
import subprocess
import sys
import time
from typing import Dict, List, Optional

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CFG = osp.join('configs', 'distill', 'fashion_mnist')
TEACHER = osp.join(CFG, 'teacher_resnet18-w16_fashion-mnist.py')
STUDENT = osp.join(CFG, 'student_resnet18-w4_fashion-mnist.py')
KD = osp.join(CFG, 'kd_resnet18-w16_resnet18-w4_fashion-mnist.py')
#: method -> (config, label); the teacher checkpoint is given to all but
#: the student alone
METHODS = {
    'student': (STUDENT, 'student alone (ResNet-18 w4)'),
    'kd': (KD, 'KD (logits, tau 4)'),
    'fitnets_kd': (osp.join(
        CFG, 'fitnets_kd_resnet18-w16_resnet18-w4_fashion-mnist.py'),
                   'FitNets hint (stage 3) + KD'),
    'at_kd': (osp.join(CFG, 'at_kd_resnet18-w16_resnet18-w4_fashion-mnist.py'),
              'attention transfer (stages 1-3) + KD'),
    'pkd_kd': (osp.join(CFG,
                        'pkd_kd_resnet18-w16_resnet18-w4_fashion-mnist.py'),
               'PKD (stage 3) + KD'),
}
EPOCHS = 6


def final_top1(work_dir: str) -> Optional[float]:
    """Top-1 accuracy of the last validation of the latest run in
    ``work_dir`` (from mmengine's ``vis_data/scalars.json``)."""
    runs = sorted(
        glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    if not runs:
        return None
    top1 = None
    with open(runs[-1]) as f:
        for line in f:
            record = json.loads(line)
            if 'accuracy/top1' in record:
                top1 = record['accuracy/top1']
    return top1


def train(config: str, work_dir: str, options: List[str], force: bool,
          threads: int) -> float:
    """Train ``config`` into ``work_dir`` unless already done.

    Returns:
        float: Wall time in seconds (0 when skipped).
    """
    if not force and osp.isfile(osp.join(work_dir, f'epoch_{EPOCHS}.pth')):
        print(f'[skip] {work_dir} is complete', flush=True)
        return 0.0
    cmd = [
        sys.executable,
        osp.join('tools', 'train.py'), config, '--work-dir', work_dir
    ]
    if options:
        cmd += ['--cfg-options'] + options
    print('[run]', ' '.join(cmd), flush=True)
    start = time.time()
    log = osp.join(work_dir + '.log')
    os.makedirs(osp.dirname(log), exist_ok=True)
    env = dict(
        os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    with open(log, 'w') as f:
        subprocess.run(
            cmd,
            cwd=ROOT,
            stdout=f,
            stderr=subprocess.STDOUT,
            check=True,
            env=env)
    return time.time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument(
        '--methods',
        nargs='+',
        choices=sorted(METHODS),
        default=list(METHODS),
        help='which students to train (default: all)')
    parser.add_argument('--work-root', default='work_dirs/distill_fmnist')
    parser.add_argument('--force', action='store_true')
    parser.add_argument(
        '--threads',
        type=int,
        default=1,
        help='OMP/MKL threads per training process (1 is fastest on a '
        'small, shared CPU)')
    args = parser.parse_args()
    os.chdir(ROOT)

    teacher_dir = osp.join(args.work_root, 'teacher')
    train(TEACHER, teacher_dir, [], args.force, args.threads)
    teacher_ckpt = osp.join(teacher_dir, f'epoch_{EPOCHS}.pth')

    results: Dict[str, Dict[int, float]] = {m: {} for m in args.methods}
    times: Dict[str, List[float]] = {m: [] for m in args.methods}
    for seed in args.seeds:
        for name in args.methods:
            config = METHODS[name][0]
            extra = [] if name == 'student' else [
                f'model.distiller.teacher_ckpt={teacher_ckpt}'
            ]
            work_dir = osp.join(args.work_root, f'{name}_seed{seed}')
            seconds = train(config, work_dir,
                            [f'randomness.seed={seed}'] + extra, args.force,
                            args.threads)
            if seconds:
                times[name].append(seconds)
            results[name][seed] = final_top1(work_dir)

    teacher_top1 = final_top1(teacher_dir)
    print()
    print(f'teacher (ResNet-18 w16, seed 0): top-1 {teacher_top1:.2f}')
    print()
    header = ' | '.join(f'seed {s}' for s in args.seeds)
    print(f'| student (ResNet-18 w4, {EPOCHS} epochs) | {header} | '
          'mean ± std |')
    print('|---' * (len(args.seeds) + 2) + '|')
    for name in args.methods:
        accs = [results[name][s] for s in args.seeds]
        cells = ' | '.join(f'{a:.2f}' for a in accs)
        std = statistics.stdev(accs) if len(accs) > 1 else 0.0
        print(f'| {METHODS[name][1]} | {cells} | '
              f'{statistics.mean(accs):.2f} ± {std:.2f} |')
    for name, secs in times.items():
        if secs:
            print(f'{name}: {statistics.mean(secs):.0f} s per run (wall)')


if __name__ == '__main__':
    main()
