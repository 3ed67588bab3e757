"""StructurePruner / RatioPruner on hand-built models."""
import copy
import random

import numpy as np
import pytest
import torch
from torch import nn

from mmrazor.models.pruners import (RatioPruner, StructurePruner,
                                    SwitchableBatchNorm2d, dump_channel_cfg,
                                    load_channel_cfg, stale_attributes)
from mmrazor.registry import MODELS
from mmrazor.structures import SubnetError
from .toy_models import (BlockedNet, SharedHeadNet, ShuffleLNNet, ToyNet,
                         n_params, randomize_norms)

SHAPE = (1, 3, 16, 16)


def _deploy_equals_masked(model, pruner, subnet, shape=SHAPE):
    pruner.set_subnet(subnet)
    model.eval()
    x = torch.randn(2, *shape[1:])
    with torch.no_grad():
        masked = model(x)
    cfg = pruner.export_subnet()
    pruner.deploy_subnet(model, cfg)
    with torch.no_grad():
        deployed = model(x)
    torch.testing.assert_close(deployed, masked, atol=1e-4, rtol=1e-4)
    assert stale_attributes(model) == []
    assert all(not m._forward_hooks and not m._forward_pre_hooks
               for m in model.modules())
    return cfg


def test_toy_param_count_by_hand():
    torch.manual_seed(0)
    model = ToyNet()
    randomize_norms(model)
    pruner = StructurePruner(except_start_keys=[])
    pruner.prepare_from_supernet(model, input_shape=SHAPE)
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        dense = model.eval()(x)
    subnet = dict(conv1=4, conv3=6, se1=2, conv5=3, fc1=4)
    _deploy_equals_masked(model, pruner, subnet)
    with torch.no_grad():
        assert not torch.allclose(model(x), dense)
    # conv3 group keeps its first 6 units: all 4 of conv3, 2 of conv4.
    expected = (
        (3 * 4 * 9 + 4) + 2 * 4 +  # conv1, bn1
        (4 * 4 * 9 + 4) + 2 * 4 +  # conv2, bn2
        (4 * 4 + 4) + (4 * 2 + 2) +  # conv3, conv4
        (6 * 9 + 6) +  # depthwise
        (6 * 2 + 2) + (2 * 6 + 6) +  # se1, se2
        (6 * 3 + 3) +  # conv5
        (3 * 16 * 4 + 4) + (4 * 2 + 2))  # fc1 (flatten), fc2
    assert n_params(model) == expected
    assert model.dw.groups == 6 and model.fc1.in_features == 48
    assert type(model.dw) is nn.Conv2d


@pytest.mark.parametrize('net', [SharedHeadNet, ShuffleLNNet, ToyNet])
def test_random_subnets_deploy(net):
    random.seed(3)
    torch.manual_seed(3)
    model = net()
    randomize_norms(model)
    before = n_params(model)
    pruner = StructurePruner(except_start_keys=[])
    pruner.prepare_from_supernet(model, input_shape=SHAPE)
    subnet = {k: max(1, v - 1) if v > 1 else v
              for k, v in pruner.sample_subnet().items()}
    _deploy_equals_masked(model, pruner, subnet)
    assert n_params(model) < before


def test_cfg_roundtrip_on_fresh_model(tmp_path):
    torch.manual_seed(0)
    model = ToyNet()
    randomize_norms(model)
    fresh = copy.deepcopy(model)
    pruner = StructurePruner(except_start_keys=[])
    pruner.prepare_from_supernet(model, input_shape=SHAPE)
    # a non-leading mask survives export
    pruner.set_subnet(dict(conv1=[True, False] * 4, fc1=5))
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        masked = model.eval()(x)
    path = str(tmp_path / 'cfg.yaml')
    dump_channel_cfg(pruner.export_subnet(), path)
    cfg = load_channel_cfg(path)
    assert cfg['conv1']['kept_units'] == [0, 2, 4, 6]
    assert cfg['fc1'] == dict(
        in_channels=80, out_channels=5, raw_in_channels=80,
        raw_out_channels=7)
    other = StructurePruner(except_start_keys=[], input_shape=SHAPE)
    other.deploy_subnet(fresh, cfg)
    with torch.no_grad():
        torch.testing.assert_close(fresh.eval()(x), masked)
    # a config that disagrees with the groups names the layer
    bad = copy.deepcopy(cfg)
    bad['conv2']['out_channels'] = 3
    p3 = StructurePruner(except_start_keys=[], input_shape=SHAPE)
    p3.prepare_from_supernet(ToyNet())
    with pytest.raises(SubnetError, match='conv2'):
        p3.set_subnet(bad)
    with pytest.raises(SubnetError, match='ghost'):
        p3.set_subnet({'ghost': {'out_channels': 3}})


def test_guard_rails():
    random.seed(0)
    model = ToyNet()
    pruner = StructurePruner(
        except_start_keys=['fc1'],
        min_ratio=0.5,
        round_to=2,
        group_cfgs={'se1': dict(min_ratio=1.0)})
    pruner.prepare_from_supernet(model, input_shape=SHAPE)
    assert 'fc1' not in pruner.channel_groups
    assert pruner.choices_of('conv1') == [4, 6, 8]
    assert pruner.choices_of('conv3') == [6, 8, 10]
    assert pruner.choices_of('conv5') == [4, 5]  # 5 is the full width
    assert pruner.choices_of('se1') == [3]
    for _ in range(20):
        for name, k in pruner.sample_subnet().items():
            assert k in pruner.choices_of(name)
    with pytest.raises(SubnetError, match='conv1'):
        pruner.set_subnet({'conv1': 3})
    with pytest.raises(SubnetError, match='excluded'):
        pruner.set_subnet({'fc1': 3})
    with pytest.raises(SubnetError, match='unknown channel group'):
        pruner.set_subnet({'nope': 3})
    pruner.set_min_channel()
    assert pruner.current_subnet() == dict(conv1=4, conv3=6, se1=3, conv5=4)
    pruner.set_max_channel()
    assert pruner.current_subnet() == dict(conv1=8, conv3=10, se1=3, conv5=5)
    with pytest.raises(ValueError, match='round_to'):
        StructurePruner(round_to=0)
    with pytest.raises(KeyError, match='min_ratoi'):
        StructurePruner(group_cfgs={'x': dict(min_ratoi=0.5)})


def test_channel_bins():
    pruner = StructurePruner(except_start_keys=[])
    pruner.prepare_from_supernet(ToyNet(), input_shape=SHAPE)
    bins = pruner.get_max_channel_bins(4)
    assert set(bins) == set(pruner.channel_groups)
    assert all(b.tolist() == [1, 1, 1, 1] for b in bins.values())
    bins['conv1'][-2:] = 0
    bins['conv3'] = 1
    pruner.set_channel_bins(bins, 4)
    sub = pruner.current_subnet()
    assert sub['conv1'] == 4 and sub['conv3'] == 3 and sub['fc1'] == 7


def test_ratio_pruner_switchable_bn():
    random.seed(0)
    torch.manual_seed(0)
    model = ToyNet()
    randomize_norms(model)
    pruner = MODELS.build(
        dict(type='RatioPruner', ratios=[0.5, 1.0], except_start_keys=[]))
    assert isinstance(pruner, RatioPruner)
    pruner.prepare_from_supernet(model, input_shape=SHAPE)
    for _ in range(5):
        for name, k in pruner.sample_subnet().items():
            n = pruner.channel_groups[name].num_units
            assert k in (max(1, round(0.5 * n)), n)
    pruner.set_min_channel()
    narrow = pruner.export_subnet()
    pruner.set_max_channel()
    wide = pruner.export_subnet()
    assert narrow['conv1']['out_channels'] == 4
    pruner.convert_switchable_bn(model, 2)
    assert isinstance(model.bn1, SwitchableBatchNorm2d)
    # private statistics per subnet
    model.bn1.bns[1].running_mean.add_(0.3)
    x = torch.randn(2, 3, 16, 16)
    model.eval()
    pruner.switch_subnet(narrow, 0)
    with torch.no_grad():
        out0 = model(x)
    pruner.switch_subnet(narrow, 1)
    with torch.no_grad():
        out1 = model(x)
    assert not torch.allclose(out0, out1)
    pruner.switch_subnet(wide, 0)
    pruner.switch_subnet(narrow, 1)
    pruner.deploy_subnet(model)
    assert type(model.bn1) is nn.BatchNorm2d
    with torch.no_grad():
        torch.testing.assert_close(model(x), out1)
    assert not any(type(m).__module__.startswith('mmrazor')
                   for m in model.modules())


def test_architecture_wrapper_names():

    class Wrapper(nn.Module):

        def __init__(self):
            super().__init__()
            self.model = nn.Module()
            self.model.backbone = BlockedNet()

        def forward_dummy(self, img):
            return self.model.backbone(img)

    wrapper = Wrapper()
    pruner = StructurePruner(except_start_keys=['backbone.conv2'])
    pruner.prepare_from_supernet(wrapper, input_shape=SHAPE)
    dep = pruner.dependency
    assert set(dep.groups) == {
        'backbone.conv1', 'backbone.conv2', 'backbone.conv3'
    }
    assert dep.groups['backbone.conv2'].excluded_by
    assert not pruner.channel_groups
    with pytest.raises(SubnetError, match='softmax'):
        pruner.set_subnet({'backbone.conv1': 2})


def test_deployed_pruner_refuses_more():
    model = ToyNet()
    pruner = StructurePruner(except_start_keys=[])
    pruner.prepare_from_supernet(model, input_shape=SHAPE)
    pruner.deploy_subnet(model, {'conv1': 4})
    with pytest.raises(RuntimeError, match='deployed'):
        pruner.set_subnet({'conv1': 2})
    assert np.isclose(model.conv1.weight.shape[0], 4)


@pytest.mark.parametrize('net', [ToyNet, ShuffleLNNet, SharedHeadNet])
def test_estimate_subnet_matches_deployed(net):
    from mmrazor.models.task_modules import ResourceEstimator
    random.seed(5)
    model = net().eval()
    pruner = StructurePruner(except_start_keys=[])
    pruner.prepare_from_supernet(model, input_shape=SHAPE)
    pruner.set_subnet(pruner.sample_subnet())
    estimate = pruner.estimate_subnet()
    pruner.deploy_subnet(model)
    real = ResourceEstimator(input_shape=SHAPE).estimate(model)
    assert estimate == dict(flops=real['flops'], params=n_params(model))


@pytest.mark.parametrize('inferred', ['groups', 'width'])
def test_channel_shuffle_spellings(inferred):
    """``view(b, g, -1, h, w)`` and ``view(b, -1, g, h, w)``: the inferred
    factor follows the width, the other one is structure."""

    class Net(nn.Module):

        def __init__(self):
            super().__init__()
            self.a = nn.Conv2d(3, 8, 1)
            self.b = nn.Conv2d(8, 3, 1)

        def forward(self, x):
            x = self.a(x)
            n, c, h, w = x.shape
            if inferred == 'width':
                x = x.view(n, 2, -1, h, w).transpose(1, 2)
            else:  # (c // 2, 2) with the group count inferred: groups of 2
                x = x.view(n, -1, 2, h, w).transpose(1, 2)
            return self.b(x.reshape(n, c, h, w))

    random.seed(0)
    torch.manual_seed(0)
    model = Net().eval()
    pruner = StructurePruner(except_start_keys=[])
    pruner.prepare_from_supernet(model, input_shape=SHAPE)
    assert pruner.channel_groups['a'].num_units == 4
    _deploy_equals_masked(model, pruner, {'a': 3})
    assert model.a.out_channels == 6


def test_pruner_is_a_channel_mutator_over_the_analysis_groups(tmp_path):
    from mmrazor.models.mutables import MutableChannelUnit
    from mmrazor.models.mutators import BaseMutator, ChannelMutator
    torch.manual_seed(0)
    model = ToyNet()
    randomize_norms(model)
    pruner = StructurePruner(except_start_keys=[])
    pruner.prepare_from_supernet(model, input_shape=SHAPE)
    assert isinstance(pruner, ChannelMutator)
    assert isinstance(pruner, BaseMutator)
    # One mutable per prunable group of the analysis, with its choices.
    groups = pruner.channel_groups
    assert list(pruner.search_groups) == list(groups)
    for name, unit in pruner.units.items():
        assert isinstance(unit, MutableChannelUnit)
        assert unit.num_units == groups[name].num_units
        assert unit.choices == pruner.choices_of(name)

    # A unit set directly (not through the pruner) masks the model before
    # its next forward: the masked output is the deployed subnet's.
    name, unit = next(iter(pruner.units.items()))
    unit.current_choice = unit.choices[0]
    model.eval()
    x = torch.randn(2, *SHAPE[1:])
    with torch.no_grad():
        masked = model(x)
    reference = ToyNet()  # same weights, no masking hooks
    reference.load_state_dict(model.state_dict())
    reference.eval()
    subnet = pruner.current_subnet()
    assert subnet[name] == unit.choices[0]
    fresh = StructurePruner(except_start_keys=[])
    fresh.prepare_from_supernet(reference, input_shape=SHAPE)
    fresh.deploy_subnet(reference, subnet)
    with torch.no_grad():
        torch.testing.assert_close(reference(x), masked, atol=1e-4,
                                   rtol=1e-4)

    # The mutator surface: sampling respects each unit's choices, subnet
    # files round-trip through the one reader/writer.
    for _ in range(5):
        sample = pruner.sample_choices()
        assert all(sample[k] in pruner.choices_of(k) for k in sample)
    pruner.set_choices(sample)
    assert pruner.current_subnet() == sample
    pruner.dump_subnet(tmp_path / 'subnet.yaml')
    pruner.set_max_choices()
    assert all(u.current_mask.all() for u in pruner.units.values())
    pruner.load_subnet(tmp_path / 'subnet.yaml')
    assert pruner.current_subnet() == sample


def test_ratio_pruner_samples_and_extremes_follow_its_ratios():
    torch.manual_seed(0)
    model = ToyNet()
    ratios = [0.25, 0.5]
    pruner = RatioPruner(ratios=ratios, except_start_keys=[])
    pruner.prepare_from_supernet(model, input_shape=SHAPE)

    def at(ratio):  # the count each group keeps at ``ratio``, by hand
        return {
            name: min(unit.choices,
                      key=lambda c: (abs(c - max(1, round(ratio *
                                                         unit.num_units))),
                                     -c))
            for name, unit in pruner.units.items()
        }

    allowed = {name: {at(r)[name] for r in ratios} for name in pruner.units}
    for _ in range(20):
        sample = pruner.sample_choices()
        assert all(sample[k] in allowed[k] for k in sample)
    pruner.set_max_channel()
    assert pruner.current_subnet() == at(0.5)
    pruner.set_min_choices()
    assert pruner.current_subnet() == at(0.25)


def test_groups_left_out_stay_whole_even_above_max_ratio():
    # "Groups left out keep all channels", also when the guard-rails would
    # not allow choosing the full width.
    model = ToyNet()
    pruner = StructurePruner(except_start_keys=[], max_ratio=0.5)
    pruner.prepare_from_supernet(model, input_shape=SHAPE)
    first, *others = list(pruner.units)
    smallest = pruner.choices_of(first)[0]
    pruner.set_subnet({first: smallest})
    subnet = pruner.current_subnet()
    assert subnet[first] == smallest
    for name in others:
        assert subnet[name] == pruner.units[name].num_units
    with pytest.raises(SubnetError, match='guard-rails'):
        pruner.set_subnet({first: pruner.units[first].num_units})
