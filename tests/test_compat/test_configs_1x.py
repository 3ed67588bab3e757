"""Configs of the 1.x toolbox (MMRazor 1.x on mmcls 1.x) read and trained.

Unit tests cover the resolution of ``pkg::path`` base configs without
``pkg_resources`` (:mod:`mmrazor.apis.config_compat.bases`) and every entry
of the 1.x rename table (:mod:`mmrazor.apis.config_compat.v1`).
Training tests run ``tools/train.py`` (its ``main()``, in this process) on
the original 1.x configs for an epoch of one or two iterations, with data
paths, batch sizes and lengths on the command line only. ImageNet configs
read Fashion-MNIST exported as an ImageNet folder; CIFAR-10 configs (DARTS)
read ``mmrazor.FashionMNISTAsCIFAR`` (32x32x3 Fashion-MNIST, the subset
shipped in ``data/``), as mmpretrain's CIFAR10 accepts only the official
md5-checked files and would try to download them.
"""
import importlib.util
import os.path as osp
from typing import Any, Dict, List

import pytest
import torch
import yaml
from mmengine.config import Config

from mmrazor.apis.config_compat import load_config, sibling_config_bases
from mmrazor.apis.config_compat import v1
from mmrazor.apis.config_compat.bases import (MMRAZOR_CONFIGS,
                                              BaseConfigNotFoundError,
                                              resolve_base)
from mmrazor.utils.checkpoint import safe_torch_load
from tool_runs import train_in_process

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
# ../shared next to the checkout (as in CI)
SHARED = osp.join(osp.dirname(REPO), 'shared')
REFERENCE = osp.join(SHARED, 'reference', 'mmrazor-1.x', 'configs')
PEER_SUBNETS = osp.join(SHARED, 'peer', 'subnets', '1.x', 'configs')

needs_reference = pytest.mark.skipif(
    not osp.isdir(REFERENCE), reason='1.x reference configs not available')


def mmpretrain_configs() -> str:
    """mmpretrain's shipped configs, found independently of the code."""
    spec = importlib.util.find_spec('mmpretrain')
    return osp.join(osp.dirname(spec.origin), '.mim', 'configs')


def write(path: str, text: str) -> str:
    """Write ``text`` to ``path`` (folders created) and return ``path``."""
    import os
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        f.write(text)
    return path


# ------------------------------------------------------------------ bases
def test_mmcls_base_resolves_to_mmpretrain_file(tmp_path):
    reading = str(tmp_path / 'cfg.py')
    found = resolve_base('mmcls::_base_/default_runtime.py', reading, reading)
    expected = osp.join(mmpretrain_configs(), '_base_', 'default_runtime.py')
    assert osp.samefile(found, expected)


def test_mmpretrain_base_resolves_to_the_same_file(tmp_path):
    reading = str(tmp_path / 'cfg.py')
    assert resolve_base('mmpretrain::_base_/default_runtime.py', reading,
                        reading) == resolve_base(
                            'mmcls::_base_/default_runtime.py', reading,
                            reading)


def test_mmdet2_rcnn_config_names_get_their_mmdet3_spelling():
    from mmrazor.apis.config_compat.bases import candidate_names
    assert candidate_names(
        'mmdet', 'faster_rcnn/faster_rcnn_r50_fpn_1x_coco.py') == [
            'faster_rcnn/faster_rcnn_r50_fpn_1x_coco.py',
            'faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'
        ]
    # other packages and other detectors keep their one name
    assert candidate_names(
        'mmdet', 'retinanet/retinanet_r50_fpn_1x_coco.py') == [
            'retinanet/retinanet_r50_fpn_1x_coco.py'
        ]
    assert candidate_names('mmseg', 'x/faster_rcnn_y.py') == [
        'x/faster_rcnn_y.py'
    ]


def test_unknown_package_names_base_and_package(tmp_path):
    reading = str(tmp_path / 'cfg.py')
    with pytest.raises(BaseConfigNotFoundError) as err:
        resolve_base('mmnosuchbox::_base_/x.py', reading, reading)
    message = str(err.value)
    assert 'mmnosuchbox::_base_/x.py' in message
    assert 'package mmnosuchbox' in message
    assert 'not installed' in message and reading in message


def test_missing_file_names_where_it_looked(tmp_path):
    reading = str(tmp_path / 'cfg.py')
    with pytest.raises(BaseConfigNotFoundError) as err:
        resolve_base('mmcls::_base_/no_such_file.py', reading, reading)
    message = str(err.value)
    assert 'mmcls::_base_/no_such_file.py' in message
    assert 'package mmpretrain' in message
    assert mmpretrain_configs() in message


def test_missing_mmrazor_base_names_the_trees(tmp_path):
    reading = str(tmp_path / 'a' / 'cfg.py')
    with pytest.raises(BaseConfigNotFoundError) as err:
        resolve_base('mmrazor::_base_/nowhere.py', reading, reading)
    assert 'mmrazor::_base_/nowhere.py' in str(err.value)
    assert MMRAZOR_CONFIGS in str(err.value)


def test_mmrazor_base_prefers_the_configs_tree_of_the_config(tmp_path):
    tree = tmp_path / 'configs'
    write(str(tree / '_base_' / 'default_runtime.py'), 'marker = "mine"\n')
    cfg_file = write(str(tree / 'nas' / 'x' / 'cfg.py'),
                     "_base_ = ['mmrazor::_base_/default_runtime.py']\n")
    assert load_config(cfg_file).marker == 'mine'


def test_mmrazor_base_falls_back_to_mmrazor_configs(tmp_path):
    cfg_file = write(str(tmp_path / 'cfg.py'),
                     "_base_ = ['mmrazor::_base_/default_runtime.py']\n")
    cfg = load_config(cfg_file)
    own = Config.fromfile(
        osp.join(REPO, 'configs', '_base_', 'default_runtime.py'))
    assert cfg.default_scope == own.default_scope == 'mmrazor'


def test_mmcls_base_loads_with_its_scope_translated(tmp_path):
    cfg_file = write(str(tmp_path / 'cfg.py'),
                     "_base_ = ['mmcls::_base_/default_runtime.py']\n")
    cfg = load_config(cfg_file)
    assert cfg.default_scope == 'mmpretrain'
    assert cfg.default_hooks.timer._scope_ == 'mmpretrain'


def test_patch_is_restored_on_exit_and_on_error(tmp_path):
    original = Config.__dict__['_get_cfg_path']
    with sibling_config_bases(str(tmp_path / 'cfg.py')):
        assert Config.__dict__['_get_cfg_path'] is not original
    assert Config.__dict__['_get_cfg_path'] is original
    bad = write(str(tmp_path / 'bad.py'), "_base_ = ['mmcls::nope.py']\n")
    with pytest.raises(BaseConfigNotFoundError):
        load_config(bad)
    assert Config.__dict__['_get_cfg_path'] is original


def test_relative_bases_still_resolve(tmp_path):
    write(str(tmp_path / 'base.py'), 'a = 1\n')
    cfg_file = write(str(tmp_path / 'cfg.py'), "_base_ = './base.py'\nb = 2\n")
    cfg = load_config(cfg_file)
    assert (cfg.a, cfg.b) == (1, 2)


@needs_reference
def test_moved_mmrazor_base_resolves_in_the_original_tree():
    cfg = load_config(
        osp.join(
            REFERENCE, 'nas/mmdet/detnas/'
            'detnas_shufflenet_supernet_8xb128_in1k.py'))
    assert cfg.model.type == 'mmrazor.SPOS'


# ------------------------------------------------------------- v1 renames
def translated(**entries: Any) -> Config:
    return v1.translate_1x(Config(entries))


@pytest.mark.parametrize('old', sorted(v1.TYPE_RENAMES))
def test_each_type_rename(old):
    cfg = translated(thing=dict(type=old))
    assert cfg.thing.type == v1.TYPE_RENAMES[old].new


@pytest.mark.parametrize('old', sorted(v1.TYPE_RENAMES))
def test_each_renamed_type_exists(old):
    from mmrazor.registry import REGISTRIES
    from mmrazor.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    new = v1.TYPE_RENAMES[old].new
    assert any(registry.get(new) is not None for registry in REGISTRIES), new
    assert all(registry.get(old) is None for registry in REGISTRIES), old


def test_mmcls_prefixed_renamed_type():
    cfg = translated(pipeline=[dict(type='mmcls.PackClsInputs')])
    assert cfg.pipeline[0].type == 'mmpretrain.PackInputs'


def test_mmcls_prefix_of_mmpretrain_class():
    cfg = translated(dataset=dict(type='mmcls.CIFAR10'))
    assert cfg.dataset.type == 'mmpretrain.CIFAR10'


def test_mmcls_prefix_of_mmengine_class_dropped():
    cfg = translated(optimizer=dict(type='mmcls.SGD', lr=0.1),
                     sampler=dict(type='mmcls.DefaultSampler'))
    assert (cfg.optimizer.type, cfg.sampler.type) == ('SGD', 'DefaultSampler')


def test_scope_renames():
    cfg = translated(default_scope='mmcls',
                     model=dict(_scope_='mmcls',
                                type='ImageClassifier',
                                head=dict(_scope_='mmcls',
                                          type='LinearClsHead')))
    assert cfg.default_scope == 'mmpretrain'
    assert cfg.model._scope_ == cfg.model.head._scope_ == 'mmpretrain'


def test_other_names_untouched():
    cfg = translated(default_scope='mmrazor',
                     model=dict(_scope_='mmrazor', type='mmrazor.SPOS'),
                     hook=dict(type='mmdet.DetVisualizationHook'),
                     preprocessor=dict(type='ClsDataPreprocessor'))
    assert cfg.default_scope == 'mmrazor'
    # mmpretrain 1.2 still registers ClsDataPreprocessor (no
    # DataPreprocessor), so it is not renamed
    assert cfg.preprocessor.type == 'ClsDataPreprocessor'
    assert (cfg.model._scope_, cfg.model.type) == ('mmrazor', 'mmrazor.SPOS')
    assert cfg.hook.type == 'mmdet.DetVisualizationHook'


def test_dump_subnet_hook_arguments_renamed():
    cfg = translated(custom_hooks=[
        dict(type='mmrazor.DumpSubnetHook', interval=10, max_keep_subnets=2)
    ])
    hook = cfg.custom_hooks[0]
    assert hook.type == 'mmrazor.SearchSubnetHook'
    assert hook.max_keep_ckpts == 2 and 'max_keep_subnets' not in hook


def test_darts_loop_becomes_multi_loader_runner():
    weights = dict(batch_size=2, dataset=dict(type='A'))
    arch = dict(batch_size=3, dataset=dict(type='B'))
    cfg = translated(train_dataloader=weights,
                     train_cfg=dict(type='mmrazor.DartsEpochBasedTrainLoop',
                                    mutator_dataloader=arch,
                                    max_epochs=5))
    assert cfg.runner_type == v1.MULTI_LOADER_RUNNER
    assert [d.batch_size for d in cfg.train_dataloader] == [2, 3]
    assert cfg.train_cfg.to_dict() == dict(max_epochs=5)


def test_darts_loop_without_mutator_loader_fails_by_name():
    with pytest.raises(KeyError, match='mutator_dataloader'):
        translated(train_dataloader=dict(),
                   train_cfg=dict(type='DartsEpochBasedTrainLoop'))


def test_relative_subnet_file_found_above_the_config(tmp_path):
    subnet = write(str(tmp_path / 'configs' / 'nas' / 'S.yaml'), 'a: 1\n')
    cfg_file = write(
        str(tmp_path / 'configs' / 'nas' / 'cfg.py'),
        "model = dict(type='sub_model', fix_subnet='configs/nas/S.yaml')\n")
    cfg = load_config(cfg_file)
    assert osp.samefile(cfg.model.fix_subnet, subnet)


def test_missing_subnet_file_left_as_written(tmp_path):
    cfg_file = write(str(tmp_path / 'cfg.py'),
                     "model = dict(fix_subnet='configs/none.yaml')\n")
    assert load_config(cfg_file).model.fix_subnet == 'configs/none.yaml'


def test_renames_are_logged(monkeypatch):
    messages: List[str] = []
    monkeypatch.setattr(v1, 'print_log',
                        lambda msg, **kwargs: messages.append(msg))
    translated(a=dict(type='PackClsInputs'),
               b=dict(type='PackClsInputs'),
               c=dict(_scope_='mmcls', type='X'))
    assert any('PackClsInputs -> PackInputs (2x)' in m for m in messages)
    assert any('_scope_ mmcls -> mmpretrain' in m for m in messages)


# ------------------------------------------------------- distill: loading
DISTILL_CONFIGS = [
    'distill/mmcls/kd/kd_logits_resnet34_resnet18_8xb32_in1k.py',
    'distill/mmcls/dkd/dkd_resnet34_resnet18_8xb32_in1k.py',
    'distill/mmcls/wsld/wsld_logits_resnet34_resnet18_8xb32_in1k.py',
]


@needs_reference
@pytest.mark.parametrize('name', DISTILL_CONFIGS)
def test_distill_configs_load(name):
    path = osp.join(REFERENCE, name)
    if not osp.isfile(path):
        pytest.skip(f'{name} not in this reference tree')
    cfg = load_config(path)
    assert cfg.model.distiller.type == 'ConfigurableDistiller'
    # architecture=dict(cfg_path='mmcls::resnet/...', ...) became the model
    for side in ('architecture', 'teacher'):
        model = cfg.model[side]
        assert (model.type, model._scope_) == ('ImageClassifier', 'mmpretrain')
    assert cfg.model.architecture.backbone.depth == 18
    assert 'mmcls' not in cfg.pretty_text


def resnet34_weights() -> str:
    """The weights mmpretrain's ResNet metafile publishes for ResNet-34."""
    metafile = read_yaml(
        osp.join(mmpretrain_configs(), 'resnet', 'metafile.yml'))
    for model in metafile['Models']:
        if model['Config'] == 'configs/resnet/resnet34_8xb32_in1k.py':
            return model['Weights']
    raise AssertionError('ResNet-34 not in the metafile')


def test_cfg_path_pretrained_gets_published_weights(tmp_path):
    cfg_file = write(
        str(tmp_path / 'cfg.py'), "model = dict(type='X', teacher=dict(\n"
        "    cfg_path='mmcls::resnet/resnet34_8xb32_in1k.py',\n"
        '    pretrained=True))\n')
    teacher = load_config(cfg_file).model.teacher
    assert teacher.backbone.depth == 34
    assert teacher.init_cfg == dict(type='Pretrained',
                                    checkpoint=resnet34_weights())


def test_cfg_path_with_other_keys_fails_by_name(tmp_path):
    cfg_file = write(
        str(tmp_path / 'cfg.py'), "model = dict(type='X', teacher=dict(\n"
        "    cfg_path='mmcls::resnet/resnet34_8xb32_in1k.py', depth=3))\n")
    with pytest.raises(ValueError, match=r"keys \['depth'\]"):
        load_config(cfg_file)


def test_cfg_path_model_overrides_the_named_model(tmp_path):
    cfg_file = write(
        str(tmp_path / 'cfg.py'), "model = dict(type='X', teacher=dict(\n"
        "    cfg_path='mmcls::resnet/resnet34_8xb32_in1k.py',\n"
        '    pretrained=True))\n')
    # as `--cfg-options model.teacher.model.init_cfg=None ...` gives them
    teacher = load_config(cfg_file, {
        'model.teacher.model.init_cfg': None,
        'model.teacher.model.head.num_classes': 3
    }).model.teacher
    assert teacher.init_cfg is None
    assert teacher.head.num_classes == 3
    assert teacher.head.in_channels == 512 and teacher.backbone.depth == 34


def test_cfg_path_model_must_be_a_dict(tmp_path):
    cfg_file = write(
        str(tmp_path / 'cfg.py'), "model = dict(type='X', teacher=dict(\n"
        "    cfg_path='mmcls::resnet/resnet34_8xb32_in1k.py', model=3))\n")
    with pytest.raises(ValueError, match='`model` must be a dict'):
        load_config(cfg_file)


def test_moved_mmcls_base_resolves_to_its_new_name(tmp_path):
    reading = str(tmp_path / 'cfg.py')
    found = resolve_base('mmcls::deit/deit-base_pt-16xb64_in1k.py', reading,
                         reading)
    assert osp.samefile(
        found,
        osp.join(mmpretrain_configs(), 'deit', 'deit-base_16xb64_in1k.py'))


# ---------------------------------------------------------------- training
def run_train(config: str, work_dir: str, options: List[str],
              monkeypatch) -> Any:
    """Run ``tools/train.py`` on an original 1.x config; return its
    runner."""
    return train_in_process(
        osp.join(REFERENCE, config), work_dir, options, monkeypatch)


def loaders_fast(*keys: str) -> List[str]:
    """Small batches, no worker processes, for each loader key."""
    options = []
    for key in keys:
        options += [
            f'{key}.batch_size=4', f'{key}.num_workers=0',
            f'{key}.persistent_workers=False'
        ]
    return options


LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


@pytest.fixture(scope='module')
def imagenet_folder(tmp_path_factory) -> str:
    from mmrazor.datasets import export_fashion_mnist
    return export_fashion_mnist(str(
        tmp_path_factory.mktemp('fashion_imagenet')),
                                per_class=1)


def imagenet_options(root: str) -> List[str]:
    """Data paths and a one-epoch schedule for ImageNet-style configs."""
    options = [f'{key}.dataset.data_root={root}' for key in LOADERS]
    options += [
        'train_dataloader.dataset.indices=4',
        'val_dataloader.dataset.indices=4', 'train_cfg.max_epochs=1'
    ]
    return options + loaders_fast(*LOADERS)


def cifar_options(*train_keys: str) -> List[str]:
    """Fashion-MNIST as CIFAR (4 images per loader), one epoch."""
    options = []
    for key in (*train_keys, 'val_dataloader', 'test_dataloader'):
        options += [
            f'{key}.dataset.type=mmrazor.FashionMNISTAsCIFAR',
            f'{key}.dataset.indices=4'
        ]
    return options + ['train_cfg.max_epochs=1'] + loaders_fast(
        *train_keys, 'val_dataloader', 'test_dataloader')


def checkpoint_state(work_dir: str) -> Dict[str, torch.Tensor]:
    path = osp.join(work_dir, 'epoch_1.pth')
    assert osp.isfile(path), f'no checkpoint in {work_dir}'
    return safe_torch_load(path)['state_dict']


def candidates_in(state: Dict[str, torch.Tensor], layer: str) -> set:
    """Names of the candidate ops of ``layer`` present in a state dict."""
    marker = f'{layer}.candidates.'
    return {k[len(marker):].split('.')[0] for k in state if marker in k}


def as_set(chosen: Any) -> set:
    """A choice as a set: the published DARTS file writes one op as a
    one-item list, edges as a list."""
    return set(chosen) if isinstance(chosen, (list, tuple)) else {chosen}


def read_yaml(path: str) -> dict:
    with open(path) as f:
        return yaml.safe_load(f)


SPOS_SUPERNET = 'nas/mmcls/spos/spos_shufflenet_supernet_8xb128_in1k.py'
SPOS_SUBNET = 'nas/mmcls/spos/spos_shufflenet_subnet_8xb128_in1k.py'
DETNAS_SUPERNET = 'nas/mmdet/detnas/detnas_shufflenet_supernet_8xb128_in1k.py'
DARTS_SUPERNET = 'nas/mmcls/darts/darts_supernet_unroll_1xb96_cifar10.py'
DARTS_SUBNET = 'nas/mmcls/darts/darts_subnet_1xb96_cifar10_2.0.py'
SHUFFLE_OPS = {'shuffle_3x3', 'shuffle_5x5', 'shuffle_7x7', 'shuffle_xception'}


@needs_reference
@pytest.mark.parametrize('config', [SPOS_SUPERNET, DETNAS_SUPERNET])
def test_train_spos_supernets(config, imagenet_folder, tmp_path, monkeypatch):
    from mmrazor.models import SPOS
    runner = run_train(config, str(tmp_path),
                       imagenet_options(imagenet_folder), monkeypatch)
    assert type(runner.model) is SPOS
    state = checkpoint_state(str(tmp_path))
    assert candidates_in(state,
                         'architecture.backbone.layers.0.0') == SHUFFLE_OPS


@needs_reference
def test_train_spos_subnet_fixed_to_published_file(imagenet_folder, tmp_path,
                                                   monkeypatch):
    from mmpretrain.models import ImageClassifier
    subnet_file = osp.join(PEER_SUBNETS, 'nas/mmcls/spos/SPOS_SUBNET.yaml')
    options = imagenet_options(imagenet_folder) + [
        f'model.fix_subnet={subnet_file}', 'model.init_cfg=None'
    ]
    runner = run_train(SPOS_SUBNET, str(tmp_path), options, monkeypatch)
    assert type(runner.model) is ImageClassifier
    published = read_yaml(subnet_file)
    modules = dict(runner.model.named_modules())
    assert {k: modules[k].current_choice for k in published} == \
        {k: v['chosen'] for k, v in published.items()}
    assert all(modules[k].is_fixed for k in published)
    state = checkpoint_state(str(tmp_path))
    for key, value in published.items():
        assert candidates_in(state, key) == {value['chosen']}


@needs_reference
def test_train_darts_supernet(tmp_path, monkeypatch):
    from mmrazor.models import Darts
    options = cifar_options('train_dataloader', 'train_cfg.mutator_dataloader')
    runner = run_train(DARTS_SUPERNET, str(tmp_path), options, monkeypatch)
    assert type(runner.model) is Darts
    assert type(runner).__name__ == 'MultiLoaderEpochBasedRunner'
    state = checkpoint_state(str(tmp_path))
    assert any(k.startswith('mutator.') for k in state)
    genotype = read_yaml(osp.join(str(tmp_path), 'subnets', 'latest.yaml'))
    assert set(genotype) >= {'normal_n2', 'reduce_n5'}


@needs_reference
def test_train_darts_subnet_fixed_to_its_file(tmp_path, monkeypatch):
    from mmpretrain.models import ImageClassifier

    from mmrazor.structures import export_fix_subnet
    options = cifar_options('train_dataloader') + ['model.init_cfg=None']
    runner = run_train(DARTS_SUBNET, str(tmp_path), options, monkeypatch)
    assert type(runner.model) is ImageClassifier
    # model.fix_subnet, relative to the original repository's root, was
    # found in the reference tree above the config
    published = read_yaml(
        osp.join(REFERENCE, 'nas/mmcls/darts/'
                 'DARTS_SUBNET_CIFAR_PAPER_ALIAS.yaml'))
    fixed, _ = export_fix_subnet(runner.model)
    # every route (which edges feed a node) is fixed as published; the ops
    # of edges a route left out are dropped with them
    routes = {k for k in published if '_p' not in k}
    assert routes <= set(fixed) <= set(published)
    assert {k: as_set(v.chosen) for k, v in fixed.items()} == \
        {k: as_set(published[k]['chosen']) for k in fixed}
    checkpoint_state(str(tmp_path))


AUTOSLIM_SUPERNET = ('nas/mmcls/autoslim/'
                     'autoslim_mbv2_1.5x_supernet_8xb256_in1k.py')


@needs_reference
def test_train_autoslim_supernet(imagenet_folder, tmp_path, monkeypatch):
    from mmrazor.models import AutoSlim
    runner = run_train(AUTOSLIM_SUPERNET, str(tmp_path),
                       imagenet_options(imagenet_folder), monkeypatch)
    model = runner.model
    assert type(model) is AutoSlim
    # num_random_samples=2: the widest, the narrowest and two random widths
    assert model.num_sample_training == 4
    assert model.pruner.ratios == [i / 12 for i in range(2, 13)]
    assert type(model.distill_loss).__name__ == 'KLDivergence'
    assert any('architecture.backbone' in k
               for k in checkpoint_state(str(tmp_path)))


# --------------------------------------------- AutoSlim's 1.x arguments
ONE_SHOT_MUTATOR = dict(type='OneShotChannelMutator',
                        channel_unit_cfg=dict(type='OneShotMutableChannelUnit',
                                              default_args=dict(
                                                  candidate_choices=[0.5, 1.0],
                                                  choice_mode='ratio',
                                                  divisor=8)),
                        parse_cfg=dict(type='ChannelAnalyzer',
                                       demo_input=(1, 3, 32, 32),
                                       tracer_type='BackwardTracer'))


def logits_distiller(student_source: str = 'head.fc') -> dict:
    return dict(
        type='ConfigurableDistiller',
        teacher_recorders=dict(
            fc=dict(type='ModuleOutputs', source='head.fc')),
        student_recorders=dict(
            fc=dict(type='ModuleOutputs', source=student_source)),
        distill_losses=dict(loss_kl=dict(type='KLDivergence', tau=2)),
        loss_forward_mappings=dict(
            loss_kl=dict(preds_S=dict(recorder='fc', from_student=True),
                         preds_T=dict(recorder='fc', from_student=False))))


def test_autoslim_num_random_samples():
    from mmrazor.models.algorithms.pruning.autoslim import sandwich_size
    assert sandwich_size(None, None) == 4
    assert sandwich_size(3, None) == 3
    assert sandwich_size(None, 2) == sandwich_size(4, 2) == 4
    with pytest.raises(ValueError, match='num_random_samples=2'):
        sandwich_size(3, 2)


def test_autoslim_1x_mutator_becomes_ratio_pruner():
    from mmrazor.models.algorithms.pruning.autoslim import \
        pruner_of_1x_mutator
    pruner, shape = pruner_of_1x_mutator(ONE_SHOT_MUTATOR)
    assert pruner == dict(type='RatioPruner', ratios=(0.5, 1.0))
    assert shape == (3, 32, 32)


@pytest.mark.parametrize('change, message', [
    (dict(type='SlimmableChannelMutator'), 'OneShotChannelMutator'),
    (dict(extra=1), "keys ['extra']"),
    (dict(channel_unit_cfg=dict(type='OneShotMutableChannelUnit',
                                default_args=dict(candidate_choices=[8],
                                                  choice_mode='number'))),
     'choice_mode'),
])
def test_autoslim_1x_mutator_refused_by_name(change, message):
    from mmrazor.models.algorithms.pruning.autoslim import \
        pruner_of_1x_mutator
    with pytest.raises(ValueError, match=message.replace('[', r'\[')):
        pruner_of_1x_mutator({**ONE_SHOT_MUTATOR, **change})


def test_autoslim_configurable_distiller_gives_its_loss():
    from mmrazor.models.algorithms.pruning.autoslim import \
        logits_loss_of_configurable_distiller as loss_of
    assert loss_of(logits_distiller(),
                   '') == ('head.fc', dict(type='KLDivergence', tau=2))
    with pytest.raises(ValueError, match='one module as student'):
        loss_of(logits_distiller('neck'), '')


# ------------------------------------------------------------- sub_model
@needs_reference
def test_sub_model_deploy_mode_builds_static_subnet():
    from mmrazor.models import sub_model
    from mmrazor.structures import Searchable
    from mmrazor.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    supernet = load_config(osp.join(REFERENCE, SPOS_SUPERNET)).supernet
    subnet_file = osp.join(PEER_SUBNETS, 'nas/mmcls/spos/SPOS_SUBNET.yaml')
    model = sub_model(supernet.to_dict(), subnet_file, mode='deploy')
    assert not any(isinstance(m, Searchable) for m in model.modules())
    with torch.no_grad():
        logits = model(torch.rand(1, 3, 64, 64), mode='tensor')
    assert logits.shape == (1, 1000)


@pytest.mark.parametrize('kwargs, message', [
    (dict(mode='export'), 'mode must be one of'),
    (dict(extra_prefix='architecture.'), 'extra_prefix'),
])
def test_sub_model_refuses_unknown_arguments(kwargs, message):
    from mmrazor.models import sub_model
    with pytest.raises(ValueError, match=message):
        sub_model(dict(type='X'), {}, **kwargs)
