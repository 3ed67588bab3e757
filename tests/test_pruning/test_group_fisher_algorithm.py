"""Pruning while training: ImportancePruningAlgorithm, GroupFisherAlgorithm
with the keys of MMRazor 1.x configs, its hooks, sub-model and DDP name."""
import copy
import os.path as osp

import numpy as np
import pytest
import torch
import yaml
from mmengine.optim import OptimWrapper

from mmrazor.models.algorithms.pruning import (GroupFisherAlgorithm,
                                               GroupFisherSubModel,
                                               ImportancePruningAlgorithm)
from mmrazor.models.pruners import ImportancePruner
from mmrazor.registry import MODELS
from mmrazor.utils import register_all_modules
from tool_runs import REPO, train_in_process

SHAPE = (1, 1, 28, 28)
GF_PRUNE = osp.join(REPO, 'configs', 'pruning', 'group_fisher',
                    'group-fisher-flops_prune_resnet18-w16_fashion-mnist.py')
GF_FINETUNE = osp.join(
    REPO, 'configs', 'pruning', 'group_fisher',
    'group-fisher-flops_finetune_resnet18-w16_fashion-mnist.py')
GF_DEPLOY = osp.join(
    REPO, 'configs', 'pruning', 'group_fisher',
    'group-fisher-flops_deploy_resnet18-w16_fashion-mnist.py')
REF_1X = osp.join(
    osp.dirname(REPO), 'shared', 'reference', 'mmrazor-1.x', 'configs',
    'pruning', 'mmcls', 'group_fisher', 'resnet50',
    'group_fisher_flops_prune_resnet50_8xb32_in1k.py')
TINY_DATA = [
    'train_dataloader.dataset.indices=96',
    'val_dataloader.dataset.indices=250', 'train_dataloader.batch_size=16'
]


def classifier_cfg():
    register_all_modules()
    from mmengine.config import Config
    cfg = Config.fromfile(
        osp.join(REPO, 'configs', 'vanilla', 'resnet18-w16_fashion-mnist.py'))
    model = copy.deepcopy(cfg.model)
    return model


def batch(seed: int, size: int = 8):
    from mmpretrain.structures import DataSample
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 255, (size, 1, 28, 28), generator=g)
    labels = torch.randint(0, 10, (size, ), generator=g)
    return dict(
        inputs=list(images.to(torch.uint8)),
        data_samples=[DataSample().set_gt_label(int(y)) for y in labels])


def total_kept(algorithm) -> int:
    return sum(
        int(np.count_nonzero(u.current_mask))
        for u in algorithm.pruner.units.values())


def test_one_unit_per_interval_until_the_target():
    torch.manual_seed(0)
    algorithm = ImportancePruningAlgorithm(
        classifier_cfg(),
        pruner=dict(
            importance=dict(type='GroupFisherImportance'),
            cost_normalization='flops',
            except_start_keys=['head.fc']),
        target=dict(flops=0.9),
        interval=2,
        input_shape=SHAPE)
    wrapper = OptimWrapper(
        torch.optim.SGD(algorithm.parameters(), lr=0.01))
    full = total_kept(algorithm)
    steps = 0
    while algorithm.cost_ratios()['flops'] > 0.9:
        log = algorithm.train_step(batch(steps), wrapper)
        steps += 1
        # one unit every two iterations, counted over the groups
        assert total_kept(algorithm) == full - steps // 2
        assert steps < 200
    assert float(log['flops_ratio']) <= 0.9
    removed_so_far = total_kept(algorithm)
    for i in range(4):  # the target is reached: no more pruning
        algorithm.train_step(batch(100 + i), wrapper)
    assert total_kept(algorithm) == removed_so_far
    # the ratio is the estimator's count on the physically pruned model
    from mmrazor.models.task_modules import ResourceEstimator
    estimator = ResourceEstimator(input_shape=SHAPE)
    base = estimator.estimate(MODELS.build(classifier_cfg()))['flops']
    arch = MODELS.build(classifier_cfg())
    arch.load_state_dict(algorithm.architecture.state_dict())
    pruner = ImportancePruner(except_start_keys=['head.fc'],
                              input_shape=SHAPE)
    pruner.prepare_from_supernet(arch)
    pruner.set_subnet(algorithm.export_subnet())
    pruner.deploy_subnet(arch)
    assert estimator.estimate(arch)['flops'] / base == pytest.approx(
        algorithm.cost_ratios()['flops'], rel=0.01)


def test_training_passes_feed_the_criterion():
    """With lr 0 the weights stay put: the unit the algorithm removes after
    two training iterations is the one a pruner picks from the Fisher
    information of the same two batches gathered with ``accumulate``."""
    torch.manual_seed(0)
    cfg = classifier_cfg()
    algorithm = ImportancePruningAlgorithm(
        cfg,
        pruner=dict(
            importance=dict(type='GroupFisherImportance'),
            cost_normalization='flops',
            except_start_keys=['head.fc']),
        interval=2,
        input_shape=SHAPE)
    twin = MODELS.build(classifier_cfg())
    twin.load_state_dict(algorithm.architecture.state_dict())
    wrapper = OptimWrapper(torch.optim.SGD(algorithm.parameters(), lr=0.0))
    batches = [batch(1), batch(2)]
    for b in batches:
        algorithm.train_step(b, wrapper)
    reference = ImportancePruner(
        importance=dict(type='GroupFisherImportance'),
        cost_normalization='flops',
        except_start_keys=['head.fc'],
        input_shape=SHAPE)
    reference.prepare_from_supernet(twin)
    twin.train()
    for b in batches:
        data = twin.data_preprocessor(b, True)
        reference.importance.accumulate(
            twin, data, forward_fn=lambda m, d: m(**d, mode='loss'))
    expected = reference.prune_step()
    got = {
        name: int(np.count_nonzero(~u.current_mask))
        for name, u in algorithm.pruner.units.items()
        if not u.current_mask.all()
    }
    assert got == {expected[0][0]: 1}
    np.testing.assert_array_equal(
        algorithm.pruner.units[expected[0][0]].current_mask,
        reference.units[expected[0][0]].current_mask)


def test_masks_travel_in_the_state_dict():
    torch.manual_seed(0)
    kwargs = dict(
        pruner=dict(importance=dict(type='L1Importance'),
                    except_start_keys=['head.fc']),
        interval=1,
        input_shape=SHAPE)
    algorithm = ImportancePruningAlgorithm(classifier_cfg(), **kwargs)
    wrapper = OptimWrapper(torch.optim.SGD(algorithm.parameters(), lr=0.01))
    for i in range(3):
        algorithm.train_step(batch(i), wrapper)
    state = algorithm.state_dict()
    other = ImportancePruningAlgorithm(classifier_cfg(), **kwargs)
    other.load_state_dict(state)
    for name, unit in algorithm.pruner.units.items():
        np.testing.assert_array_equal(other.pruner.units[name].current_mask,
                                      unit.current_mask)
    assert other.pruned_iters == 3
    with pytest.raises(ValueError, match='interval'):
        ImportancePruningAlgorithm(classifier_cfg(), pruner={}, interval=0)
    with pytest.raises(ValueError, match='latency'):
        ImportancePruningAlgorithm(classifier_cfg(), pruner={},
                                   target=dict(latency=0.5))


def test_1x_mutator_keys():
    arch = classifier_cfg()
    mutator = dict(
        type='mmrazor.GroupFisherChannelMutator',
        parse_cfg=dict(type='ChannelAnalyzer', demo_input=SHAPE,
                       tracer_type='BackwardTracer'),
        channel_unit_cfg=dict(
            type='GroupFisherChannelUnit',
            default_args=dict(normalization_type='act')))
    algorithm = GroupFisherAlgorithm(arch, mutator=mutator, interval=3)
    assert algorithm.pruner.cost_normalization == 'act'
    assert type(algorithm.pruner.importance).__name__ == \
        'GroupFisherImportance'
    # linear layers keep their outputs (mutate_linear=False, the default)
    assert 'head.fc' in algorithm.pruner.excluded
    bad = copy.deepcopy(mutator)
    bad['channel_unit_cfg']['default_args']['normalization_type'] = 'bytes'
    with pytest.raises(ValueError, match='bytes'):
        GroupFisherAlgorithm(classifier_cfg(), mutator=bad)
    bad = copy.deepcopy(mutator)
    bad['channel_unit_cfg']['type'] = 'L1MutableChannelUnit'
    with pytest.raises(ValueError, match='L1MutableChannelUnit'):
        GroupFisherAlgorithm(classifier_cfg(), mutator=bad)


@pytest.mark.skipif(not osp.exists(REF_1X), reason='reference configs')
def test_original_1x_resnet50_config_builds_and_prunes():
    from mmrazor.apis.config_compat import load_config
    register_all_modules()
    cfg = load_config(REF_1X)
    assert cfg.model_wrapper_cfg.type == \
        'mmrazor.RazorDistributedDataParallel'
    hooks = [h['type'] for h in cfg.custom_hooks]
    assert 'mmrazor.PruningStructureHook' in hooks
    assert 'mmrazor.ResourceInfoHook' in hooks
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.architecture.init_cfg = None  # never fetch the URL
    model_cfg.interval = 1
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmrazor'):
        algorithm = MODELS.build(model_cfg)
    assert isinstance(algorithm, GroupFisherAlgorithm)
    assert algorithm.pruner.cost_normalization == 'flops'
    wrapper = OptimWrapper(torch.optim.SGD(algorithm.parameters(), lr=0.0))
    from mmpretrain.structures import DataSample
    data = dict(
        inputs=[torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8)] * 2,
        data_samples=[DataSample().set_gt_label(1)] * 2)
    before = total_kept(algorithm)
    algorithm.train_step(data, wrapper)
    assert total_kept(algorithm) == before - 1


def test_prune_then_finetune_configs(tmp_path, monkeypatch):
    """The Fashion-MNIST Group Fisher configs through tools/train.py: the
    pruning run writes flops_0.90.pth/.yaml when 90% of the FLOPs are left
    and stops; GroupFisherSubModel then builds the pruned model from that
    checkpoint with the kept channels of the yaml."""
    work = tmp_path / 'prune'
    runner = train_in_process(GF_PRUNE, str(work), [
        *TINY_DATA, 'model.interval=1', 'custom_hooks.1.interval=1',
        'custom_hooks.1.save_ckpt_thr=[0.9]', 'train_cfg.max_epochs=30',
        'default_hooks.checkpoint.save_best=None'
    ], monkeypatch)
    ckpt = work / 'flops_0.90.pth'
    assert ckpt.exists() and (work / 'flops_0.90.yaml').exists()
    assert runner.train_loop.epoch < 30  # early_stop
    subnet = yaml.safe_load((work / 'flops_0.90.yaml').read_text())
    ft = tmp_path / 'ft'
    runner = train_in_process(GF_FINETUNE, str(ft), [
        *TINY_DATA, f'model.algorithm.init_cfg.checkpoint={ckpt}',
        'train_cfg.max_epochs=1', 'default_hooks.checkpoint.save_best=None'
    ], monkeypatch)
    model = runner.model
    for name, module in model.named_modules():
        entry = subnet.get(name)
        if isinstance(module, torch.nn.Conv2d) and entry:
            assert module.out_channels == entry['out_channels'], name
            assert module.in_channels == entry['in_channels'], name
    assert (ft / 'epoch_1.pth').exists()
    # the 1.x deploy config: structure from the fix_subnet json, weights
    # of the fine-tuned checkpoint, same outputs
    fix = work / 'flops_0.90_fix_subnet.json'
    from mmrazor.apis.config_compat import load_config
    cfg = load_config(GF_DEPLOY, {'model.fix_subnet': str(fix)})
    assert cfg.model.fix_subnet == str(fix)
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmrazor'):
        deployed = MODELS.build(cfg.model)
    from mmrazor.utils.checkpoint import safe_torch_load
    deployed.load_state_dict(
        safe_torch_load(str(ft / 'epoch_1.pth'))['state_dict'])
    x = torch.randn(2, 1, 28, 28)
    model.eval()
    deployed.eval()
    with torch.no_grad():
        torch.testing.assert_close(deployed(x), model(x))


def test_sub_model_refuses_other_algorithms():
    with pytest.raises(TypeError, match='GroupFisherAlgorithm'):
        GroupFisherSubModel(dict(type='mmrazor.BaseAlgorithm',
                                 architecture=classifier_cfg()))


def test_bn_sparsity_hook_adds_the_l1_subgradient():
    from mmrazor.core.hooks import BNSparsityHook
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(2, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
        torch.nn.Flatten(), torch.nn.LazyLinear(3))
    x = torch.randn(5, 2, 6, 6)
    model(x)  # materialise the lazy layer
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor([0.5, -0.2, 0.0, 1.5]))

    def grads():
        model.zero_grad()
        model(x).pow(2).mean().backward()
        return model[1].weight.grad.clone(), model[0].weight.grad.clone()

    plain_bn, plain_conv = grads()
    hook = BNSparsityHook(penalty=0.01)
    assert hook.penalise(model) == 1
    bn, conv = grads()
    # d/dgamma of 0.01 * |gamma|, written out (sign(0) = 0)
    expected = plain_bn + 0.01 * torch.tensor([1.0, -1.0, 0.0, 1.0])
    torch.testing.assert_close(bn, expected)
    torch.testing.assert_close(conv, plain_conv)  # only the norm scales
    hook.remove()
    torch.testing.assert_close(grads()[0], plain_bn)
    with pytest.raises(ValueError, match='penalty'):
        BNSparsityHook(penalty=-1)
