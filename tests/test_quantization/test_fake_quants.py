"""Fake-quants: forward and LSQ gradients against the formulas written out
here element by element (Esser et al., ICLR 2020)."""
import math

import pytest
import torch
from torch.ao.quantization import FakeQuantize

import mmrazor.models  # noqa: F401
from mmrazor.models.quantizers import fake_quant_factory
from mmrazor.registry import MODELS


def round_half_even(v):
    return float(round(v))  # Python rounds half to even, like torch


def fake_quant_by_hand(values, scale, zero_point, qmin, qmax):
    out = []
    for v in values:
        q = min(max(round_half_even(v / scale) + zero_point, qmin), qmax)
        out.append((q - zero_point) * scale)
    return torch.tensor(out)


def lsq(qscheme, observer='LSQObserver', **fake_quant_kwargs):
    return fake_quant_factory(
        dict(type='mmrazor.LearnableFakeQuantize', **fake_quant_kwargs),
        dict(type=f'mmrazor.{observer}'), qscheme)()


def test_registered_names():
    assert MODELS.get('mmrazor.FakeQuantize') is FakeQuantize
    assert MODELS.get('mmrazor.LearnableFakeQuantize') is MODELS.get(
        'mmrazor.LSQFakeQuantize')


def test_fake_quantize_affine_quint8():
    fake_quant = fake_quant_factory(
        dict(type='mmrazor.FakeQuantize'),
        dict(type='mmrazor.MinMaxObserver'),
        dict(qdtype='quint8', is_symmetry=False))()
    x = torch.tensor([-1.0, 0.013, 0.3, 1.234, 3.0])
    out = fake_quant(x)
    # x in [-1, 3]: scale 4 / 255, zero point round(1 / scale) = 64
    expected = fake_quant_by_hand(x.tolist(), 4 / 255, 64, 0, 255)
    assert torch.allclose(out, expected, atol=1e-6)


def test_fake_quantize_4bit_signed_symmetric_range():
    fake_quant = fake_quant_factory(
        dict(type='mmrazor.FakeQuantize'),
        dict(type='mmrazor.MinMaxObserver'),
        dict(qdtype='qint8', bit=4, is_symmetric_range=True))()
    fake_quant(torch.tensor([-0.7, 1.4]))  # scale = 1.4 / 7 = 0.2
    fake_quant.disable_observer()
    x = torch.tensor([-2.0, -0.33, 0.05, 0.29, 1.3, 5.0])
    expected = fake_quant_by_hand(x.tolist(), 0.2, 0, -7, 7)
    assert torch.allclose(fake_quant(x), expected, atol=1e-6)
    assert expected[0].item() == pytest.approx(-1.4)  # clamped at -7 * s


def test_lsq_forward_initialises_scale():
    fake_quant = lsq(dict(qdtype='qint8', is_symmetric_range=True))
    x = torch.tensor([-1.0, 0.5, 3.0, -2.5])
    out = fake_quant(x)
    scale = 2 * ((1.0 + 0.5 + 3.0 + 2.5) / 4) / math.sqrt(127)
    assert fake_quant.scale.item() == pytest.approx(scale)
    expected = fake_quant_by_hand(x.tolist(), scale, 0, -127, 127)
    assert torch.allclose(out, expected, atol=1e-6)


def lsq_scale_grad_by_hand(values, scale, zero_point, qmin, qmax):
    """Sum over elements of d x_hat / d s (upstream gradient 1)."""
    total = 0.0
    for x in values:
        v = x / scale
        q = round_half_even(v) + zero_point
        if q < qmin:
            total += qmin - zero_point
        elif q > qmax:
            total += qmax - zero_point
        else:
            total += round_half_even(v) - v
    return total


def test_lsq_gradients_per_tensor():
    fake_quant = lsq(dict(qdtype='qint8', bit=4, is_symmetric_range=True))
    fake_quant.disable_observer()
    scale = 0.25
    fake_quant.scale.data.fill_(scale)
    values = [-3.0, -1.1, -0.3, 0.05, 0.4, 0.9, 1.7, 2.5]  # range +-1.75
    x = torch.tensor(values, requires_grad=True)
    out = fake_quant(x)
    assert torch.allclose(
        out, fake_quant_by_hand(values, scale, 0, -7, 7), atol=1e-6)
    out.sum().backward()
    # straight-through inside [-7 s, 7 s], zero outside
    inside = [1.0 if -7 <= round_half_even(v / scale) <= 7 else 0.0
              for v in values]
    assert x.grad.tolist() == inside
    g = 1 / math.sqrt(len(values) * 7)
    expected = g * lsq_scale_grad_by_hand(values, scale, 0, -7, 7)
    assert fake_quant.scale.grad.item() == pytest.approx(expected, abs=1e-6)
    # without gradient scaling, g = 1
    fake_quant = lsq(
        dict(qdtype='qint8', bit=4, is_symmetric_range=True),
        use_grad_scaling=False)
    fake_quant.disable_observer()
    fake_quant.scale.data.fill_(scale)
    fake_quant(torch.tensor(values)).sum().backward()
    assert fake_quant.scale.grad.item() == pytest.approx(
        lsq_scale_grad_by_hand(values, scale, 0, -7, 7), abs=1e-6)


def test_lsq_gradients_affine_zero_point():
    fake_quant = lsq(
        dict(qdtype='quint8', bit=4, is_symmetry=False),
        observer='MinMaxObserver',
        zero_point_trainable=True)
    fake_quant.disable_observer()
    scale, zero_point = 0.5, 3.0
    fake_quant.scale.data.fill_(scale)
    fake_quant.zero_point.data.fill_(zero_point)
    values = [-2.2, -0.7, 0.1, 1.3, 4.4, 6.4, 9.0]  # range [-1.5, 6]
    x = torch.tensor(values, requires_grad=True)
    out = fake_quant(x)
    assert torch.allclose(
        out, fake_quant_by_hand(values, scale, zero_point, 0, 15), atol=1e-6)
    out.sum().backward()
    g = 1 / math.sqrt(len(values) * 15)
    assert fake_quant.scale.grad.item() == pytest.approx(
        g * lsq_scale_grad_by_hand(values, scale, zero_point, 0, 15),
        abs=1e-6)
    # d x_hat / d z: 0 inside, -s where clamped
    clamped = sum(1 for v in values
                  if not 0 <= round_half_even(v / scale) + zero_point <= 15)
    assert fake_quant.zero_point.grad.item() == pytest.approx(
        g * -scale * clamped, abs=1e-6)


def test_lsq_gradients_per_channel():
    fake_quant = lsq(
        dict(qdtype='qint8', bit=4, is_symmetric_range=True),
        observer='LSQPerChannelObserver')
    weight = torch.tensor([[1.0, -3.0, 0.2], [0.5, 0.5, -0.1]])
    fake_quant(weight)  # initialises one scale per row
    means = [(1.0 + 3.0 + 0.2) / 3, (0.5 + 0.5 + 0.1) / 3]
    init = [2 * m / math.sqrt(7) for m in means]
    assert torch.allclose(fake_quant.scale.data, torch.tensor(init))
    fake_quant.disable_observer()
    scales = [0.3, 0.05]
    fake_quant.scale.data.copy_(torch.tensor(scales))
    x = weight.clone().requires_grad_(True)
    out = fake_quant(x)
    expected = torch.stack([
        fake_quant_by_hand(row, s, 0, -7, 7)
        for row, s in zip(weight.tolist(), scales)
    ])
    assert torch.allclose(out, expected, atol=1e-6)
    out.sum().backward()
    g = 1 / math.sqrt(weight.numel() * 7)
    expected_grad = [
        g * lsq_scale_grad_by_hand(row, s, 0, -7, 7)
        for row, s in zip(weight.tolist(), scales)
    ]
    assert torch.allclose(
        fake_quant.scale.grad, torch.tensor(expected_grad), atol=1e-6)
    # per-channel parameters load into a fresh (length-1) module
    fresh = lsq(
        dict(qdtype='qint8', bit=4, is_symmetric_range=True),
        observer='LSQPerChannelObserver')
    fresh.load_state_dict(fake_quant.state_dict())
    assert fresh.scale.tolist() == pytest.approx(scales)


def test_lsq_symmetric_grid_is_centred_on_zero():
    """Symmetric quint8: zero point at the middle level (127, as torch's
    observers put it), so negative inputs keep their sign; qint8: 0."""
    fake_quant = lsq(dict(qdtype='quint8', is_symmetry=True))
    fake_quant.disable_observer()
    fake_quant.scale.data.fill_(0.1)
    x = torch.tensor([-0.5, 0.26, 30.0])
    # grid (q - 127) * 0.1, q in [0, 255]: -0.5, 0.3, 12.8
    expected = fake_quant_by_hand(x.tolist(), 0.1, 127, 0, 255)
    assert torch.allclose(fake_quant(x), expected, atol=1e-6)
    assert torch.allclose(fake_quant(x), torch.tensor([-0.5, 0.3, 12.8]))
    assert fake_quant.calculate_qparams()[1].item() == 127
    signed = lsq(dict(qdtype='qint8', is_symmetry=True))
    signed.disable_observer()
    signed.scale.data.fill_(0.1)
    assert torch.allclose(signed(x), torch.tensor([-0.5, 0.3, 12.7]))
    assert signed.calculate_qparams()[1].item() == 0


def test_lsq_bad_arguments():
    with pytest.raises(ValueError, match='zero_point_trainable'):
        lsq(dict(qdtype='qint8'), zero_point_trainable=True)
    cls = MODELS.get('LearnableFakeQuantize')
    observer = MODELS.get('LSQObserver')
    with pytest.raises(ValueError, match='quant_min=5, quant_max=5'):
        cls(observer, quant_min=5, quant_max=5)
    with pytest.raises(ValueError, match='scale'):
        cls(observer, scale=0.0)
