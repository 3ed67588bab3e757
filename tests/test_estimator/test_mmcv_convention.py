"""The MMRazor 1.x face of ResourceEstimator: FLOPs in the mmcv convention.

Expected values are written out from the convention's formulas:
conv = out_numel * Cin/groups * k*k (+ out_numel with a bias); linear =
numel(input) * out_features; norm = numel(input) (x2 when affine);
activation = numel(output); pooling = numel(input).
"""
import pytest
import torch
from torch import nn

from mmrazor.models.mutables.mutable_module.one_shot_mutable_module import \
    OneShotMutableOP
from mmrazor.models.task_modules import ResourceEstimator
from mmrazor.models.task_modules.estimators.mmcv_convention import (
    counter_names, rule_of)

SHAPE = (1, 3, 8, 8)
RAW = dict(units=None)  # raw counts, no unit


def flops(model, shape=SHAPE, **cfg):
    """mmcv-convention FLOPs of ``model`` in raw counts."""
    estimator = ResourceEstimator(input_shape=shape)
    return estimator.estimate(model, flops_params_cfg=dict(RAW, **cfg))


# ------------------------------------------------------------- single layers
def test_conv_with_and_without_bias():
    out = 8 * 8 * 8  # 8 channels, 8x8 (padding 1)
    macs = out * 3 * 3 * 3
    assert flops(nn.Conv2d(3, 8, 3, padding=1))['flops'] == macs + out
    assert flops(nn.Conv2d(3, 8, 3, padding=1, bias=False))['flops'] == macs
    # MACs stay reported as they are
    assert flops(nn.Conv2d(3, 8, 3, padding=1))['macs'] == macs


def test_depthwise_conv():
    out = 8 * 4 * 4  # stride 2
    result = flops(
        nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8), shape=(1, 8, 8, 8))
    assert result['flops'] == out * 1 * 9 + out
    assert result['params'] == 8 * 9 + 8


def test_transposed_conv():
    # 4x4 input, 2x2 kernel, stride 2: every input value meets Cout*k*k
    # weights; the bias adds one per 8x8 output value
    result = flops(nn.ConvTranspose2d(4, 6, 2, stride=2), shape=(1, 4, 4, 4))
    assert result['flops'] == 16 * 4 * 6 * 4 + 6 * 8 * 8


def test_linear_has_no_bias_term():
    assert flops(nn.Linear(16, 10), shape=(1, 16))['flops'] == 16 * 10
    # 3-d input: every input value meets out_features weights
    assert flops(nn.Linear(16, 10), shape=(1, 5, 16))['flops'] == 5 * 16 * 10


def test_batch_norm_affine_and_not():
    numel = 8 * 8 * 8
    assert flops(nn.BatchNorm2d(8), shape=(1, 8, 8, 8))['flops'] == 2 * numel
    assert flops(
        nn.BatchNorm2d(8, affine=False),
        shape=(1, 8, 8, 8))['flops'] == numel
    assert flops(nn.LayerNorm(8), shape=(1, 5, 8))['flops'] == 2 * 40
    assert flops(nn.GroupNorm(2, 8), shape=(1, 8, 4, 4))['flops'] == 2 * 128


def test_activation_and_pooling():
    numel = 8 * 8 * 8
    assert flops(nn.ReLU(), shape=(1, 8, 8, 8))['flops'] == numel
    assert flops(nn.ReLU6(), shape=(1, 8, 8, 8))['flops'] == numel
    # pooling counts its input, not its output
    assert flops(nn.MaxPool2d(2), shape=(1, 8, 8, 8))['flops'] == numel
    assert flops(nn.AdaptiveAvgPool2d(1), shape=(1, 8, 8, 8))['flops'] == \
        numel
    # upsampling counts its output
    assert flops(
        nn.Upsample(scale_factor=2),
        shape=(1, 2, 4, 4))['flops'] == 2 * 8 * 8
    # not in the convention
    assert flops(nn.Sigmoid(), shape=(1, 8, 8, 8))['flops'] == 0


def small_net():
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8 * 4 * 4, 10))


CONV = 8 * 8 * 8 * 27 + 8 * 8 * 8  # 14336
BN = 2 * 8 * 8 * 8  # 1024
RELU = 8 * 8 * 8  # 512
POOL = 8 * 8 * 8  # 512
FC = 128 * 10  # 1280
SMALL_FLOPS = CONV + BN + RELU + POOL + FC  # 17664
SMALL_PARAMS = (8 * 27 + 8) + 2 * 8 + (128 * 10 + 10)  # 1530


def test_small_sequential():
    result = flops(small_net())
    assert result['flops'] == SMALL_FLOPS == 17664
    assert result['params'] == SMALL_PARAMS == 1530


def test_default_macs_convention_unchanged():
    result = ResourceEstimator(input_shape=SHAPE).estimate(small_net())
    assert result['flops'] == result['macs'] == 8 * 8 * 8 * 27 + FC
    assert result['params'] == SMALL_PARAMS


def test_per_image_flops():
    # 1.x reported FLOPs per image; params do not depend on the batch
    result = flops(small_net(), shape=(4, 3, 8, 8))
    assert result['flops'] == SMALL_FLOPS
    assert result['params'] == SMALL_PARAMS


# ------------------------------------------------ units, strings, precision
def test_default_units_and_precision():
    estimator = ResourceEstimator(input_shape=SHAPE)
    result = estimator.estimate(small_net(), flops_params_cfg={})
    assert result['flops'] == round(17664 / 1e6, 3) == 0.018
    assert result['params'] == round(1530 / 1e6, 3) == 0.002


def test_units_precision_as_strings():
    estimator = ResourceEstimator(input_shape=SHAPE)
    cfg = dict(units=dict(flops='K', params='K'))
    result = estimator.estimate(small_net(), flops_params_cfg=cfg)
    assert result['flops'] == 17.664 and result['params'] == 1.53
    result = estimator.estimate(
        small_net(), flops_params_cfg=dict(cfg, precision=1))
    assert result['flops'] == 17.7 and result['params'] == 1.5
    result = estimator.estimate(
        small_net(), flops_params_cfg=dict(units='K', as_strings=True))
    assert result['flops'] == '17.664 K' and result['params'] == '1.53 K'


def test_constructor_face():
    # 1.x constructor: as_strings/flops_params_cfg turn the face on
    estimator = ResourceEstimator(input_shape=SHAPE, as_strings=True)
    assert estimator.estimate(small_net())['flops'] == '0.018 M'
    estimator = ResourceEstimator(
        input_shape=SHAPE, units=dict(flops='K', params='K'),
        flops_params_cfg=dict(precision=2))
    assert estimator.estimate(small_net())['flops'] == 17.66
    # per call wins over the constructor
    result = estimator.estimate(
        small_net(), flops_params_cfg=dict(units=None))
    assert result['flops'] == SMALL_FLOPS
    # the input shape of the cfg
    estimator = ResourceEstimator(
        flops_params_cfg=dict(input_shape=(1, 3, 16, 16), units=None))
    assert estimator.estimate(nn.ReLU())['flops'] == 3 * 16 * 16


def test_disabled_counters():
    net = small_net()
    assert flops(
        net, disabled_counters=['ReLUCounter'])['flops'] == SMALL_FLOPS - RELU
    assert flops(
        net, disabled_counters=['BatchNorm2dCounter',
                                'MaxPool2dCounter'])['flops'] == \
        SMALL_FLOPS - BN - POOL
    # a MAC layer leaves out its MACs too
    assert flops(
        net,
        disabled_counters=['Conv2dCounter', 'LinearCounter'])['flops'] == \
        BN + RELU + POOL


def test_bad_keys():
    estimator = ResourceEstimator(input_shape=SHAPE)
    with pytest.raises(ValueError, match="'foo'.*input_shape"):
        estimator.estimate(small_net(), flops_params_cfg=dict(foo=1))
    with pytest.raises(ValueError, match='input_constructor'):
        estimator.estimate(
            small_net(), flops_params_cfg=dict(input_constructor=dict))
    with pytest.raises(ValueError, match="'bar'.*max_iter"):
        estimator.estimate(small_net(), latency_cfg=dict(bar=1))
    with pytest.raises(ValueError, match="'foo'"):
        ResourceEstimator(flops_params_cfg=dict(foo=1))
    with pytest.raises(ValueError, match='unit'):
        estimator.estimate(small_net(), flops_params_cfg=dict(units='X'))


def test_latency_cfg():
    estimator = ResourceEstimator(input_shape=SHAPE)
    result = estimator.estimate(
        small_net(), latency_cfg=dict(max_iter=2, num_warmup=0, unit='s'))
    assert isinstance(result['latency'], float) and result['latency'] >= 0
    assert result['flops'] == result['macs']  # MAC convention kept
    result = estimator.estimate(
        small_net(),
        flops_params_cfg=dict(as_strings=True),
        latency_cfg=dict(max_iter=1, num_warmup=0))
    assert result['latency'].endswith(' ms')


def test_by_module_and_print(capsys):
    estimator = ResourceEstimator(input_shape=SHAPE)
    result = estimator.estimate(
        small_net(),
        by_module=True,
        flops_params_cfg=dict(units=None, print_per_layer_stat=True))
    table = result['by_module']
    assert table['']['flops'] == SMALL_FLOPS
    assert table['0']['flops'] == CONV and table['1']['flops'] == BN
    assert table['5']['flops'] == FC
    assert '(Sequential)' in capsys.readouterr().out
    part = estimator.estimate(
        small_net(), module='1', flops_params_cfg=dict(units=None))
    assert part['flops'] == BN and part['params'] == 16


# ----------------------------------------------------------------- supernet
class Supernet(nn.Module):
    """A stem, one searched block (3x3 + ReLU or 5x5 + ReLU6), a head."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.block = OneShotMutableOP(
            nn.ModuleDict(
                dict(
                    k3=block(3, nn.ReLU()),
                    k5=block(5, nn.ReLU6()),
                    skip=nn.Identity())))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        x = self.pool(self.block(self.stem(x)))
        return self.fc(x.flatten(1))


class Static(Supernet):
    """The subnet with ``chosen`` built by hand."""

    def __init__(self, chosen):
        super().__init__()
        self.block = self.block.candidates[chosen]


def block(kernel, act):
    return nn.Sequential(
        nn.Conv2d(8, 8, kernel, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(8), act)


def expected_subnet(kernel):
    """FLOPs and params of the subnet by hand (kernel None: identity)."""
    stem = 8 * 8 * 8 * 27 + 8 * 8 * 8
    head = 8 * 8 * 8 + 8 * 10  # pooling input + linear
    params = (8 * 27 + 8) + (8 * 10 + 10)
    if kernel is None:
        return stem + head, params
    body = 8 * 8 * 8 * 8 * kernel * kernel + 2 * 512 + 512
    return stem + body + head, params + 8 * 8 * kernel * kernel + 16


@pytest.mark.parametrize('order', [('k5', 'k3', 'skip', 'k5')])
def test_supernet_subnet_equals_static(order):
    torch.manual_seed(0)
    model = Supernet()
    estimator = ResourceEstimator(input_shape=SHAPE)
    kernels = dict(k3=3, k5=5, skip=None)
    for chosen in order:
        model.block.current_choice = chosen
        result = estimator.estimate(model, flops_params_cfg=RAW)
        static = estimator.estimate(Static(chosen), flops_params_cfg=RAW)
        assert (result['flops'], result['params']) == \
            expected_subnet(kernels[chosen])
        assert (static['flops'], static['params']) == \
            expected_subnet(kernels[chosen])
    assert estimator.explain(model).startswith('cached')


def test_dynamic_channels_follow_the_choice():
    from mmrazor.models.architectures.dynamic_ops import (DynamicBatchNorm2d,
                                                          DynamicConv2d)
    from mmrazor.models.mutables import OneShotMutableChannel
    channels = OneShotMutableChannel(16, [0.5, 1.0])
    conv = DynamicConv2d(3, 16, 3, padding=1)
    conv.register_mutable_attr('out_channels', channels)
    norm = DynamicBatchNorm2d(16)
    norm.register_mutable_attr('num_features', channels)
    model = nn.Sequential(conv, norm, nn.ReLU())
    estimator = ResourceEstimator(input_shape=SHAPE)
    for ratio in (0.5, 1.0, 0.5):
        channels.current_choice = ratio
        c = int(16 * ratio)
        out = c * 8 * 8
        # conv MACs + bias adds, affine BN (x2), ReLU
        hand = out * 27 + out + 2 * out + out
        result = estimator.estimate(model, flops_params_cfg=RAW)
        assert result['flops'] == hand
        assert result['params'] == c * 27 + c + 2 * c


# ------------------------------------------------------------- with mmcv
def test_matches_mmcv_get_model_complexity_info():
    get_info = pytest.importorskip('mmcv.cnn').get_model_complexity_info
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU6(),
        nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False),
        nn.BatchNorm2d(8, affine=False), nn.LeakyReLU(), nn.MaxPool2d(2),
        nn.ConvTranspose2d(8, 4, 2, stride=2), nn.ELU(),
        nn.Upsample(scale_factor=2), nn.AvgPool2d(2),
        nn.AdaptiveMaxPool2d(2), nn.Flatten(), nn.Linear(16, 10))
    model.eval()
    mmcv_flops, mmcv_params = get_info(
        model, (3, 8, 8), print_per_layer_stat=False, as_strings=False)
    result = flops(model)
    assert result['flops'] == mmcv_flops
    assert result['params'] == mmcv_params


# ------------------------------------------------------------------ rules
def test_rules_follow_subclasses_and_counter_names():
    from mmcv.cnn.bricks import Conv2dAdaptivePadding
    conv = Conv2dAdaptivePadding(3, 8, 3)
    assert rule_of(conv).name == 'convolution'
    assert 'Conv2dCounter' in counter_names(conv)
    assert rule_of(nn.Identity()) is None
    # same padding: 8x8 outputs, bias included
    assert flops(conv)['flops'] == 8 * 8 * 8 * 27 + 8 * 8 * 8


class TinyAttention(nn.Module):
    """Single-head self-attention: two linear layers, the products
    ``q @ k^T`` and ``attn @ v`` in its own forward."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.proj = nn.Linear(dim, dim, bias=False)

    def forward(self, x):
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        attn = (q @ k.transpose(-2, -1)).softmax(dim=-1)
        return self.proj(attn @ v)


def test_products_outside_layers_are_not_mmcv_flops():
    # 5 tokens of 4 dims: mmcv hooks the two linear layers only
    n, d = 5, 4
    layers = n * d * 3 * d + n * d * d
    products = n * n * d + n * n * d  # q @ k^T, attn @ v
    result = flops(TinyAttention(d), shape=(1, n, d))
    assert result['flops'] == layers
    # the MACs (our convention) keep the products
    assert result['macs'] == layers + products
