"""The 0.x faces of the search space, mutator and algorithm API:
``Placeholder`` + ``placeholder_mapping``, the mask-valued subnets keyed by
``space_id``, ``SearchableMobileNet`` and the older algorithm arguments."""
import copy

import pytest
import torch
from mmengine.optim import OptimWrapper
from torch import nn

from mmrazor.models import SPOS, AutoSlim
from mmrazor.models.mutables import OneShotMutableOP, Placeholder
from mmrazor.models.pruners.switchable_bn import SwitchableBatchNorm2d
from mmrazor.registry import MODELS
from mmrazor.structures import SubnetError
from mmrazor.utils import register_all_modules

register_all_modules()

SHUFFLE_CHOICES = dict(
    shuffle_3x3=dict(type='ShuffleBlock', kernel_size=3),
    shuffle_5x5=dict(type='ShuffleBlock', kernel_size=5),
    shuffle_7x7=dict(type='ShuffleBlock', kernel_size=7),
    shuffle_xception=dict(type='ShuffleXception'))
ONE_SHOT_MAPPING = dict(
    all_blocks=dict(type='OneShotOP', choices=SHUFFLE_CHOICES))


def _n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


class _Space(nn.Module):
    """Two stride-2 blocks, as placeholders or as mutables."""

    def __init__(self, with_placeholders: bool) -> None:
        super().__init__()
        blocks = []
        for i, (cin, cout) in enumerate([(8, 16), (16, 32)]):
            args = dict(in_channels=cin, out_channels=cout, stride=2)
            if with_placeholders:
                blocks.append(
                    Placeholder('blocks', space_id=f'b{i}', choice_args=args))
            else:
                blocks.append(
                    OneShotMutableOP(
                        candidates=copy.deepcopy(SHUFFLE_CHOICES),
                        module_kwargs=args,
                        alias=f'b{i}'))
        self.blocks = nn.Sequential(*blocks)

    def forward(self, x):
        return self.blocks(x)


# ----------------------------------------------------------- placeholders
def test_placeholder_space_builds_the_space_written_with_mutables():
    torch.manual_seed(0)
    direct = _Space(with_placeholders=False)
    plain = MODELS.build(dict(type='OneShotModuleMutator'))
    plain.prepare_from_supernet(direct)

    filled = _Space(with_placeholders=True)
    mutator = MODELS.build(
        dict(
            type='OneShotModuleMutator',
            placeholder_mapping=dict(blocks=dict(
                type='OneShotOP', choices=SHUFFLE_CHOICES))))
    mutator.prepare_from_supernet(filled)

    assert not any(isinstance(m, Placeholder) for m in filled.modules())
    assert _n_params(filled) == _n_params(direct) > 0
    assert list(mutator.search_groups) == list(plain.search_groups) == [
        'b0', 'b1'
    ]
    # Same weights and the same path: the same function.
    filled.load_state_dict(direct.state_dict())
    choices = dict(b0='shuffle_5x5', b1='shuffle_xception')
    mutator.set_choices(choices)
    plain.set_choices(choices)
    x = torch.randn(2, 8, 16, 16)
    filled.eval(), direct.eval()
    assert torch.allclose(filled(x), direct(x))


def test_unfilled_placeholder_is_refused_naming_its_group():
    space = _Space(with_placeholders=True)
    with pytest.raises(RuntimeError, match="'blocks'"):
        space(torch.randn(1, 8, 8, 8))
    mutator = MODELS.build(dict(type='OneShotMutator'))
    with pytest.raises(KeyError, match=r'blocks\.0'):
        mutator.prepare_from_supernet(space)


def _shufflenet(**kwargs):
    return MODELS.build(
        dict(
            type='SearchableShuffleNetV2',
            arch_setting=[[32, 2], [64, 2]],
            last_channels=64,
            **kwargs))


def test_shufflenet_blocks_are_placeholders_of_all_blocks():
    default = _shufflenet()
    mapped = _shufflenet()
    mutator = MODELS.build(
        dict(type='OneShotMutator', placeholder_mapping=ONE_SHOT_MAPPING))
    mutator.prepare_from_supernet(mapped)
    # The mapping equals the default candidates: same model size; its
    # decisions carry the 0.x space ids.
    assert _n_params(mapped) == _n_params(default)
    assert list(mutator.search_spaces) == [
        'stage_0_block_0', 'stage_0_block_1', 'stage_1_block_0',
        'stage_1_block_1'
    ]
    assert all(
        type(m).__name__ == 'OneShotOP' for m in mapped.layers[0])
    # A smaller mapping builds a smaller space: two candidates per block.
    small = _shufflenet()
    two = dict(all_blocks=dict(
        type='OneShotOP',
        choices=dict(
            shuffle_3x3=SHUFFLE_CHOICES['shuffle_3x3'],
            shuffle_xception=SHUFFLE_CHOICES['shuffle_xception'])))
    MODELS.build(dict(type='OneShotMutator',
                      placeholder_mapping=two)).prepare_from_supernet(small)
    expected = _n_params(default) - sum(
        _n_params(block.candidates[name]) for stage in default.layers
        for block in stage for name in ('shuffle_5x5', 'shuffle_7x7'))
    assert _n_params(small) == expected


DARTS_MAPPING = dict(
    node=dict(
        type='DifferentiableOP',
        with_arch_param=True,
        choices=dict(
            zero=dict(type='DartsZero'),
            skip_connect=dict(
                type='DartsSkipConnect',
                norm_cfg=dict(type='BN', affine=False)),
            max_pool_3x3=dict(
                type='DartsPoolBN',
                pool_type='max',
                norm_cfg=dict(type='BN', affine=False)),
            avg_pool_3x3=dict(
                type='DartsPoolBN',
                pool_type='avg',
                norm_cfg=dict(type='BN', affine=False)),
            sep_conv_3x3=dict(
                type='DartsSepConv',
                kernel_size=3,
                norm_cfg=dict(type='BN', affine=False)),
            sep_conv_5x5=dict(
                type='DartsSepConv',
                kernel_size=5,
                norm_cfg=dict(type='BN', affine=False)),
            dil_conv_3x3=dict(
                type='DartsDilConv',
                kernel_size=3,
                norm_cfg=dict(type='BN', affine=False)),
            dil_conv_5x5=dict(
                type='DartsDilConv',
                kernel_size=5,
                norm_cfg=dict(type='BN', affine=False)))),
    node_edge=dict(
        type='DifferentiableEdge', num_chosen=2, with_arch_param=False))


def test_darts_placeholders_build_the_default_darts_space():
    cfg = dict(
        type='DartsBackbone',
        in_channels=3,
        base_channels=8,
        num_layers=4,
        num_nodes=4,
        stem_multiplier=3,
        out_indices=(3, ))
    default = MODELS.build(copy.deepcopy(cfg))
    ref = MODELS.build(dict(type='DartsMutator'))
    ref.prepare_from_supernet(default)

    mapped = MODELS.build(copy.deepcopy(cfg))
    mutator = MODELS.build(
        dict(type='DartsMutator', placeholder_mapping=DARTS_MAPPING))
    mutator.prepare_from_supernet(mapped)
    assert _n_params(mapped) == _n_params(default)
    assert list(mutator.search_groups) == list(ref.search_groups)
    assert {k: tuple(p.shape) for k, p in mutator.arch_params.items()} == {
        k: tuple(p.shape) for k, p in ref.arch_params.items()}
    node = mapped.cells[0].nodes[0]
    assert type(node).__name__ == 'DifferentiableEdge'
    assert all(type(e).__name__ == 'DifferentiableOP'
               for e in node.candidates.values())
    out = mapped(torch.randn(2, 3, 16, 16))
    assert out[-1].shape[1] == 128


MB_CHOICES = {
    f'mb_k{k}e{e}': dict(
        type='MBBlock',
        kernel_size=k,
        expand_ratio=e,
        act_cfg=dict(type='ReLU6'))
    for e in (3, 6) for k in (3, 5, 7)
}
MB_CHOICES['identity'] = dict(type='Identity')
FIRST = dict(mb_k3e1=dict(
    type='MBBlock', kernel_size=3, expand_ratio=1,
    act_cfg=dict(type='ReLU6')))


def test_searchable_mobilenet_is_the_1x_spos_mobilenet_space():
    mapped = MODELS.build(
        dict(type='SearchableMobileNet', first_channels=40,
             last_channels=1728))
    with pytest.raises(RuntimeError, match='first_blocks'):
        mapped(torch.randn(1, 3, 32, 32))
    mutator = MODELS.build(
        dict(
            type='OneShotMutator',
            placeholder_mapping=dict(
                searchable_blocks=dict(type='OneShotOP', choices=MB_CHOICES),
                first_blocks=dict(type='OneShotOP', choices=FIRST))))
    mutator.prepare_from_supernet(mapped)
    # The independent expectation: MMRazor 1.x's SPOS MobileNet supernet
    # (configs/_base_/nas_backbones/spos_mobilenet_supernet.py).
    stage = dict(type='OneShotMutableOP', candidates=MB_CHOICES)
    first = dict(type='OneShotMutableOP', candidates=FIRST)
    reference = MODELS.build(
        dict(
            type='SearchableMobileNetV2',
            first_channels=40,
            last_channels=1728,
            arch_setting=[[24, 1, 1, first], [32, 4, 2, stage],
                          [56, 4, 2, stage], [112, 4, 2, stage],
                          [128, 4, 1, stage], [256, 4, 2, stage],
                          [432, 1, 1, stage]]))
    assert _n_params(mapped) == _n_params(reference)
    assert len(mutator.search_groups) == 1 + 4 * 5 + 1
    assert 'stage_0_block_0' in mutator.search_groups
    mutator.set_subnet(mutator.sample_subnet())
    mapped.eval()
    assert mapped(torch.randn(1, 3, 32, 32))[-1].shape[1] == 1728
    with pytest.raises(ValueError, match='arch_setting_type'):
        MODELS.build(dict(type='SearchableMobileNet',
                          arch_setting_type='nope'))


# ---------------------------------------------------- 0.x mutator API
def test_mask_subnets_keyed_by_space_id_and_older_names():
    net = _shufflenet()
    mutator = MODELS.build(
        dict(type='OneShotMutator', placeholder_mapping=ONE_SHOT_MAPPING))
    mutator.prepare_from_supernet(net)
    spaces = mutator.search_spaces
    assert all(info['chosen'] is None for info in spaces.values())
    mask = mutator.get_random_mask(spaces['stage_0_block_0'])
    assert mask.dtype == torch.bool and int(mask.sum()) == 1

    subnet = {k: torch.tensor([False, False, True, False]) for k in spaces}
    mutator.set_subnet(subnet)
    assert set(mutator.current_choices.values()) == {'shuffle_7x7'}
    assert mutator.search_spaces['stage_1_block_1']['chosen'] == [
        'shuffle_7x7'
    ]
    other = {k: torch.tensor([True, False, False, False]) for k in spaces}
    child = type(mutator).crossover(subnet, other)  # static
    assert set(child) == set(spaces)
    assert all(torch.equal(child[k], subnet[k]) or torch.equal(
        child[k], other[k]) for k in child)
    assert all(torch.equal(a, subnet[k])
               for k, a in mutator.mutation(subnet, prob=0.0).items())

    # deploy_subnet reads 0.x files, whose early names were op names.
    older = {k: {'chosen': ['ShuffleBlock_5x5']} for k in spaces}
    older['stage_0_block_0'] = {'chosen': ['ShuffleXception']}
    mutator.deploy_subnet(net, older)
    block = net.layers[0][0]
    assert block.is_fixed and block.current_choice == 'shuffle_xception'
    assert net.layers[1][1].current_choice == 'shuffle_5x5'

    ambiguous = _shufflenet()
    m2 = MODELS.build(
        dict(type='OneShotMutator', placeholder_mapping=ONE_SHOT_MAPPING))
    m2.prepare_from_supernet(ambiguous)
    with pytest.raises(SubnetError, match='ShuffleBlock'):
        m2.deploy_subnet(ambiguous,
                         {k: {'chosen': ['ShuffleBlock']} for k in spaces})


# ------------------------------------------------- older algorithm args
def _classifier(backbone, in_channels=64, num_classes=4):
    return dict(
        type='mmpretrain.ImageClassifier',
        backbone=backbone,
        neck=dict(type='mmpretrain.GlobalAveragePooling'),
        head=dict(
            type='mmpretrain.LinearClsHead',
            num_classes=num_classes,
            in_channels=in_channels))


def _samples(n=4, num_classes=4):
    from mmpretrain.structures import DataSample
    return [DataSample().set_gt_label(i % num_classes) for i in range(n)]


def _spos(**kwargs):
    torch.manual_seed(0)
    return SPOS(
        architecture=dict(
            type='MMClsArchitecture',
            model=_classifier(
                dict(
                    type='SearchableShuffleNetV2',
                    arch_setting=[[32, 2], [64, 2]],
                    last_channels=64))),
        mutator=dict(
            type='OneShotMutator', placeholder_mapping=ONE_SHOT_MAPPING),
        input_shape=(3, 32, 32),
        **kwargs)


def test_spos_loss_outside_train_step_keeps_the_supernet():
    algo = _spos()
    full = algo.get_subnet_flops()  # no choice yet: every candidate
    losses = algo(torch.randn(4, 3, 32, 32), _samples(), mode='loss')
    assert losses['loss'].item() > 0
    assert all(m.current_choice is None
               for ms in algo.mutator.search_groups.values() for m in ms)
    assert algo.get_subnet_flops() == full
    # train_step trains one sampled path, which stays current.
    wrapper = OptimWrapper(torch.optim.SGD(algo.parameters(), lr=0.01))
    algo.train_step(
        dict(inputs=torch.randn(4, 3, 32, 32), data_samples=_samples()),
        wrapper)
    choices = algo.mutator.current_choices
    assert set(choices) == set(algo.mutator.search_groups)
    assert 0 < algo.get_subnet_flops() < full


def test_spos_mutable_cfg_is_the_older_fix_subnet(tmp_path):
    subnet = {
        f'stage_{s}_block_{b}': {'chosen': ['shuffle_3x3']}
        for s in range(2) for b in range(2)
    }
    older = _spos(retraining=True, mutable_cfg=copy.deepcopy(subnet))
    newer = _spos(fix_subnet=copy.deepcopy(subnet))
    assert not older.is_supernet
    assert older.get_subnet_flops() == newer.get_subnet_flops()
    with pytest.raises(ValueError, match='retraining=True'):
        _spos(mutable_cfg=copy.deepcopy(subnet))
    with pytest.raises(ValueError, match='needs the subnet'):
        _spos(retraining=True)
    with pytest.raises(ValueError, match='does not take a pruner'):
        _spos(pruner=dict(type='RatioPruner', ratios=[0.5, 1.0]))
    assert _spos(pruner=None, distiller=None).is_supernet


def _autoslim(**kwargs):
    torch.manual_seed(0)
    args = dict(
        architecture=_classifier(
            dict(
                type='mmpretrain.ResNet_CIFAR',
                depth=18,
                in_channels=3,
                stem_channels=8,
                base_channels=8)),
        pruner=dict(
            type='RatioPruner',
            ratios=(0.25, 0.5, 0.75, 1.0),
            except_start_keys=['head.fc']),
        input_shape=(3, 16, 16))
    args.update(kwargs)
    return AutoSlim(**args)


def _self_distiller(module='head.fc'):
    return dict(
        type='SelfDistiller',
        components=[
            dict(
                student_module=module,
                teacher_module=module,
                losses=[
                    dict(
                        type='KLDivergence', name='loss_kd', tau=2,
                        loss_weight=1)
                ])
        ])


def test_autoslim_distiller_is_the_older_distill_loss():
    algo = _autoslim(distiller=_self_distiller())
    assert type(algo.distill_loss).__name__ == 'KLDivergence'
    assert algo.distill_loss.tau == 2.0
    with pytest.raises(ValueError, match='last linear layer'):
        _autoslim(distiller=_self_distiller('neck'))
    two = _self_distiller()
    two['components'][0]['losses'].append(dict(type='KLDivergence'))
    with pytest.raises(ValueError, match='one loss'):
        _autoslim(distiller=two)


def test_autoslim_retraining_one_or_several_channel_cfgs():
    supernet = _autoslim()
    supernet.pruner.set_min_channel()
    narrow = supernet.pruner.export_subnet()
    supernet.pruner.set_subnet(supernet.pruner._ratio_subnet(0.5))
    half = supernet.pruner.export_subnet()

    one = _autoslim(retraining=True, channel_cfg=copy.deepcopy(narrow))
    assert one.deployed
    # The same as the newer form (channel_cfg alone).
    assert _n_params(one) == _n_params(
        _autoslim(channel_cfg=copy.deepcopy(narrow)))

    both = _autoslim(
        retraining=True, channel_cfg=[copy.deepcopy(half),
                                      copy.deepcopy(narrow)])
    assert not both.deployed
    bns = [m for m in both.modules() if isinstance(m, SwitchableBatchNorm2d)]
    assert bns and all(m.num_bns == 2 for m in bns)
    wrapper = OptimWrapper(torch.optim.SGD(both.parameters(), lr=0.01))
    log = both.train_step(
        dict(inputs=torch.rand(4, 3, 16, 16) * 255,
             data_samples=_samples()), wrapper)
    assert set(log) == {'subnet0.loss', 'subnet1.loss', 'loss'}
    assert torch.isfinite(log['loss'])
    with pytest.raises(ValueError, match='needs channel_cfg'):
        _autoslim(retraining=True)
    with pytest.raises(ValueError, match='retraining=False'):
        _autoslim(retraining=False, channel_cfg=copy.deepcopy(narrow))
