"""Our int8 QDQ ONNX export in OpenVINO's CPU runtime: it loads, agrees
with the fake-quant PyTorch model and OpenVINO executes its convolutions
and matmul in int8."""
import copy

import numpy as np
import pytest
import torch
from torch import nn

from mmrazor.models.quantizers import (NativeQuantizer, OpenVINOQuantizer,
                                       export_onnx, int8_products_saturate)
from mmrazor.models.quantizers.backend import backend_config_for
from mmrazor.models.quantizers.native_quantizer import \
    remove_quantizers_before_fused_adds
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


class TwoBranchNet(nn.Module):
    """conv-bn-relu stem, then two conv-bn branches added (OpenVINO fuses
    one of them with the addition), relu, global pool, linear."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU())
        self.a = nn.Sequential(
            nn.Conv2d(16, 16, 3, padding=1), nn.BatchNorm2d(16))
        self.b = nn.Sequential(nn.Conv2d(16, 16, 1), nn.BatchNorm2d(16))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = self.stem(x)
        x = torch.relu(self.a(x) + self.b(x))
        return self.fc(torch.flatten(self.pool(x), 1))


class SmallPoolNet(nn.Module):
    """conv-bn-relu, a 2 x 2 average pool, linear: every pooled value is
    the mean of four levels of the relu's quantizer."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.relu = nn.ReLU()
        self.pool = nn.AvgPool2d(2)
        self.fc = nn.Linear(8 * 6 * 6, 10)

    def forward(self, x):
        x = self.pool(self.relu(self.bn(self.conv(x))))
        return self.fc(torch.flatten(x, 1))


def with_random_bn_statistics(model):
    torch.manual_seed(0)
    model = model.eval()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.3, 0.3)
            m.running_var.uniform_(0.5, 2.0)
    return model


def same_level_fraction(prepared, path):
    """Fraction of the outputs on which OpenVINO and the fake-quant model
    land on the same level of the output quantizer."""
    x = images(256, 3)
    with torch.no_grad():
        expected = prepared(x).numpy()
    got = compile_cpu(path)({'input': x.numpy()})[0]
    step = float(prepared.fc_post_process.scale)
    return float((np.abs(got - expected) < step / 2).mean())


def quant_modules_after(prepared, names):
    """The fake-quants that directly follow the modules ``names``."""
    found = []
    for node in prepared.graph.nodes:
        if node.op == 'call_module' and node.target.endswith(
                '_post_process') and node.args[0].op == 'call_module' \
                and node.args[0].target in names:
            found.append(node.target)
    return found


def test_openvino_quantizer_adds_conv_outputs_unrounded():
    # OpenVINO fuses a conv into the addition it feeds and adds its output
    # unrounded; OpenVINOQuantizer(match_openvino=True)'s fake-quant model
    # does the same
    qconfig = openvino_qconfig()
    model = with_random_bn_statistics(TwoBranchNet())
    native = NativeQuantizer(qconfig).prepare(copy.deepcopy(model))
    default = OpenVINOQuantizer(qconfig).prepare(copy.deepcopy(model))
    ours = OpenVINOQuantizer(
        qconfig, match_openvino=True).prepare(copy.deepcopy(model))
    assert len(quant_modules_after(native, ('a.0', 'b.0'))) == 2
    # by default a file onnxruntime also runs in int8: quantizers kept
    assert len(quant_modules_after(default, ('a.0', 'b.0'))) == 2
    assert quant_modules_after(ours, ('a.0', 'b.0')) == []
    # the stem's conv feeds a conv, not an addition: it keeps its quantizer
    assert len(quant_modules_after(ours, ('stem.0', ))) == 1
    with pytest.raises(TypeError, match='match_openvino'):
        OpenVINOQuantizer(qconfig, match_openvino='yes')


def test_openvino_computes_the_fused_add_as_the_fake_quant_model(tmp_path):
    # 7-bit weights: exact in OpenVINO's int8 kernels on every x86 CPU
    qconfig = openvino_qconfig()
    qconfig['w_qscheme']['bit'] = 7
    quantizer = NativeQuantizer(qconfig)
    quantizer.match_runtime_fusions = remove_quantizers_before_fused_adds
    prepared = calibrated(quantizer,
                          with_random_bn_statistics(TwoBranchNet()),
                          images(64, 1))
    path = str(tmp_path / 'two_branch.onnx')
    export_onnx(prepared, images(1, 2), path, dynamic_batch=True)
    # with the conv outputs rounded before the addition (the file of
    # NativeQuantizer) OpenVINO lands on another level on ~19% of them
    assert same_level_fraction(prepared, path) >= 0.95


def test_average_pool_output_has_its_own_quantizer(tmp_path):
    # a mean of four levels re-quantized on the same grid is a tie in a
    # quarter of the cases; OpenVINO rounds ties up, the fake-quant model
    # to even. With match_openvino the pool gets its own quantizer (another
    # scale: no ties); by default it shares its input's, as in torch.
    model = with_random_bn_statistics(SmallPoolNet())

    def pool_and_input_quantizers(prepared):
        # (conv-bn-relu is one fused module, ``conv``)
        after_relu = quant_modules_after(prepared, ('conv', ))
        after_pool = quant_modules_after(prepared, ('pool', ))
        assert len(after_relu) == len(after_pool) == 1
        return (prepared.get_submodule(after_pool[0]),
                prepared.get_submodule(after_relu[0]))

    shared = NativeQuantizer(openvino_qconfig()).prepare(copy.deepcopy(model))
    pool_q, input_q = pool_and_input_quantizers(shared)
    assert pool_q is input_q
    exact = OpenVINOQuantizer(
        openvino_qconfig(),
        match_openvino=True).prepare(copy.deepcopy(model))
    pool_q, input_q = pool_and_input_quantizers(exact)
    assert pool_q is not input_q
    # OpenVINO itself, with 7-bit weights (exact on every x86 CPU; the
    # OpenVINOQuantizer takes 8 bits only)
    qconfig = openvino_qconfig()
    qconfig['w_qscheme']['bit'] = 7
    quantizer = NativeQuantizer(qconfig)
    quantizer.backend_config = backend_config_for(
        torch.quint8, torch.qint8, averaging_own_quantizer=True)
    prepared = calibrated(quantizer, model, images(64, 1))
    pool_q, input_q = pool_and_input_quantizers(prepared)
    assert float(pool_q.scale) != float(input_q.scale)
    path = str(tmp_path / 'pool.onnx')
    export_onnx(prepared, images(1, 2), path, dynamic_batch=True)
    # 40% with the shared quantizer (OpenVINO 2026.4)
    assert same_level_fraction(prepared, path) >= 0.95
