"""PTQ top-1 on Fashion-MNIST: ours against onnxruntime's static quantizer.

For the quickstart ResNet-18 (width 16,
``configs/distill/fashion_mnist/teacher_resnet18-w16_fashion-mnist.py``,
loaded as the plain module ``ResNet18W16`` of ``_pruning_bench``) and,
with ``--models resnet18 mobilenetv2``, the MobileNetV2 of the pruning
benchmark, for each seed (a different set of calibration images: 8 batches
of 32 training images of the shipped subset), on the 2,000 test images:

* **fp32**: the float model in PyTorch;
* **ORT int8**: ``onnxruntime.quantization.quantize_static`` of the float
  ONNX file (QDQ, per-channel int8 weights, uint8 activations, MinMax
  calibration on the same images), run in onnxruntime;
* **ours int8**: ``NativeQuantizer`` with affine uint8 activations and
  per-channel symmetric int8 weights, calibrated on the same images,
  exported with :func:`mmrazor.models.quantizers.export.export_onnx` and run
  in onnxruntime; also its fake-quant PyTorch top-1 and the top-1
  agreement of the two (target >= 99%);
* **ours W4A8**: ``AcademicQuantizer`` with 4-bit per-channel symmetric
  weights and 8-bit affine activations (fake-quant PyTorch only).

Nothing is trained unless the ResNet-18 checkpoint is missing (then
``tools/train.py`` trains it into ``--work-dir``). Prints a Markdown table
(mean +- std over the seeds); ``--docs docs/quantization.md`` appends it.

    python benchmarks/quantization_fashion_mnist.py
    python benchmarks/quantization_fashion_mnist.py --seeds 0 1 2 \\
        --models resnet18 mobilenetv2 --docs docs/quantization.md
"""
import argparse
import copy
import os.path as osp
import statistics
import subprocess
import sys
import tempfile
from typing import Callable, Dict, List, Tuple

import numpy as np
import onnxruntime as ort
import torch
from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
from torch import nn

from _pruning_bench import (ROOT, build_model, calibration_batches,
                            load_split)
from quantization_latency import AFFINE_QCONFIG, ImageReader, session
from mmrazor.models.quantizers import AcademicQuantizer, NativeQuantizer
from mmrazor.models.quantizers.export import export_onnx

RESNET18_CONFIG = (
    'configs/distill/fashion_mnist/teacher_resnet18-w16_fashion-mnist.py')
#: 4-bit per-channel symmetric weights, 8-bit affine activations.
W4A8_QCONFIG = dict(
    AFFINE_QCONFIG,
    w_qscheme=dict(
        qdtype='qint8', bit=4, is_symmetry=True, is_symmetric_range=True))
#: Activation ranges as onnxruntime's MinMax calibration takes them: the
#: smallest and largest value over all calibration batches.
MINMAX_QCONFIG = dict(
    AFFINE_QCONFIG,
    a_observer=dict(type='mmrazor.MinMaxObserver'),
    a_qscheme=dict(qdtype='quint8', bit=8, is_symmetry=False))
#: ``--act-observer`` -> our int8 ``global_qconfig``.
INT8_QCONFIGS = dict(moving_average=AFFINE_QCONFIG, minmax=MINMAX_QCONFIG)
#: Rows of the table, in order.
COLUMNS = ('fp32', 'ort_int8', 'ours_int8_onnx', 'ours_int8_fake',
           'agreement', 'ours_w4a8_fake')
LABELS = dict(
    fp32='fp32 (PyTorch)',
    ort_int8='ORT `quantize_static` int8 (onnxruntime)',
    ours_int8_onnx='ours int8, `NativeQuantizer` + `export_onnx` '
    '(onnxruntime)',
    ours_int8_fake='ours int8, fake-quant (PyTorch)',
    agreement='ours int8: ONNX vs fake-quant top-1 agreement',
    ours_w4a8_fake='ours W4A8, `AcademicQuantizer` fake-quant (PyTorch)')


def resnet18_checkpoint(path: str, work_dir: str) -> str:
    """``path`` if it exists, else the last checkpoint of training the
    quickstart config with ``tools/train.py`` into ``work_dir``."""
    if osp.isfile(path):
        return path
    print(f'{path!r} not found: training {RESNET18_CONFIG} into '
          f'{work_dir!r}', flush=True)
    subprocess.run([
        sys.executable,
        osp.join(ROOT, 'tools/train.py'),
        osp.join(ROOT, RESNET18_CONFIG), '--work-dir', work_dir
    ],
                   check=True,
                   cwd=ROOT)
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return f.read().strip()


def load_float_model(name: str, args) -> nn.Module:
    """The trained float model ``name`` in eval mode."""
    model, _ = build_model(name)
    if name == 'resnet18':
        path = resnet18_checkpoint(args.resnet18_ckpt, args.work_dir)
    else:
        path = args.mobilenetv2_ckpt
        if not osp.isfile(path):
            raise FileNotFoundError(
                f'--mobilenetv2-ckpt {path!r} not found (made by '
                'benchmarks/pruning_vs_torch_pruning.py)')
    state = torch.load(path, map_location='cpu', weights_only=False)
    state = state.get('state_dict', state)
    state = {k: v for k, v in state.items()
             if not k.startswith('data_preprocessor')}
    model.load_state_dict(state)
    return model.eval()


def calibrate(model: nn.Module, images: List[torch.Tensor],
              global_qconfig: Dict,
              quantizer_type: type = NativeQuantizer) -> nn.Module:
    """Prepare ``model`` (shared, not copied) with
    ``quantizer_type(global_qconfig)``, run the observers on ``images`` and
    return it with the fake-quants on and the observers frozen."""
    prepared = quantizer_type(global_qconfig).prepare(model).eval()
    prepared.apply(torch.ao.quantization.enable_observer)
    prepared.apply(torch.ao.quantization.disable_fake_quant)
    with torch.no_grad():
        for batch in images:
            prepared(batch)
    prepared.apply(torch.ao.quantization.disable_observer)
    prepared.apply(torch.ao.quantization.enable_fake_quant)
    return prepared


def predictions(forward: Callable[[torch.Tensor], np.ndarray],
                images: torch.Tensor, batch_size: int) -> np.ndarray:
    """Top-1 class of every image."""
    out = [
        forward(images[i:i + batch_size]).argmax(1)
        for i in range(0, len(images), batch_size)
    ]
    return np.concatenate(out)


def torch_forward(model: nn.Module) -> Callable[[torch.Tensor], np.ndarray]:

    def forward(x: torch.Tensor) -> np.ndarray:
        with torch.no_grad():
            return model(x).numpy()

    return forward


def onnx_forward(path: str) -> Callable[[torch.Tensor], np.ndarray]:
    runner = session(path)

    def forward(x: torch.Tensor) -> np.ndarray:
        return runner.run(None, {'input': x.numpy()})[0]

    return forward


def export_float(model: nn.Module, example: torch.Tensor, path: str) -> None:
    torch.onnx.export(
        model, (example, ),
        path,
        opset_version=13,
        input_names=['input'],
        output_names=['output'],
        dynamic_axes={
            'input': {
                0: 'batch'
            },
            'output': {
                0: 'batch'
            }
        },
        dynamo=False)


def bench_seed(model: nn.Module, float_onnx: str, train: Tuple,
               test: Tuple, seed: int, args, work_dir: str) -> Dict:
    """Top-1 (%) of every quantized variant for the calibration images of
    ``seed``."""
    x_test, y_test = test
    labels = y_test.numpy()
    calib = [
        xb for xb, _ in calibration_batches(*train, args.calib_batches,
                                            args.calib_batch_size, seed)
    ]

    def top1(pred: np.ndarray) -> float:
        return 100 * float((pred == labels).mean())

    result = {}
    ort_path = osp.join(work_dir, f'ort_{seed}.onnx')
    quantize_static(
        float_onnx,
        ort_path,
        ImageReader(calib, 'input'),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8)
    result['ort_int8'] = top1(
        predictions(onnx_forward(ort_path), x_test, args.batch_size))

    prepared = calibrate(copy.deepcopy(model), calib,
                         INT8_QCONFIGS[args.act_observer])
    ours_path = osp.join(work_dir, f'ours_{seed}.onnx')
    export_onnx(prepared, calib[0], ours_path, dynamic_batch=True)
    fake = predictions(torch_forward(prepared), x_test, args.batch_size)
    onnx_pred = predictions(
        onnx_forward(ours_path), x_test, args.batch_size)
    result['ours_int8_fake'] = top1(fake)
    result['ours_int8_onnx'] = top1(onnx_pred)
    result['agreement'] = 100 * float((fake == onnx_pred).mean())

    w4a8 = calibrate(
        copy.deepcopy(model), calib, W4A8_QCONFIG,
        quantizer_type=AcademicQuantizer)
    result['ours_w4a8_fake'] = top1(
        predictions(torch_forward(w4a8), x_test, args.batch_size))
    return result


def bench_model(name: str, args, train: Tuple, test: Tuple,
                work_dir: str) -> List[Dict]:
    model = load_float_model(name, args)
    fp32 = predictions(torch_forward(model), test[0], args.batch_size)
    fp32_top1 = 100 * float((fp32 == test[1].numpy()).mean())
    float_onnx = osp.join(work_dir, f'{name}_fp32.onnx')
    export_float(model, test[0][:1], float_onnx)
    results = []
    for seed in args.seeds:
        result = bench_seed(model, float_onnx, train, test, seed, args,
                            work_dir)
        result['fp32'] = fp32_top1
        print(f'{name} seed {seed}: ' + ', '.join(
            f'{k} {v:.2f}' for k, v in result.items()), flush=True)
        results.append(result)
    return results


def mean_std(values: List[float]) -> str:
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f'{statistics.mean(values):.2f} ± {std:.2f}'


def markdown_table(per_model: Dict[str, List[Dict]]) -> str:
    names = list(per_model)
    lines = ['| top-1 (%) on the 2,000 test images | ' +
             ' | '.join(names) + ' |', '|---' * (len(names) + 1) + '|']
    for key in COLUMNS:
        cells = [mean_std([r[key] for r in per_model[n]]) for n in names]
        lines.append(f'| {LABELS[key]} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def docs_section(table: str, command: str, args) -> str:
    return f"""
## Accuracy on Fashion-MNIST (PTQ)

Measured 2026-12-06 (onnxruntime {ort.__version__}, torch \
{torch.__version__}, one thread, CPU) with

```shell
{command}
```

Post-training quantization of trained float models, no training: the
quickstart ResNet-18 (width 16,
`configs/distill/fashion_mnist/teacher_resnet18-w16_fashion-mnist.py`), and
where a column is there, the MobileNetV2 (width 0.5) of
`benchmarks/_pruning_bench.py`. Each of {len(args.seeds)} seeds
({', '.join(map(str, args.seeds))}) draws a different calibration set of
{args.calib_batches} batches of {args.calib_batch_size} training images of
`data/fashion_mnist_subset`; every quantizer of a seed is calibrated on the
same images. Mean ± std over the seeds (the fp32 model is the same for all
seeds). ORT: `quantize_static` (QDQ, per-channel int8 weights, uint8
activations, MinMax). Ours int8: `NativeQuantizer` with per-channel
symmetric int8 weights and affine uint8 activations (moving-average
min-max), exported with `export_onnx` and run in onnxruntime. W4A8:
`AcademicQuantizer`, 4-bit per-channel symmetric weights, 8-bit affine
activations, fake-quant only.

{table}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--models', nargs='+', default=['resnet18'],
                        choices=('resnet18', 'mobilenetv2'))
    parser.add_argument('--resnet18-ckpt',
                        default='/tmp/dfm/work/teacher/epoch_6.pth',
                        help='trained when missing')
    parser.add_argument(
        '--mobilenetv2-ckpt',
        default='/tmp/mmrazor_bench_pruning/'
        'mobilenetv2_e6_nall_fashion_mnist_subset.pth')
    parser.add_argument('--work-dir',
                        default='work_dirs/quantization_fashion_mnist',
                        help='where the ResNet-18 is trained if missing')
    parser.add_argument('--data-root', default='data/fashion_mnist_subset')
    parser.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2])
    parser.add_argument(
        '--act-observer',
        choices=sorted(INT8_QCONFIGS),
        default='moving_average',
        help='activation observer of our int8 PTQ (minmax: as '
        'onnxruntime calibrates)')
    parser.add_argument('--calib-batches', type=int, default=8)
    parser.add_argument('--calib-batch-size', type=int, default=32)
    parser.add_argument('--batch-size', type=int, default=250,
                        help='evaluation batch size')
    parser.add_argument('--docs', default=None,
                        help='append the table to this Markdown file')
    args = parser.parse_args()
    torch.set_num_threads(1)
    ort.set_default_logger_severity(3)
    train = load_split(args.data_root, 'train', None)
    test = load_split(args.data_root, 'test', None)
    per_model = {}
    with tempfile.TemporaryDirectory() as work_dir:
        for name in args.models:
            per_model[name] = bench_model(name, args, train, test, work_dir)
    table = markdown_table(per_model)
    print(table)
    agreements = [r['agreement'] for rs in per_model.values() for r in rs]
    if min(agreements) < 99:
        print(f'WARNING: ONNX vs fake-quant agreement {min(agreements):.2f}'
              '% < 99%')
    if args.docs:
        command = 'python benchmarks/quantization_fashion_mnist.py ' + \
            ' '.join(sys.argv[1:])
        with open(args.docs, 'a') as f:
            f.write(docs_section(table, command.strip(), args))


if __name__ == '__main__':
    main()
