"""The MMRazor 1.x pruning surface (ChannelMutator with channel units,
ItePruneAlgorithm, PruneDeploySubModel) on the one channel analysis; every
expectation is computed independently of the code under test."""
import copy
import random

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mmrazor.models import (ItePruneAlgorithm, L1MutableChannelUnit,
                            OneShotMutableChannelUnit, PruneDeploySubModel,
                            SequentialMutableChannelUnit)
from mmrazor.models.mutators import ChannelMutator, OneShotChannelMutator
from mmrazor.registry import MODELS
from mmrazor.structures import SubnetError

CFG_DIR = '/work/shared/reference/mmrazor-1.x/configs/pruning/mmcls/l1-norm/'
SHAPE = (1, 3, 16, 16)
TRACE = dict(type='ChannelAnalyzer', demo_input=SHAPE)


class ResNet(nn.Module):
    """conv0 -> [conv1 -> conv2] + identity -> head."""

    def __init__(self) -> None:
        super().__init__()
        self.conv0 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn0 = nn.BatchNorm2d(8)
        self.conv1 = nn.Conv2d(8, 12, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(12)
        self.conv2 = nn.Conv2d(12, 8, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = F.relu(self.bn0(self.conv0(x)))
        b = F.relu(self.bn1(self.conv1(a)))
        c = F.relu(self.bn2(self.conv2(b)) + a)
        return self.fc(c.mean((2, 3)))


def _randomized(model: nn.Module) -> nn.Module:
    torch.manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 1.5)
    return model


def _make_divisible(value, divisor, min_value=1, min_ratio=0.9):
    # the MobileNet rounding, written out for the test
    new = max(min_value, int(value + divisor / 2) // divisor * divisor)
    return new + divisor if new < min_ratio * value else new


# ---------------------------------------------------------------- names
def test_unit_names_of_torchvision_resnet18():
    tv = pytest.importorskip('torchvision')
    model = tv.models.resnet18()
    mutator = ChannelMutator(
        channel_unit_cfg=dict(
            type='SequentialMutableChannelUnit',
            default_args=dict(choice_mode='ratio')),
        parse_cfg=dict(
            type='ChannelAnalyzer',
            demo_input=(1, 3, 64, 64),
            tracer_type='BackwardTracer'))
    mutator.prepare_from_supernet(model)
    assert mutator.is_traced
    expected = [
        'conv1_(0, 64)_64',  # stem + layer1 residuals
        'layer1.0.conv1_(0, 64)_64', 'layer1.1.conv1_(0, 64)_64',
        'layer2.0.conv1_(0, 128)_128',
        'layer2.0.conv2_(0, 128)_128',  # + downsample + layer2.1.conv2
        'layer2.1.conv1_(0, 128)_128', 'layer3.0.conv1_(0, 256)_256',
        'layer3.0.conv2_(0, 256)_256', 'layer3.1.conv1_(0, 256)_256',
        'layer4.0.conv1_(0, 512)_512', 'layer4.0.conv2_(0, 512)_512',
        'layer4.1.conv1_(0, 512)_512'
    ]
    assert [u.name for u in mutator.mutable_units] == expected
    assert mutator.choice_template == {name: 1.0 for name in expected}
    # fc's output is the model output: no unit
    assert all(not n.startswith('fc') for n in mutator.choice_template)


def test_modes_and_units_of_a_hand_built_model():
    model = ResNet()
    mutator = ChannelMutator(parse_cfg=TRACE)
    mutator.prepare_from_supernet(model)
    # default unit: sequential, number mode
    assert mutator.choice_template == {
        'conv0_(0, 8)_8': 8,
        'conv1_(0, 12)_12': 12
    }
    assert all(
        type(u) is SequentialMutableChannelUnit
        for u in mutator.mutable_units)
    # parse_cfg None on a model without channel mutables: traced too
    auto = ChannelMutator()
    auto.prepare_from_supernet(ResNet())
    assert auto.is_traced and list(auto.choice_template) == list(
        mutator.choice_template)
    # subclasses keep their predefined mode unless given units
    one_shot = OneShotChannelMutator()
    one_shot.prepare_from_supernet(ResNet())
    assert not one_shot.is_traced and one_shot.search_groups == {}
    with pytest.raises(ValueError, match="'Bogus'"):
        ChannelMutator(parse_cfg=dict(type='Bogus'))
    with pytest.raises(ValueError, match='NoSuchUnit'):
        ChannelMutator(
            channel_unit_cfg=dict(type='NoSuchUnit'),
            parse_cfg=TRACE).prepare_from_supernet(ResNet())


def test_unknown_unit_name_lists_close_matches():
    mutator = ChannelMutator(parse_cfg=TRACE)
    mutator.prepare_from_supernet(ResNet())
    with pytest.raises(SubnetError, match=r"conv1_\(0, 12\)_13.*"
                       r"close matches.*conv1_\(0, 12\)_12"):
        mutator.set_choices({'conv1_(0, 12)_13': 6})
    with pytest.raises(SubnetError, match='conv1_.*invalid choice 99'):
        mutator.set_choices({'conv1_(0, 12)_12': 99})


# -------------------------------------------------------- choice modes
@pytest.mark.parametrize('ratio', [0.1, 0.3, 0.5, 0.7, 0.95, 1.0])
def test_ratio_mode_divisor_rounding(ratio):
    unit = SequentialMutableChannelUnit(
        30, choice_mode='ratio', divisor=8, min_value=1, min_ratio=0.9)
    unit.current_choice = ratio
    wanted = min(30, _make_divisible(max(1, int(30 * ratio)), 8))
    assert unit.activated_channels == wanted
    assert unit.current_choice == pytest.approx(wanted / 30)
    assert unit.current_mask.tolist() == [i < wanted for i in range(30)]


def test_number_mode_and_literal_values():
    unit = SequentialMutableChannelUnit(30, divisor=8)
    for number, channels in ((20, 24), (9, 16), (3, 9), (30, 30), (16, 16)):
        unit.current_choice = number
        assert unit.current_choice == channels
        assert unit.current_choice == min(30, _make_divisible(number, 8))
    unit.current_choice = 0.5  # a float is a ratio in number mode too
    assert unit.current_choice == 16
    assert unit.max_choice == 30
    assert unit.min_choice == _make_divisible(1, 8) == 1
    random.seed(0)
    assert {unit.sample_choice() for _ in range(50)} <= set(unit.choices)
    with pytest.raises(ValueError, match='31 channels'):
        unit.current_choice = 31
    with pytest.raises(ValueError, match='ratio 1.5'):
        unit.current_choice = 1.5
    with pytest.raises(ValueError, match="choice_mode"):
        SequentialMutableChannelUnit(8, choice_mode='percent')


def test_one_shot_unit_candidates():
    unit = OneShotMutableChannelUnit(
        30, candidate_choices=[0.25, 0.5, 1.0], divisor=8)
    # 0.25 -> 7 -> 8 channels; 0.5 -> 15 -> 16; 1.0 -> 30
    assert unit.candidate_choices == pytest.approx([8 / 30, 16 / 30, 1.0])
    unit.current_choice = 0.25
    assert unit.activated_channels == 8
    unit.current_choice = unit.candidate_choices[1]
    assert unit.activated_channels == 16
    assert unit.min_choice == pytest.approx(8 / 30)
    with pytest.raises(ValueError, match='0.3 is not a candidate'):
        unit.current_choice = 0.3
    with pytest.raises(ValueError, match='floats'):
        OneShotMutableChannelUnit(30, candidate_choices=[8, 16])


# ------------------------------------------------------------------ L1
def test_l1_unit_keeps_largest_l1_channels():
    model = _randomized(ResNet())
    mutator = ChannelMutator(
        channel_unit_cfg=dict(
            type='L1MutableChannelUnit',
            default_args=dict(choice_mode='ratio')),
        parse_cfg=TRACE)
    mutator.prepare_from_supernet(model)
    units = {u.name: u for u in mutator.mutable_units}
    assert all(isinstance(u, L1MutableChannelUnit) for u in units.values())
    # conv1's group is produced by conv1 alone
    mutator.set_choices({'conv1_(0, 12)_12': 0.5})
    norm = model.conv1.weight.detach().abs().mean((1, 2, 3))
    top = set(norm.topk(6).indices.tolist())
    assert set(units['conv1_(0, 12)_12'].current_mask.nonzero()[0]) == top
    # conv0's group is produced by conv0 and conv2 (residual): average
    mutator.set_choices({'conv0_(0, 8)_8': 3})
    norm = (model.conv0.weight.detach().abs().mean((1, 2, 3)) +
            model.conv2.weight.detach().abs().mean((1, 2, 3))) / 2
    top = set(norm.topk(3).indices.tolist())
    assert set(units['conv0_(0, 8)_8'].current_mask.nonzero()[0]) == top
    assert mutator.choice_template == {
        'conv0_(0, 8)_8': pytest.approx(3 / 8),
        'conv1_(0, 12)_12': 0.5
    }
    # deployed == masked, and the kept rows are the chosen channels
    weight = model.conv1.weight.detach().clone()
    x = torch.randn(2, 3, 16, 16)
    model.eval()
    with torch.no_grad():
        masked = model(x)
    mutator.deploy_subnet(model)
    with torch.no_grad():
        deployed = model(x)
    torch.testing.assert_close(deployed, masked, atol=1e-5, rtol=1e-5)
    kept = units['conv1_(0, 12)_12'].current_mask.nonzero()[0].tolist()
    kept_in = units['conv0_(0, 8)_8'].current_mask.nonzero()[0].tolist()
    torch.testing.assert_close(model.conv1.weight.detach(),
                               weight[kept][:, kept_in])
    assert (model.conv0.out_channels, model.conv1.out_channels,
            model.conv2.out_channels, model.fc.in_features) == (3, 6, 3, 3)


# ------------------------------------------------------ deploy, config
def test_sequential_deploy_equals_masked_and_units_cfg():
    model = _randomized(ResNet())
    reference = copy.deepcopy(model)
    mutator = ChannelMutator(
        channel_unit_cfg=dict(
            type='SequentialMutableChannelUnit',
            default_args=dict(choice_mode='number'),
            units={
                'conv1_(0, 12)_12':
                dict(init_args=dict(divisor=4), choice=10),
                'head_(0, 5)_5': dict(choice=5),  # no such unit: warned
            }),
        parse_cfg=TRACE)
    mutator.prepare_from_supernet(model)
    # 10 with divisor 4 -> 12 (make_divisible), the others at full width
    assert mutator.choice_template == {
        'conv0_(0, 8)_8': 8,
        'conv1_(0, 12)_12': _make_divisible(10, 4)
    }
    mutator.set_choices({'conv0_(0, 8)_8': 5, 'conv1_(0, 12)_12': 7})
    assert mutator.choice_template == {
        'conv0_(0, 8)_8': 5,
        'conv1_(0, 12)_12': 8
    }
    template = mutator.config_template(with_unit_init_args=True)
    assert template['channel_unit_cfg']['units']['conv1_(0, 12)_12'][
        'init_args']['divisor'] == 4
    # the template rebuilds the same structure on a fresh copy
    twin = MODELS.build(template)
    fresh = copy.deepcopy(reference)
    twin.prepare_from_supernet(fresh)
    assert twin.choice_template == mutator.choice_template
    x = torch.randn(2, 3, 16, 16)
    model.eval()
    with torch.no_grad():
        masked = model(x)
    mutator.deploy_subnet(model)
    with torch.no_grad():
        torch.testing.assert_close(model(x), masked, atol=1e-5, rtol=1e-5)
    assert (model.conv0.out_channels, model.conv1.out_channels) == (5, 8)
    # leading channels are kept
    torch.testing.assert_close(model.conv0.weight.detach(),
                               reference.conv0.weight.detach()[:5])
    # the same subnet deployed on an unpruned copy from the dict
    other = copy.deepcopy(reference)
    ChannelMutator(parse_cfg=TRACE).deploy_subnet(
        other, {'conv0_(0, 8)_8': 5, 'conv1_(0, 12)_12': 8})
    with torch.no_grad():
        torch.testing.assert_close(other.eval()(x), masked, atol=1e-5,
                                   rtol=1e-5)


def test_custom_groups_share_one_choice():
    mutator = ChannelMutator(
        channel_unit_cfg=dict(
            type='SequentialMutableChannelUnit',
            default_args=dict(choice_mode='ratio')),
        parse_cfg=TRACE,
        custom_groups=[['conv0_(0, 8)_8', 'conv1_(0, 12)_12']])
    mutator.prepare_from_supernet(ResNet())
    assert list(mutator.search_groups) == ['conv0_(0, 8)_8']
    mutator.set_choices({'conv0_(0, 8)_8': 0.5})
    assert [u.activated_channels for u in mutator.mutable_units] == [4, 6]
    mutator.set_choices({0: 1.0})  # the 1.x integer key of the group
    assert [u.activated_channels for u in mutator.mutable_units] == [8, 12]
    bad = ChannelMutator(parse_cfg=TRACE, custom_groups=[['conv9_(0, 8)_8']])
    with pytest.raises(KeyError, match='conv9.*close matches'):
        bad.prepare_from_supernet(ResNet())


# ------------------------------------------------------ ItePruneAlgorithm
def _classifier(depth=18):
    return dict(
        _scope_='mmpretrain',
        type='ImageClassifier',
        backbone=dict(type='ResNet', depth=depth, num_stages=4,
                      out_indices=(3, )),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(
            type='LinearClsHead',
            num_classes=10,
            in_channels=512,
            loss=dict(type='CrossEntropyLoss')),
        data_preprocessor=dict(type='ClsDataPreprocessor'))


def _batch(n=2):
    from mmpretrain.structures import DataSample
    return dict(
        inputs=[torch.randint(0, 255, (3, 32, 32), dtype=torch.uint8)
                for _ in range(n)],
        data_samples=[DataSample().set_gt_label(i % 10) for i in range(n)])


def test_ite_prune_reaches_target_on_deployed_model():
    pytest.importorskip('mmpretrain')
    from mmengine.optim import OptimWrapper
    torch.manual_seed(0)
    target = {
        'backbone.layer1.0.conv1_(0, 64)_64': 0.5,
        'backbone.layer2.0.conv2_(0, 128)_128': 0.25,  # shortcut group
        'backbone.layer3.1.conv1_(0, 256)_256': 0.7,
    }
    algo = ItePruneAlgorithm(
        _classifier(),
        mutator_cfg=dict(
            type='ChannelMutator',
            channel_unit_cfg=dict(
                type='L1MutableChannelUnit',
                default_args=dict(choice_mode='ratio')),
            parse_cfg=dict(type='ChannelAnalyzer',
                           demo_input=(1, 3, 32, 32))),
        target_pruning_ratio=target,
        step_freq=2,
        prune_times=2)
    # halfway (linear schedule) at the first step, the targets at the last
    assert algo.choices_at(0) == pytest.approx(
        {k: 1 - (1 - v) / 2 for k, v in target.items()})
    assert algo.choices_at(2) == target
    assert [algo.is_prune_time(i) for i in range(6)] == [
        True, False, True, False, False, False]
    optim = OptimWrapper(torch.optim.SGD(algo.parameters(), lr=0.01))
    units = {u.name: u for u in algo.mutator.mutable_units}
    seen = []
    for _ in range(4):
        algo.train_step(_batch(), optim)
        seen.append(units['backbone.layer1.0.conv1_(0, 64)_64']
                    .activated_channels)
    assert seen == [int(64 * 0.75), int(64 * 0.75), 32, 32]
    # the structure, counted on the deployed model
    expect = {name: int(int(name.rsplit('_', 1)[-1]) * ratio + 1e-9)
              for name, ratio in target.items()}
    assert algo.export_subnet() == pytest.approx({
        **{u.name: 1.0 for u in units.values()},
        **{k: v / int(k.rsplit('_', 1)[-1]) for k, v in expect.items()}})
    algo.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        masked = algo(x, mode='tensor')
    model = algo.deploy_subnet()
    with torch.no_grad():
        torch.testing.assert_close(algo(x, mode='tensor'), masked,
                                   atol=1e-4, rtol=1e-4)
    bb = model.backbone
    assert bb.layer1[0].conv1.out_channels == expect[
        'backbone.layer1.0.conv1_(0, 64)_64'] == 32
    assert bb.layer3[1].conv1.out_channels == 179
    # the shortcut group: every block output of stage 2 and the downsample
    shortcut = expect['backbone.layer2.0.conv2_(0, 128)_128']
    assert shortcut == 32
    assert (bb.layer2[0].conv2.out_channels,
            bb.layer2[0].downsample[0].out_channels,
            bb.layer2[1].conv2.out_channels,
            bb.layer3[0].conv1.in_channels) == (shortcut, ) * 4
    assert bb.layer1[1].conv1.out_channels == 64  # not in the target


def test_ite_prune_rejects_unknown_target_names():
    pytest.importorskip('mmpretrain')
    mutator_cfg = dict(
        type='ChannelMutator',
        parse_cfg=dict(type='ChannelAnalyzer', demo_input=(1, 3, 32, 32)))
    with pytest.raises(KeyError, match=r"layer1\.0\.conv3.*close matches"):
        ItePruneAlgorithm(
            _classifier(),
            mutator_cfg=mutator_cfg,
            target_pruning_ratio={'backbone.layer1.0.conv3_(0, 64)_64': 0.5})
    with pytest.raises(KeyError, match='cannot be pruned'):
        ItePruneAlgorithm(
            _classifier(),
            mutator_cfg=mutator_cfg,
            target_pruning_ratio={'head.fc_(0, 10)_10': 0.5})
    # a group that cannot be pruned may be named to keep it whole
    algo = ItePruneAlgorithm(
        _classifier(),
        mutator_cfg=mutator_cfg,
        target_pruning_ratio={'head.fc_(0, 10)_10': 1.0})
    assert algo.target_pruning_ratio == {}
    with pytest.raises(ValueError, match='prune_times'):
        ItePruneAlgorithm(_classifier(), mutator_cfg, prune_times=0)


# --------------------------------------------------- original 1.x configs
def _load(name):
    pytest.importorskip('mmpretrain')
    from mmrazor.apis.config_compat import load_config
    cfg = load_config(CFG_DIR + name)
    # never fetch the pretrained weights
    cfg.model.architecture.pop('init_cfg', None)
    return cfg


def test_l1_norm_resnet34_config_builds():
    cfg = _load('l1-norm_resnet34_8xb32_in1k_a.py')
    model_cfg = cfg.model
    targets = dict(model_cfg.target_pruning_ratio)
    algo = MODELS.build(model_cfg)
    assert isinstance(algo, ItePruneAlgorithm)
    names = [u.name for u in algo.mutator.mutable_units]
    assert set(targets) == set(names) and len(names) == 20
    assert all(isinstance(u, L1MutableChannelUnit)
               for u in algo.mutator.mutable_units)
    algo.prune_step(0)
    units = {u.name: u for u in algo.mutator.mutable_units}
    for name, ratio in targets.items():
        channels = int(name.rsplit('_', 1)[-1])
        assert units[name].activated_channels == int(channels * ratio)
    assert units['backbone.layer1.0.conv1_(0, 64)_64'].activated_channels \
        == 44


def test_l1_norm_resnet34_deploy_structure_with_divisor():
    cfg = _load('l1-norm_resnet34_8xb32_in1k_a_deploy.py')
    fix_subnet, divisor = dict(cfg.model.fix_subnet), cfg.model.divisor
    assert divisor == 8
    model = PruneDeploySubModel(
        cfg.model.architecture,
        fix_subnet=fix_subnet,
        divisor=divisor,
        parse_cfg=dict(type='ChannelAnalyzer', demo_input=(1, 3, 64, 64)))
    bb = model.backbone
    # 0.7 * 64 = 44.8 -> 44 -> up to a multiple of 8: 48; 0.7 * 128 ->
    # 89 -> 96; 0.7 * 256 -> 179 -> 184; 1.0 stays whole
    assert bb.layer1[0].conv1.out_channels == 48
    assert bb.layer1[2].conv1.out_channels == 64
    assert bb.layer2[1].conv1.out_channels == 96
    assert bb.layer3[4].conv1.out_channels == 184
    assert bb.layer4[0].conv1.out_channels == 512
    with torch.no_grad():
        out = model(torch.randn(1, 3, 64, 64), mode='tensor')
    assert out.shape == (1, 1000)


def test_dump_load_fix_and_generic_spelling(tmp_path):
    model = _randomized(ResNet())
    mutator = ChannelMutator[L1MutableChannelUnit](
        channel_unit_cfg=dict(
            type='L1MutableChannelUnit',
            default_args=dict(choice_mode='ratio')),
        parse_cfg=TRACE)
    mutator.prepare_from_supernet(model)
    name = 'conv1_(0, 12)_12'
    mutator.set_choices({name: 0.5})
    path = tmp_path / 'subnet.yaml'
    mutator.dump_subnet(path)
    mutator.set_max_choices()
    assert mutator.choice_template[name] == 1.0
    mutator.load_subnet(path)
    assert mutator.choice_template == {'conv0_(0, 8)_8': 1.0, name: 0.5}
    unit = mutator.mutable_units[1]
    mask = unit.current_mask
    # the kept channels become the weakest: a fixed unit keeps its mask
    with torch.no_grad():
        model.conv1.weight[torch.from_numpy(mask)] *= 1e-3
    mutator.fix_channel_mutables()
    assert (unit.current_mask == mask).all() and unit.is_fixed
    with pytest.raises(Exception, match='fixed'):
        mutator.set_choices({name: 0.25})


def test_prepare_again_on_the_masked_model():
    model = ResNet()
    mutator = ChannelMutator(parse_cfg=TRACE)
    mutator.prepare_from_supernet(model)
    mutator.set_choices({'conv0_(0, 8)_8': 5})
    mutator.prepare_from_supernet(model)  # its own masks do not block
    assert mutator.choice_template == {
        'conv0_(0, 8)_8': 8,
        'conv1_(0, 12)_12': 12
    }
