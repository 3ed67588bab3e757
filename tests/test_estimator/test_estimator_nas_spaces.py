"""The estimate of a weight-sharing supernet's current subnet equals the
estimate of the exported static subnet (MACs, parameters, uncounted ops and
mmcv-convention FLOPs), for the AttentiveNAS and OFA MobileNetV3 spaces of
MMRazor 1.x and a small AutoFormer, including the searched input size.

The reference is the exported static model counted with no supernet logic
(:meth:`ResourceEstimator.count_static`, ``parameters()``); the per-op
figures of the two causes of past differences are also written out by hand:

* AttentiveNAS shortcut convs (1x1, they run only while a block's active
  input and output widths differ) were left out of the supernet estimate;
* OFA kernel transformations (products of weights alone, once per forward)
  were counted as MACs of the supernet.
"""
import copy
import random
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from torch import nn

from mmrazor.models.architectures.backbones import AutoformerBackbone
from mmrazor.models.architectures.dynamic_ops import (DynamicShortcutLayer,
                                                      OFAConv2d)
from mmrazor.models.mutables import OneShotMutableValue
from mmrazor.models.mutators import NasMutator
from mmrazor.models.task_modules import ResourceEstimator
from mmrazor.models.task_modules.estimators.counter import OpCounter
from mmrazor.registry import MODELS
from mmrazor.structures import export_fix_subnet
from mmrazor.utils import register_all_modules

REF = Path('/work/shared/reference/mmrazor-1.x/configs/_base_/nas_backbones')
SPACES = dict(
    attentive=(REF / 'attentive_mobilenetv3_supernet.py', 1984),
    ofa=(REF / 'ofa_mobilenetv3_supernet.py', 1280))
SIZE = 64  # small inputs keep the tests fast
RESOLUTIONS = [[48, 48], [64, 64]]
SEEDS = [0, 1, 2]

needs_ref = pytest.mark.skipif(
    not REF.is_dir(), reason='1.x reference configs not available')


def _space_backbone(space: str) -> dict:
    cfg = Config.fromfile(str(SPACES[space][0])).nas_backbone.to_dict()
    cfg['type'] = 'mmrazor.AttentiveMobileNetV3'
    return cfg


@pytest.fixture(scope='module')
def supernets():
    """The 1.x supernet classifiers of both spaces (10 classes), with a
    searched input size; with their mutator."""
    register_all_modules(init_default_scope=False)
    torch.manual_seed(0)
    nets = {}
    for space, (_, last_channels) in SPACES.items():
        net = MODELS.build(
            dict(
                type='mmrazor.SearchableImageClassifier',
                backbone=_space_backbone(space),
                neck=dict(type='mmpretrain.GlobalAveragePooling'),
                head=dict(
                    type='mmrazor.DynamicLinearClsHead',
                    num_classes=10,
                    in_channels=last_channels,
                    loss=dict(type='mmpretrain.CrossEntropyLoss')),
                input_resizer_cfg=dict(input_sizes=RESOLUTIONS),
                connect_head=dict(
                    connect_with_backbone='backbone.last_mutable_channels'),
            )).eval()
        mutator = NasMutator()
        mutator.prepare_from_supernet(net)
        nets[space] = (net, mutator)
    return nets


def _choose(mutator: NasMutator, which) -> None:
    if which == 'max':
        mutator.set_max_choices()
    elif which == 'min':
        mutator.set_min_choices()
    else:
        random.seed(which)
        torch.manual_seed(which)
        mutator.set_choices(mutator.sample_choices())


def _static_reference(model: nn.Module, shape) -> dict:
    """MACs, params, uncounted ops and mmcv FLOPs of the exported static
    subnet, counted with a fresh estimator and no supernet logic."""
    _, static = export_fix_subnet(copy.deepcopy(model), slice_weight=True)
    static.eval()
    for module in static.modules():
        assert not hasattr(module, 'mutable_attrs'), type(module)
    est = ResourceEstimator(input_shape=shape)
    plain = est.count_static(static)
    mmcv = est.estimate(static, flops_params_cfg=dict(units=None))
    return dict(
        macs=plain['macs'],
        params=sum(p.numel() for p in static.parameters()),
        uncounted=plain['uncounted'],
        mmcv_flops=mmcv['flops'])


def _supernet_estimate(est: ResourceEstimator, model: nn.Module) -> dict:
    result = est.estimate(model)
    mmcv = est.estimate(model, flops_params_cfg=dict(units=None))
    return dict(
        macs=result['macs'],
        params=result['params'],
        uncounted=result['uncounted'],
        mmcv_flops=mmcv['flops'])


@needs_ref
@pytest.mark.parametrize('space', list(SPACES))
def test_mobilenet_v3_spaces_match_static(supernets, space):
    net, mutator = supernets[space]
    shape = (1, 3, SIZE, SIZE)
    est = ResourceEstimator(input_shape=shape)  # reused: its caches too
    seen_sizes = set()
    for which in ['max', 'min'] + SEEDS:
        _choose(mutator, which)
        seen_sizes.add(tuple(net.input_resizer.active_shape))
        got = _supernet_estimate(est, net)
        assert got == _static_reference(net, shape), (space, which)
        # the cached (fast) path was used, not a forward pass each time
        assert est.explain(net).startswith('cached'), est.explain(net)
    assert len(seen_sizes) > 1  # several resolutions were estimated


@needs_ref
@pytest.mark.parametrize('space', list(SPACES))
def test_each_resolution_matches_static(supernets, space):
    net, mutator = supernets[space]
    shape = (1, 3, SIZE, SIZE)
    est = ResourceEstimator(input_shape=shape)
    _choose(mutator, 7)
    shape_mutable = net.input_resizer.get_mutable_attr('shape')
    macs = []
    for size in RESOLUTIONS:
        shape_mutable.current_choice = size
        got = _supernet_estimate(est, net)
        assert got == _static_reference(net, shape), size
        macs.append(got['macs'])
    assert macs == sorted(macs) and macs[0] < macs[-1]


@needs_ref
def test_attentive_shortcut_convs_are_counted(supernets):
    """A random subnet whose shortcut convs run: their MACs and params,
    written out by hand, are part of the supernet estimate."""
    net, mutator = supernets['attentive']
    _choose(mutator, 0)
    shortcuts = {
        name: m
        for name, m in net.named_modules()
        if isinstance(m, DynamicShortcutLayer)
    }
    inputs = {}

    def record(name):

        def hook(module, args, output):
            inputs[name] = (args[0].shape, output.shape)

        return hook

    handles = [m.register_forward_hook(record(n)) for n, m in
               shortcuts.items()]
    with torch.no_grad():
        net(torch.randn(1, 3, SIZE, SIZE), mode='tensor')
    for handle in handles:
        handle.remove()
    by_module = ResourceEstimator(input_shape=(1, 3, SIZE, SIZE)).estimate(
        net, by_module=True)['by_module']
    running = 0
    for name, (in_shape, out_shape) in inputs.items():
        cin, cout = in_shape[1], out_shape[1]
        expected_macs = cin * cout * out_shape[2] * out_shape[3] \
            if cin != cout else 0
        assert by_module[name]['flops'] == expected_macs, name
        assert by_module[name]['params'] == (cin * cout if cin != cout
                                             else 0), name
        running += cin != cout
    assert running > 0  # the subnet has shortcut convs that run


def test_ofa_kernel_transform_is_not_counted():
    """An OFA conv at a transformed kernel size costs what the plain conv
    of that size costs: ``N * H * W * Cout * Cin / groups * k * k``."""
    conv = OFAConv2d(8, 8, 7, padding=3, groups=8, bias=False)
    kernel = OneShotMutableValue([3, 5, 7])
    conv.register_mutable_attr('kernel_size', kernel)
    for k in (3, 5, 7):
        kernel.current_choice = k
        # a fresh estimator: its first forward pass sees this kernel size
        est = ResourceEstimator(input_shape=(2, 8, 10, 10))
        expected = 2 * 10 * 10 * 8 * 1 * k * k
        assert est.estimate(conv)['macs'] == expected, k
        assert est.count_static(conv.to_static_op())['macs'] == expected
        assert est.estimate(conv)['params'] == 8 * k * k


def test_weight_only_products_are_not_counted():
    weight = nn.Parameter(torch.randn(6, 6))
    transform = nn.Parameter(torch.randn(6, 6))
    x = torch.randn(3, 6)
    counter = OpCounter()
    with torch.no_grad(), counter:
        w = (weight @ transform).t().contiguous() * 2  # weights alone
        w = w[:, :4]
        y = x @ w  # the input: counted
        x @ x.t()  # activations alone: counted
    assert counter.total.macs == 3 * 6 * 4 + 3 * 6 * 3
    assert 'aten.mul' not in counter.total.uncounted
    assert y.shape == (3, 4)


# ------------------------------------------------------------ AutoFormer
SMALL = dict(
    mlp_ratios=[2.0, 3.0], num_heads=[2, 3], depth=[2, 3], embed_dims=[32,
                                                                        48])


class _Classifier(nn.Module):

    def __init__(self, backbone: nn.Module, width: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(width, 10)

    def forward(self, x):
        feat = self.backbone(x)[0]
        return self.head(nn.functional.pad(
            feat, (0, self.head.in_features - feat.shape[-1])))


def test_small_autoformer_matches_static():
    torch.manual_seed(0)
    backbone = AutoformerBackbone(
        SMALL, img_size=32, patch_size=8, max_relative_position=2)
    net = _Classifier(backbone, 48).eval()
    mutator = NasMutator()
    mutator.prepare_from_supernet(net)
    shape = (1, 3, 32, 32)
    est = ResourceEstimator(input_shape=shape)
    for which in ['max', 'min'] + SEEDS:
        _choose(mutator, which)
        got = _supernet_estimate(est, net)
        assert got == _static_reference(net, shape), which


def test_autoformer_candidates_run_no_forward_pass():
    """Attention is costed from its searched heads and widths: after the
    first estimate, candidates need no forward pass, and the
    attention MACs are those written out by hand."""
    torch.manual_seed(0)
    backbone = AutoformerBackbone(
        SMALL, img_size=32, patch_size=8, max_relative_position=2)
    net = _Classifier(backbone, 48).eval()
    mutator = NasMutator()
    mutator.prepare_from_supernet(net)
    est = ResourceEstimator(input_shape=(1, 3, 32, 32))
    _choose(mutator, 'max')
    est.estimate(net)
    assert est.explain(net).startswith('cached'), est.explain(net)
    # plans (traced once each) are keyed on the depths and the embedding
    # width, never on the heads or MLP widths
    plans = len(est._structure(net)[0]['plans'])
    assert plans <= 4
    calls = []
    handle = net.register_forward_pre_hook(lambda *args: calls.append(1))
    try:
        results = {}
        for seed in SEEDS:
            _choose(mutator, seed)
            results[seed] = est.estimate(net)
    finally:
        handle.remove()
    assert not calls
    assert len(est._structure(net)[0]['plans']) == plans
    for seed in SEEDS:
        _choose(mutator, seed)
        ref = _static_reference(net, (1, 3, 32, 32))
        got = results[seed]
        assert (got['macs'], got['params'], got['uncounted']) == (
            ref['macs'], ref['params'], ref['uncounted']), seed

    # one attention layer, by hand: 17 tokens (16 patches + class token)
    attn = next(m for m in net.modules()
                if type(m).__name__ == 'DynamicMultiheadAttention')
    tokens, embed = 17, attn.active_embed_dims
    width = attn.active_num_heads * attn.head_dims
    by_hand = 4 * tokens * embed * width + 4 * tokens * tokens * width
    static = attn.to_static_op().eval()
    counted = ResourceEstimator(input_shape=(1, tokens, embed)).estimate(
        static)['macs']
    assert counted == by_hand


@needs_ref
@pytest.mark.parametrize('space', list(SPACES))
def test_random_candidates_run_no_forward_pass(supernets, space):
    """After the first estimate (which traces each searched resolution at
    the largest depths), random candidates of any depth and resolution are
    estimated without a forward pass, and equal their exported subnet."""
    net, mutator = supernets[space]
    shape = (1, 3, SIZE, SIZE)
    est = ResourceEstimator(input_shape=shape)
    _choose(mutator, 'max')
    est.estimate(net)
    plans = len(est._structure(net)[0]['plans'])
    assert plans == len(RESOLUTIONS)
    calls = []
    handle = net.register_forward_pre_hook(lambda *args: calls.append(1))
    seeds = range(10, 16)
    try:
        results = {}
        for seed in seeds:
            _choose(mutator, seed)
            results[seed] = est.estimate(net)
    finally:
        handle.remove()
    assert not calls
    assert len(est._structure(net)[0]['plans']) == plans
    depths = set()
    for seed in seeds:
        _choose(mutator, seed)
        depths.add(tuple(m.active_depth for m in net.modules()
                         if hasattr(m, 'active_depth')))
        ref = _static_reference(net, shape)
        got = results[seed]
        assert (got['macs'], got['params'], got['uncounted']) == (
            ref['macs'], ref['params'], ref['uncounted']), seed
    assert len(depths) > 1  # several depths were estimated
