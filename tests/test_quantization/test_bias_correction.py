"""``correct_biases``: after it, each quantized layer's mean output over the
data equals the float layer's on the same inputs, computed here with plain
``F.conv2d`` / ``F.linear`` from the original float weights."""
import copy

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from mmrazor.core.loops.quantization_loops import calibrate_prepared
from mmrazor.models.quantizers import AcademicQuantizer, correct_biases
from qconfigs import native_qconfig


class ConvBnLinear(nn.Module):
    """conv-bn (no ReLU: its output is the layer's affine output), a
    ReLU, pooling and a linear layer without bias."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 6, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(6)
        self.fc = nn.Linear(6, 5, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn(self.conv(x))
        return self.fc(torch.relu(y).mean((2, 3)))


def _model_and_data():
    torch.manual_seed(0)
    model = ConvBnLinear()
    with torch.no_grad():
        model.bn.running_mean.uniform_(-0.5, 0.5)
        model.bn.running_var.uniform_(0.5, 2.0)
        model.bn.weight.uniform_(0.5, 1.5)
        model.bn.bias.uniform_(-0.2, 0.2)
    model.eval()
    batches = [torch.randn(8, 2, 7, 7) + 0.5 for _ in range(3)]
    # 3-bit weights: rounding moves the outputs visibly; the prepared
    # model shares the float model's parameters, so the float reference is
    # a copy taken before
    prepared = AcademicQuantizer(native_qconfig(w_bit=3)).prepare(
        copy.deepcopy(model))
    calibrate_prepared(prepared, batches)
    return model, prepared, batches


def _inputs_and_outputs(prepared, batches):
    """Per layer, the inputs it receives and the outputs it gives."""
    seen = {'conv': ([], []), 'fc': ([], [])}

    def keep(name):

        def hook(module, inputs, output):
            seen[name][0].append(inputs[0])
            seen[name][1].append(output)

        return hook

    handles = [
        prepared.get_submodule(name).register_forward_hook(keep(name))
        for name in seen
    ]
    with torch.no_grad():
        for x in batches:
            prepared(x)
    for handle in handles:
        handle.remove()
    return {
        name: (torch.cat(ins), torch.cat(outs))
        for name, (ins, outs) in seen.items()
    }


def _float_means(model, seen):
    """Per layer, the mean output per channel of the float layer (original
    weights, BN folded by hand) on the inputs the quantized layer saw."""
    bn = model.bn
    factor = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    x_conv, _ = seen['conv']
    conv = F.conv2d(x_conv, model.conv.weight, None, 1, 1) * factor.reshape(
        1, -1, 1, 1) + (bn.bias - bn.running_mean * factor).reshape(
            1, -1, 1, 1)
    x_fc, _ = seen['fc']
    return dict(
        conv=conv.mean((0, 2, 3)), fc=F.linear(x_fc, model.fc.weight).mean(0))


def _quantized_means(seen):
    return dict(
        conv=seen['conv'][1].mean((0, 2, 3)), fc=seen['fc'][1].mean(0))


def test_mean_outputs_match_the_float_layers_after_correction():
    model, prepared, batches = _model_and_data()
    with torch.no_grad():
        before = _inputs_and_outputs(prepared, batches)
        float_before = _float_means(model, before)
        quant_before = _quantized_means(before)
    # 3-bit rounding shifts the means (so the test can fail) ...
    for name in ('conv', 'fc'):
        gap = (quant_before[name] - float_before[name]).abs().max()
        assert gap > 1e-3, (name, gap)

    corrected = correct_biases(
        prepared, lambda: [prepared(x) for x in batches])
    assert corrected == 2
    assert prepared.get_submodule('fc').bias is not None  # given one

    with torch.no_grad():
        after = _inputs_and_outputs(prepared, batches)
        float_after = _float_means(model, after)
        quant_after = _quantized_means(after)
    # the conv's inputs are the model's (quantized input), unchanged: its
    # mean output is the float layer's exactly
    torch.testing.assert_close(quant_after['conv'], float_after['conv'],
                               rtol=0, atol=1e-5)
    # the linear layer's inputs moved with the conv's correction, measured
    # before it: closer to the float layer than before, not exact
    gap_after = (quant_after['fc'] - float_after['fc']).abs().max()
    gap_before = (quant_before['fc'] - float_before['fc']).abs().max()
    assert gap_after < 0.5 * gap_before, (gap_after, gap_before)


def test_a_model_without_quantized_layers_is_refused():
    with pytest.raises(ValueError, match='no quantized conv'):
        correct_biases(nn.Sequential(nn.ReLU()), lambda: None)
