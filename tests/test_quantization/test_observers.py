"""Observers under their 1.x names: scale / zero point of known tensors,
computed here by hand from the min-max, moving-average, LSQ and percentile
formulas."""
import math

import pytest
import torch
from torch.ao.quantization import observer as torch_observer

import mmrazor.models  # noqa: F401
from mmrazor.models.quantizers import observer_factory
from mmrazor.registry import MODELS


def build(observer_type, **qscheme):
    return observer_factory(dict(type=f'mmrazor.{observer_type}'), qscheme)()


def test_registered_names():
    for name in ('MinMaxObserver', 'MovingAverageMinMaxObserver',
                 'PerChannelMinMaxObserver',
                 'MovingAveragePerChannelMinMaxObserver', 'HistogramObserver'):
        assert MODELS.get(f'mmrazor.{name}') is getattr(torch_observer, name)
    for name in ('LSQObserver', 'LSQPerChannelObserver',
                 'PercentileObserver'):
        assert MODELS.get(f'mmrazor.{name}').__name__ == name


def test_min_max_affine_quint8():
    # x in [-1, 3]: scale = (3 - (-1)) / 255, zero point = round(1 / scale)
    obs = build('MinMaxObserver', qdtype='quint8', is_symmetry=False)
    obs(torch.tensor([-1.0, 0.5, 3.0, 2.0]))
    scale, zero_point = obs.calculate_qparams()
    assert scale.item() == pytest.approx(4 / 255)
    assert zero_point.item() == 64  # round(63.75)


def test_min_max_symmetric_qint8():
    x = torch.tensor([-1.0, 0.5, 3.0, 2.0])
    # full range [-128, 127]: scale = max|x| / ((127 + 128) / 2)
    obs = build('MinMaxObserver', qdtype='qint8', is_symmetry=True)
    obs(x)
    scale, zero_point = obs.calculate_qparams()
    assert scale.item() == pytest.approx(3 / 127.5)
    assert zero_point.item() == 0
    # symmetric range [-127, 127]: scale = max|x| / 127
    obs = build(
        'MinMaxObserver',
        qdtype='qint8',
        is_symmetry=True,
        is_symmetric_range=True)
    obs(x)
    scale, zero_point = obs.calculate_qparams()
    assert scale.item() == pytest.approx(3 / 127)
    assert zero_point.item() == 0


def test_min_max_symmetric_quint8():
    # unsigned symmetric: zero point at the (rounded-down) middle of [0, 255]
    obs = build('MinMaxObserver', qdtype='quint8', is_symmetry=True)
    obs(torch.tensor([-1.0, 3.0]))
    scale, zero_point = obs.calculate_qparams()
    assert scale.item() == pytest.approx(3 / 127.5)
    assert zero_point.item() == (0 + 255) // 2


def test_min_max_4bit():
    x = torch.tensor([-0.7, 0.1, 1.4])
    obs = build(
        'MinMaxObserver', qdtype='qint8', bit=4, is_symmetric_range=True)
    obs(x)
    scale, _ = obs.calculate_qparams()
    assert scale.item() == pytest.approx(1.4 / 7)  # range [-7, 7]
    obs = build('MinMaxObserver', qdtype='quint8', bit=4, is_symmetry=False)
    obs(x)
    scale, zero_point = obs.calculate_qparams()
    expected_scale = (1.4 - (-0.7)) / 15  # range [0, 15]
    assert scale.item() == pytest.approx(expected_scale)
    assert zero_point.item() == round(0.7 / expected_scale)  # = 5


def test_per_channel_min_max():
    weight = torch.tensor([[-1.0, 0.5, 0.25], [0.2, -0.1, 2.0]])
    obs = build(
        'PerChannelMinMaxObserver',
        qdtype='qint8',
        is_per_channel=True,
        is_symmetric_range=True)
    obs(weight)
    scale, zero_point = obs.calculate_qparams()
    assert torch.allclose(scale, torch.tensor([1.0 / 127, 2.0 / 127]))
    assert zero_point.tolist() == [0, 0]
    # affine quint8 per row: min clipped to <= 0, max to >= 0
    obs = build(
        'PerChannelMinMaxObserver',
        qdtype='quint8',
        is_symmetry=False,
        is_per_channel=True)
    obs(weight)
    scale, zero_point = obs.calculate_qparams()
    row_scales = [(0.5 + 1.0) / 255, (2.0 + 0.1) / 255]
    assert torch.allclose(scale, torch.tensor(row_scales))
    assert zero_point.tolist() == [
        round(1.0 / row_scales[0]),  # 170
        round(0.1 / row_scales[1])  # 12
    ]


def test_moving_average_min_max():
    c = 0.1
    obs = build(
        'MovingAverageMinMaxObserver',
        qdtype='quint8',
        is_symmetry=False,
        averaging_constant=c)
    obs(torch.tensor([-1.0, 3.0]))  # first batch initialises
    obs(torch.tensor([-2.0, 1.0]))
    expected_min = (1 - c) * -1.0 + c * -2.0
    expected_max = (1 - c) * 3.0 + c * 1.0
    assert obs.min_val.item() == pytest.approx(expected_min)
    assert obs.max_val.item() == pytest.approx(expected_max)
    scale, zero_point = obs.calculate_qparams()
    expected_scale = (expected_max - expected_min) / 255
    assert scale.item() == pytest.approx(expected_scale)
    assert zero_point.item() == round(-expected_min / expected_scale)


def test_moving_average_per_channel():
    c = 0.5
    obs = build(
        'MovingAveragePerChannelMinMaxObserver',
        qdtype='qint8',
        is_per_channel=True,
        is_symmetric_range=True,
        averaging_constant=c)
    obs(torch.tensor([[1.0, -2.0], [0.5, 0.25]]))
    obs(torch.tensor([[3.0, 0.0], [-1.0, 0.25]]))
    max_abs = [
        max(abs((1 - c) * -2.0 + c * 0.0), (1 - c) * 1.0 + c * 3.0),
        max(abs((1 - c) * 0.25 + c * -1.0), (1 - c) * 0.5 + c * 0.25),
    ]
    scale, _ = obs.calculate_qparams()
    assert torch.allclose(scale, torch.tensor(max_abs) / 127)


def test_lsq_observer():
    x = torch.tensor([-1.0, 0.5, 3.0, -2.5])
    obs = build('LSQObserver', qdtype='qint8', is_symmetric_range=True)
    obs(torch.tensor([100.0, -100.0]))  # only the latest batch counts
    obs(x)
    scale, zero_point = obs.calculate_qparams()
    mean_abs = (1.0 + 0.5 + 3.0 + 2.5) / 4
    assert scale.item() == pytest.approx(2 * mean_abs / math.sqrt(127))
    assert zero_point.item() == 0
    # unsigned activations: quant_max = 255
    obs = build('LSQObserver', qdtype='quint8')
    obs(torch.tensor([0.0, 1.0, 2.0, 5.0]))
    scale, _ = obs.calculate_qparams()
    assert scale.item() == pytest.approx(2 * 2.0 / math.sqrt(255))


def test_lsq_per_channel_observer():
    weight = torch.tensor([[[1.0, -3.0]], [[0.5, 0.5]], [[-2.0, 0.0]]])
    obs = build(
        'LSQPerChannelObserver',
        qdtype='qint8',
        bit=4,
        is_per_channel=True,
        is_symmetric_range=True)
    obs(weight)
    scale, zero_point = obs.calculate_qparams()
    means = [(1.0 + 3.0) / 2, (0.5 + 0.5) / 2, (2.0 + 0.0) / 2]
    expected = torch.tensor([2 * m / math.sqrt(7) for m in means])
    assert torch.allclose(scale, expected)
    assert zero_point.tolist() == [0, 0, 0]
    # the per-channel norm survives a state-dict round trip
    fresh = build(
        'LSQPerChannelObserver',
        qdtype='qint8',
        bit=4,
        is_per_channel=True,
        is_symmetric_range=True)
    fresh.load_state_dict(obs.state_dict())
    assert torch.allclose(fresh.calculate_qparams()[0], expected)


def test_percentile_observer():
    # n = 10, percentile 90: k = ceil(0.9 * 10) = 9 -> the 9th smallest (the
    # 2nd largest) as max, the 2nd smallest as min
    obs = observer_factory(
        dict(type='mmrazor.PercentileObserver', percentile=90),
        dict(qdtype='quint8', is_symmetry=False))()
    batch1 = torch.tensor([5.0, -4.0, 1.0, 2.0, 0.0, 3.0, 9.0, -1.0, 4.0, 6.0])
    batch2 = torch.tensor([0.5, 1.5, -2.0, 8.0, 2.5, 3.5, -6.0, 7.0, 1.0, 2.0])
    obs(batch1)  # sorted: -4, -1, 0, 1, 2, 3, 4, 5, 6, 9
    assert obs.min_val.item() == pytest.approx(-1.0)
    assert obs.max_val.item() == pytest.approx(6.0)
    obs(batch2)  # sorted: -6, -2, 0.5, 1, 1.5, 2, 2.5, 3.5, 7, 8
    assert obs.min_val.item() == pytest.approx((-1.0 + -2.0) / 2)
    assert obs.max_val.item() == pytest.approx((6.0 + 7.0) / 2)
    scale, _ = obs.calculate_qparams()
    assert scale.item() == pytest.approx((6.5 + 1.5) / 255)
    with pytest.raises(ValueError, match='percentile'):
        MODELS.get('PercentileObserver')(percentile=40)
