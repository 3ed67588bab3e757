"""The three-command pruning pipeline: ``tools/prune.py`` (score and prune
to a target), ``tools/train.py`` on the fine-tuning config it writes, and
``tools/deploy_subnet.py`` on the fine-tuned checkpoint."""
import json
import os.path as osp

import pytest
import torch
import yaml

from mmrazor.apis.prune import parse_target
from mmrazor.registry import MODELS
from mmrazor.utils import register_all_modules
from tool_runs import (REPO, default_scopes_restored, load_tool,
                       train_in_process)

L1_CONFIG = osp.join(REPO, 'configs', 'pruning', 'importance',
                     'resnet18-w16_l1-flops50_fashion-mnist.py')
TAYLOR_CONFIG = osp.join(REPO, 'configs', 'pruning', 'importance',
                         'resnet18-w16_taylor-flops20_fashion-mnist.py')
TINY_DATA = [
    'train_dataloader.dataset.indices=128',
    'val_dataloader.dataset.indices=250', 'train_dataloader.batch_size=32'
]


def quickstart_model():
    from mmengine.config import Config
    register_all_modules()
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'vanilla',
                                   'resnet18-w16_fashion-mnist.py'))
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model.eval()


def macs_of(model) -> float:
    """FLOPs counted by the hook-based estimator on a real forward pass
    (a computation independent of the analytic channel costs)."""
    from mmrazor.models.task_modules import ResourceEstimator
    estimator = ResourceEstimator(input_shape=(1, 1, 28, 28))
    return estimator.estimate(model)['flops']


@pytest.fixture
def trained_ckpt(tmp_path):
    model = quickstart_model()
    path = tmp_path / 'r18.pth'
    torch.save(model.state_dict(), path)
    return model, str(path)


def test_parse_target():
    assert parse_target('flops=0.5') == dict(flops=0.5)
    assert parse_target('flops=4x, params=0.5') == dict(flops=0.25,
                                                         params=0.5)
    with pytest.raises(ValueError, match='macs'):
        parse_target('macs=0.5')
    with pytest.raises(ValueError, match='half'):
        parse_target('flops=half')


def run_prune(argv):
    tool = load_tool('prune.py')
    with default_scopes_restored():
        assert tool.main(argv) == 0


def _deploy(checkpoint, subnet, out_dir):
    """``tools/deploy_subnet.py`` of the L1 config; the reloaded model."""
    from mmrazor.models.task_modules import load_deployed
    deploy = load_tool('deploy_subnet.py')
    with default_scopes_restored():
        code = deploy.main([
            L1_CONFIG, '--checkpoint', checkpoint, '--channel-cfg', subnet,
            '--input-shape', '1', '1', '28', '28', '--out-dir', out_dir
        ])
    assert code == 0
    return load_deployed(quickstart_model(), out_dir)


def test_prune_finetune_deploy(tmp_path, trained_ckpt, monkeypatch):
    model, ckpt = trained_ckpt
    out = tmp_path / 'pruned'
    run_prune([L1_CONFIG, ckpt, '--target', 'flops=3x', '--work-dir',
               str(out)])
    report = json.loads((out / 'prune_report.json').read_text())
    assert report['flops_ratio'] <= 1 / 3
    assert (out / 'kept_units.png').stat().st_size > 0
    subnet = yaml.safe_load((out / 'subnet.yaml').read_text())
    assert subnet  # one entry per layer

    # 1. the fine-tuning config builds the masked pruned model from the
    # unpruned checkpoint; physically pruned, it costs what the report says
    ft_cfg = str(out / 'finetune.py')
    runner = train_in_process(ft_cfg, str(tmp_path / 'ft'), [
        *TINY_DATA, 'train_cfg.max_epochs=1', 'default_hooks.checkpoint.'
        'save_best=None'
    ], monkeypatch)
    # it starts from the pruned model with recomputed BN statistics
    assert runner.cfg.load_from == str(out / 'pruned.pth')
    assert report['pruned_checkpoint'] == str(out / 'pruned.pth')
    assert runner.optim_wrapper.optimizer.param_groups[0]['initial_lr'] == \
        pytest.approx(0.01)  # the `finetune` schedule of the config
    finetuned = osp.join(str(tmp_path / 'ft'), 'epoch_1.pth')
    assert osp.exists(finetuned)

    # 2. deploy the fine-tuned checkpoint: deployed == masked, and the
    # deployed model's FLOPs (counted by the estimator) are the report's
    dep_dir = tmp_path / 'deployed'
    reloaded = _deploy(finetuned, str(out / 'subnet.yaml'),
                       str(dep_dir)).eval()
    dep_report = json.loads((dep_dir / 'deploy_report.json').read_text())
    assert dep_report['max_diff_deployed_vs_masked'] <= 1e-4
    base = macs_of(quickstart_model())
    assert macs_of(reloaded) / base == pytest.approx(
        report['flops_ratio'], rel=0.02)
    assert macs_of(reloaded) / base <= 1 / 3 + 0.005


def test_taylor_config_calibrates_on_training_batches(tmp_path,
                                                      trained_ckpt):
    _, ckpt = trained_ckpt
    out = tmp_path / 'pruned'
    run_prune([
        TAYLOR_CONFIG, ckpt, '--calib-batches', '2', '--work-dir',
        str(out), '--cfg-options', *TINY_DATA
    ])
    report = json.loads((out / 'prune_report.json').read_text())
    assert 'TaylorImportance' in report['importance']
    assert report['flops_ratio'] <= 0.2
    # every group keeps at least min_ratio=0.1 of its units
    from mmrazor.apis.config_compat import load_config
    register_all_modules()
    cfg = load_config(TAYLOR_CONFIG)
    from mmrazor.models.pruners import build_pruner
    pruner = build_pruner(dict(cfg.pruner), (1, 1, 28, 28))
    pruner.prepare_from_supernet(quickstart_model())
    for name, unit in pruner.units.items():
        assert report['kept_units'][name] >= 0.1 * unit.num_units


def test_unreachable_target_and_bad_pruner_name_the_problem(
        tmp_path, trained_ckpt):
    _, ckpt = trained_ckpt
    with pytest.raises(ValueError, match='cannot be reached'):
        run_prune([L1_CONFIG, ckpt, '--target', 'flops=0.001',
                   '--work-dir', str(tmp_path)])
    with pytest.raises(ValueError, match="prune_target: key 'macs'"):
        run_prune([L1_CONFIG, ckpt, '--work-dir', str(tmp_path),
                   '--cfg-options', 'prune_target.macs=0.5'])
    with pytest.raises(SystemExit, match='ImportancePruner'):
        run_prune([L1_CONFIG, ckpt, '--work-dir', str(tmp_path),
                   '--cfg-options', 'pruner.type=StructurePruner'])


def test_pruned_checkpoint_holds_the_pruned_models_bn_statistics(
        tmp_path, trained_ckpt):
    """``pruned.pth``: the unpruned weights, with every BatchNorm's running
    mean / variance those of its inputs in the pruned model, averaged over
    the ``--bn-batches`` training batches (written out here from a
    train-mode forward of the physically pruned model)."""
    from mmrazor.datasets import read_idx
    model, ckpt = trained_ckpt
    out = tmp_path / 'pruned'
    run_prune([
        L1_CONFIG, ckpt, '--target', 'flops=3x', '--bn-batches', '2',
        '--work-dir',
        str(out), '--cfg-options', 'train_dataloader.dataset.indices=128',
        'train_dataloader.batch_size=32',
        'train_dataloader.sampler.shuffle=False',
        'train_dataloader.dataset.pipeline.0.prob=0.0'
    ])
    saved = torch.load(out / 'pruned.pth', weights_only=True)
    assert saved['meta']['bn_recalibrated_batches'] == 2
    state = saved['state_dict']
    stats = ('running_mean', 'running_var', 'num_batches_tracked')
    for key, value in model.state_dict().items():
        if not key.endswith(stats):
            assert torch.equal(state[key], value), key

    subnet = str(out / 'subnet.yaml')
    recalibrated = _deploy(str(out / 'pruned.pth'), subnet,
                           str(tmp_path / 'dep_recal'))
    plain = _deploy(ckpt, subnet, str(tmp_path / 'dep_plain'))
    # the first 64 training images (file order, no flip), normalised
    images = read_idx(
        osp.join(REPO, 'data', 'fashion_mnist_subset',
                 'train-images-idx3-ubyte.gz'))[:64]
    x = (torch.from_numpy(images.astype('float32')).unsqueeze(1) -
         72.94) / 90.02
    inputs = {}
    bns = {
        name: m
        for name, m in plain.named_modules()
        if isinstance(m, torch.nn.BatchNorm2d)
    }
    for name, bn in bns.items():
        bn.register_forward_pre_hook(
            lambda m, args, name=name: inputs.setdefault(name, []).append(
                args[0].detach()))
    plain.train()
    with torch.no_grad():
        for batch in (x[:32], x[32:]):
            plain(batch, mode='tensor')
    new_bns = dict(recalibrated.named_modules())
    changed = 0
    for name, seen in inputs.items():
        means = [t.mean((0, 2, 3)) for t in seen]
        variances = [t.transpose(0, 1).flatten(1).var(1) for t in seen]
        expect_mean = sum(means) / len(means)
        expect_var = sum(variances) / len(variances)
        bn = new_bns[name]
        assert torch.allclose(bn.running_mean, expect_mean, atol=1e-4,
                              rtol=1e-4), name
        assert torch.allclose(bn.running_var, expect_var, atol=1e-4,
                              rtol=1e-4), name
        changed += not torch.allclose(bns[name].running_mean,
                                      expect_mean, atol=1e-3)
    assert len(inputs) == len(bns) > 10 and changed == len(bns)


def test_bn_batches_zero_keeps_the_unpruned_statistics(tmp_path,
                                                       trained_ckpt):
    _, ckpt = trained_ckpt
    out = tmp_path / 'pruned'
    run_prune([
        L1_CONFIG, ckpt, '--bn-batches', '0', '--work-dir',
        str(out)
    ])
    assert not (out / 'pruned.pth').exists()
    report = json.loads((out / 'prune_report.json').read_text())
    assert report['pruned_checkpoint'] == osp.abspath(ckpt)
    from mmengine.config import Config
    assert Config.fromfile(str(out / 'finetune.py')).load_from == \
        osp.abspath(ckpt)
    with pytest.raises(ValueError, match="calibration: bn_batches=-1"):
        run_prune([L1_CONFIG, ckpt, '--work-dir', str(out),
                   '--cfg-options', 'calibration.bn_batches=-1'])
    with pytest.raises(ValueError, match="calibration: key 'bn_batch'"):
        run_prune([L1_CONFIG, ckpt, '--work-dir', str(out),
                   '--cfg-options', 'calibration.bn_batch=4'])
    with pytest.raises(SystemExit):  # argparse: a negative count
        run_prune([L1_CONFIG, ckpt, '--work-dir', str(out),
                   '--bn-batches', '-1'])
    # training data that is not there: named, and how to do without it
    missing = ['--cfg-options',
               'train_dataloader.dataset.data_root=/no/such/folder']
    with pytest.raises(SystemExit, match='BatchNorm statistics .skip with '
                       '--bn-batches 0.*no/such/folder'):
        run_prune([L1_CONFIG, ckpt, '--work-dir', str(out), *missing])
    run_prune([L1_CONFIG, ckpt, '--work-dir', str(out), '--bn-batches',
               '0', *missing])  # L1 needs no data


MBV2_CONFIG = osp.join(REPO, 'configs', 'pruning', 'importance',
                       'mobilenet-v2_l1-flops50_fashion-mnist.py')


def test_mobilenet_v2_config_prunes_and_deploys(tmp_path):
    from mmengine.config import Config
    register_all_modules()
    cfg = Config.fromfile(MBV2_CONFIG)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    ckpt = tmp_path / 'mbv2.pth'
    torch.save(model.state_dict(), ckpt)
    out = tmp_path / 'pruned'
    run_prune([MBV2_CONFIG, str(ckpt), '--work-dir', str(out)])
    report = json.loads((out / 'prune_report.json').read_text())
    assert report['flops_ratio'] <= 0.5
    deploy = load_tool('deploy_subnet.py')
    dep_dir = tmp_path / 'deployed'
    with default_scopes_restored():
        code = deploy.main([
            MBV2_CONFIG, '--checkpoint',
            str(ckpt), '--channel-cfg',
            str(out / 'subnet.yaml'), '--input-shape', '1', '3', '32', '32',
            '--out-dir',
            str(dep_dir)
        ])
    assert code == 0
    dep_report = json.loads((dep_dir / 'deploy_report.json').read_text())
    assert dep_report['max_diff_deployed_vs_masked'] <= 1e-4
    assert dep_report['params_after'] == report['params']


@pytest.mark.parametrize('name, criterion, round_to', [
    ('resnet50_group-fisher-flops50_8xb32_in1k', 'GroupFisherImportance', 8),
    ('mobilenet-v2_group-fisher-flops50_8xb32_in1k', 'GroupFisherImportance',
     8),
])
def test_imagenet_configs_read(name, criterion, round_to):
    """The ImageNet configs (mmpretrain bases, nothing downloaded) give
    the pruning settings tools/prune.py reads."""
    from mmrazor.apis.config_compat import load_config
    from mmrazor.models.pruners import build_pruner
    register_all_modules()
    cfg = load_config(
        osp.join(REPO, 'configs', 'pruning', 'importance', f'{name}.py'))
    pruner = build_pruner(dict(cfg.pruner), cfg.input_shape)
    assert type(pruner.importance).__name__ == criterion
    assert pruner.round_to == round_to
    assert pruner.cost_normalization == 'flops'
    assert cfg.prune_target == dict(flops=0.5)
    assert cfg.calibration == dict(batches=64, bn_batches=64)
    assert tuple(cfg.input_shape) == (1, 3, 224, 224)
    assert cfg.train_dataloader.dataset.type.endswith('ImageNet')


def test_load_weights_names_a_checkpoint_of_other_shapes(tmp_path):
    """A sliced checkpoint where the unpruned shapes are expected: the
    error names the file and what to give instead."""
    from mmrazor.models.task_modules.deploy import load_weights
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3))
    sliced = torch.nn.Sequential(torch.nn.Conv2d(1, 5, 3))
    path = str(tmp_path / 'sliced.pth')
    torch.save({'state_dict': sliced.state_dict()}, path)
    with pytest.raises(RuntimeError, match='sliced.pth: its weights do '
                       'not have the unpruned shapes.*finetune/epoch_N'):
        load_weights(model, path)
