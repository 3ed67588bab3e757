"""Reproduce the CWD segmentation table of docs/distillation.md.

Channel-wise distillation (CWD) of a PSPNet-R18 student from a PSPNet-R50
teacher on the generated Fashion-MNIST dense data, on a CPU. Trains the
teacher once (or reuses ``--teacher-ckpt``), then for every seed the student
alone and the CWD student with the same schedule and seed, reads the final
validation mIoU of every run, prints a Markdown table (per seed, mean ± std)
and writes it as ``results.json`` and ``results.png`` (a bar plot) under
``--work-root``::

    python benchmarks/cwd_fashion_mnist_dense.py --seeds 0 1 2

Every run is ``tools/train.py CONFIG --work-dir DIR --cfg-options
randomness.seed=S ...`` (the CWD runs add ``model.distiller.teacher_ckpt=``);
its log is ``DIR.log``. Runs whose work dir already holds their final
validation are not repeated (``--force`` retrains them). Training processes
use ``--threads`` OMP threads each (1 is fastest on a small shared CPU) and
``--jobs`` of them run at once.

A variant of the CWD run (``--cwd-options KEY=VALUE ...``, e.g. another
temperature) is compared with the same teacher and student-alone runs when
it gets its own ``--cwd-tag`` (work dirs ``TAG_seedS``, ``results_TAG.json``)::

    python benchmarks/cwd_fashion_mnist_dense.py --cwd-tag cwd-tau4 \
        --cwd-options model.distiller.components.0.losses.0.tau=4
"""
import argparse
import concurrent.futures
import glob
import json
import os
import os.path as osp
import platform
import statistics
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence, Tuple

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CFG_DIR = osp.join('configs', 'distill', 'cwd')
TEACHER = osp.join(CFG_DIR, 'teacher_pspnet_r50-d8_fashion-mnist-dense.py')
STUDENT = osp.join(CFG_DIR, 'student_pspnet_r18-d8_fashion-mnist-dense.py')
CWD = osp.join(CFG_DIR,
               'cwd_logits_pspnet_r50-d8_pspnet_r18-d8_fashion-mnist-dense.py')
METRIC = 'mIoU'


def final_metric(work_dir: str, step: int) -> Optional[float]:
    """The ``mIoU`` of the validation at iteration ``step`` of the latest
    run in ``work_dir`` (mmengine's ``<timestamp>/vis_data/scalars.json``).

    Args:
        work_dir (str): A run's work dir.
        step (int): The iteration of the final validation (``max_iters``).

    Returns:
        float | None: The mIoU (percent), or None when that validation has
        not been logged.
    """
    for path in sorted(
            glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')),
            reverse=True):
        value = None
        with open(path) as f:
            for line in f:
                record = json.loads(line)
                if METRIC in record and record.get('step') == step:
                    value = float(record[METRIC])
        if value is not None:
            return value
    return None


def max_iters_of(config: str, options: Sequence[str]) -> int:
    """``train_cfg.max_iters`` of ``config`` after ``--cfg-options``.

    Args:
        config (str): Config path.
        options (Sequence[str]): ``key=value`` overrides.

    Returns:
        int: The number of training iterations.
    """
    from mmengine.config import Config, DictAction
    cfg = Config.fromfile(osp.join(ROOT, config))
    if options:
        parser = argparse.ArgumentParser()
        parser.add_argument('--o', nargs='+', action=DictAction)
        cfg.merge_from_dict(parser.parse_args(['--o', *options]).o)
    if 'max_iters' not in cfg.train_cfg:
        raise KeyError(f'{config}: train_cfg has no `max_iters`; this '
                       'benchmark expects an iteration-based schedule')
    return int(cfg.train_cfg.max_iters)


def train(config: str, work_dir: str, options: Sequence[str], force: bool,
          threads: int) -> Tuple[float, float]:
    """Train ``config`` into ``work_dir`` unless its final validation is
    already there.

    Args:
        config (str): Config path, relative to the repository root.
        work_dir (str): Work dir of the run.
        options (Sequence[str]): ``--cfg-options`` of the run.
        force (bool): Retrain even if the run is complete.
        threads (int): OMP / MKL threads of the training process.

    Returns:
        tuple[float, float]: The final mIoU and the wall time in seconds
        (0 when the run was reused).
    """
    step = max_iters_of(config, options)
    done = final_metric(work_dir, step)
    if done is not None and not force:
        print(f'[reuse] {work_dir}: {METRIC} {done:.2f}', flush=True)
        return done, 0.0
    cmd = [
        sys.executable,
        osp.join('tools', 'train.py'), config, '--work-dir', work_dir
    ]
    if options:
        cmd += ['--cfg-options', *options]
    print('[run]', ' '.join(cmd), flush=True)
    log = work_dir.rstrip('/') + '.log'
    os.makedirs(osp.dirname(osp.abspath(log)), exist_ok=True)
    env = dict(
        os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    start = time.time()
    with open(log, 'w') as f:
        proc = subprocess.run(
            cmd, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT, env=env)
    seconds = time.time() - start
    if proc.returncode != 0:
        raise RuntimeError(f'training failed (exit {proc.returncode}): '
                           f'{" ".join(cmd)}; see {log}')
    value = final_metric(work_dir, step)
    if value is None:
        raise RuntimeError(f'{work_dir}: no {METRIC} logged at iteration '
                           f'{step}; see {log}')
    print(f'[done] {work_dir}: {METRIC} {value:.2f} ({seconds:.0f} s)',
          flush=True)
    return value, seconds


def last_checkpoint(work_dir: str) -> str:
    """The checkpoint named by mmengine's ``last_checkpoint`` file.

    Args:
        work_dir (str): A finished run's work dir.

    Returns:
        str: The checkpoint path.
    """
    marker = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(marker):
        raise FileNotFoundError(f'{marker} does not exist: the teacher run '
                                'did not save a checkpoint')
    with open(marker) as f:
        path = f.read().strip()
    if not osp.isfile(path):
        raise FileNotFoundError(f'{marker} names {path!r}, which does not '
                                'exist')
    return path


def mean_std(values: List[float]) -> Tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return statistics.mean(values), std


def markdown_table(results: Dict[str, Dict[int, float]], seeds: List[int],
                   labels: Dict[str, str]) -> str:
    """The per-seed / mean table as Markdown.

    Args:
        results (dict): ``{row: {seed: mIoU}}``.
        seeds (list[int]): Column order.
        labels (dict): Row labels.

    Returns:
        str: The table.
    """
    header = ' | '.join(f'seed {s}' for s in seeds)
    lines = [
        f'| model | {header} | mean ± std |',
        '|---' * (len(seeds) + 2) + '|',
    ]
    for row, label in labels.items():
        values = [results[row][s] for s in seeds]
        mean, std = mean_std(values)
        cells = ' | '.join(f'{v:.2f}' for v in values)
        lines.append(f'| {label} | {cells} | {mean:.2f} ± {std:.2f} |')
    return '\n'.join(lines)


def bar_plot(path: str, results: Dict[str, Dict[int, float]],
             seeds: List[int], labels: Dict[str, str],
             teacher: Optional[float]) -> None:
    """Write a small PNG bar plot (per seed and mean) with Pillow.

    Args:
        path (str): Output file.
        results (dict): ``{row: {seed: mIoU}}`` with rows ``student`` and
            ``cwd``.
        seeds (list[int]): Groups, in order (a ``mean`` group is added).
        labels (dict): Row labels for the legend.
        teacher (float, optional): Teacher mIoU, drawn as a line.
    """
    from PIL import Image, ImageDraw, ImageFont

    width, height = 560, 340
    left, right, top, bottom = 50, 20, 40, 50
    colours = {'student': (150, 150, 150), 'cwd': (40, 110, 200)}
    groups = [str(s) for s in seeds] + ['mean']
    values = {
        row: [results[row][s] for s in seeds] +
        [mean_std([results[row][s] for s in seeds])[0]]
        for row in colours
    }
    top_value = max([v for vs in values.values() for v in vs] +
                    [teacher or 0.0])
    y_max = max(10.0, 10.0 * (int(top_value // 10) + 1))

    img = Image.new('RGB', (width, height), 'white')
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default()
    plot_h = height - top - bottom

    def y_of(value: float) -> float:
        return top + plot_h * (1 - value / y_max)

    for tick in range(0, int(y_max) + 1, 10):
        y = y_of(tick)
        draw.line([(left, y), (width - right, y)], fill=(230, 230, 230))
        draw.text((8, y - 6), f'{tick:>3d}', fill='black', font=font)
    draw.line([(left, top), (left, height - bottom)], fill='black')
    draw.line([(left, height - bottom), (width - right, height - bottom)],
              fill='black')
    group_w = (width - left - right) / len(groups)
    bar_w = group_w * 0.32
    for g, name in enumerate(groups):
        x0 = left + g * group_w + group_w * 0.16
        for k, row in enumerate(colours):
            value = values[row][g]
            xa = x0 + k * bar_w
            draw.rectangle([xa, y_of(value), xa + bar_w - 2,
                            height - bottom],
                           fill=colours[row])
            draw.text((xa, y_of(value) - 12), f'{value:.1f}', fill='black',
                      font=font)
        label = f'seed {name}' if name != 'mean' else 'mean'
        draw.text((x0 + bar_w * 0.4, height - bottom + 6), label,
                  fill='black', font=font)
    if teacher is not None:
        y = y_of(teacher)
        for x in range(left, width - right, 8):
            draw.line([(x, y), (x + 4, y)], fill=(200, 60, 40))
        draw.text((width - right - 120, y - 12), f'teacher {teacher:.1f}',
                  fill=(200, 60, 40), font=font)
    draw.text((left, 8), 'val mIoU (%) - Fashion-MNIST dense, PSPNet',
              fill='black', font=font)
    x = left
    for row, colour in colours.items():
        draw.rectangle([x, 24, x + 10, 32], fill=colour)
        draw.text((x + 14, 22), labels[row], fill='black', font=font)
        x += 14 + 7 * len(labels[row]) + 20
    img.save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--work-root', default='work_dirs/cwd_fmnist_dense')
    parser.add_argument(
        '--teacher-ckpt',
        help='reuse this teacher checkpoint instead of training the teacher')
    parser.add_argument(
        '--cwd-options',
        nargs='+',
        default=[],
        metavar='KEY=VALUE',
        help='extra --cfg-options of the CWD runs only (e.g. '
        'model.distiller.components.0.losses.0.tau=4); use a separate '
        '--work-root for each variant')
    parser.add_argument(
        '--cwd-tag',
        default='cwd',
        help='name of the CWD runs (work dirs TAG_seedS, results_TAG.json '
        'unless TAG is "cwd"), so that variants given by --cwd-options '
        'share the teacher and the student-alone runs of one --work-root')
    parser.add_argument(
        '--options',
        nargs='+',
        default=[],
        metavar='KEY=VALUE',
        help='extra --cfg-options of both student runs (same schedule)')
    parser.add_argument('--force', action='store_true')
    parser.add_argument(
        '--threads',
        type=int,
        default=1,
        help='OMP/MKL threads per training process')
    parser.add_argument(
        '--jobs',
        type=int,
        default=1,
        help='training processes at once (the teacher always runs alone)')
    args = parser.parse_args()
    if args.cwd_tag == 'student' or not args.cwd_tag.replace(
            '-', '').replace('_', '').isalnum():
        raise ValueError(f'--cwd-tag {args.cwd_tag!r}: use letters, digits, '
                         '"-" or "_", and not "student"')
    os.chdir(ROOT)
    started = time.time()

    teacher_dir = osp.join(args.work_root, 'teacher')
    teacher_miou: Optional[float] = None
    teacher_seconds = 0.0
    if args.teacher_ckpt:
        if not osp.isfile(args.teacher_ckpt):
            raise FileNotFoundError(
                f'--teacher-ckpt {args.teacher_ckpt!r} does not exist')
        teacher_ckpt = args.teacher_ckpt
        teacher_miou = final_metric(
            osp.dirname(teacher_ckpt), max_iters_of(TEACHER, []))
    else:
        teacher_miou, teacher_seconds = train(TEACHER, teacher_dir, [],
                                              args.force, args.threads)
        teacher_ckpt = last_checkpoint(teacher_dir)

    runs = []
    for seed in args.seeds:
        common = [f'randomness.seed={seed}', *args.options]
        runs.append(('student', seed, STUDENT, common))
        runs.append((args.cwd_tag, seed, CWD, common + [
            f'model.distiller.teacher_ckpt={teacher_ckpt}', *args.cwd_options
        ]))
    results: Dict[str, Dict[int, float]] = {'student': {}, 'cwd': {}}
    seconds: Dict[str, List[float]] = {'student': [], 'cwd': []}
    with concurrent.futures.ThreadPoolExecutor(max(1, args.jobs)) as pool:
        futures = {
            pool.submit(train, config,
                        osp.join(args.work_root, f'{row}_seed{seed}'),
                        options, args.force, args.threads): (row, seed)
            for row, seed, config, options in runs
        }
        for future in concurrent.futures.as_completed(futures):
            row, seed = futures[future]
            row = 'student' if row == 'student' else 'cwd'
            value, secs = future.result()
            results[row][seed] = value
            if secs:
                seconds[row].append(secs)

    labels = {
        'student': 'student alone (PSPNet-R18)',
        'cwd': 'student + CWD from PSPNet-R50' +
        ('' if args.cwd_tag == 'cwd' else f' ({args.cwd_tag})'),
    }
    seeds = list(args.seeds)
    table = markdown_table(results, seeds, labels)
    print()
    if teacher_miou is not None:
        print(f'teacher (PSPNet-R50): {METRIC} {teacher_miou:.2f}')
    print()
    print(table)
    student_mean = mean_std([results['student'][s] for s in seeds])
    cwd_mean = mean_std([results['cwd'][s] for s in seeds])
    gain = cwd_mean[0] - student_mean[0]
    wins = sum(results['cwd'][s] > results['student'][s] for s in seeds)
    print(f'\nCWD - student alone: {gain:+.2f} mIoU (mean), CWD better on '
          f'{wins}/{len(seeds)} seeds')
    for row, secs in seconds.items():
        if secs:
            print(f'{row}: {statistics.mean(secs):.0f} s per run (wall, '
                  f'{args.jobs} at once)')

    os.makedirs(args.work_root, exist_ok=True)
    summary = dict(
        metric=f'val {METRIC} (%) at the end of training',
        configs=dict(teacher=TEACHER, student=STUDENT, cwd=CWD),
        cwd_tag=args.cwd_tag,
        teacher_ckpt=teacher_ckpt,
        teacher=teacher_miou,
        seeds=seeds,
        options=args.options,
        cwd_options=args.cwd_options,
        per_seed={
            row: {str(s): results[row][s]
                  for s in seeds}
            for row in results
        },
        mean={
            'student': student_mean[0],
            'cwd': cwd_mean[0]
        },
        std={
            'student': student_mean[1],
            'cwd': cwd_mean[1]
        },
        cwd_minus_student=gain,
        cwd_wins=wins,
        seconds_per_run={
            row: (statistics.mean(secs) if secs else None)
            for row, secs in seconds.items()
        },
        teacher_seconds=teacher_seconds or None,
        threads=args.threads,
        jobs=args.jobs,
        total_seconds=time.time() - started,
        host=dict(
            python=platform.python_version(), cpus=os.cpu_count()),
        table=table,
    )
    suffix = '' if args.cwd_tag == 'cwd' else f'_{args.cwd_tag}'
    json_path = osp.join(args.work_root, f'results{suffix}.json')
    with open(json_path, 'w') as f:
        json.dump(summary, f, indent=2)
    png_path = osp.join(args.work_root, f'results{suffix}.png')
    bar_plot(png_path, results, seeds, labels, teacher_miou)
    print(f'\nwrote {json_path} and {png_path}')


if __name__ == '__main__':
    main()
