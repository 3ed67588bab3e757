"""Our int8 QDQ ONNX export in OpenVINO's CPU runtime: it loads, agrees
with the fake-quant PyTorch model and OpenVINO executes its convolutions
and matmul in int8."""
import numpy as np
import pytest
import torch
from torch import nn

from mmrazor.models.quantizers import (NativeQuantizer, OpenVINOQuantizer,
                                       export_onnx, int8_products_saturate)
from qconfigs import calibrated, openvino_qconfig

ov = pytest.importorskip('openvino')

#: The 1.x OpenVINO ``global_qconfig``.
OPENVINO_QCONFIG = openvino_qconfig()


class TinyResidualNet(nn.Module):
    """conv-bn-relu, conv-bn + skip, relu, global pool, linear."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(8)
        self.relu2 = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        x = self.relu1(self.bn1(self.conv1(x)))
        x = self.relu2(self.bn2(self.conv2(x)) + x)
        return self.fc(torch.flatten(self.pool(x), 1))


def images(n, seed):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 12, 12, generator=generator)


def compile_cpu(path):
    """One inference thread, float parts in float32 (not bf16)."""
    return ov.Core().compile_model(
        path, 'CPU', {
            'INFERENCE_NUM_THREADS': 1,
            'PERFORMANCE_HINT': 'LATENCY',
            'INFERENCE_PRECISION_HINT': 'f32',
        })


def executed_precisions(compiled):
    """(layer type, precision) of each convolution / matmul, as the runtime
    model OpenVINO executes reports it."""
    found = []
    for op in compiled.get_runtime_model().get_ordered_ops():
        info = op.get_rt_info()
        layer = info['layerType'].astype(str)
        if layer in ('Convolution', 'FullyConnected', 'MatMul'):
            found.append((layer, info['runtimePrecision'].astype(str)))
    return found


def float_model():
    torch.manual_seed(0)
    model = TinyResidualNet().eval()
    for bn in (model.bn1, model.bn2):  # non-trivial BN to fold
        bn.running_mean.uniform_(-0.3, 0.3)
        bn.running_var.uniform_(0.5, 2.0)
    return model


@pytest.fixture(scope='module')
def exported(tmp_path_factory):
    model = float_model()
    prepared = calibrated(
        OpenVINOQuantizer(OPENVINO_QCONFIG), model, images(64, 1))
    folder = tmp_path_factory.mktemp('openvino')
    int8_path = str(folder / 'int8.onnx')
    export_onnx(prepared, images(1, 2), int8_path, dynamic_batch=True)
    fp32_path = str(folder / 'fp32.onnx')
    torch.onnx.export(
        model, (images(1, 2), ),
        fp32_path,
        opset_version=13,
        input_names=['input'],
        dynamo=False)
    return prepared, int8_path, fp32_path


def assert_openvino_agrees(prepared, int8_path):
    x = images(256, 3)
    with torch.no_grad():
        expected = prepared(x).numpy()
    got = compile_cpu(int8_path)({'input': x.numpy()})[0]
    # OpenVINO accumulates u8 x i8 products exactly in int32 and rescales in
    # float, the fake-quant model convolves dequantized floats: the two can
    # land on opposite sides of a rounding boundary of a quantizer, i.e.
    # differ there by one step of it. At the output that is one step of
    # fc_post_process (the last rounding); before it, the fc input (the
    # pooled activation, re-quantized by relu2's quantizer) can be one of
    # its steps off in every channel, which moves output i by at most
    # s_in * sum_j |W_ij| (W: the int8-grid fc weight). The bound is
    # 5-14 output steps here; onnxruntime also exceeds one output step.
    out_step = float(prepared.fc_post_process.scale)
    in_step = float(prepared.relu2_post_process.scale)
    with torch.no_grad():
        weight = prepared.fc.weight_fake_quant(prepared.fc.weight)
    bound = out_step + in_step * weight.abs().sum(1).numpy()
    diff = np.abs(got - expected)
    assert (diff <= bound * (1 + 1e-4)).all()
    # and boundary cases are rare: most outputs are the same level (95% on
    # OpenVINO 2026.4, 99% on onnxruntime)
    assert (diff < out_step / 2).mean() >= 0.9
    assert (got.argmax(1) == expected.argmax(1)).mean() >= 0.99


@pytest.mark.skipif(
    int8_products_saturate() is True,
    reason='x86 CPU without VNNI: OpenVINO\'s int8 kernels saturate 8-bit '
    'weight products (7-bit weights are checked instead)')
def test_openvino_agrees_with_fake_quant_model(exported):
    prepared, int8_path, _ = exported
    assert_openvino_agrees(prepared, int8_path)


def test_openvino_agrees_with_7bit_weights_on_every_cpu(tmp_path):
    # 7-bit weights keep u8 x s8 pair sums within int16 on every x86 CPU
    qconfig = openvino_qconfig()
    qconfig['w_qscheme']['bit'] = 7
    prepared = calibrated(
        NativeQuantizer(qconfig), float_model(), images(64, 1))
    path = str(tmp_path / 'w7.onnx')
    export_onnx(prepared, images(1, 2), path, dynamic_batch=True)
    assert_openvino_agrees(prepared, path)


def test_openvino_runs_the_int8_model_in_int8(exported):
    _, int8_path, fp32_path = exported
    int8 = executed_precisions(compile_cpu(int8_path))
    # two convs (BN folded) and the linear layer, all in u8 / i8
    assert sorted(layer for layer, _ in int8) == [
        'Convolution', 'Convolution', 'FullyConnected'
    ]
    assert all(precision in ('u8', 'i8') for _, precision in int8)
    # the float export of the same model runs in f32: the check tells
    # them apart
    fp32 = executed_precisions(compile_cpu(fp32_path))
    assert len(fp32) == 3
    assert all(precision == 'f32' for _, precision in fp32)
