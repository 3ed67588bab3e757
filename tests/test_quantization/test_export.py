"""int8 ONNX export: QDQ nodes, int8 weights, folded conv-bn, and the
onnxruntime model checked against the fake-quant PyTorch model."""
import os.path as osp

import numpy as np
import pytest
import torch
from torch import nn
from torch.ao.quantization import FakeQuantizeBase
from torch.nn import functional as F

from mmrazor.models.quantizers import (AcademicQuantizer, ExportFakeQuant,
                                       NativeQuantizer, OpenVINOQuantizer,
                                       export_onnx, int8_products_saturate,
                                       snap_biases_to_int32)

onnx = pytest.importorskip('onnx')
ort = pytest.importorskip('onnxruntime')
from onnx import numpy_helper  # noqa: E402
from qconfigs import calibrated  # noqa: E402
from qconfigs import native_qconfig as qconfig  # noqa: E402

#: On an x86 CPU without VNNI the runtimes' u8 x s8 kernels saturate int16
#: pair sums (``mmrazor.models.quantizers.cpu_int8``): 8-bit weights are
#: then not computed exactly, 7-bit weights are on every CPU.
exact_8bit_weights = pytest.mark.skipif(
    int8_products_saturate() is True,
    reason='x86 CPU without VNNI: CPU int8 kernels saturate 8-bit weight '
    'products (7-bit weights are checked instead)')


class ConvBnReluLinear(nn.Module):

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3)
        self.bn = nn.BatchNorm2d(8)
        self.relu = nn.ReLU()
        self.fc = nn.Linear(8 * 6 * 6, 10)

    def forward(self, x):
        x = self.relu(self.bn(self.conv(x)))
        return self.fc(torch.flatten(x, 1))


def float_model(seed=0):
    torch.manual_seed(seed)
    model = ConvBnReluLinear()
    # non-trivial BN statistics, so that folding matters
    model.bn.running_mean.uniform_(-0.3, 0.3)
    model.bn.running_var.uniform_(0.5, 2.0)
    model.bn.weight.data.uniform_(0.5, 1.5)
    model.bn.bias.data.uniform_(-0.2, 0.2)
    return model.eval()


def run_onnx(path, x):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    sess = ort.InferenceSession(
        path, options, providers=['CPUExecutionProvider'])
    return sess.run(None, {'input': x.numpy()})[0]


def images(n, seed):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 8, 8, generator=generator)


@pytest.fixture(scope='module')
def exported(tmp_path_factory):
    model = float_model()
    prepared = calibrated(
        OpenVINOQuantizer(qconfig()), model, images(256, 1))
    path = str(tmp_path_factory.mktemp('export') / 'int8.onnx')
    counts = export_onnx(
        prepared, images(1, 2), path, dynamic_batch=True)
    return model, prepared, path, counts


def test_graph_has_qdq_nodes_and_int8_weights(exported):
    model, prepared, path, counts = exported
    graph = onnx.load(path).graph
    ops = [n.op_type for n in graph.node]
    assert ops.count('QuantizeLinear') >= 3  # input, conv out, fc out
    assert 'BatchNormalization' not in ops  # BN folded
    producers = {out: n for n in graph.node for out in n.output}
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for op_type in ('Conv', 'Gemm'):
        node = next(n for n in graph.node if n.op_type == op_type)
        weight_dq = producers[node.input[1]]
        assert weight_dq.op_type == 'DequantizeLinear'
        assert inits[weight_dq.input[0]].dtype == np.int8
        # per output channel scales (axis 0)
        assert inits[weight_dq.input[1]].shape == (node.op_type == 'Conv'
                                                   and 8 or 10, )
        bias_dq = producers[node.input[2]]
        assert inits[bias_dq.input[0]].dtype == np.int32
    assert counts['quantized_weights'] == 2
    assert counts['quantized_biases'] == 2


def test_folded_int8_conv_weight_equals_hand_computation(exported):
    model, prepared, path, _ = exported
    graph = onnx.load(path).graph
    producers = {out: n for n in graph.node for out in n.output}
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    conv = next(n for n in graph.node if n.op_type == 'Conv')
    weight_dq = producers[conv.input[1]]
    # by hand: fold BN, w_f = w * gamma / sqrt(var + eps) per out channel,
    # then symmetric per-channel int8 on [-127, 127]: s_c = max|w_f,c| / 127
    bn = model.bn
    factor = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    folded = (model.conv.weight * factor.view(-1, 1, 1, 1)).detach()
    scale = folded.abs().flatten(1).max(dim=1).values / 127
    levels = torch.round(folded / scale.view(-1, 1, 1, 1))
    np.testing.assert_allclose(
        inits[weight_dq.input[1]], scale.numpy(), rtol=1e-6)
    assert np.array_equal(inits[weight_dq.input[0]],
                          levels.numpy().astype(np.int8))


def assert_onnxruntime_agrees(prepared, path):
    x = images(512, 3)
    with torch.no_grad():
        expected = prepared(x).numpy()
    got = run_onnx(path, x)
    # The int8 model differs from the fake-quant one only by rounding: the
    # int32 bias (step s_in * s_w, error <= half a step) and the float
    # order of the accumulation can move a value across a rounding
    # boundary of the next quantizer, i.e. by one output step (the output
    # fake-quant's scale). Allow two steps.
    out_step = float(prepared.fc_post_process.scale)
    assert np.abs(got - expected).max() <= 2 * out_step + 1e-6
    agree = (got.argmax(1) == expected.argmax(1)).mean()
    assert agree >= 0.99


@exact_8bit_weights
def test_onnxruntime_agrees_with_fake_quant_model(exported):
    _, prepared, path, _ = exported
    assert_onnxruntime_agrees(prepared, path)


def test_onnxruntime_agrees_with_7bit_weights_on_every_cpu(tmp_path):
    prepared = calibrated(
        NativeQuantizer(qconfig(w_bit=7)), float_model(), images(256, 1))
    path = str(tmp_path / 'w7.onnx')
    export_onnx(prepared, images(1, 2), path, dynamic_batch=True)
    arrays = [numpy_helper.to_array(i)
              for i in onnx.load(path).graph.initializer]
    levels = [a for a in arrays if a.dtype == np.int8 and a.ndim >= 2]
    assert len(levels) == 2  # the conv and linear weights
    assert max(int(np.abs(w.astype(int)).max()) for w in levels) == 63
    assert_onnxruntime_agrees(prepared, path)


def test_int8_file_is_smaller_than_fp32(exported, tmp_path):
    model, _, path, _ = exported
    fp32 = str(tmp_path / 'fp32.onnx')
    torch.onnx.export(
        model, (images(1, 2), ), fp32, opset_version=13, dynamo=False)
    assert osp.getsize(path) < osp.getsize(fp32)


def test_lsq_and_4bit_weights_export_exactly(tmp_path):
    # LSQ fake-quants are frozen with their learned scale; 4-bit weights on
    # [-7, 7] are stored in int8 initializers within [-7, 7]
    model = float_model(1)
    quantizer = AcademicQuantizer(
        qconfig(
            w_fake_quant='mmrazor.LearnableFakeQuantize',
            a_fake_quant='mmrazor.LearnableFakeQuantize',
            a_symmetry=False,
            w_bit=4))
    prepared = calibrated(quantizer, model, images(128, 4))
    with torch.no_grad():  # as if learned: move a scale away from init
        prepared.conv.weight_fake_quant.scale.mul_(0.8)
    path = str(tmp_path / 'lsq.onnx')
    export_onnx(prepared, images(1, 5), path, dynamic_batch=True)
    graph = onnx.load(path).graph
    int8 = [  # the weights (zero points are int8 vectors too)
        numpy_helper.to_array(i) for i in graph.initializer
        if numpy_helper.to_array(i).dtype == np.int8
        and numpy_helper.to_array(i).ndim >= 2
    ]
    assert len(int8) == 2
    assert all(w.min() >= -7 and w.max() <= 7 for w in int8)
    x = images(256, 6)
    with torch.no_grad():
        expected = prepared(x).numpy()
    got = run_onnx(path, x)
    out_step = float(prepared.fc_post_process.scale.max())
    assert np.abs(got - expected).max() <= 2 * out_step + 1e-6
    assert (got.argmax(1) == expected.argmax(1)).mean() >= 0.99


def test_export_fake_quant_narrow_range_equals_torch_fake_quant():
    x = torch.linspace(-3, 3, 101)
    scale, zero_point = torch.tensor(0.05), torch.tensor(0)
    module = ExportFakeQuant(scale, zero_point, -7, 7)
    # by hand: clamp(round(x / s), -7, 7) * s
    expected = torch.clamp(torch.round(x / 0.05), -7, 7) * 0.05
    assert torch.allclose(module(x), expected, atol=1e-7)


def test_bad_inputs_are_named(tmp_path):
    with pytest.raises(ValueError, match=r'\[0, 300\]'):
        ExportFakeQuant(torch.tensor(1.), torch.tensor(0), 0, 300)
    with pytest.raises(ValueError, match='shapes differ'):
        ExportFakeQuant(torch.ones(3), torch.zeros(2), -128, 127)
    with pytest.raises(ValueError, match='opset_version'):
        export_onnx(nn.Linear(2, 2), torch.ones(1, 2),
                    str(tmp_path / 'a.onnx'), opset_version=11)
    with pytest.raises(ValueError, match='no fake-quant'):
        export_onnx(nn.Linear(2, 2), torch.ones(1, 2),
                    str(tmp_path / 'a.onnx'))
    assert not osp.exists(tmp_path / 'a.onnx')


class ConvBnClampConv(nn.Module):
    """conv-bn, a clamp to [0, 6] in one of its three spellings, conv."""

    def __init__(self, clamp: str):
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3)
        self.bn = nn.BatchNorm2d(8)
        self.relu6 = nn.ReLU6()
        self.clamp = clamp
        self.conv2 = nn.Conv2d(8, 4, 3)

    def forward(self, x):
        x = self.bn(self.conv(x))
        if self.clamp == 'nn.ReLU6':
            x = self.relu6(x)
        elif self.clamp == 'F.relu6':
            x = F.relu6(x)
        else:
            x = F.hardtanh(x, 0., 6.)
        return self.conv2(x)


def fake_quant_nodes_between(prepared, first, last):
    """The fake-quant nodes on the path from node ``first`` to ``last``."""
    node = next(n for n in prepared.graph.nodes if n.target == first)
    found = []
    while node.target != last:
        (node, ) = node.users
        if node.op == 'call_module' and isinstance(
                prepared.get_submodule(node.target), FakeQuantizeBase):
            found.append(node)
    return found


def optimized_ort_ops(path, tmp_path):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    options.optimized_model_filepath = str(tmp_path / 'optimized.onnx')
    ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])
    graph = onnx.load(options.optimized_model_filepath).graph
    return [n.op_type for n in graph.node]


@pytest.mark.parametrize('clamp', ['nn.ReLU6', 'F.relu6', 'F.hardtanh'])
def test_conv_bn_relu6_has_one_quantizer_after_the_clamp(clamp, tmp_path):
    torch.manual_seed(0)
    model = ConvBnClampConv(clamp).eval()
    model.bn.running_var.uniform_(0.5, 2.0)
    x = images(64, 7) * 4  # so that some conv-bn outputs exceed 6
    # 7-bit weights: exact in onnxruntime on every x86 CPU (the comparison
    # below is of the Clip folding, not of the weight width)
    prepared = calibrated(
        NativeQuantizer(qconfig(a_symmetry=False, w_bit=7)), model, x)

    # exactly one activation fake-quant between the conv and the next
    # layer, and it observes the clamp's output, not the conv's
    between = fake_quant_nodes_between(prepared, 'conv', 'conv2')
    assert len(between) == 1
    clamp_node = between[0].args[0]
    assert clamp_node.target != 'conv'
    fake_quant = prepared.get_submodule(between[0].target)
    # by hand: the clamp's output lies in [0, min(max conv-bn, 6)], so the
    # affine quint8 quantizer has zero point 0, scale max / 255
    with torch.no_grad():
        conv_bn = model.bn(model.conv(x))
    assert float(conv_bn.max()) > 6
    clamped_max = float(torch.clamp(conv_bn, 0, 6).max())
    assert int(fake_quant.zero_point) == 0
    assert float(fake_quant.scale) == pytest.approx(clamped_max / 255)

    # onnxruntime folds the Clip into that quantizer: both convs in int8
    path = str(tmp_path / 'relu6.onnx')
    export_onnx(prepared, x[:1], path, dynamic_batch=True)
    assert 'Clip' in [n.op_type for n in onnx.load(path).graph.node]
    ops = optimized_ort_ops(path, tmp_path)
    assert ops.count('QLinearConv') == 2
    assert not {'Clip', 'Conv', 'FusedConv', 'Relu'} & set(ops)
    with torch.no_grad():
        expected = prepared(x).numpy()
    got = run_onnx(path, x)
    out_step = float(prepared.conv2_post_process.scale)
    assert np.abs(got - expected).max() <= 2 * out_step + 1e-6


def input_fake_quant(prepared, target):
    """The fake-quant module feeding the module ``target``."""
    node = next(n for n in prepared.graph.nodes if n.target == target)
    return prepared.get_submodule(node.args[0].target)


def folded_biases(prepared):
    """By hand: the conv-bn's folded bias ``(b - mean) * gamma /
    sqrt(var + eps) + beta`` and the linear bias, in float64."""
    conv, bn = prepared.conv, prepared.conv.bn
    factor = bn.weight.double() / torch.sqrt(bn.running_var.double() +
                                             bn.eps)
    conv_bias = conv.bias.double() if conv.bias is not None else 0.
    folded = (conv_bias - bn.running_mean.double()) * factor + \
        bn.bias.double()
    return dict(conv=folded.detach(), fc=prepared.fc.bias.double().detach())


def test_snapped_biases_lie_on_the_int32_grid_of_the_export(tmp_path):
    prepared = calibrated(
        NativeQuantizer(qconfig(a_symmetry=False)), float_model(),
        images(256, 1))
    before = folded_biases(prepared)
    assert snap_biases_to_int32(prepared) == 2
    after = folded_biases(prepared)
    path = str(tmp_path / 'snapped.onnx')
    export_onnx(prepared, images(1, 2), path, dynamic_batch=True)
    graph = onnx.load(path).graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    producers = {out: n for n in graph.node for out in n.output}
    stored = {}
    for node in graph.node:
        if node.op_type in ('Conv', 'Gemm'):
            dq = producers[node.input[2]]
            stored['conv' if node.op_type == 'Conv' else 'fc'] = (
                inits[dq.input[0]], inits[dq.input[1]])
    for name in ('conv', 'fc'):
        # the step by hand: input scale times the per-channel weight scale
        step = (input_fake_quant(prepared, name).scale.double() *
                getattr(prepared, name).weight_fake_quant.scale.double())
        levels = after[name] / step
        # on the grid, moved by at most half a step
        torch.testing.assert_close(
            levels, torch.round(levels), rtol=0, atol=1e-3)
        assert ((after[name] - before[name]).abs() <=
                step / 2 * (1 + 1e-4)).all()
        assert (after[name] != before[name]).any()
        # and the int32 bias of the file is the fake-quant model's bias
        levels_in_file, scale_in_file = stored[name]
        assert levels_in_file.dtype == np.int32
        np.testing.assert_array_equal(levels_in_file,
                                      torch.round(levels).numpy())
        np.testing.assert_allclose(
            levels_in_file * scale_in_file.astype(np.float64),
            after[name].numpy(), rtol=1e-6)
    # the reference kernels of onnxruntime (QDQ nodes run in float) now
    # compute what the fake-quant model computes, up to float rounding
    options = ort.SessionOptions()
    options.graph_optimization_level = \
        ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(
        path, options, providers=['CPUExecutionProvider'])
    x = images(256, 3)
    with torch.no_grad():
        expected = prepared(x).numpy()
    got = session.run(None, {'input': x.numpy()})[0]
    out_step = float(prepared.fc_post_process.scale)
    assert (np.abs(got - expected) < out_step / 2).mean() >= 0.99
