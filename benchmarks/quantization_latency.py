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
* **ours-ov**: ``NativeQuantizer.prepare`` with the 1.x OpenVINO
  ``global_qconfig`` (per-channel symmetric int8 weights, moving-average
  min-max *symmetric* quint8 activations), calibrated on the same images,
  exported with :func:`mmrazor.models.quantizers.export.export_onnx`;
* **ours-affine**: the same with affine activations
  (``a_qscheme.is_symmetry=False``): a ReLU output gets zero point 0, so
  onnxruntime folds the ReLU into the quantization and runs every conv in
  int8 (with the symmetric scheme the zero point is 127, the ReLU must stay
  and the convs followed by one stay float);

and times the four onnxruntime sessions interleaved (one run of each per
round, order alternating), printing medians, speed-ups over fp32, the
ours / ORT speed-up ratio (target >= 0.95), file sizes and size ratios
(target >= 3.5x smaller), the agreement of our ONNX model with the
fake-quant PyTorch model, and the node types onnxruntime runs after its
graph optimizations (``--show-graphs``).

    python benchmarks/quantization_latency.py
    python benchmarks/quantization_latency.py --models resnet18 --runs 20
"""
import argparse
import collections
import copy
import os
import statistics
import tempfile
import time
from typing import Dict, List

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torchvision
from onnxruntime.quantization import (CalibrationDataReader, QuantFormat,
                                      QuantType, quantize_static)

from mmrazor.models.quantizers import NativeQuantizer
from mmrazor.models.quantizers.export import export_onnx

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
#: Our variants and their ``global_qconfig``.
OURS = dict(ours_ov=OPENVINO_QCONFIG, ours_affine=AFFINE_QCONFIG)


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


def session(path: str) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(
        path, options, providers=['CPUExecutionProvider'])


def optimized_op_counts(path: str, work_dir: str) -> Dict[str, int]:
    """Node types of the graph onnxruntime runs (after its fusions)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.optimized_model_filepath = os.path.join(
        work_dir, 'optimized_' + os.path.basename(path))
    ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])
    graph = onnx.load(options.optimized_model_filepath).graph
    return dict(collections.Counter(n.op_type for n in graph.node))


def calibrate_ours(model: torch.nn.Module, images: List[torch.Tensor],
                   global_qconfig: Dict) -> torch.nn.Module:
    """Prepare ``model`` (shared, not copied) and calibrate it."""
    prepared = NativeQuantizer(global_qconfig).prepare(model).eval()
    prepared.apply(torch.ao.quantization.enable_observer)
    prepared.apply(torch.ao.quantization.disable_fake_quant)
    with torch.no_grad():
        for image in images:
            prepared(image)
    prepared.apply(torch.ao.quantization.disable_observer)
    prepared.apply(torch.ao.quantization.enable_fake_quant)
    return prepared


def time_interleaved(sessions: Dict[str, ort.InferenceSession],
                     feed: Dict[str, np.ndarray], runs: int,
                     warmup: int) -> Dict[str, float]:
    """Median milliseconds of each session, one run of each per round."""
    names = list(sessions)
    for _ in range(warmup):
        for name in names:
            sessions[name].run(None, feed)
    times = {name: [] for name in names}
    for index in range(runs):
        order = names if index % 2 == 0 else names[::-1]
        for name in order:
            start = time.perf_counter()
            sessions[name].run(None, feed)
            times[name].append((time.perf_counter() - start) * 1e3)
    return {name: statistics.median(values) for name, values in times.items()}


def bench_model(name: str, args, work_dir: str) -> Dict:
    torch.manual_seed(args.seed)
    images = [torch.randn(1, 3, 224, 224) for _ in range(args.calib)]
    model = float_model(name, images)
    paths = {k: os.path.join(work_dir, f'{name}_{k}.onnx')
             for k in ('fp32', 'ort') + tuple(OURS)}
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
    test = [torch.randn(1, 3, 224, 224) for _ in range(args.check)]
    agreement = {}
    for key, global_qconfig in OURS.items():
        prepared = calibrate_ours(
            copy.deepcopy(model), images, global_qconfig)
        export_onnx(prepared, images[0], paths[key])
        with torch.no_grad():
            fake_quant = torch.cat([prepared(x) for x in test]).numpy()
        ours = session(paths[key])
        onnx_out = np.concatenate(
            [ours.run(None, {'input': x.numpy()})[0] for x in test])
        agreement[key] = (
            float((fake_quant.argmax(1) == onnx_out.argmax(1)).mean()),
            float(np.abs(fake_quant - onnx_out).max()),
            float(np.abs(fake_quant).max()))

    sessions = {k: session(p) for k, p in paths.items()}
    result = dict(
        model=name,
        ms=time_interleaved(sessions, {'input': images[0].numpy()},
                            args.runs, args.warmup),
        mb={k: os.path.getsize(p) / 2**20
            for k, p in paths.items()},
        agreement=agreement)
    if args.show_graphs:
        result['ops'] = {
            k: optimized_op_counts(paths[k], work_dir)
            for k in paths if k != 'fp32'
        }
    return result


def print_table(results: List[Dict]) -> None:
    print('| model | fp32 ms | ORT int8 ms (speed-up) | ours-ov ms (speed-up) '
          '| ours-affine ms (speed-up) | ours-ov / ORT | ours-affine / ORT '
          '| fp32 MB | ORT MB (ratio) | ours-ov MB (ratio) '
          '| ours-affine MB (ratio) |')
    print('|---' * 11 + '|')
    for r in results:
        ms, mb = r['ms'], r['mb']
        up = {k: ms['fp32'] / ms[k] for k in ms}
        cells = [r['model'], f"{ms['fp32']:.2f}"]
        cells += [
            f'{ms[k]:.2f} ({up[k]:.2f}x)' for k in ('ort', ) + tuple(OURS)
        ]
        cells += [f"{up[k] / up['ort']:.2f}" for k in OURS]
        cells += [f"{mb['fp32']:.1f}"]
        cells += [f"{mb[k]:.1f} ({mb['fp32'] / mb[k]:.2f}x)"
                  for k in ('ort', ) + tuple(OURS)]
        print('| ' + ' | '.join(cells) + ' |')
    print()
    for r in results:
        for k, (agree, diff, largest) in r['agreement'].items():
            print(f"{r['model']} {k}: ONNX (onnxruntime) vs fake-quant "
                  f'PyTorch: top-1 agreement {100 * agree:.1f}%, max |logit '
                  f'diff| {diff:.4f} (max |logit| {largest:.2f})')
        for k, ops in r.get('ops', {}).items():
            print(f"  {r['model']} {k} ops after ORT optimization: "
                  f'{dict(sorted(ops.items()))}')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--models', nargs='+', default=list(MODELS),
                        choices=MODELS)
    parser.add_argument('--runs', type=int, default=50,
                        help='timed runs of each session')
    parser.add_argument('--warmup', type=int, default=5)
    parser.add_argument('--calib', type=int, default=8,
                        help='calibration images')
    parser.add_argument('--check', type=int, default=8,
                        help='images for the ONNX / fake-quant agreement')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--ort-activation', default='QUInt8',
                        choices=('QUInt8', 'QInt8'),
                        help='activation type of quantize_static')
    parser.add_argument('--no-show-graphs', dest='show_graphs',
                        action='store_false')
    args = parser.parse_args()
    torch.set_num_threads(1)
    ort.set_default_logger_severity(3)  # no per-session warnings
    results = []
    with tempfile.TemporaryDirectory() as work_dir:
        for name in args.models:
            results.append(bench_model(name, args, work_dir))
            print(f'{name} done', flush=True)
    print(f'onnxruntime {ort.__version__}, torch {torch.__version__}, '
          f'batch 1, 224x224, 1 thread, median of {args.runs} interleaved '
          'runs')
    print_table(results)


if __name__ == '__main__':
    main()
