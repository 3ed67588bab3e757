"""``learn_rounding`` (AdaRound): each weight ends on the grid point just
below or just above it, the rounding of a small layer is the best of all
down/up choices (found here by trying every one), the layers' outputs come
closer to the float layers' (computed with plain ``F.conv2d`` / ``F.linear``
from the original weights) than with rounding to nearest, and the learned
rounding reaches the ONNX export."""
import copy
import itertools

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from mmrazor.core.loops.quantization_loops import calibrate_prepared
from mmrazor.models.quantizers import (AcademicQuantizer, export_onnx,
                                       learn_rounding)
from qconfigs import native_qconfig


class ConvBnReluLinear(nn.Module):

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 6, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(6)
        self.fc = nn.Linear(6, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn(self.conv(x)))
        return self.fc(y.mean((2, 3)))


def _conv_model():
    torch.manual_seed(0)
    model = ConvBnReluLinear()
    with torch.no_grad():
        model.bn.running_mean.uniform_(-0.5, 0.5)
        model.bn.running_var.uniform_(0.5, 2.0)
        model.bn.weight.uniform_(0.5, 1.5)
        model.bn.bias.uniform_(-0.2, 0.2)
    return model.eval()


def _smooth_images(n: int) -> torch.Tensor:
    """Images whose neighbouring pixels are correlated, as in real images
    (with white noise every rounding error costs the same, and rounding to
    nearest is about the best there is)."""
    coarse = torch.randn(n, 2, 3, 3)
    return F.interpolate(coarse, size=(7, 7), mode='bilinear',
                         align_corners=True) + 0.3


def _prepared(model, batches, w_bit=3):
    # the prepared model shares the float model's parameters: keep the
    # float model apart
    return calibrate_prepared(
        AcademicQuantizer(native_qconfig(w_bit=w_bit)).prepare(
            copy.deepcopy(model)), batches)


def _folded(model):
    """The float conv weight and bias with the BN folded in, by hand."""
    bn = model.bn
    factor = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return (model.conv.weight * factor.reshape(-1, 1, 1, 1),
            bn.bias - bn.running_mean * factor)


def _float_targets(model, x):
    """Each layer's float output on the float model's own inputs, written
    out with F.conv2d / F.linear (the functional ReLU is not fused into
    the conv-bn: the conv's output is taken before it)."""
    weight, bias = _folded(model)
    conv = F.conv2d(x, weight, bias, padding=1)
    fc = F.linear(torch.relu(conv).mean((2, 3)), model.fc.weight,
                  model.fc.bias)
    return conv, fc


def _quantized_outputs(prepared, x):
    """The conv's and the classifier's outputs in the fake-quant model."""
    seen = {}

    def keep(name):

        def hook(module, inputs, output):
            seen[name] = output

        return hook

    handles = [
        prepared.get_submodule(name).register_forward_hook(keep(name))
        for name in ('conv', 'fc')
    ]
    with torch.no_grad():
        prepared(x)
    for handle in handles:
        handle.remove()
    return seen['conv'], seen['fc']


def _levels(prepared, name, weight):
    """``weight / scale`` of the layer's weight quantizer, and the integer
    levels its fake-quant gives the layer's effective weight."""
    fake_quant = getattr(prepared, name).weight_fake_quant
    scale = fake_quant.scale.reshape([-1] + [1] * (weight.dim() - 1))
    return weight / scale, torch.round(fake_quant(weight) / scale)


def test_weights_round_down_or_up_and_outputs_get_closer():
    model = _conv_model()
    batches = [_smooth_images(16) for _ in range(4)]
    x = torch.cat(batches)
    nearest = _prepared(model, batches)
    learned = _prepared(model, batches)
    count = learn_rounding(
        learned, lambda: [learned(b) for b in batches], iters=400,
        batch_size=16)
    assert count == 2

    with torch.no_grad():
        float_conv, float_fc = _float_targets(model, x)
        float_weight, _ = _folded(model)
        # the learned conv weight, BN folded by hand
        bn = learned.conv.bn
        effective = learned.conv.weight * (
            bn.weight / torch.sqrt(bn.running_var + bn.eps)).reshape(
                -1, 1, 1, 1)
        ratio, levels = _levels(learned, 'conv', effective)
        # on the grid: the layer's fake-quant leaves the weight as it is
        torch.testing.assert_close(
            learned.conv.weight_fake_quant(effective), effective,
            rtol=0, atol=1e-6)
        exact, _ = _levels(learned, 'conv', float_weight)
        # every level is the float weight's floor or ceiling, within
        # [-3, 3] (3-bit symmetric) ...
        assert bool(((levels == torch.floor(exact))
                     | (levels == torch.ceil(exact))).all())
        assert levels.abs().max() <= 3
        # ... and not all of them the nearest one (something was learned)
        assert bool((levels != torch.round(exact)).any())
        torch.testing.assert_close(ratio, levels, rtol=0, atol=1e-4)

        fc_ratio, fc_levels = _levels(learned, 'fc', learned.fc.weight)
        fc_exact = model.fc.weight / learned.fc.weight_fake_quant.scale[:,
                                                                         None]
        assert bool(((fc_levels == torch.floor(fc_exact))
                     | (fc_levels == torch.ceil(fc_exact))).all())

        errors = {}
        for label, prepared in (('nearest', nearest), ('learned', learned)):
            conv, fc = _quantized_outputs(prepared, x)
            errors[label] = ((conv - float_conv).pow(2).mean(),
                             (fc - float_fc).pow(2).mean())
    # both layers reproduce the float layers better than nearest rounding
    assert errors['learned'][0] < 0.9 * errors['nearest'][0], errors
    assert errors['learned'][1] < 0.9 * errors['nearest'][1], errors


def test_a_small_layer_gets_one_of_the_best_roundings_of_all_choices():
    """A linear layer of 2 x 6 weights: 2 ** 6 down/up choices per output,
    each tried; the squared error of the layer's output against the float
    layer on the float inputs, summed over the data, ranks the choice
    learned among the best."""
    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(6, 2)).eval()
    # correlated features (three factors mixed into six)
    mixing = torch.randn(3, 6)
    batches = [
        torch.randn(32, 3) @ mixing + 0.1 * torch.randn(32, 6)
        for _ in range(4)
    ]
    x = torch.cat(batches)
    prepared = _prepared(model, batches, w_bit=4)
    with torch.no_grad():
        # the layer's input in the quantized model (input quantizer on)
        seen = []
        handle = prepared.get_submodule('0').register_forward_pre_hook(
            lambda m, inputs: seen.append(inputs[0]))
        prepared(x)
        handle.remove()
        x_q = seen[0]
    learn_rounding(
        prepared, lambda: [prepared(b) for b in batches], iters=1000,
        batch_size=64)
    layer = prepared.get_submodule('0')
    scale = layer.weight_fake_quant.scale
    with torch.no_grad():
        target = F.linear(x, model[0].weight, model[0].bias)
        exact = model[0].weight / scale[:, None]
        learned = torch.round(layer.weight_fake_quant(layer.weight) /
                              scale[:, None])
    wins = 0
    for row in range(2):

        def error(levels):
            out = x_q @ (scale[row] * levels) + model[0].bias[row]
            return float((out - target[:, row]).pow(2).sum())

        floor = torch.floor(exact[row])
        choices = [
            torch.clamp(floor + torch.tensor(ups, dtype=floor.dtype), -7, 7)
            for ups in itertools.product((0, 1), repeat=6)
        ]
        errors = sorted(error(levels) for levels in choices)
        nearest = error(torch.round(exact[row]))
        found = error(learned[row])
        # AdaRound is a relaxation, not an exhaustive search: its choice is
        # among the best 5 of the 64, and never worse than nearest
        assert found <= errors[4] * (1 + 1e-6), (row, found, errors[:5])
        assert found <= nearest * (1 + 1e-6), (row, found, nearest)
        wins += found < nearest * (1 - 1e-3)
    # ... and better than nearest for at least one row
    assert wins >= 1


def test_learned_rounding_reaches_the_onnx_file(tmp_path):
    onnx = pytest.importorskip('onnx')
    from onnx import numpy_helper
    model = _conv_model()
    batches = [_smooth_images(16) for _ in range(2)]
    prepared = _prepared(model, batches, w_bit=4)
    learn_rounding(prepared, lambda: [prepared(b) for b in batches],
                   iters=50)
    with torch.no_grad():
        bn = prepared.conv.bn
        effective = prepared.conv.weight * (
            bn.weight / torch.sqrt(bn.running_var + bn.eps)).reshape(
                -1, 1, 1, 1)
        _, levels = _levels(prepared, 'conv', effective)
    path = str(tmp_path / 'learned.onnx')
    export_onnx(prepared, batches[0][:1], path)
    weights = [
        numpy_helper.to_array(init)
        for init in onnx.load(path).graph.initializer
        if numpy_helper.to_array(init).dtype == np.int8
        and numpy_helper.to_array(init).ndim == 4
    ]
    assert len(weights) == 1
    assert np.array_equal(weights[0], levels.numpy().astype(np.int8))


@pytest.mark.parametrize('kwargs, message', [
    (dict(iters=0), 'iters must be a positive int'),
    (dict(batch_size=True), 'batch_size must be a positive int'),
    (dict(warmup=1.0), 'warmup must be in'),
    (dict(beta=(20., 0.)), 'beta must be two positive'),
])
def test_bad_arguments_are_named(kwargs, message):
    model = _conv_model()
    batches = [torch.randn(4, 2, 7, 7)]
    prepared = _prepared(model, batches)
    with pytest.raises(ValueError, match=message):
        learn_rounding(prepared, lambda: prepared(batches[0]), **kwargs)


def test_a_model_without_quantized_layers_is_refused():
    with pytest.raises(ValueError, match='no quantized conv'):
        learn_rounding(nn.Sequential(nn.ReLU()), lambda: None)


def test_a_layer_left_in_float_keeps_its_weights():
    model = _conv_model()
    batches = [_smooth_images(8)]
    prepared = _prepared(model, batches)
    prepared.fc.weight_fake_quant.disable_fake_quant()
    before = prepared.fc.weight.detach().clone()
    assert learn_rounding(prepared, lambda: prepared(batches[0]),
                          iters=5) == 1
    assert torch.equal(prepared.fc.weight, before)
    assert not bool(prepared.fc.weight_fake_quant.fake_quant_enabled[0])
