"""int8 ONNX latency: ours against onnxruntime's own static quantizer.

For each torchvision model (random weights; BN statistics set on the
calibration images), in one process, batch 1, 224 x 224, one thread:

* **fp32**: ``torch.onnx.export`` of the float model (BN folded by the
  exporter);
* **ORT**: ``onnxruntime.quantization.quantize_static`` of that same fp32
  file (QDQ, per-channel int8 weights, uint8 activations - the U8S8 format
  onnxruntime recommends on x86; ``--ort-activation QInt8`` for its
  default, much slower here - MinMax calibration through a
  ``CalibrationDataReader`` over the calibration images);
* **ours-ov**: ``OpenVINOQuantizer.prepare`` with the 1.x OpenVINO
  ``global_qconfig`` (per-channel symmetric int8 weights, moving-average
  min-max *symmetric* quint8 activations), calibrated on the same images,
  exported with :func:`mmrazor.models.quantizers.export.export_onnx`;
* **ours-affine**: the same with affine activations
  (``a_qscheme.is_symmetry=False``, ``NativeQuantizer``): a ReLU output
  gets zero point 0, so onnxruntime folds the ReLU into the quantization
  and runs every conv in int8 (with the symmetric scheme the zero point is
  127, the ReLU must stay and the convs followed by one stay float);

and runs the same four files in two runtimes: onnxruntime's CPU execution
provider and, when the ``openvino`` package is installed, OpenVINO's CPU
plugin (one inference thread, latency hint, no thread pinning, inference
precision ``--ov-precision``: ``f32`` by default, so that the fp32 model
runs in float32 also on CPUs where OpenVINO would pick bf16). The eight
models are timed interleaved (one run of each per round, order
alternating), and it prints, per runtime, medians, speed-ups over fp32, the
ours / ORT speed-up ratio (target >= 0.95), file sizes and size ratios
(target >= 3.5x smaller); then the agreement of our int8 models in each
runtime with the fake-quant PyTorch model, the node types onnxruntime runs
after its graph optimizations and the precisions OpenVINO executes the
convolutions / matmuls in (``--show-graphs``).

    python benchmarks/quantization_latency.py
    python benchmarks/quantization_latency.py --models resnet18 --runs 20
"""
import argparse
import collections
import copy
import functools
import os
import statistics
import tempfile
import time
from typing import Callable, Dict, List

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torchvision
from onnxruntime.quantization import (CalibrationDataReader, QuantFormat,
                                      QuantType, quantize_static)

from mmrazor.core.loops.quantization_loops import calibrate_prepared
from mmrazor.models.quantizers import NativeQuantizer, OpenVINOQuantizer
from mmrazor.models.quantizers.export import export_onnx

try:
    import openvino as ov
except ImportError:  # the OpenVINO tables are skipped
    ov = None

MODELS = ('resnet18', 'resnet50', 'mobilenet_v2')
#: The 1.x OpenVINO ``global_qconfig``
#: (configs/quantization/ptq/base/ptq_openvino_*).
OPENVINO_QCONFIG = dict(
    w_observer=dict(type='mmrazor.PerChannelMinMaxObserver'),
    a_observer=dict(type='mmrazor.MovingAverageMinMaxObserver'),
    w_fake_quant=dict(type='mmrazor.FakeQuantize'),
    a_fake_quant=dict(type='mmrazor.FakeQuantize'),
    w_qscheme=dict(
        qdtype='qint8', bit=8, is_symmetry=True, is_symmetric_range=True),
    a_qscheme=dict(
        qdtype='quint8', bit=8, is_symmetry=True, averaging_constant=0.1),
)
#: The same with affine (asymmetric) activations.
AFFINE_QCONFIG = dict(
    OPENVINO_QCONFIG,
    a_qscheme=dict(
        qdtype='quint8', bit=8, is_symmetry=False, averaging_constant=0.1))
#: Our variants: quantizer class and ``global_qconfig``.
OURS = dict(
    ours_ov=(OpenVINOQuantizer, OPENVINO_QCONFIG),
    ours_affine=(NativeQuantizer, AFFINE_QCONFIG))
#: The ONNX files of each model, in table order.
VARIANTS = ('fp32', 'ort') + tuple(OURS)
#: OpenVINO layer types whose execution precision ``--show-graphs`` counts.
OV_COMPUTE_LAYERS = ('Convolution', 'FullyConnected', 'MatMul')

#: Runs one image (an ``(1, 3, H, W)`` float32 array), returns the logits.
Runner = Callable[[np.ndarray], np.ndarray]


class ImageReader(CalibrationDataReader):
    """Feeds the calibration images to ``quantize_static``."""

    def __init__(self, images: List[torch.Tensor], input_name: str) -> None:
        self.images = [{input_name: image.numpy()} for image in images]
        self.index = 0

    def get_next(self):
        if self.index >= len(self.images):
            return None
        self.index += 1
        return self.images[self.index - 1]

    def rewind(self) -> None:
        self.index = 0


def float_model(name: str, images: List[torch.Tensor]) -> torch.nn.Module:
    """A torchvision model with random weights and BN statistics of
    ``images`` (so that activations stay in a realistic range)."""
    model = getattr(torchvision.models, name)(weights=None)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None  # cumulative average
    model.train()
    with torch.no_grad():
        for image in images:
            model(image)
    return model.eval()


def session(path: str, optimize: bool = True) -> ort.InferenceSession:
    """An onnxruntime CPU session of ``path`` on one thread.

    Args:
        path (str): The ONNX file.
        optimize (bool): Graph optimisations on (the runtime's default,
            which fuses QDQ pairs into int8 kernels) or off.

    Returns:
        ort.InferenceSession: The session.
    """
    options = ort.SessionOptions()
    if not optimize:
        options.graph_optimization_level = (
            ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(
        path, options, providers=['CPUExecutionProvider'])


def ort_runner(path: str) -> Runner:
    """An onnxruntime CPU session of ``path`` (one thread)."""
    sess = session(path)
    return lambda image: sess.run(None, {'input': image})[0]


def ov_compile(core: 'ov.Core', path: str, precision: str):
    """``path`` compiled by OpenVINO's CPU plugin for batch-1 latency on one
    inference thread.

    Args:
        core (openvino.Core): The OpenVINO runtime.
        path (str): ONNX file.
        precision (str): ``INFERENCE_PRECISION_HINT`` of the float parts
            (``'f32'`` or ``'bf16'``); quantized parts run in int8 anyway.

    Returns:
        openvino.CompiledModel: The compiled model.
    """
    return core.compile_model(
        path, 'CPU', {
            'INFERENCE_NUM_THREADS': 1,
            'PERFORMANCE_HINT': 'LATENCY',
            'ENABLE_CPU_PINNING': False,  # the cores are shared
            'INFERENCE_PRECISION_HINT': precision,
        })


def ov_runner(core: 'ov.Core', precision: str, path: str) -> Runner:
    """An OpenVINO CPU infer request of ``path`` (see :func:`ov_compile`)."""
    request = ov_compile(core, path, precision).create_infer_request()
    return lambda image: request.infer({'input': image},
                                       share_inputs=True)[0]


def optimized_op_counts(path: str, work_dir: str) -> Dict[str, int]:
    """Node types of the graph onnxruntime runs (after its fusions)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.optimized_model_filepath = os.path.join(
        work_dir, 'optimized_' + os.path.basename(path))
    ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])
    graph = onnx.load(options.optimized_model_filepath).graph
    return dict(collections.Counter(n.op_type for n in graph.node))


def ov_layer_precisions(core: 'ov.Core', path: str,
                        precision: str) -> Dict[str, int]:
    """``'<layer type> <precision>'`` counts of the convolutions / matmuls
    OpenVINO runs, as its runtime model reports them (``layerType`` and
    ``runtimePrecision`` of each executed layer)."""
    compiled = ov_compile(core, path, precision)
    counts = collections.Counter()
    for op in compiled.get_runtime_model().get_ordered_ops():
        info = op.get_rt_info()
        layer = info['layerType'].astype(str)
        if layer in OV_COMPUTE_LAYERS:
            counts[f"{layer} {info['runtimePrecision'].astype(str)}"] += 1
    return dict(counts)


def calibrate_ours(model: torch.nn.Module, images: List[torch.Tensor],
                   quantizer: NativeQuantizer) -> torch.nn.Module:
    """Prepare ``model`` (shared, not copied) with ``quantizer`` and
    calibrate it (:func:`calibrate_prepared`)."""
    return calibrate_prepared(quantizer.prepare(model), images)


def time_interleaved(calls: Dict, runs: int, warmup: int) -> Dict:
    """Median milliseconds of each call, one call of each per round.

    Args:
        calls (dict): Name -> a function of no argument (one inference).
        runs (int): Timed rounds; the order alternates between rounds.
        warmup (int): Untimed rounds first.

    Returns:
        dict: Name -> median milliseconds.
    """
    names = list(calls)
    for _ in range(warmup):
        for name in names:
            calls[name]()
    times = {name: [] for name in names}
    for index in range(runs):
        order = names if index % 2 == 0 else names[::-1]
        for name in order:
            start = time.perf_counter()
            calls[name]()
            times[name].append((time.perf_counter() - start) * 1e3)
    return {name: statistics.median(values) for name, values in times.items()}


def runtime_factories(args) -> Dict[str, Callable[[str], Runner]]:
    """Runtime name -> a function that makes a :data:`Runner` of an ONNX
    file; OpenVINO only where it is installed."""
    factories = {'onnxruntime': ort_runner}
    if ov is not None:
        factories['openvino'] = functools.partial(ov_runner, ov.Core(),
                                                  args.ov_precision)
    return factories


def bench_model(name: str, args, work_dir: str) -> Dict:
    torch.manual_seed(args.seed)
    images = [torch.randn(1, 3, 224, 224) for _ in range(args.calib)]
    model = float_model(name, images)
    paths = {k: os.path.join(work_dir, f'{name}_{k}.onnx') for k in VARIANTS}
    torch.onnx.export(
        model, (images[0], ),
        paths['fp32'],
        opset_version=13,
        input_names=['input'],
        output_names=['output'],
        dynamo=False)
    quantize_static(
        paths['fp32'],
        paths['ort'],
        ImageReader(images, 'input'),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=getattr(QuantType, args.ort_activation),
        weight_type=QuantType.QInt8)
    fake_quant = {}
    test = [torch.randn(1, 3, 224, 224) for _ in range(args.check)]
    for key, (quantizer, global_qconfig) in OURS.items():
        prepared = calibrate_ours(
            copy.deepcopy(model), images, quantizer(global_qconfig))
        export_onnx(prepared, images[0], paths[key])
        with torch.no_grad():
            fake_quant[key] = torch.cat([prepared(x) for x in test]).numpy()

    factories = runtime_factories(args)
    runners = {(runtime, k): make(paths[k])
               for runtime, make in factories.items() for k in VARIANTS}
    agreement = {}
    for (runtime, key), run in runners.items():
        if key not in OURS:
            continue
        expected = fake_quant[key]
        got = np.concatenate([run(x.numpy()) for x in test])
        agreement[runtime, key] = (
            float((expected.argmax(1) == got.argmax(1)).mean()),
            float(np.abs(expected - got).max()),
            float(np.abs(expected).max()))
    image = images[0].numpy()
    medians = time_interleaved(
        {k: functools.partial(run, image)
         for k, run in runners.items()}, args.runs, args.warmup)
    ms = {runtime: {} for runtime in factories}
    for (runtime, key), value in medians.items():
        ms[runtime][key] = value
    result = dict(
        model=name,
        ms=ms,
        mb={k: os.path.getsize(p) / 2**20
            for k, p in paths.items()},
        agreement=agreement,
        ops={})
    if args.show_graphs:
        for key in VARIANTS[1:]:
            result['ops']['onnxruntime', key] = optimized_op_counts(
                paths[key], work_dir)
            if 'openvino' in factories:
                result['ops']['openvino', key] = ov_layer_precisions(
                    factories['openvino'].args[0], paths[key],
                    args.ov_precision)
    return result


def print_table(results: List[Dict], runtime: str) -> None:
    """The latency / size table of ``runtime``."""
    print(f'{runtime}:')
    print('| model | fp32 ms | ORT int8 ms (speed-up) | ours-ov ms (speed-up) '
          '| ours-affine ms (speed-up) | ours-ov / ORT | ours-affine / ORT '
          '| fp32 MB | ORT MB (ratio) | ours-ov MB (ratio) '
          '| ours-affine MB (ratio) |')
    print('|---' * 11 + '|')
    for r in results:
        ms, mb = r['ms'][runtime], r['mb']
        up = {k: ms['fp32'] / ms[k] for k in ms}
        cells = [r['model'], f"{ms['fp32']:.2f}"]
        cells += [f'{ms[k]:.2f} ({up[k]:.2f}x)' for k in VARIANTS[1:]]
        cells += [f"{up[k] / up['ort']:.2f}" for k in OURS]
        cells += [f"{mb['fp32']:.1f}"]
        cells += [f"{mb[k]:.1f} ({mb['fp32'] / mb[k]:.2f}x)"
                  for k in VARIANTS[1:]]
        print('| ' + ' | '.join(cells) + ' |')
    print()


def print_details(results: List[Dict]) -> None:
    """Agreement with the fake-quant models and the executed graphs."""
    for r in results:
        for (runtime, k), (agree, diff, largest) in r['agreement'].items():
            print(f"{r['model']} {k}: ONNX ({runtime}) vs fake-quant "
                  f'PyTorch: top-1 agreement {100 * agree:.1f}%, max |logit '
                  f'diff| {diff:.4f} (max |logit| {largest:.2f})')
        for (runtime, k), ops in r['ops'].items():
            what = ('ops after ORT optimization' if runtime == 'onnxruntime'
                    else 'OpenVINO layer precisions')
            print(f"  {r['model']} {k} {what}: {dict(sorted(ops.items()))}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--models', nargs='+', default=list(MODELS),
                        choices=MODELS)
    parser.add_argument('--runs', type=int, default=50,
                        help='timed runs of each model')
    parser.add_argument('--warmup', type=int, default=5)
    parser.add_argument('--calib', type=int, default=8,
                        help='calibration images')
    parser.add_argument('--check', type=int, default=8,
                        help='images for the ONNX / fake-quant agreement')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--ort-activation', default='QUInt8',
                        choices=('QUInt8', 'QInt8'),
                        help='activation type of quantize_static')
    parser.add_argument('--ov-precision', default='f32',
                        choices=('f32', 'bf16'),
                        help='OpenVINO inference precision of float parts')
    parser.add_argument('--no-show-graphs', dest='show_graphs',
                        action='store_false')
    args = parser.parse_args()
    torch.set_num_threads(1)
    ort.set_default_logger_severity(3)  # no per-session warnings
    if ov is None:
        print('openvino is not installed (pip install openvino): the '
              'OpenVINO table is skipped', flush=True)
    results = []
    with tempfile.TemporaryDirectory() as work_dir:
        for name in args.models:
            results.append(bench_model(name, args, work_dir))
            print(f'{name} done', flush=True)
    versions = f'onnxruntime {ort.__version__}'
    if ov is not None:
        versions += (f', openvino {ov.__version__} (inference precision '
                     f'{args.ov_precision})')
    print(f'{versions}, torch {torch.__version__}, batch 1, 224x224, '
          f'1 thread, median of {args.runs} interleaved runs')
    for runtime in results[0]['ms']:
        print_table(results, runtime)
    print_details(results)


if __name__ == '__main__':
    main()
