"""mmrazor's ImportancePruner vs Torch-Pruning at equal FLOPs.

The same trained model is pruned to 1/k of its FLOPs (k = 2, 3, 5, 8) by
mmrazor (``ImportancePruner`` with ``L1Importance``, ``TaylorImportance``
and, when it is registered, ``GroupFisherImportance``; ``prune_to_target``
then ``deploy_subnet``) and by Torch-Pruning 1.6 (``MetaPruner`` with
``global_pruning=True`` and its ``MagnitudeImportance`` / ``TaylorImportance``
at their defaults); each pruned model is fine-tuned with the same budget,
for every seed. Prints (and writes to ``--out``) a Markdown table: FLOPs and
parameter ratios reached, top-1 right after pruning and after fine-tuning
(mean +- std over the seeds; right after pruning also with the
BatchNorm statistics recomputed), the pruning step's time, the onnxruntime CPU
speed-up of the deployed model over the unpruned one against the FLOPs
reduction, and (mmrazor) the largest logit difference between the masked
and the deployed model; then a summary per model and target (best of ours
vs best of Torch-Pruning after fine-tuning, step times) and a plot
(``<out>.png``: top-1 after fine-tuning vs FLOPs reduction).

Setup, all in one process, plain PyTorch (no Runner):

* Models. ``resnet18``: the quickstart model
  (``configs/vanilla/resnet18-w16_fashion-mnist.py``: mmpretrain's
  ``ResNet_CIFAR``, depth 18, 1 input channel, width 16; 28.6M MACs, 0.70M
  parameters). ``mobilenetv2``: torchvision's MobileNetV2 at width 0.5 with
  a 1-channel, stride-1 first conv (mmpretrain's MobileNetV2 has no
  ``in_channels``), so 28x28 inputs keep 2x2 maps in the last stage
  (6.8M MACs, 0.70M parameters; chosen so that it trains in a few minutes
  on a CPU). The classifier (``head.fc``, ``classifier.1``) is never
  pruned: ``except_start_keys`` for mmrazor, ``ignored_layers`` for
  Torch-Pruning.
* Data. Fashion-MNIST from ``--data-root`` (default: the subset shipped in
  ``data/fashion_mnist_subset``, 10,000 train / 2,000 test images; the full
  set is ``/usr/share/datasets/fashion-mnist`` when Debian's
  ``dataset-fashion-mnist`` is installed). Pretraining uses
  ``--pretrain-per-class`` training images per class (default: all),
  fine-tuning the first ``--train-per-class``, accuracy is measured on
  ``--test-per-class`` test images per class (default: all).
* Pretraining, once per model (cached in ``--work-dir``, so reruns skip
  it): SGD lr 0.1 (Nesterov, momentum 0.9, weight decay 5e-4), one epoch of
  linear warm-up then cosine decay, random left-right flips, batch 64
  (the quickstart's schedule). 6 epochs on the subset gave 89.15
  (ResNet-18) and 87.55 (MobileNetV2) top-1 on its 2,000 test images.
* FLOPs are multiply-accumulates of the convs and linear layers per
  28x28 sample (mmrazor's convention), counted with forward hooks on the
  pruned models of both libraries alike. mmrazor's ``prune_to_target``
  takes the FLOPs target; Torch-Pruning takes a channel ``pruning_ratio``,
  so the smallest ratio that reaches at most 1/k of the FLOPs is found by
  bisection on copies (not timed). Both sides are thus at most at 1/k;
  the table prints the ratio each reached.
* Gradient-based criteria (ours: Taylor, Group Fisher; Torch-Pruning:
  Taylor) see the same ``--calib-batches`` training batches of 64 (drawn
  with the seed; model in eval mode) before the pruning step; that pass is
  not part of the step time. Group Fisher ranks by loss change per FLOP
  (``cost_normalization='flops'``, as in the paper; ``--fisher-cost``).
* Step time: ours ``prune_to_target`` + ``deploy_subnet`` (the search for
  the FLOPs target included); theirs ``pruner.step()`` at the ratio found.
  The analysis / dependency graph (``prepare_from_supernet`` /
  ``MetaPruner(...)``) is timed apart as ``setup``. Both are process CPU
  time on one torch thread with garbage collection off, so that other jobs
  on the machine do not count; each run times ``--step-repeats`` steps
  (default 5, each on a fresh copy) and keeps their median; the table
  gives the median over the seeds, the summary the median over all runs
  of a side at a target.
* BatchNorm recalibration: right after pruning, the running statistics
  of a copy of each pruned model (both libraries alike) are recomputed
  on ``--bn-batches`` batches of 64 fine-tuning images (no flips, order
  drawn with the seed; ``mmrazor.core.recalibrate_bn``) and its top-1 is
  the column ``top-1 pruned + BN``. Fine-tuning starts from the pruned
  model itself (in train mode its BatchNorms use batch statistics).
* Fine-tuning, the same for every pruned model: ``--finetune-epochs`` over
  the fine-tuning images, SGD lr 0.01 (momentum 0.9, weight decay 5e-4),
  cosine decay, batch 64, flips; the seed draws the data order (and the
  calibration batches). Magnitude criteria prune the same channels for
  every seed.
* Latency (first seed only): each deployed model and the unpruned one are
  exported to ONNX (opset 17) and run by onnxruntime on one thread at
  batch ``--latency-batch``, taking turns; median CPU time of
  ``--latency-rounds`` calls, each after 3 untimed calls of the same model.
  ``speed-up / FLOPs reduction`` is the deployment criterion (>= 0.8).
  onnxruntime's fast convolutions want channel counts that are multiples
  of the SIMD width: with ``--round-to 1`` (any count, the default of both
  libraries) a pruned MobileNetV2 can run slower than the unpruned one;
  ``--round-to 8`` (both sides) trades pruning granularity for speed
  (Torch-Pruning then no longer reaches 5x on MobileNetV2 with
  ``--min-ratio 0.1``).
* Guard-rails: ``--min-ratio 0.1`` (default) keeps a tenth of every group
  on both sides (layer-collapse protection; ``max_pruning_ratio=0.9`` for
  Torch-Pruning); 0 lets a group shrink to one channel.

Cost, measured with ``--threads 1`` on 2 CPU cores shared with other jobs:
pretraining 6 epochs takes about 3 min (ResNet-18, ~30 s an epoch) and
3.7 min (MobileNetV2); a run (prune, 2 evaluations, 2 fine-tuning epochs
over 200 images per class, the ONNX latency for the first seed) 7-15 s
for ResNet-18 (10.6 s on average over the targets and methods) and
9-18 s for MobileNetV2 (13 s on average). 2 models x 4 targets x 6
methods x 3 seeds = 144 runs took 39 min (7 methods, 168 runs: 49 min
on another machine, with --latency-rounds 15; the default 8 methods,
192 runs, about 1 hour; pretraining cached; it adds about 7 min; reruns
reuse it, ``--resume`` also reuses finished runs). ``--quick`` runs the whole pipeline (2 targets, 1 seed, tiny data)
in about 1.5 min.

Examples::

    python benchmarks/pruning_vs_torch_pruning.py --quick      # smoke run
    python benchmarks/pruning_vs_torch_pruning.py              # the table
    python benchmarks/pruning_vs_torch_pruning.py --models resnet18 \\
        --targets 5 --seeds 0 1 2 --finetune-epochs 3

Torch-Pruning (``pip install torch-pruning==1.6.*``) is a dependency of this
benchmark only; onnxruntime is needed for the latency columns
(``--latency-rounds 0`` skips them).
"""
import argparse
import copy
import inspect
import json
import os
import os.path as osp
import statistics
import sys
import tempfile
import time
from collections import OrderedDict
from typing import Any, Callable, Dict, List, Optional

import torch

from _pruning_bench import (INPUT_SHAPE,
                            add_model_and_target_options, batches,
                            build_model,
                            calibration_batches, count_macs, count_params,
                            evaluate, latency_ms, load_split, onnx_session,
                            prune_ours, prune_tp, train)

#: mmrazor's criteria: method name -> registered importance type.
OURS = OrderedDict([
    ('L1', 'L1Importance'),
    ('L2sq layer-mean',
     dict(type='L2Importance', layer_reduction='mean', squared=True)),
    ('L1 normalized layer-mean',
     dict(type='L1Importance', layer_reduction='normalized_mean')),
    ('Taylor', 'TaylorImportance'),
    ('Taylor after norms, normalized layer-mean',
     dict(type='TaylorImportance', measure_at='norm_outputs',
          layer_reduction='normalized_mean')),
    ('GroupFisher', 'GroupFisherImportance'),
])
#: Torch-Pruning's importances: method name -> ``prune_tp`` method.
THEIRS = OrderedDict([('TP magnitude', 'magnitude'),
                      ('TP Taylor', 'taylor')])
GRADIENT_BASED = {
    'Taylor', 'Taylor after norms, normalized layer-mean', 'GroupFisher',
    'TP Taylor'
}

#: What ``--quick`` sets (a smoke run of the whole pipeline).
QUICK = dict(
    seeds=[0],
    targets=[2, 8],
    pretrain_epochs=2,
    pretrain_per_class=150,
    finetune_epochs=1,
    train_per_class=30,
    test_per_class=30,
    calib_batches=2,
    latency_rounds=10)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_model_and_target_options(parser)
    parser.add_argument('--methods', nargs='+', default=None,
                        help=f'subset of {list(OURS) + list(THEIRS)}')
    parser.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2])
    parser.add_argument('--pretrain-epochs', type=int, default=6)
    parser.add_argument('--pretrain-per-class', type=int, default=0,
                        help='training images per class for pretraining '
                        '(0: all)')
    parser.add_argument('--finetune-epochs', type=int, default=2)
    parser.add_argument('--train-per-class', type=int, default=200,
                        help='training images per class for fine-tuning '
                        '(the subset: the first ones of every class)')
    parser.add_argument('--test-per-class', type=int, default=0,
                        help='test images per class (0: all)')
    parser.add_argument('--finetune-lr', type=float, default=0.01)
    parser.add_argument('--bn-batches', type=int, default=8,
                        help='batches of 64 that recompute the BatchNorm '
                        'statistics of the pruned models (0: skip the '
                        '"top-1 pruned + BN" column)')
    parser.add_argument('--calib-batches', type=int, default=8,
                        help='batches of 64 for the gradient criteria')
    parser.add_argument('--round-to', type=int, default=1,
                        help='kept channel counts multiple of this, on both '
                        'sides (1: any count)')
    parser.add_argument(
        '--min-ratio', type=float, default=0.1,
        help='smallest kept fraction of every channel group, on both sides '
        "(Torch-Pruning's max_pruning_ratio = 1 - this); 0: at least one "
        'channel')
    parser.add_argument(
        '--fisher-cost', default='flops',
        choices=['none', 'flops', 'params', 'act'],
        help="ImportancePruner's cost_normalization for Group Fisher (the "
        "paper ranks by loss change per FLOP); 'none': plain scores")
    parser.add_argument('--latency-batch', type=int, default=64)
    parser.add_argument(
        '--step-repeats', type=int, default=5,
        help='pruning steps timed per run, each on a fresh copy; the '
        'median is reported (both sides)')
    parser.add_argument('--latency-rounds', type=int, default=60,
                        help='timed onnxruntime calls per model (0: skip '
                        'the latency columns)')
    parser.add_argument('--data-root', default='data/fashion_mnist_subset')
    parser.add_argument(
        '--threads', type=int, default=1,
        help='torch threads (0: the default). One thread is the fastest '
        'on a small CPU shared with other jobs (several threads then wait '
        'on each other); the pruning steps always run on one.')
    parser.add_argument('--quick', action='store_true',
                        help='a tiny smoke run: ' + ', '.join(
                            f'{k}={v}' for k, v in QUICK.items()))
    parser.add_argument('--work-dir', default='/tmp/mmrazor_bench_pruning')
    parser.add_argument('--out', default=None,
                        help='Markdown table (default <work-dir>/table.md; '
                        'the plot goes next to it as .png, the runs as '
                        '.json)')
    parser.add_argument('--resume', action='store_true',
                        help='reuse the runs of the .json next to --out '
                        'made with the same settings')
    args = parser.parse_args(argv)
    if args.quick:
        for key, value in QUICK.items():
            setattr(args, key, value)
        args.work_dir = osp.join(args.work_dir, 'quick')
    args.out = args.out or osp.join(args.work_dir, 'table.md')
    return args


class Log:
    """Progress lines with the elapsed time."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    def __call__(self, msg: str) -> None:
        elapsed = int(time.perf_counter() - self.start)
        print(f'[{elapsed // 60:3d}m{elapsed % 60:02d}s] {msg}', flush=True)


def quiet_mmengine() -> None:
    """mmrazor logs every ``prune_to_target`` at INFO; keep stdout for the
    progress and the table."""
    from mmengine.logging import MMLogger
    MMLogger.get_instance('pruning_vs_torch_pruning', log_level='WARNING')


def choose_methods(args: argparse.Namespace, log: Log) -> List[str]:
    from mmrazor.registry import TASK_UTILS
    methods = list(OURS) + list(THEIRS)
    if args.methods:
        unknown = set(args.methods) - set(methods)
        if unknown:
            raise SystemExit(f'unknown methods {sorted(unknown)}; known: '
                             f'{methods}')
        methods = [m for m in methods if m in args.methods]
    for name, kind in OURS.items():
        kind = kind if isinstance(kind, str) else kind['type']
        if name in methods and kind not in TASK_UTILS.module_dict:
            log(f'note: {kind} is not registered in this mmrazor; the '
                f'{name} rows are skipped')
            methods.remove(name)
    if 'GroupFisher' in methods and args.fisher_cost != 'none':
        from mmrazor.models.pruners import ImportancePruner
        params = inspect.signature(ImportancePruner.__init__).parameters
        if 'cost_normalization' not in params:
            log('note: this ImportancePruner has no cost_normalization; '
                'Group Fisher ranks by its plain scores')
            args.fisher_cost = 'none'
    return methods


def pretrained(name: str, args: argparse.Namespace, data: Dict[str, Any],
               log: Log) -> torch.nn.Module:
    """The trained model ``name``, from the cache when it is there."""
    path = osp.join(
        args.work_dir, f'{name}_e{args.pretrain_epochs}_'
        f'n{args.pretrain_per_class or "all"}_'
        f'{osp.basename(osp.normpath(args.data_root))}.pth')
    model, _ = build_model(name)
    if osp.isfile(path):
        model.load_state_dict(torch.load(path, weights_only=True))
        log(f'{name}: pretrained weights from {path}')
        return model.eval()
    log(f'{name}: pretraining {args.pretrain_epochs} epochs on '
        f'{len(data["pre_y"])} images')
    torch.manual_seed(0)
    model, _ = build_model(name)
    train(model, data['pre_x'], data['pre_y'], args.pretrain_epochs, lr=0.1,
          seed=0, warmup_epochs=1, nesterov=True,
          log=lambda m: log(f'{name} pretraining {m}'))
    torch.save(model.state_dict(), path)
    return model.eval()


def settings(args: argparse.Namespace) -> Dict[str, Any]:
    """What a run's result depends on (for --resume)."""
    keys = ('pretrain_epochs', 'pretrain_per_class', 'finetune_epochs',
            'train_per_class', 'test_per_class', 'finetune_lr',
            'calib_batches', 'round_to', 'min_ratio', 'latency_batch',
            'data_root', 'fisher_cost')
    return {k: getattr(args, k) for k in keys}


def fmt_mean_std(values: List[float]) -> str:
    if len(values) == 1:
        return f'{values[0]:.2f}'
    return f'{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}'


def aggregate(runs: List[Dict[str, Any]]) -> 'OrderedDict':
    """(model, target, method) -> the list of its runs, in run order."""
    rows: 'OrderedDict' = OrderedDict()
    for run in runs:
        rows.setdefault((run['model'], run['target'], run['method']),
                        []).append(run)
    return rows


def table(runs: List[Dict[str, Any]], base: Dict[str, Dict[str, Any]],
          seeds: List[int]) -> List[str]:
    lines = [
        f'Top-1 (%) on the test images, mean ± std over seeds {seeds}; '
        'FLOPs = conv + linear MACs. Unpruned: ' + ', '.join(
            f'{m} {b["acc"]:.2f} ({b["macs"] / 1e6:.2f}M MACs)'
            for m, b in base.items()), '',
        '| model | target | method | FLOPs ratio | params ratio | top-1 '
        'pruned | top-1 pruned + BN | top-1 fine-tuned | step CPU ms | '
        'setup CPU ms | ORT speed-up | speed-up / FLOPs reduction | max '
        'abs(masked - deployed) |',
        '|---|---|---|---|---|---|---|---|---|---|---|---|---|'
    ]
    for (model, target, method), rs in aggregate(runs).items():
        if rs[0].get('unreachable'):
            lines.append(f'| {model} | {target:g}x | {method} | not '
                         'reachable under the guard-rails |' + ' |' * 9)
            continue
        flops = statistics.mean(r['flops_ratio'] for r in rs)
        params = statistics.mean(r['params_ratio'] for r in rs)
        step = statistics.median(r['step_ms'] for r in rs)
        setup = statistics.median(r['setup_ms'] for r in rs)
        lat = [r for r in rs if r.get('speedup')]
        speed = f'{lat[0]["speedup"]:.2f}x' if lat else 'n/a'
        per = f'{lat[0]["speedup"] * lat[0]["flops_ratio"]:.2f}' \
            if lat else 'n/a'
        diffs = [r['max_diff'] for r in rs if r.get('max_diff') is not None]
        diff = f'{max(diffs):.1e}' if diffs else '-'
        recal = [r['acc_recalibrated'] for r in rs
                 if r.get('acc_recalibrated') is not None]
        recal_text = fmt_mean_std(recal) if len(recal) == len(rs) else \
            'n/a'
        lines.append(
            f'| {model} | {target:g}x | {method} | {flops:.4f} | '
            f'{params:.4f} | {fmt_mean_std([r["acc_pruned"] for r in rs])} '
            f'| {recal_text} '
            f'| {fmt_mean_std([r["acc_finetuned"] for r in rs])} | '
            f'{step:.1f} | {setup:.1f} | {speed} | {per} | {diff} |')
    return lines


def reached(runs: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """The runs whose target the guard-rails let the method reach."""
    return [r for r in runs if not r.get('unreachable')]


def summary(runs: List[Dict[str, Any]]) -> List[str]:
    """Per model and target: our best criterion vs Torch-Pruning's best
    (mean top-1 after fine-tuning) and the step times."""
    missed = OrderedDict(((r['model'], r['target'], r['method']), None)
                         for r in runs if r.get('unreachable'))
    runs = reached(runs)
    rows = aggregate(runs)
    lines = ['', '## Summary (mean top-1 after fine-tuning; median step '
             'time)', '']
    keys = OrderedDict()
    for model, target, _ in rows:
        keys[(model, target)] = None
    for model, target in keys:
        best: Dict[bool, Any] = {}
        best_bn: Dict[bool, Any] = {}
        step: Dict[bool, List[float]] = {True: [], False: []}
        for (m, t, method), rs in rows.items():
            if (m, t) != (model, target):
                continue
            ours = method in OURS
            acc = statistics.mean(r['acc_finetuned'] for r in rs)
            if ours not in best or acc > best[ours][1]:
                best[ours] = (method, acc)
            if all(r.get('acc_recalibrated') is not None for r in rs):
                acc = statistics.mean(r['acc_recalibrated'] for r in rs)
                if ours not in best_bn or acc > best_bn[ours][1]:
                    best_bn[ours] = (method, acc)
            step[ours] += [r['step_ms'] for r in rs]
        if True not in best or False not in best:
            continue
        bn_text = ''
        if True in best_bn and False in best_bn:
            bn_text = (f'; right after pruning, BN recomputed: '
                       f'{best_bn[True][0]} {best_bn[True][1]:.2f} vs '
                       f'{best_bn[False][0]} {best_bn[False][1]:.2f}')
        (o_name, o_acc), (t_name, t_acc) = best[True], best[False]
        o_ms, t_ms = statistics.median(step[True]), statistics.median(
            step[False])
        lines.append(
            f'- {model} {target:g}x: ours best {o_name} {o_acc:.2f} vs '
            f'Torch-Pruning best {t_name} {t_acc:.2f} '
            f'({o_acc - t_acc:+.2f}, {"met" if o_acc >= t_acc else "NOT met"}'
            f'); step {o_ms:.1f} ms ours vs {t_ms:.1f} ms theirs '
            f'({o_ms / t_ms:.2f}x, '
            f'{"met" if o_ms <= t_ms else "NOT met"})' + bn_text)
    lat = [r for r in runs if r.get('speedup')]
    if lat:
        worst = min(lat, key=lambda r: r['speedup'] * r['flops_ratio'])
        lines.append(
            f'- deployment: speed-up / FLOPs reduction >= 0.8 in '
            f'{sum(r["speedup"] * r["flops_ratio"] >= 0.8 for r in lat)}/'
            f'{len(lat)} deployed models (worst '
            f'{worst["speedup"] * worst["flops_ratio"]:.2f}: '
            f'{worst["model"]} {worst["target"]:g}x {worst["method"]})')
    diffs = [r['max_diff'] for r in runs if r.get('max_diff') is not None]
    if diffs:
        lines.append(f'- deployed == masked (ours): max abs logit '
                     f'difference {max(diffs):.1e} over {len(diffs)} runs')
    if missed:
        lines.append('- not reachable under the guard-rails: ' + ', '.join(
            f'{m} {t:g}x {method}' for m, t, method in missed))
    return lines


def plot(runs: List[Dict[str, Any]], base: Dict[str, Dict[str, Any]],
         path: str) -> bool:
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    runs = reached(runs)
    if not runs:
        return False
    models = list(OrderedDict((r['model'], None) for r in runs))
    fig, axes = plt.subplots(
        1, len(models), figsize=(6 * len(models), 4.5), squeeze=False)
    rows = aggregate(runs)
    for ax, model in zip(axes[0], models):
        methods = list(OrderedDict(
            (m, None) for (mm, _, m) in rows if mm == model))
        for method in methods:
            pts = sorted(
                (1 / statistics.mean(r['flops_ratio'] for r in rs),
                 statistics.mean(r['acc_finetuned'] for r in rs),
                 statistics.stdev([r['acc_finetuned'] for r in rs])
                 if len(rs) > 1 else 0.0)
                for (mm, _, m), rs in rows.items()
                if mm == model and m == method)
            ax.errorbar([p[0] for p in pts], [p[1] for p in pts],
                        yerr=[p[2] for p in pts], marker='o', capsize=3,
                        linestyle='-' if method in OURS else '--',
                        label=method if method in OURS else
                        f'{method} (Torch-Pruning)')
        if model in base:
            ax.axhline(base[model]['acc'], color='grey', linewidth=0.8,
                       label='unpruned')
        ax.set_title(f'{model}, Fashion-MNIST')
        ax.set_xlabel('FLOPs reduction (x)')
        ax.set_ylabel('top-1 after fine-tuning (%)')
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def run_one(model_name: str, target: float, method: str, seed: int,
            base_model: torch.nn.Module, classifier: str, tp: Any,
            args: argparse.Namespace, data: Dict[str, Any],
            base_info: Dict[str, Any], log: Log,
            latency: Optional[Callable[[torch.nn.Module], float]]
            ) -> Dict[str, Any]:
    from mmrazor.core import recalibrate_bn
    torch.manual_seed(seed)
    calib = calibration_batches(
        data['ft_x'], data['ft_y'], args.calib_batches, 64,
        seed) if method in GRADIENT_BASED else []
    run: Dict[str, Any] = dict(
        model=model_name, target=target, method=method, seed=seed)
    try:
        if method in OURS:
            model = copy.deepcopy(base_model)
            kwargs = {}
            if method.startswith('GroupFisher') and \
                    args.fisher_cost != 'none':
                kwargs['cost_normalization'] = args.fisher_cost
            info = prune_ours(model, OURS[method], classifier, 1 / target,
                              calib, data['test_x'][:64], args.round_to,
                              args.min_ratio, repeats=args.step_repeats,
                              **kwargs)
            run['max_diff'] = info['max_diff']
            run['ours_flops_ratio'] = info['report']['flops_ratio']
        else:
            model, info = prune_tp(tp, base_model, THEIRS[method],
                                   classifier, 1 / target, calib,
                                   args.round_to, args.min_ratio, log=log,
                                   repeats=args.step_repeats)
            run['tp_pruning_ratio'] = info['ratio']
    except (ValueError, RuntimeError) as err:
        # Both sides say so when the guard-rails (--round-to, --min-ratio)
        # cannot reach the target; any other failure propagates.
        if 'cannot be reached' not in str(err) and \
                'no pruning_ratio reaches' not in str(err):
            raise
        run['unreachable'] = str(err)
        return run
    run.update(
        step_ms=info['step'] * 1e3,
        step_wall_ms=info['step_wall'] * 1e3,
        setup_ms=info['setup'] * 1e3,
        calib_ms=info['calib'] * 1e3,
        flops_ratio=count_macs(model) / base_info['macs'],
        params_ratio=count_params(model) / base_info['params'])
    run['acc_pruned'] = evaluate(model, data['test_x'], data['test_y'])
    if args.bn_batches:
        recalibrated = copy.deepcopy(model)
        gen = torch.Generator().manual_seed(20_000 + seed)
        recalibrate_bn(recalibrated,
                       batches(data['ft_x'], data['ft_y'], 64, gen),
                       args.bn_batches)
        run['acc_recalibrated'] = evaluate(recalibrated, data['test_x'],
                                           data['test_y'])
    if latency is not None and seed == args.seeds[0]:
        run['speedup'] = latency(model)
    t0 = time.perf_counter()
    train(model, data['ft_x'], data['ft_y'], args.finetune_epochs,
          lr=args.finetune_lr, seed=seed)
    run['finetune_s'] = time.perf_counter() - t0
    run['acc_finetuned'] = evaluate(model, data['test_x'], data['test_y'])
    return run


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    log = Log()
    try:
        import torch_pruning as tp
    except ImportError:
        raise SystemExit('this benchmark needs Torch-Pruning: pip install '
                         '"torch-pruning==1.6.*"')
    if args.threads:
        torch.set_num_threads(args.threads)
    os.makedirs(args.work_dir, exist_ok=True)
    quiet_mmengine()
    import mmrazor.models  # noqa: F401 (registers the criteria)
    methods = choose_methods(args, log)
    log(f'Torch-Pruning {tp.__version__}, torch {torch.__version__}, '
        f'{torch.get_num_threads()} threads; methods {methods}')

    data = {}
    data['pre_x'], data['pre_y'] = load_split(args.data_root, 'train',
                                              args.pretrain_per_class)
    data['ft_x'], data['ft_y'] = load_split(args.data_root, 'train',
                                            args.train_per_class)
    data['test_x'], data['test_y'] = load_split(args.data_root, 'test',
                                                args.test_per_class)
    log(f'data {args.data_root}: pretraining {len(data["pre_y"])}, '
        f'fine-tuning {len(data["ft_y"])}, test {len(data["test_y"])} '
        'images')

    json_path = osp.splitext(args.out)[0] + '.json'
    runs: List[Dict[str, Any]] = []
    if args.resume and osp.isfile(json_path):
        with open(json_path) as f:
            saved = json.load(f)
        if saved.get('settings') == settings(args):
            runs = saved['runs']
            log(f'resuming: {len(runs)} runs from {json_path}')
        else:
            log(f'not resuming: {json_path} was made with other settings')
    done = {(r['model'], r['target'], r['method'], r['seed']): r
            for r in runs}

    base: Dict[str, Dict[str, Any]] = OrderedDict()
    results: List[Dict[str, Any]] = []
    total = len(args.models) * len(args.targets) * len(methods) * len(
        args.seeds)
    count = 0
    with tempfile.TemporaryDirectory() as onnx_dir:
        for model_name in args.models:
            model = pretrained(model_name, args, data, log)
            _, classifier = build_model(model_name)
            base[model_name] = dict(
                acc=evaluate(model, data['test_x'], data['test_y']),
                macs=count_macs(model),
                params=count_params(model))
            log(f'{model_name}: unpruned top-1 '
                f'{base[model_name]["acc"]:.2f}, '
                f'{base[model_name]["macs"] / 1e6:.2f}M MACs')
            latency = None
            if args.latency_rounds:
                x = torch.randn(args.latency_batch, *INPUT_SHAPE[1:])
                dense = onnx_session(model, x,
                                     osp.join(onnx_dir, 'dense.onnx'))

                def latency(pruned: torch.nn.Module, x=x,
                            dense=dense) -> float:
                    path = osp.join(onnx_dir, 'pruned.onnx')
                    sess = onnx_session(pruned, x, path)
                    ms = latency_ms(dict(dense=dense, pruned=sess), x,
                                    args.latency_rounds)
                    return ms['dense'] / ms['pruned']

            for target in args.targets:
                for method in methods:
                    for seed in args.seeds:
                        count += 1
                        key = (model_name, target, method, seed)
                        if key in done:
                            results.append(done[key])
                            continue
                        start = time.perf_counter()
                        run = run_one(model_name, target, method, seed,
                                      model, classifier, tp, args, data,
                                      base[model_name], log, latency)
                        run['run_s'] = time.perf_counter() - start
                        results.append(run)
                        if run.get('unreachable'):
                            log(f'[{count}/{total}] {model_name} '
                                f'{target:g}x {method} seed {seed}: '
                                f'{run["unreachable"]}')
                        else:
                            log(f'[{count}/{total}] {model_name} '
                                f'{target:g}x {method} seed {seed}: FLOPs '
                                f'{run["flops_ratio"]:.4f}, top-1 '
                                f'{run["acc_pruned"]:.2f}' + (
                                    f' (BN {run["acc_recalibrated"]:.2f})'
                                    if 'acc_recalibrated' in run else '') +
                                ' -> '
                                f'{run["acc_finetuned"]:.2f}, step '
                                f'{run["step_ms"]:.1f} ms' +
                                (f', speed-up {run["speedup"]:.2f}x'
                                 if run.get('speedup') else '') +
                                f' ({run["run_s"]:.1f} s)')
                        with open(json_path, 'w') as f:
                            json.dump(dict(settings=settings(args),
                                           base=base, runs=results),
                                      f, indent=1)

    lines = [
        'Settings: ' + ', '.join(f'{k}={v}' for k, v in settings(
            args).items()) + f', threads={torch.get_num_threads()}; step '
        'and setup times are CPU ms on one torch thread; latency: '
        f'onnxruntime, 1 thread, batch {args.latency_batch}, first seed.', ''
    ] + table(results, base, args.seeds) + summary(results)
    print('\n' + '\n'.join(lines), flush=True)
    with open(args.out, 'w') as f:
        f.write('# mmrazor ImportancePruner vs Torch-Pruning '
                f'{tp.__version__}\n\n' + '\n'.join(lines) + '\n')
    png = osp.splitext(args.out)[0] + '.png'
    wrote = plot(results, base, png)
    log(f'wrote {args.out}, {json_path}' + (f', {png}' if wrote else
                                           ' (no matplotlib: no plot)'))


if __name__ == '__main__':
    sys.exit(main())
