"""Subnets as data: export/load, published subnets, errors, static export."""
import os.path as osp

import pytest
import torch
import torch.nn as nn
import yaml

from mmrazor.models.mutables import BaseMutable, MutableFixedError
from mmrazor.models.mutators import OneShotModuleMutator
from mmrazor.registry import MODELS
from mmrazor.structures import (SubnetError, dump_subnet_yaml,
                                export_fix_subnet, load_fix_subnet,
                                load_subnet_yaml)

DATA = osp.join(osp.dirname(osp.dirname(__file__)), 'data', 'subnets')
SPOS_PAPER = osp.join(DATA, 'spos_shufflenetv2_330M_paper.yaml')
DARTS_PAPER = osp.join(DATA, 'darts_subnet_cifar_paper.yaml')

TINY_ARCH = [[32, 2], [64, 2]]
TINY = dict(
    type='SearchableShuffleNetV2', arch_setting=TINY_ARCH, last_channels=64)


# --------------------------------------------------------------------------
# A ShuffleNetV2 written by hand with plain torch layers (the reference).
def conv_bn(cin, cout, k, stride=1, groups=1, relu=True):
    layers = [
        nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout)
    ]
    if relu:
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class PlainShuffleUnit(nn.Module):

    def __init__(self, cin, cout, stride, choice):
        super().__init__()
        half = cout // 2
        self.stride = stride
        k = 3 if choice == 'shuffle_xception' else int(choice[-1])
        if stride == 2:
            self.proj = nn.Sequential(
                conv_bn(cin, cin, k, 2, groups=cin, relu=False),
                conv_bn(cin, half, 1))
        c = cin if stride == 2 else half
        if choice == 'shuffle_xception':
            self.main = nn.Sequential(
                conv_bn(c, c, 3, stride, groups=c, relu=False),
                conv_bn(c, half, 1),
                conv_bn(half, half, 3, groups=half, relu=False),
                conv_bn(half, half, 1),
                conv_bn(half, half, 3, groups=half, relu=False),
                conv_bn(half, half, 1))
        else:
            self.main = nn.Sequential(
                conv_bn(c, half, 1),
                conv_bn(half, half, k, stride, groups=half, relu=False),
                conv_bn(half, half, 1))

    def forward(self, x):
        if self.stride == 2:
            out = torch.cat([self.proj(x), self.main(x)], 1)
        else:
            c = x.shape[1] // 2
            out = torch.cat([x[:, :c], self.main(x[:, c:])], 1)
        n, c, h, w = out.shape
        # interleave the two halves channel by channel
        return torch.stack([out[:, :c // 2], out[:, c // 2:]],
                           2).reshape(n, c, h, w)


class PlainShuffleNet(nn.Module):

    def __init__(self, arch, choices, last_channels):
        super().__init__()
        self.stem = conv_bn(3, 16, 3, 2)
        blocks, cin = [], 16
        for (cout, n), stage_choices in zip(arch, choices):
            for b in range(n):
                blocks.append(
                    PlainShuffleUnit(cin, cout, 2 if b == 0 else 1,
                                     stage_choices[b]))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.last = conv_bn(cin, last_channels, 1)

    def forward(self, x):
        return self.last(self.blocks(self.stem(x)))


def randomize_bn(model):
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g))
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + .5)
            nn.init.uniform_(m.weight, 0.5, 1.5)
            nn.init.uniform_(m.bias, -0.2, 0.2)


def copy_weights(src, dst):
    src_sd, dst_sd = src.state_dict(), dst.state_dict()
    assert len(src_sd) == len(dst_sd)
    new = {}
    for (ks, vs), (kd, vd) in zip(src_sd.items(), dst_sd.items()):
        assert vs.shape == vd.shape, (ks, kd)
        new[kd] = vs
    dst.load_state_dict(new)


# --------------------------------------------------------------------------
def test_exported_subnet_equals_hand_written_model():
    torch.manual_seed(0)
    supernet = MODELS.build(TINY)
    randomize_bn(supernet)
    choices = [['shuffle_xception', 'shuffle_5x5'],
               ['shuffle_7x7', 'shuffle_3x3']]
    mutator = OneShotModuleMutator()
    mutator.prepare_from_supernet(supernet)
    mutator.set_choices({
        f'layers.{s}.{b}': choices[s][b]
        for s in range(2) for b in range(2)
    })
    subnet, static = export_fix_subnet(supernet, slice_weight=True)
    assert subnet['layers.0.0'] == {'chosen': 'shuffle_xception'}
    assert not any(isinstance(m, BaseMutable) for m in static.modules())
    assert not any(m.is_fixed for m in supernet.modules()
                   if isinstance(m, BaseMutable))  # supernet untouched
    plain = PlainShuffleNet(TINY_ARCH, choices, 64)
    copy_weights(static, plain)
    x = torch.randn(2, 3, 32, 32)
    for mode in (False, True):
        for m in (supernet, static, plain):
            m.train(mode)
        with torch.no_grad():
            ref = plain(x)
            assert torch.allclose(static(x)[0], ref, atol=1e-5)
            assert torch.allclose(supernet(x)[0], ref, atol=1e-5)
    n_static = sum(p.numel() for p in static.parameters())
    assert n_static == sum(p.numel() for p in plain.parameters())
    assert n_static < sum(p.numel() for p in supernet.parameters())


def test_yaml_round_trip_into_fresh_supernet(tmp_path):
    torch.manual_seed(0)
    supernet = MODELS.build(TINY)
    randomize_bn(supernet)
    mutator = OneShotModuleMutator()
    mutator.prepare_from_supernet(supernet)
    mutator.set_choices(mutator.sample_choices())
    subnet, _ = export_fix_subnet(supernet)
    path = tmp_path / 'sub' / 'subnet.yaml'
    dump_subnet_yaml(subnet, path)
    # export gives DumpChosen values; each reads as {'chosen': value}
    assert load_subnet_yaml(path) == subnet
    assert all(v == {'chosen': v.chosen} for v in subnet.values())
    fresh = MODELS.build(TINY)
    fresh.load_state_dict(supernet.state_dict())
    load_fix_subnet(fresh, str(path))
    _, static = export_fix_subnet(fresh, slice_weight=True)
    supernet.eval()
    static.eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(static(x)[0], supernet(x)[0], atol=1e-5)


def test_subnet_errors_name_the_offender():
    model = MODELS.build(TINY)
    good = {f'layers.{s}.{b}': {'chosen': 'shuffle_3x3'}
            for s in range(2) for b in range(2)}
    bad = dict(good, **{'layers.9.9': {'chosen': 'shuffle_3x3'}})
    with pytest.raises(SubnetError, match=r'layers\.9\.9'):
        load_fix_subnet(model, bad)
    missing = dict(good)
    del missing['layers.1.1']
    with pytest.raises(KeyError, match=r'layers\.1\.1'):
        load_fix_subnet(model, missing)
    invalid = dict(good, **{'layers.0.1': {'chosen': 'shuffle_9x9'}})
    with pytest.raises(ValueError, match=r"layers\.0\.1.*shuffle_9x9"):
        load_fix_subnet(model, invalid)
    # nothing was fixed by the failed loads
    assert not any(m.is_fixed for m in model.modules()
                   if isinstance(m, BaseMutable))
    load_fix_subnet(model, good)
    load_fix_subnet(model, good)  # same choices again: fine
    with pytest.raises(SubnetError, match='already fixed'):
        load_fix_subnet(
            model, dict(good, **{'layers.0.0': {'chosen': 'shuffle_5x5'}}))
    with pytest.raises(MutableFixedError):
        model.layers[0][0].fix_chosen('shuffle_3x3')


def build_spos_classifier():
    return MODELS.build(
        dict(
            type='ImageClassifier',
            backbone=dict(
                _scope_='mmrazor',
                type='SearchableShuffleNetV2',
                widen_factor=1.0),
            neck=dict(type='GlobalAveragePooling'),
            head=dict(
                type='LinearClsHead', num_classes=1000, in_channels=1024)))


def test_published_spos_subnet_size_and_flops():
    from mmengine.analysis import get_model_complexity_info
    model = build_spos_classifier()
    load_fix_subnet(model, SPOS_PAPER)
    assert model.backbone.layers[1][0].dump_chosen().chosen == \
        'shuffle_xception'
    assert model.backbone.layers[3][0].choices == ['shuffle_7x7']
    subnet, static = export_fix_subnet(model, slice_weight=True)
    with open(SPOS_PAPER) as f:
        assert subnet == yaml.safe_load(f)
    params = sum(p.numel() for p in static.parameters())
    assert abs(params - 3.35e6) < 0.01e6, params

    class Tensor(nn.Module):

        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, x):
            return self.model(x, mode='tensor')

    static.eval()
    info = get_model_complexity_info(
        Tensor(static), inputs=(torch.randn(1, 3, 224, 224), ),
        show_table=False, show_arch=False)
    assert abs(info['flops'] - 0.33e9) / 0.33e9 < 0.03, info['flops']


def test_other_published_shapes_load_the_same():
    with open(SPOS_PAPER) as f:
        v3 = yaml.safe_load(f)
    as_lists = {k: {'chosen': [v['chosen']]} for k, v in v3.items()}
    as_modules = {
        'modules': {k: v['chosen']
                    for k, v in v3.items()},
        'channels': None
    }
    for subnet in (as_lists, as_modules):
        model = MODELS.build(
            dict(
                type='ImageClassifier',
                backbone=dict(
                    _scope_='mmrazor',
                    type='SearchableShuffleNetV2',
                    widen_factor=0.25),
                neck=dict(type='GlobalAveragePooling'),
                head=dict(
                    type='LinearClsHead', num_classes=10,
                    in_channels=1024)))
        load_fix_subnet(model, subnet)
        assert export_fix_subnet(model)[0] == v3


def test_published_darts_subnet_loads_and_exports():
    torch.manual_seed(0)
    cfg = dict(
        type='DartsBackbone', base_channels=4, num_layers=3,
        stem_multiplier=2)
    supernet = MODELS.build(cfg)
    fixed = MODELS.build(cfg)
    fixed.load_state_dict(supernet.state_dict())
    load_fix_subnet(fixed, DARTS_PAPER)
    node = fixed.cells[0].nodes[3]  # normal cell, node 5
    assert sorted(node.candidates) == ['normal_n5_p0', 'normal_n5_p2']
    assert node.candidates['normal_n5_p2'].choices == ['dil_conv_3x3']
    # the same choices set on the searchable supernet give the same output
    for key, value in load_subnet_yaml(DARTS_PAPER).items():
        for m in supernet.modules():
            if isinstance(m, BaseMutable) and m.alias == key:
                m.current_choice = value['chosen']
    _, static = export_fix_subnet(fixed, slice_weight=True)
    x = torch.randn(2, 3, 12, 12)
    for m in (supernet, fixed, static):
        m.eval()
    with torch.no_grad():
        ref = supernet(x)[0]
        assert torch.allclose(fixed(x)[0], ref, atol=1e-6)
        assert torch.allclose(static(x)[0], ref, atol=1e-6)


def test_prefix_matches_a_wrapped_model():
    wrapper = nn.Module()
    wrapper.architecture = MODELS.build(TINY)
    good = {f'layers.{s}.{b}': {'chosen': 'shuffle_5x5'}
            for s in range(2) for b in range(2)}
    with pytest.raises(SubnetError, match='unknown'):
        load_fix_subnet(wrapper, good)
    load_fix_subnet(wrapper, good, prefix='architecture.')
    assert wrapper.architecture.layers[1][1].dump_chosen().chosen == \
        'shuffle_5x5'
    assert export_fix_subnet(wrapper, prefix='architecture.')[0] == good


def test_export_gives_dump_chosen_and_derived_entries(tmp_path):
    from mmengine.config import ConfigDict

    from mmrazor.models.mutables import DumpChosen, OneShotMutableValue

    class WithDerived(nn.Module):

        def __init__(self):
            super().__init__()
            self.source = OneShotMutableValue([2, 3, 4], default_value=3)
            self.derived = self.source * 2
            self.named = OneShotMutableValue([1, 2], alias='depth')
            self.follows_named = self.named * 3

    model = WithDerived()
    subnet, _ = export_fix_subnet(model)
    # the derived mutable of an alias-less source is written under its own
    # key (its source's dump); one of an aliased source adds nothing
    assert list(subnet) == ['source', 'depth', 'derived']
    assert subnet['derived'] == model.source.dump_chosen()
    assert isinstance(subnet['source'], DumpChosen)
    assert subnet['source'] == {'chosen': 3}
    assert subnet['source']['chosen'] == subnet['source'].chosen == 3
    # what a config holds survives mmengine's ConfigDict
    assert ConfigDict(subnet=subnet).subnet['source'] == subnet['source']
    path = tmp_path / 'subnet.yaml'
    dump_subnet_yaml(subnet, path)
    assert yaml.safe_load(path.read_text())['derived'] == {'chosen': 3}
    edited = dict(subnet, source=dict(subnet['source']._asdict(), chosen=4))
    load_fix_subnet(model, edited)  # the stale derived entry is ignored
    assert model.source.current_choice == 4
    assert model.derived.current_choice == 8 and model.derived.is_fixed
    fresh = WithDerived()
    load_fix_subnet(fresh, str(path))
    assert fresh.derived.current_choice == 6
