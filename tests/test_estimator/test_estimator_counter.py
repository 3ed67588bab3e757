"""Operator-level counts against hand computations and mmengine."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mmrazor.models.task_modules import ResourceEstimator
from mmrazor.models.task_modules.estimators.counter import count_call
from mmrazor.registry import TASK_UTILS


def macs_of(fn, *args, **kwargs):
    bucket, _ = count_call(fn, *args, **kwargs)
    return bucket.macs, bucket.uncounted


def test_conv_hand_counts():
    # grouped, strided, dilated conv: out 2x16x6x6, 8/2 inputs x 3x3 each
    conv = nn.Conv2d(8, 16, 3, stride=2, padding=1, dilation=2, groups=2)
    x = torch.randn(2, 8, 13, 13)
    out_hw = (13 + 2 * 1 - 2 * (3 - 1) - 1) // 2 + 1
    assert out_hw == 6
    macs, _ = macs_of(conv, x)
    assert macs == 2 * 16 * 6 * 6 * (8 // 2) * 3 * 3
    # depthwise
    dw = nn.Conv2d(8, 8, 5, padding=2, groups=8, bias=False)
    macs, _ = macs_of(dw, torch.randn(1, 8, 10, 10))
    assert macs == 8 * 10 * 10 * 5 * 5
    # transposed: every input pixel scatters Cout/groups x k x k products
    tconv = nn.ConvTranspose2d(4, 6, 3, stride=2)
    macs, _ = macs_of(tconv, torch.randn(1, 4, 5, 5))
    assert macs == 4 * 5 * 5 * 6 * 3 * 3


def test_matrix_products_hand_counts():
    linear = nn.Linear(7, 3)
    assert macs_of(linear, torch.randn(2, 5, 7))[0] == 2 * 5 * 7 * 3
    a, b = torch.randn(2, 3, 4), torch.randn(2, 4, 5)
    assert macs_of(torch.einsum, 'bij,bjk->bik', a, b)[0] == 2 * 3 * 4 * 5
    assert macs_of(torch.matmul, a, b)[0] == 2 * 3 * 4 * 5
    assert macs_of(torch.mm, a[0], b[0])[0] == 3 * 4 * 5
    # matmul broadcasting a matrix over a batch
    assert macs_of(torch.matmul, torch.randn(6, 2, 3, 4),
                   torch.randn(4, 5))[0] == 6 * 2 * 3 * 4 * 5


def test_scaled_dot_product_attention():
    q = torch.randn(2, 4, 10, 8)
    k = torch.randn(2, 4, 12, 8)
    v = torch.randn(2, 4, 12, 6)
    macs, _ = macs_of(F.scaled_dot_product_attention, q, k, v)
    assert macs == 2 * 4 * 10 * 12 * 8 + 2 * 4 * 10 * 12 * 6


@pytest.mark.parametrize('grad', [False, True])
def test_multihead_attention_fused_and_unfused(grad):
    batch, length, dim = 2, 9, 16
    mha = nn.MultiheadAttention(dim, 4, batch_first=True).eval()
    x = torch.randn(batch, length, dim)
    expected = (batch * length * dim * 3 * dim +
                2 * batch * length * length * dim + batch * length * dim * dim)
    from mmrazor.models.task_modules.estimators.counter import OpCounter
    counter = OpCounter()
    with torch.set_grad_enabled(grad), counter:
        mha(x, x, x, need_weights=False)
    assert counter.total.macs == expected


def test_transformer_encoder_layer_fast_path():
    batch, length, dim, hidden = 2, 7, 16, 32
    layer = nn.TransformerEncoderLayer(
        dim, 2, hidden, batch_first=True).eval()
    x = torch.randn(batch, length, dim)
    expected = (batch * length * dim * 3 * dim +
                2 * batch * length * length * dim +
                batch * length * dim * dim + 2 * batch * length * dim * hidden)
    assert macs_of(layer, x)[0] == expected


def test_matches_mmengine_on_conv_linear_model():
    """On a model of convs and linears only, mmengine's (trace-based)
    counter is an independent reference for both FLOPs and params."""
    from mmengine.analysis import FlopAnalyzer, parameter_count
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 8, 3, groups=4),
        nn.Conv2d(8, 4, 1, stride=2), nn.Flatten(), nn.Linear(4 * 7 * 7, 10),
        nn.Linear(10, 5)).eval()
    inputs = torch.randn(1, 3, 16, 16)
    reference = FlopAnalyzer(model, (inputs, ))
    ours = ResourceEstimator(input_shape=(1, 3, 16, 16)).estimate(model)
    assert ours['flops'] == reference.total()
    assert ours['params'] == parameter_count(model)['']


def test_uncounted_reports_cheap_ops_only():
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.LayerNorm([4, 8, 8]), nn.GELU(),
        nn.Upsample(scale_factor=2, mode='bilinear'), nn.Flatten(),
        nn.Softmax(dim=-1))
    result = ResourceEstimator(input_shape=(1, 3, 8, 8)).estimate(model)
    assert result['flops'] == 4 * 8 * 8 * 3 * 3 * 3
    uncounted = result['uncounted']
    for name in ('aten.native_layer_norm', 'aten.gelu',
                 'aten.upsample_bilinear2d', 'aten._softmax'):
        assert uncounted.get(name) == 1, (name, uncounted)
    # data movement (views, copies) does no arithmetic and is not listed
    assert not any('view' in name for name in uncounted), uncounted


def test_by_module_breakdown_and_sub_module():
    model = nn.Sequential()
    model.add_module('stem', nn.Conv2d(3, 4, 3, padding=1, bias=False))
    model.add_module(
        'body',
        nn.Sequential(
            nn.Conv2d(4, 4, 3, padding=1, bias=False), nn.ReLU(),
            nn.Conv2d(4, 2, 1, bias=False)))
    estimator = ResourceEstimator(input_shape=(1, 3, 8, 8))
    result = estimator.estimate(model, by_module=True)
    rows = result['by_module']
    assert rows['stem']['flops'] == 64 * 4 * 27
    assert rows['body.0']['flops'] == 64 * 4 * 36
    assert rows['body']['flops'] == 64 * 4 * 36 + 64 * 2 * 4
    assert rows['']['flops'] == result['flops']
    assert rows['body']['params'] == 4 * 4 * 9 + 2 * 4
    assert rows['body']['uncounted'] == {'aten.relu': 1}
    body = estimator.estimate(model, module='body')
    assert body['flops'] == rows['body']['flops']
    assert body['params'] == rows['body']['params']
    with pytest.raises(KeyError, match="'neck'"):
        estimator.estimate(model, module='neck')


def test_registry_units_latency_and_errors():
    estimator = TASK_UTILS.build(
        dict(
            type='ResourceEstimator',
            input_shape=(1, 3, 8, 8),
            units=dict(flops='K', params='K'),
            latency_warmup=0,
            latency_runs=2))
    model = nn.Conv2d(3, 10, 3, padding=1)
    result = estimator.estimate(model, measure_latency=True)
    assert result['flops'] == pytest.approx(64 * 10 * 27 / 1e3)
    assert result['params'] == pytest.approx(280 / 1e3)
    assert result['latency'] > 0
    with pytest.raises(ValueError, match="'X'"):
        ResourceEstimator(units=dict(flops='X'))
    with pytest.raises(ValueError, match='-1'):
        ResourceEstimator(input_shape=(1, 3, -1, 8))


def test_estimate_restores_training_mode():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)).train()
    before = model[1].running_mean.clone()
    ResourceEstimator(input_shape=(2, 3, 8, 8)).estimate(model)
    assert model.training and model[1].training
    # counted in eval mode: BN statistics untouched
    assert torch.equal(model[1].running_mean, before)


def test_shared_module_counted_per_call():
    shared = nn.Linear(4, 4, bias=False)
    model = nn.Sequential(shared, nn.ReLU(), shared)
    result = ResourceEstimator(input_shape=(3, 4)).estimate(
        model, by_module=True)
    assert result['flops'] == 2 * 3 * 4 * 4
    assert result['params'] == 16
    assert result['by_module']['0']['flops'] == 2 * 3 * 4 * 4


class TinyDetector(nn.Module):
    """Shaped like an mmengine detector: ``forward(inputs, data_samples,
    mode)``, a backbone giving two feature maps, a neck taking the tuple."""

    def __init__(self):
        super().__init__()
        self.backbone = nn.ModuleList([
            nn.Conv2d(3, 4, 3, stride=2, padding=1, bias=False),
            nn.Conv2d(4, 8, 3, stride=2, padding=1, bias=False)
        ])
        self.neck = nn.ModuleList(
            [nn.Conv2d(4, 2, 1, bias=False),
             nn.Conv2d(8, 2, 1, bias=False)])

    def forward(self, inputs, data_samples=None, mode='tensor'):
        assert mode == 'tensor'
        c2 = self.backbone[0](inputs)
        c3 = self.backbone[1](c2)
        return self._neck((c2, c3))

    def _neck(self, feats):
        return tuple(conv(f) for conv, f in zip(self.neck, feats))


def test_detector_like_model_and_its_parts():
    from mmengine.model import BaseModel

    class Detector(BaseModel, TinyDetector):

        def __init__(self):
            BaseModel.__init__(self)
            TinyDetector.__init__(self)

        forward = TinyDetector.forward

    model = Detector()
    estimator = ResourceEstimator(input_shape=(1, 3, 16, 16))
    backbone = 8 * 8 * 4 * 27 + 4 * 4 * 8 * 36
    neck = 8 * 8 * 2 * 4 + 4 * 4 * 2 * 8
    assert estimator.estimate(model)['flops'] == backbone + neck
    assert estimator.estimate(model, module='backbone')['flops'] == backbone
    # the neck receives the real multi-scale features of the whole model
    assert estimator.estimate(model, module='neck')['flops'] == neck
