"""Channel analysis time, and deployed-model speed-up vs FLOPs reduction.

Part 1 (``analysis``): CPU time (of the one thread torch runs on, best of
``--repeat``, calls of the two tools interleaved) of our dependency analysis
(:class:`mmrazor.models.task_modules.ChannelAnalyzer`) per torchvision
model, next to Torch-Pruning's ``DependencyGraph().build_dependency`` on the
same model and input, in the same process (when ``torch_pruning`` is
installed), and next to one plain forward pass (both analyses run one).

Part 2 (``latency``): every model is thinned uniformly (RatioPruner, one
ratio for every channel group, ``--round-to``: by default the number of
float32 lanes of the CPU's widest vector unit, 16 with AVX-512 and 8
otherwise, since oneDNN and onnxruntime lay channels out in blocks of that
size and pad the rest), deployed (physically
pruned), and its CPU latency is compared with the dense model's, in PyTorch
and in onnxruntime (the ONNX file ``tools/deploy_subnet.py --onnx`` writes);
the target is ``speed-up >= 0.8 x FLOPs reduction``. Each timed call follows
``--settle`` untimed calls of the same model (the steady state of a serving
loop), and the rounds of the two models are interleaved.

Usage::

    python benchmarks/channel_analysis.py analysis --side 64
    python benchmarks/channel_analysis.py latency --latency-side 224 --ratio 0.5
    python benchmarks/channel_analysis.py all --models resnet18 vgg11_bn

Keep runs modest on shared CPUs: models run one at a time, one thread.
"""
import argparse
import gc
import os.path as osp
import statistics
import tempfile
import time
import warnings
from typing import Any, Callable, List

import torch
import torchvision
from torch import nn

from mmrazor.models.pruners import RatioPruner
from mmrazor.models.task_modules import ChannelAnalyzer, ResourceEstimator

MODELS = [
    'resnet18', 'resnet50', 'mobilenet_v2', 'mobilenet_v3_small',
    'shufflenet_v2_x0_5', 'regnet_x_400mf', 'resnext50_32x4d',
    'densenet121', 'efficientnet_b0', 'mnasnet0_5', 'squeezenet1_1',
    'vgg11_bn', 'googlenet', 'convnext_tiny', 'wide_resnet50_2', 'alexnet'
]
MIN_SIDE = {'alexnet': 64, 'squeezenet1_1': 64}


def simd_float_lanes() -> int:
    """float32 lanes of this CPU's widest vector unit: 16 with AVX-512, else
    8 (AVX2 / NEON pairs). Channel counts that are a multiple of it fill
    whole channel blocks in oneDNN and onnxruntime."""
    try:
        with open('/proc/cpuinfo') as f:
            return 16 if ' avx512f' in f.read() else 8
    except OSError:
        return 8


def build(name: str) -> nn.Module:
    torch.manual_seed(0)
    kwargs = dict(aux_logits=False, init_weights=True) \
        if name == 'googlenet' else {}
    return getattr(torchvision.models, name)(weights=None, **kwargs).eval()


def cpu_seconds(fn: Callable[[], object]) -> float:
    """CPU time of this thread for one call (torch runs one thread here,
    so this is the work done, whatever else loads the machine)."""
    gc.collect()
    t = time.thread_time()
    fn()
    return time.thread_time() - t


def best_of(fns: List[Callable[[], object]], repeat: int) -> List[float]:
    """Best CPU time of each function over ``repeat`` rounds; the calls are
    interleaved, so a slow spell of the machine hits all of them."""
    best = [float('inf')] * len(fns)
    for _ in range(repeat):
        for k, fn in enumerate(fns):
            best[k] = min(best[k], cpu_seconds(fn))
    return best


def bench_analysis(models: List[str], side: int, repeat: int) -> None:
    try:
        import torch_pruning as tp
    except ImportError:
        tp = None
        print('torch_pruning is not installed: no comparison')
    print(f'\n## Dependency analysis CPU time (input 1x3x{side}x{side}, '
          f'best of {repeat}, {torch.get_num_threads()} thread(s))\n')
    print('| model | forward (s) | ours (s) | Torch-Pruning (s) | ours / TP '
          '| groups (prunable/all) |')
    print('|---|---|---|---|---|---|')
    for name in models:
        s = max(side, MIN_SIDE.get(name, 0))
        model = build(name)
        x = torch.randn(1, 3, s, s)

        def forward():
            with torch.no_grad():
                model(x)

        analyzer = ChannelAnalyzer(input_shape=(1, 3, s, s),
                                   show_progress=False)
        result = {}

        def ours():
            result['dep'] = analyzer.analyze(model, x)

        def theirs():
            tp.DependencyGraph().build_dependency(
                model, example_inputs=x, verbose=False)

        t_tp, ratio = 'n/a', 'n/a'
        if tp is not None:
            try:
                theirs()
            except Exception as e:  # report, do not stop the table
                t_tp = f'failed: {type(e).__name__}: {str(e)[:60]}'
        fns = [forward, ours] + ([theirs] if t_tp == 'n/a' and tp else [])
        times = best_of(fns, repeat)
        t_fwd, t_ours = times[:2]
        if len(times) == 3:
            t_tp, ratio = f'{times[2]:.4f}', f'{t_ours / times[2]:.2f}'
        dep = result['dep']
        print(f'| {name} | {t_fwd:.4f} | {t_ours:.4f} | {t_tp} | {ratio} | '
              f'{len(dep.prunable_groups)}/{len(dep.groups)} |', flush=True)


def eager_runner(model: nn.Module, x: torch.Tensor) -> Callable[[], Any]:
    """One forward of ``model`` in PyTorch (eager, no autograd)."""

    def run():
        with torch.no_grad():
            model(x)

    return run


def onnxruntime_runner(model: nn.Module, x: torch.Tensor,
                       workdir: str) -> Callable[[], Any]:
    """One forward of ``model`` exported to ONNX as ``tools/deploy_subnet.py
    --onnx`` does, run by onnxruntime on one thread."""
    import onnxruntime as ort
    path = osp.join(workdir, f'model_{id(model)}.onnx')
    torch.onnx.export(model, (x, ), path, opset_version=17)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(
        path, options, providers=['CPUExecutionProvider'])
    feed = {session.get_inputs()[0].name: x.numpy()}
    return lambda: session.run(None, feed)


def steady_ms(run: Callable[[], Any], settle: int) -> float:
    """CPU ms of one call of ``run`` right after ``settle`` untimed calls of
    the same model: the steady state of a serving loop, where a model's
    weights and buffers are warm in the caches. (Timing a small model right
    after a big one instead measures the small one cold, after the big one
    evicted it, and understates its speed-up.)"""
    gc.collect()
    for _ in range(settle):
        run()
    start = time.thread_time()
    run()
    return (time.thread_time() - start) * 1e3


def bench_latency(models: List[str], side: int, ratio: float, runs: int,
                  round_to: int = 16, runtime: str = 'eager',
                  settle: int = 2) -> None:
    print(f'\n## Deployed vs dense CPU latency, {runtime} (input '
          f'1x3x{side}x{side}, uniform width ratio {ratio}, '
          f'round_to={round_to}, median CPU time of {runs} calls, each '
          f'after {settle} untimed calls of the same model, 1 thread)\n')
    print('| model | dense ms | deployed ms | speed-up | FLOPs dense (G) | '
          'FLOPs deployed (G) | FLOPs reduction | speed-up / reduction | '
          'target met (>=0.8) |')
    print('|---|---|---|---|---|---|---|---|---|')
    for name in models:
        s = max(side, MIN_SIDE.get(name, 0))
        dense = build(name)
        x = torch.randn(1, 3, s, s)
        est = ResourceEstimator(input_shape=(1, 3, s, s))
        f_dense = est.estimate(dense)['flops']
        pruned = build(name)
        pruner = RatioPruner(
            ratios=[ratio], except_start_keys=[], round_to=round_to)
        pruner.prepare_from_supernet(pruned, input_shape=(1, 3, s, s))
        pruner.set_min_channel()
        pruner.deploy_subnet(pruned)
        f_pruned = est.estimate(pruned)['flops']
        with tempfile.TemporaryDirectory() as workdir:
            if runtime == 'onnxruntime':
                run_dense = onnxruntime_runner(dense, x, workdir)
                run_pruned = onnxruntime_runner(pruned, x, workdir)
            else:
                run_dense = eager_runner(dense, x)
                run_pruned = eager_runner(pruned, x)
            d_times: List[float] = []
            p_times: List[float] = []
            for _ in range(runs):  # interleaved rounds share the noise
                d_times.append(steady_ms(run_dense, settle))
                p_times.append(steady_ms(run_pruned, settle))
        d, p = statistics.median(d_times), statistics.median(p_times)
        speed, reduction = d / p, f_dense / max(f_pruned, 1)
        print(f'| {name} | {d:.1f} | {p:.1f} | {speed:.2f}x | '
              f'{f_dense / 1e9:.3f} | {f_pruned / 1e9:.3f} | '
              f'{reduction:.2f}x | {speed / reduction:.2f} | '
              f'{"yes" if speed >= 0.8 * reduction else "no"} |',
              flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('part', choices=['analysis', 'latency', 'all'])
    parser.add_argument('--models', nargs='+', default=MODELS)
    parser.add_argument('--side', type=int, default=64,
                        help='input side for the analysis')
    parser.add_argument('--latency-side', type=int, default=224)
    parser.add_argument('--ratio', type=float, default=0.5)
    parser.add_argument(
        '--round-to', type=int, default=None,
        help='channel counts rounded to a multiple of this (default: the '
        'float32 SIMD lanes of this CPU, 16 with AVX-512, else 8)')
    parser.add_argument(
        '--runtime', choices=['eager', 'onnxruntime', 'both'],
        default='both',
        help='run the dense and deployed models in PyTorch, in '
        'onnxruntime (the ONNX artefact of tools/deploy_subnet.py), or both')
    parser.add_argument('--repeat', type=int, default=2)
    parser.add_argument('--runs', type=int, default=10)
    parser.add_argument(
        '--settle', type=int, default=2,
        help='untimed calls of a model right before each timed one')
    parser.add_argument('--threads', type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.round_to is None:
        args.round_to = simd_float_lanes()
    if args.part in ('analysis', 'all'):
        bench_analysis(args.models, args.side, args.repeat)
    if args.part in ('latency', 'all'):
        warnings.filterwarnings('ignore')  # exporter chatter
        runtimes = ['eager', 'onnxruntime'] if args.runtime == 'both' \
            else [args.runtime]
        for runtime in runtimes:
            bench_latency(args.models, args.latency_side, args.ratio,
                          args.runs, args.round_to, runtime, args.settle)


if __name__ == '__main__':
    main()
