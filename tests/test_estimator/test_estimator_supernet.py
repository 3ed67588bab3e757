"""Supernet estimates: no deep copy, equal to the exported static model."""
import copy
import random

import pytest
import torch
from torch import nn

from mmrazor.models.architectures.dynamic_ops import (DynamicBatchNorm2d,
                                                      DynamicConv2d,
                                                      DynamicLinear)
from mmrazor.models.mutables import OneShotMutableChannel, OneShotMutableValue
from mmrazor.models.mutables.mutable_module.one_shot_mutable_module import \
    OneShotMutableOP
from mmrazor.models.task_modules import ResourceEstimator
from mmrazor.registry import MODELS
from mmrazor.structures import export_fix_subnet, load_fix_subnet
from mmrazor.utils import register_all_modules

SHAPE = (1, 3, 32, 32)


def build_spos(tiny=False, num_classes=10):
    """The SPOS classifier; ``tiny``: two short stages, for speed."""
    register_all_modules()
    backbone = dict(type='SearchableShuffleNetV2', widen_factor=1.0)
    if tiny:
        backbone.update(arch_setting=[[32, 1], [64, 2]], last_channels=128)
    return MODELS.build(
        dict(
            type='mmpretrain.ImageClassifier',
            backbone=backbone,
            neck=dict(type='mmpretrain.GlobalAveragePooling'),
            head=dict(
                type='mmpretrain.LinearClsHead',
                num_classes=num_classes,
                in_channels=128 if tiny else 1024,
                loss=dict(type='mmpretrain.CrossEntropyLoss'))))


def module_mutables(model):
    return [m for m in model.modules() if isinstance(m, OneShotMutableOP)]


def sample(model, rng):
    for m in module_mutables(model):
        m.current_choice = rng.choice(m.choices)


@pytest.fixture(scope='module')
def spos():
    torch.manual_seed(0)
    return build_spos()


def test_spos_subnets_equal_exported_static_model(spos):
    rng = random.Random(0)
    estimator = ResourceEstimator(input_shape=SHAPE)
    for _ in range(2):
        sample(spos, rng)
        ours = estimator.estimate(spos)
        _, static = export_fix_subnet(spos, slice_weight=True)
        reference = estimator.count_static(static)
        assert ours == reference
    assert estimator.explain(spos).startswith('cached')


def test_spos_subnet_matches_mmengine_counter(spos):
    """mmengine's trace-based counter on the exported model is an
    independent reference for conv + linear MACs and for params."""
    from mmengine.analysis import FlopAnalyzer, parameter_count
    sample(spos, random.Random(1))
    ours = ResourceEstimator(input_shape=SHAPE).estimate(spos)
    _, static = export_fix_subnet(spos, slice_weight=True)
    ops = FlopAnalyzer(static.eval(), (torch.randn(SHAPE), )).by_operator()
    assert ours['flops'] == ops['conv'] + ops['linear']
    assert ours['params'] == parameter_count(static)['']


def test_no_deep_copy_and_no_forward_once_prepared(spos, monkeypatch):
    estimator = ResourceEstimator(input_shape=SHAPE)
    rng = random.Random(2)
    sample(spos, rng)

    def no_copy(*args, **kwargs):
        raise AssertionError('the estimator deep-copied the model')

    monkeypatch.setattr(copy, 'deepcopy', no_copy)
    estimator.estimate(spos)
    measured = estimator.prepare(spos)
    assert measured == 20 * 3  # the 60 candidates not chosen yet
    calls = []
    handle = spos.register_forward_pre_hook(lambda *a: calls.append(1))
    try:
        flops = set()
        for _ in range(5):
            sample(spos, rng)
            flops.add(estimator.estimate(spos)['flops'])
    finally:
        handle.remove()
    assert not calls, 'the model ran although every candidate was cached'
    assert len(flops) > 1


def test_whole_space_and_fixed_subnet():
    estimator = ResourceEstimator(input_shape=SHAPE)
    space = build_spos(tiny=True)
    for m in module_mutables(space):
        m.current_choice = None  # forward_all: every candidate runs
    assert estimator.estimate(space) == estimator.count_static(space)
    sample(space, random.Random(3))
    before = estimator.estimate(space)
    subnet, _ = export_fix_subnet(space)
    load_fix_subnet(space, subnet)  # drops the other candidates
    assert estimator.estimate(space) == before


def test_named_sub_module(spos):
    sample(spos, random.Random(4))
    estimator = ResourceEstimator(input_shape=SHAPE)
    backbone = estimator.estimate(spos, module='backbone')
    _, static = export_fix_subnet(spos, slice_weight=True)
    assert backbone == estimator.count_static(static.backbone)
    table = estimator.estimate(spos, by_module=True)['by_module']
    assert table['backbone']['flops'] == backbone['flops']
    head = table['head']['flops'] + table['neck']['flops']
    assert table['']['flops'] == backbone['flops'] + head


class ShapeChangingNet(nn.Module):
    """Candidates with different output sizes: the static part after them
    cannot be cached, the estimator falls back to counting the forward."""

    def __init__(self):
        super().__init__()
        self.op = OneShotMutableOP(
            nn.ModuleDict(
                dict(
                    s1=nn.Conv2d(3, 8, 3, padding=1),
                    s2=nn.Conv2d(3, 8, 3, stride=2, padding=1))))
        self.after = nn.Conv2d(8, 8, 3, padding=1)

    def forward(self, x):
        return self.after(self.op(x))


def test_candidates_changing_shapes_fall_back_correctly():
    model = ShapeChangingNet()
    estimator = ResourceEstimator(input_shape=(1, 3, 8, 8))
    for choice, side in (('s1', 8), ('s2', 4), ('s1', 8)):
        model.op.current_choice = choice
        expected = side * side * 8 * 27 + side * side * 8 * 72
        assert estimator.estimate(model)['flops'] == expected
    assert estimator.explain(model).startswith('forward pass each time')


class DynamicNet(nn.Module):
    """Channel and kernel-size search with dynamic ops."""

    def __init__(self):
        super().__init__()
        c1 = OneShotMutableChannel(16, [0.25, 0.5, 1.0])
        c2 = OneShotMutableChannel(32, [0.5, 1.0])
        kernel = OneShotMutableValue([3, 5])
        self.conv1 = DynamicConv2d(3, 16, 3, padding=1, bias=False)
        self.conv1.register_mutable_attr('out_channels', c1)
        self.bn1 = DynamicBatchNorm2d(16)
        self.bn1.register_mutable_attr('num_features', c1)
        self.conv2 = DynamicConv2d(16, 32, 5, stride=2, padding=2)
        self.conv2.register_mutable_attr('in_channels', c1)
        self.conv2.register_mutable_attr('out_channels', c2)
        self.conv2.register_mutable_attr('kernel_size', kernel)
        self.dw = DynamicConv2d(32, 32, 3, padding=1, groups=32, bias=False)
        self.dw.register_mutable_attr('in_channels', c2)
        self.dw.register_mutable_attr('out_channels', c2)
        self.fc = DynamicLinear(32, 10)
        self.fc.register_mutable_attr('in_features', c2)
        self.choices = (c1, c2, kernel)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = self.dw(self.conv2(x))
        return self.fc(x.mean((2, 3)))


def static_copy(model):
    static = copy.deepcopy(model)
    for name in ('conv1', 'bn1', 'conv2', 'dw', 'fc'):
        setattr(static, name, getattr(static, name).to_static_op())
    return static


def test_dynamic_channels_analytic_equals_static():
    model = DynamicNet()
    estimator = ResourceEstimator(input_shape=(2, 3, 16, 16))
    c1, c2, kernel = model.choices
    calls = []
    estimator.estimate(model)  # builds the plan: one forward
    handle = model.register_forward_pre_hook(lambda *a: calls.append(1))
    for a in c1.choices:
        for b in c2.choices:
            for k in kernel.choices:
                c1.current_choice, c2.current_choice = a, b
                kernel.current_choice = k
                before = len(calls)
                ours = estimator.estimate(model)
                assert len(calls) == before, 'channel choices re-ran the model'
                reference = estimator.count_static(static_copy(model))
                assert ours == reference, (a, b, k)
                hand = 2 * (16 * 16 * a * 27 + 8 * 8 * b * a * k * k +
                            8 * 8 * b * 9) + 2 * b * 10
                assert ours['flops'] == hand
    handle.remove()
    assert 'dynamic op' in estimator.explain(model)


class DepthNet(nn.Module):
    """A searchable depth read in ``forward`` (not by a dynamic op): the
    static part follows it and is cached per choice."""

    def __init__(self):
        super().__init__()
        self.depth = OneShotMutableValue([1, 2, 3])
        self.blocks = nn.ModuleList(
            nn.Conv2d(4, 4, 3, padding=1, bias=False) for _ in range(3))

    def forward(self, x):
        for block in self.blocks[:self.depth.current_choice]:
            x = block(x)
        return x


def test_static_part_follows_free_value_mutables():
    model = DepthNet()
    estimator = ResourceEstimator(input_shape=(1, 4, 8, 8))
    for depth in (1, 3, 2, 1):
        model.depth.current_choice = depth
        assert estimator.estimate(model)['flops'] == depth * 64 * 4 * 36


# The SPOS paper's searched ShuffleNetV2 subnet as published with the older
# toolbox (SPOS_SHUFFLENETV2_330M_IN1k_PAPER): 3.35M params, "0.33G FLOPs"
# (counted by mmcv's old counter, which also counted BN/ReLU/pooling; the
# paper itself gives 319M multiply-adds).
PAPER_SUBNET = [
    'shuffle_7x7', 'shuffle_3x3', 'shuffle_7x7', 'shuffle_3x3',
    'shuffle_xception', 'shuffle_5x5', 'shuffle_5x5', 'shuffle_3x3',
    'shuffle_3x3', 'shuffle_5x5', 'shuffle_3x3', 'shuffle_5x5', 'shuffle_3x3',
    'shuffle_xception', 'shuffle_5x5', 'shuffle_7x7', 'shuffle_7x7',
    'shuffle_3x3', 'shuffle_5x5', 'shuffle_xception'
]


def test_published_spos_subnet_size():
    model = build_spos(num_classes=1000)
    keys = [f'backbone.layers.{s}.{b}'
            for s, n in enumerate([4, 4, 8, 4]) for b in range(n)]
    load_fix_subnet(model,
                    {k: {'chosen': c} for k, c in zip(keys, PAPER_SUBNET)})
    result = ResourceEstimator().estimate(model)
    assert abs(result['params'] - 3.35e6) / 3.35e6 < 0.01, result
    assert abs(result['flops'] - 319e6) / 319e6 < 0.01, result
    assert abs(result['flops'] - 330e6) / 330e6 < 0.05, result


class DynamicAttention(nn.Module):
    """Query/key width follows a channel mutable; the score product
    ``q @ k^T`` has no weight, so its size follows the channel choice."""

    def __init__(self):
        super().__init__()
        self.width = OneShotMutableChannel(16, [0.25, 0.5, 1.0])
        self.q = DynamicLinear(8, 16, bias=False)
        self.q.register_mutable_attr('out_features', self.width)
        self.k = DynamicLinear(8, 16, bias=False)
        self.k.register_mutable_attr('out_features', self.width)

    def forward(self, x):
        return self.q(x) @ self.k(x).transpose(-1, -2)


def test_activation_products_follow_channel_choices():
    model = DynamicAttention()
    estimator = ResourceEstimator(input_shape=(2, 5, 8))
    for width in (4, 16, 8, 4):
        model.width.current_choice = width
        projections = 2 * 2 * 5 * 8 * width
        scores = 2 * 5 * 5 * width
        assert estimator.estimate(model)['flops'] == projections + scores


def test_several_input_shapes_are_cached_apart():
    model = build_spos(tiny=True)
    sample(model, random.Random(5))
    estimator = ResourceEstimator()
    shapes = [(1, 3, 32, 32), (1, 3, 64, 48), (1, 3, 32, 32)]
    results = [estimator.estimate(model, input_shape=s) for s in shapes]
    assert results[0] == results[2]
    for shape, result in zip(shapes, results):
        fresh = ResourceEstimator(input_shape=shape)
        _, static = export_fix_subnet(model, slice_weight=True)
        assert result == fresh.count_static(static), shape


def test_in_place_export_is_noticed():
    model = build_spos(tiny=True)
    sample(model, random.Random(6))
    estimator = ResourceEstimator(input_shape=SHAPE)
    before = estimator.estimate(model)
    for layer in model.backbone.layers:  # replace mutables in place
        for i, mutable in enumerate(layer):
            layer[i] = mutable.candidates[mutable.current_choice]
    assert estimator.estimate(model) == before
    assert estimator.explain(model).startswith('cached: 0 module')
