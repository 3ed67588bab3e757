"""Configs of the 0.x toolbox (mmcv runner era) translated and trained.

Unit tests map hand-written 0.x snippets through each entry of the
translation table (:mod:`mmrazor.apis.config_compat.v0`); end-to-end tests
run ``tools/train.py`` on the original 0.x configs for one or two
iterations, with only data paths, batch sizes and lengths given on the
command line. ImageNet-style configs read Fashion-MNIST exported as an
ImageNet folder; CIFAR-10 configs (DARTS) read
``mmrazor.FashionMNISTAsCIFAR`` (32x32x3 Fashion-MNIST), as mmpretrain's
CIFAR10 accepts only the official md5-checked files.
"""
import math
import os
import os.path as osp
import sys
from typing import Any, Dict, List

import pytest
import torch
import yaml
from mmengine.config import Config

from mmrazor.apis.config_compat import apply_subnet_file, load_config
from mmrazor.apis.config_compat.v0 import translate_0x
from mmrazor.apis.config_compat.v0_errors import Untranslatable
from mmrazor.utils.checkpoint import safe_torch_load
from tool_runs import default_scopes_restored, load_tool, train_in_process

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
# ../shared next to the checkout (as in CI)
SHARED = osp.join(osp.dirname(REPO), 'shared')
REFERENCE = osp.join(SHARED, 'reference', 'mmrazor-0.x', 'configs')
SUBNETS = osp.join(SHARED, 'peer', 'subnets', '0.x', 'configs')
FASHION_SUBSET = osp.join(REPO, 'data', 'fashion_mnist_subset')

needs_reference = pytest.mark.skipif(
    not osp.isdir(REFERENCE), reason='0.x reference configs not available')


# ------------------------------------------------------------------ helpers
def translate(**old: Any) -> Config:
    """Translate a minimal 0.x config holding ``old``."""
    base: Dict[str, Any] = dict(
        algorithm=dict(type='SPOS', architecture=dict(type='X')),
        runner=dict(type='EpochBasedRunner', max_epochs=4))
    base.update(old)
    return translate_0x(Config(base))


def imagenet_split(pipeline: List[dict], **kwargs: Any) -> dict:
    return dict(type='ImageNet', data_prefix='d/train', pipeline=pipeline,
                **kwargs)


def translated_pipeline(pipeline: List[dict]) -> List[dict]:
    cfg = translate(data=dict(samples_per_gpu=2, workers_per_gpu=0,
                              train=imagenet_split(pipeline)))
    return cfg.train_dataloader['dataset']['pipeline']


NORM = dict(type='Normalize', mean=[1., 2., 3.], std=[2., 2., 2.],
            to_rgb=True)


# ---------------------------------------------------------------- pipelines
@pytest.mark.parametrize('old, new', [
    (dict(type='RandomResizedCrop', size=224, scale=(0.25, 1.0)),
     dict(type='mmpretrain.RandomResizedCrop', scale=224,
          crop_ratio_range=(0.25, 1.0))),
    (dict(type='RandomResizedCrop', size=(20, 30), ratio=(0.5, 2.)),
     dict(type='mmpretrain.RandomResizedCrop', scale=(30, 20),
          aspect_ratio_range=(0.5, 2.))),
    (dict(type='RandomFlip', flip_prob=0.3, direction='horizontal'),
     dict(type='mmpretrain.RandomFlip', prob=0.3, direction='horizontal')),
    (dict(type='Resize', size=(256, -1), backend='pillow'),
     dict(type='mmpretrain.ResizeEdge', scale=256, edge='short',
          backend='pillow')),
    (dict(type='Resize', size=(20, 30)),
     dict(type='mmpretrain.Resize', scale=(30, 20))),
    (dict(type='Resize', size=32), dict(type='mmpretrain.Resize',
                                        scale=(32, 32))),
    (dict(type='CenterCrop', crop_size=(20, 30)),
     dict(type='mmpretrain.CenterCrop', crop_size=(30, 20))),
    (dict(type='RandomCrop', size=32, padding=4),
     dict(type='mmpretrain.RandomCrop', crop_size=32, padding=4)),
    (dict(type='ColorJitter', brightness=0.4),
     dict(type='mmpretrain.ColorJitter', brightness=0.4)),
    (dict(type='Lighting', eigval=[1.], eigvec=[[1.]]),
     dict(type='mmpretrain.Lighting', eigval=[1.], eigvec=[[1.]])),
])
def test_transform_table(old: dict, new: dict) -> None:
    pack = dict(type='mmpretrain.PackInputs')
    assert translated_pipeline([old]) == [new, pack]


def test_formatting_becomes_one_pack_inputs_and_normalize_the_model() -> None:
    cfg = translate(data=dict(
        samples_per_gpu=2, workers_per_gpu=0,
        train=imagenet_split([
            NORM, dict(type='ImageToTensor', keys=['img']),
            dict(type='ToTensor', keys=['gt_label']),
            dict(type='Collect', keys=['img', 'gt_label'])])),
        algorithm=dict(type='SPOS', architecture=dict(
            type='MMClsArchitecture', model=dict(type='ImageClassifier'))))
    assert cfg.train_dataloader['dataset']['pipeline'] == [
        dict(type='mmpretrain.PackInputs')]
    assert cfg.model['architecture']['model']['data_preprocessor'] == dict(
        type='mmpretrain.ClsDataPreprocessor', mean=[1., 2., 3.],
        std=[2., 2., 2.], to_rgb=True)


def test_cutout_after_normalize_pads_with_pixel_values() -> None:
    pipeline = translated_pipeline(
        [NORM, dict(type='Cutout', shape=4, pad_val=0, prob=1.)])
    # normalised 0 = the mean; RGB mean (1, 2, 3) in the loaded BGR order
    assert pipeline[0] == dict(type='mmpretrain.Cutout', shape=4,
                               pad_val=(3, 2, 1), prob=1.)


def test_unknown_transform_is_refused_by_position() -> None:
    with pytest.raises(Untranslatable, match=r'data.train.pipeline\[1\] '
                       r"\(type='AutoAugment'\)"):
        translated_pipeline([NORM, dict(type='AutoAugment', policies=[])])


def test_different_normalize_per_split_is_refused() -> None:
    other = dict(NORM, mean=[0., 0., 0.])
    with pytest.raises(Untranslatable, match='Normalize'):
        translate(data=dict(samples_per_gpu=2, workers_per_gpu=0,
                            train=imagenet_split([NORM]),
                            val=imagenet_split([other])))


# ------------------------------------------------------------------- data
def test_data_to_dataloaders() -> None:
    cfg = translate(data=dict(
        samples_per_gpu=8, workers_per_gpu=3,
        train=imagenet_split([]),
        val=imagenet_split([], ann_file='d/meta/val.txt')))
    assert cfg.train_dataloader == dict(
        batch_size=8, num_workers=3,
        sampler=dict(type='DefaultSampler', shuffle=True),
        dataset=dict(type='ImageNet', data_root='', data_prefix='d/train',
                     ann_file='', pipeline=[
                         dict(type='mmpretrain.PackInputs')]))
    assert cfg.val_dataloader['sampler']['shuffle'] is False
    assert cfg.val_dataloader['dataset']['ann_file'] == 'd/meta/val.txt'
    # mmcls 0.x validated every epoch with accuracy by default
    assert cfg.val_evaluator == dict(type='mmpretrain.Accuracy',
                                     topk=(1, 5))
    assert cfg.train_cfg == dict(by_epoch=True, max_epochs=4, val_interval=1)


def test_cifar_data_and_split_in_halves() -> None:
    cifar = dict(type='CIFAR10', data_prefix='data/cifar10', pipeline=[])
    cfg = translate(data=dict(samples_per_gpu=4, workers_per_gpu=0,
                              split=True, train=cifar,
                              test=dict(cifar, test_mode=True)))
    halves = cfg.train_dataloader
    assert [h['dataset']['type'] for h in halves] == [
        'mmpretrain.KFoldDataset'] * 2
    assert [h['dataset']['test_mode'] for h in halves] == [False, True]
    inner = halves[0]['dataset']['dataset']
    assert (inner['data_root'], inner['split'], inner['download']) == (
        'data/cifar10', 'train', False)
    assert cfg.test_dataloader['dataset']['split'] == 'test'


def test_unknown_data_key_is_refused() -> None:
    with pytest.raises(Untranslatable, match='data.shuffle'):
        translate(data=dict(samples_per_gpu=2, shuffle=True))


# --------------------------------------------------------------- schedule
def test_optimizer_and_grad_clip() -> None:
    cfg = translate(
        optimizer=dict(type='SGD', lr=0.1,
                       paramwise_cfg=dict(norm_decay_mult=0.)),
        optimizer_config=dict(grad_clip=dict(max_norm=5, norm_type=2)))
    assert cfg.optim_wrapper == dict(
        type='OptimWrapper', optimizer=dict(type='SGD', lr=0.1),
        paramwise_cfg=dict(norm_decay_mult=0.),
        clip_grad=dict(max_norm=5, norm_type=2))


def test_per_module_optimizers_and_frozen_schedule() -> None:
    cfg = translate(
        optimizer=dict(architecture=dict(type='SGD', lr=0.1),
                       mutator=dict(type='Adam', lr=1e-3)),
        optimizer_config=None,
        lr_config=dict(policy='CosineAnnealing', min_lr=1e-3,
                       freeze_optimizers=['mutator']))
    assert cfg.optim_wrapper['constructor'] == \
        'mmrazor.SeparateOptimWrapperConstructor'
    assert cfg.optim_wrapper['mutator']['optimizer'] == dict(type='Adam',
                                                             lr=1e-3)
    assert cfg.param_scheduler['mutator'] == []
    assert cfg.param_scheduler['architecture'] == [dict(
        type='CosineAnnealingLR', T_max=4, eta_min=1e-3, by_epoch=True,
        begin=0, end=4, convert_to_iter_based=False)]


def test_fp16_optimizer_hook_is_refused() -> None:
    with pytest.raises(Untranslatable, match='--amp'):
        translate(optimizer=dict(type='SGD', lr=0.1),
                  optimizer_config=dict(type='Fp16OptimizerHook',
                                        loss_scale=512.))


@pytest.mark.parametrize('lr_config, runner, schedulers', [
    (dict(policy='step', step=[1, 2]), dict(type='EpochBasedRunner',
                                            max_epochs=3),
     [dict(type='MultiStepLR', milestones=[1, 2], gamma=0.1,
           by_epoch=True)]),
    (dict(policy='poly', power=1., min_lr=0., by_epoch=False),
     dict(type='IterBasedRunner', max_iters=100),
     [dict(type='PolyLR', eta_min=0., power=1., by_epoch=False, begin=0,
           end=100)]),
    (dict(policy='poly', by_epoch=False), dict(type='EpochBasedRunner',
                                               max_epochs=5),
     [dict(type='PolyLR', eta_min=0., power=1., by_epoch=True, begin=0,
           end=5, convert_to_iter_based=True)]),
    (dict(policy='CosineAnnealing', min_lr_ratio=0.01, warmup='linear',
          warmup_iters=10, warmup_ratio=0.25),
     dict(type='EpochBasedRunner', max_epochs=5),
     [dict(type='LinearLR', start_factor=0.25, end_factor=1., by_epoch=False,
           begin=0, end=10),
      dict(type='CosineAnnealingLR', T_max=5, eta_min_ratio=0.01,
           by_epoch=True, begin=0, end=5, convert_to_iter_based=False)]),
])
def test_lr_policy_table(lr_config: dict, runner: dict,
                         schedulers: List[dict]) -> None:
    cfg = translate(lr_config=lr_config, runner=runner)
    assert cfg.param_scheduler == schedulers


def test_unknown_lr_policy_is_refused() -> None:
    with pytest.raises(Untranslatable, match="lr_config.policy='OneCycle'"):
        translate(lr_config=dict(policy='OneCycle', max_lr=1.))


def test_runner_table() -> None:
    cfg = translate(runner=dict(type='MultiLoaderIterBasedRunner',
                                max_iters=7))
    assert cfg.train_cfg == dict(by_epoch=False, max_iters=7)
    assert cfg.runner_type == 'MultiLoaderIterBasedRunner'
    with pytest.raises(Untranslatable, match="runner.type='MyRunner'"):
        translate(runner=dict(type='MyRunner', max_epochs=1))


def test_evaluation_to_val_keys() -> None:
    cfg = translate(
        data=dict(samples_per_gpu=1, val=imagenet_split([])),
        evaluation=dict(interval=5, metric=['accuracy', 'precision'],
                        metric_options=dict(topk=(1, )), save_best='auto'))
    assert cfg.val_evaluator == [
        dict(type='mmpretrain.Accuracy', topk=(1, )),
        dict(type='mmpretrain.SingleLabelMetric', items=['precision'])]
    assert cfg.train_cfg['val_interval'] == 5
    assert cfg.default_hooks['checkpoint']['save_best'] == 'auto'


# ---------------------------------------------------------------- runtime
def test_runtime_keys() -> None:
    cfg = translate(
        checkpoint_config=dict(interval=3, max_keep_ckpts=2),
        log_config=dict(interval=7, hooks=[
            dict(type='TextLoggerHook'),
            dict(type='TensorboardLoggerHook')]),
        dist_params=dict(backend='nccl'), resume_from='a.pth',
        opencv_num_threads=0, mp_start_method='fork',
        workflow=[('train', 1)], seed=3)
    assert cfg.default_hooks == dict(
        checkpoint=dict(type='CheckpointHook', by_epoch=True, interval=3,
                        max_keep_ckpts=2),
        logger=dict(type='LoggerHook', interval=7))
    assert [b['type'] for b in cfg.visualizer['vis_backends']] == [
        'LocalVisBackend', 'TensorboardVisBackend']
    assert cfg.env_cfg == dict(
        dist_cfg=dict(backend='nccl'),
        mp_cfg=dict(opencv_num_threads=0, mp_start_method='fork'))
    assert (cfg.resume, cfg.load_from) == (True, 'a.pth')
    assert cfg.randomness == dict(seed=3)
    assert cfg.default_scope == 'mmrazor'
    for old in ('workflow', 'algorithm', 'runner', 'resume_from', 'seed'):
        assert old not in cfg


@pytest.mark.parametrize('key', ['fp16', 'momentum_config', 'searcher'])
def test_refused_keys(key: str) -> None:
    with pytest.raises(Untranslatable, match=key):
        translate(**{key: dict(type='X')})


def test_subnet_url_is_refused_with_the_local_alternative() -> None:
    url = 'https://download.openmmlab.com/x_channel_cfg.yaml'
    with pytest.raises(Untranslatable,
                       match=r'algorithm.channel_cfg=.*--cfg-options '
                       r'algorithm.channel_cfg=FILE'):
        translate(algorithm=dict(type='AutoSlim', channel_cfg=['a.yaml',
                                                               url]))


def test_command_line_keys_of_the_new_vocabulary_win() -> None:
    cfg = translate(
        data=dict(samples_per_gpu=4, split=True, train=imagenet_split([])),
        runner=dict(type='MultiLoaderEpochBasedRunner', max_epochs=50),
        train_cfg=dict(max_iters=2), train_dataloader=dict(batch_size=1))
    assert cfg.train_cfg == dict(by_epoch=False, max_iters=2)
    assert cfg.runner_type == 'MultiLoaderIterBasedRunner'
    assert [d['batch_size'] for d in cfg.train_dataloader] == [1, 1]


def test_apply_subnet_file() -> None:
    cfg = translate(algorithm=dict(type='SPOS', mutable_cfg='a.yaml',
                                   retraining=True))
    assert apply_subnet_file(cfg, 'b.yaml')
    assert cfg.model['mutable_cfg'] == 'b.yaml'
    untranslated = Config(dict(algorithm=dict(type='AutoSlim',
                                              channel_cfg=['x'])))
    assert apply_subnet_file(untranslated, 'b.yaml')
    assert untranslated.algorithm['channel_cfg'] == 'b.yaml'
    assert not apply_subnet_file(translate(), 'b.yaml')
    assert not apply_subnet_file(cfg, None)


@needs_reference
def test_subnet_url_of_a_reference_config_is_refused() -> None:
    with pytest.raises(Untranslatable, match='algorithm.mutable_cfg'):
        load_config(osp.join(
            REFERENCE, 'nas/spos/spos_subnet_shufflenetv2_8xb128_in1k.py'))


# --------------------------------------------------------------- end to end
@pytest.fixture(scope='module')
def imagenet_folder(tmp_path_factory) -> str:
    """Fashion-MNIST (1 image per class and split) as an ImageNet folder."""
    from mmrazor.datasets import export_fashion_mnist
    return export_fashion_mnist(str(tmp_path_factory.mktemp('fm')),
                                per_class=1)


def imagenet_options(root: str, batch: int = 5) -> List[str]:
    """The data paths (and a small batch) of an mmcls 0.x ImageNet config."""
    opts = [f'data.samples_per_gpu={batch}', 'data.workers_per_gpu=0']
    for split, folder in (('train', 'train'), ('val', 'val'),
                          ('test', 'val')):
        opts += [f'data.{split}.data_prefix={root}/{folder}',
                 f'data.{split}.ann_file={root}/meta/{folder}.txt']
    return opts


def cifar_as_fashion_mnist_options() -> List[str]:
    """CIFAR-10 configs on ``mmrazor.FashionMNISTAsCIFAR`` (mmpretrain's
    CIFAR10 needs the official files); 4 held-out images to validate."""
    opts = ['data.samples_per_gpu=2', 'data.workers_per_gpu=0']
    for split in ('train', 'val', 'test'):
        opts += [f'data.{split}.type=mmrazor.FashionMNISTAsCIFAR',
                 f'data.{split}.data_prefix={FASHION_SUBSET}']
    for split in ('val', 'test'):
        opts += [f'data.{split}.holdout=4', f'data.{split}.part=holdout']
    return opts


def train(config: str, work_dir: str, options: List[str],
          monkeypatch) -> Any:
    """Run ``tools/train.py`` on an original 0.x config; return its
    runner."""
    return train_in_process(
        osp.join(REFERENCE, config), work_dir, options, monkeypatch)


def assert_trained(runner: Any, algorithm: str, work_dir: str) -> None:
    """The algorithm the config names was trained to a finite loss and its
    checkpoint loads into it."""
    model = runner.model.module if hasattr(runner.model, 'module') \
        else runner.model
    assert type(model).__name__ == algorithm
    losses = [v for k, v in runner.message_hub.log_scalars.items()
              if k.startswith('train/') and 'loss' in k]
    assert losses and all(math.isfinite(v.current()) for v in losses)
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        checkpoint = safe_torch_load(f.read().strip())
    model.load_state_dict(checkpoint['state_dict'], strict=True)


@needs_reference
def test_spos_supernet_0x(imagenet_folder, tmp_path, monkeypatch) -> None:
    work_dir = str(tmp_path)
    runner = train('nas/spos/spos_supernet_shufflenetv2_8xb128_in1k.py',
                   work_dir, imagenet_options(imagenet_folder, 2) +
                   ['runner.max_iters=2'], monkeypatch)
    assert_trained(runner, 'SPOS', work_dir)
    assert runner.model.mutator is not None  # a supernet, searched


def chosen_of_yaml(path: str) -> Dict[str, Any]:
    with open(path) as f:
        return {k: v['chosen'] for k, v in yaml.safe_load(f).items()}


@pytest.mark.e2e
@needs_reference
@pytest.mark.parametrize('config, algorithm, subnet', [
    ('nas/spos/spos_subnet_shufflenetv2_8xb128_in1k.py', 'SPOS',
     'nas/spos/SPOS_SHUFFLENETV2_330M_IN1k_PAPER.yaml'),
])
def test_nas_subnet_0x(config, algorithm, subnet, imagenet_folder, tmp_path,
                       monkeypatch, capsys) -> None:
    from mmrazor.structures import export_fix_subnet
    work_dir = str(tmp_path)
    subnet = osp.join(SUBNETS, subnet)
    runner = train(config, work_dir, imagenet_options(imagenet_folder, 2) +
                   ['runner.max_iters=2', f'algorithm.mutable_cfg={subnet}'],
                   monkeypatch)
    assert_trained(runner, algorithm, work_dir)
    exported, _ = export_fix_subnet(runner.model.architecture)
    chosen = {k: list(v.chosen) if isinstance(v.chosen, (list, tuple))
              else [v.chosen] for k, v in exported.items()}
    assert chosen == chosen_of_yaml(subnet)

    # the user path of evaluation: tools/test.py CONFIG CKPT --subnet FILE
    # on the original config (whose mutable_cfg is a URL, never read)
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        checkpoint = f.read().strip()
    tool = load_tool('test.py')
    monkeypatch.setattr(sys, 'argv', [
        'test.py', osp.join(REFERENCE, config), checkpoint, '--subnet', subnet,
        '--work-dir', osp.join(work_dir, 'test'), '--cfg-options',
        *imagenet_options(imagenet_folder, 2)
    ])
    with default_scopes_restored():
        tool.main()
    printed = capsys.readouterr().out
    assert 'Test metrics: accuracy/top1: ' in printed


@pytest.mark.e2e
@needs_reference
@pytest.mark.parametrize('config, algorithm, options', [
    ('nas/detnas/detnas_supernet_shufflenetv2_8xb128_in1k.py', 'SPOS',
     ['runner.max_iters=1', 'data.samples_per_gpu=2']),
    ('pruning/autoslim/autoslim_mbv2_supernet_8xb256_in1k.py', 'AutoSlim',
     ['runner.max_epochs=1']),
    ('distill/wsld/wsld_cls_head_resnet34_resnet18_8xb32_in1k.py',
     'GeneralDistill',
     ['runner.max_epochs=1', 'algorithm.distiller.teacher.init_cfg=None']),
    ('distill/rkd/rkd_neck_resnet34_resnet18_8xb32_in1k.py',
     'GeneralDistill',
     ['runner.max_epochs=1', 'algorithm.distiller.teacher.init_cfg=None']),
])
def test_imagenet_config_0x(config, algorithm, options, imagenet_folder,
                            tmp_path, monkeypatch) -> None:
    work_dir = str(tmp_path)
    runner = train(config, work_dir,
                   imagenet_options(imagenet_folder) + options, monkeypatch)
    assert_trained(runner, algorithm, work_dir)


@pytest.mark.e2e
@needs_reference
def test_autoslim_subnet_0x(imagenet_folder, tmp_path, monkeypatch) -> None:
    work_dir = str(tmp_path)
    subnet = osp.join(SUBNETS,
                      'pruning/autoslim/AUTOSLIM_MBV2_220M_OFFICIAL.yaml')
    runner = train('pruning/autoslim/autoslim_mbv2_subnet_8xb256_in1k.py',
                   work_dir, imagenet_options(imagenet_folder) +
                   ['runner.max_epochs=1', f'algorithm.channel_cfg={subnet}'],
                   monkeypatch)
    assert_trained(runner, 'AutoSlim', work_dir)
    with open(subnet) as f:
        widths = yaml.safe_load(f)
    modules = dict(runner.model.architecture.model.named_modules())
    for name, width in widths.items():
        module = modules[name]
        got = getattr(module, 'out_channels',
                      getattr(module, 'num_features',
                              getattr(module, 'out_features', None)))
        assert got == width['out_channels'], name


@pytest.mark.e2e
@needs_reference
def test_darts_supernet_0x(tmp_path, monkeypatch) -> None:
    work_dir = str(tmp_path)
    runner = train('nas/darts/darts_supernet_unroll_1xb64_cifar10.py',
                   work_dir, cifar_as_fashion_mnist_options() +
                   ['train_cfg.max_iters=2', 'train_cfg.val_interval=2'],
                   monkeypatch)
    assert_trained(runner, 'Darts', work_dir)
    assert os.listdir(osp.join(work_dir, 'subnets'))  # SearchSubnetHook


@pytest.mark.e2e
@needs_reference
def test_darts_subnet_0x(tmp_path, monkeypatch) -> None:
    work_dir = str(tmp_path)
    subnet = osp.join(SUBNETS, 'nas/darts/DARTS_SUBNET_CIFAR_PAPER.yaml')
    runner = train('nas/darts/darts_subnet_1xb96_cifar10.py', work_dir,
                   cifar_as_fashion_mnist_options() +
                   ['train_cfg.max_iters=2',
                    f'algorithm.mutable_cfg={subnet}'], monkeypatch)
    assert_trained(runner, 'Darts', work_dir)


def test_1x_config_with_a_helper_algorithm_variable_is_not_0x():
    # a 1.x fine-tuning config keeps the pruning algorithm in a variable
    # named `algorithm` and wraps it in `model`
    from mmrazor.apis.config_compat.v0 import is_0x_config
    algorithm = dict(type='GroupFisherAlgorithm', architecture=dict())
    assert not is_0x_config(
        Config(dict(algorithm=algorithm,
                    model=dict(type='GroupFisherSubModel',
                               algorithm=algorithm))))
    assert is_0x_config(
        Config(dict(algorithm=dict(type='SPOS', architecture=dict()),
                    model=dict(type='mmcls.ImageClassifier'))))
