"""Registries: scopes, cross-toolbox resolution and unknown-type errors."""
import pytest
import torch
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import DefaultScope
from torch import nn

import mmrazor.registry as razor_registry
from mmrazor.registry import DATASETS, MODELS, UnknownTypeError
from mmrazor.utils import register_all_modules

register_all_modules()


@MODELS.register_module(force=True)
class _TinyTestBackbone(nn.Module):
    """An mmrazor-registered backbone used only by these tests."""

    def __init__(self, out_channels: int = 8) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, out_channels, 3, padding=1)

    def forward(self, x):
        return (self.conv(x), )


def test_every_registry_is_an_mmrazor_child_of_mmengine_root():
    import mmengine.registry as mmengine_registry
    for name in razor_registry.__all__:
        reg = getattr(razor_registry, name)
        if not isinstance(reg, razor_registry.RazorRegistry):
            continue
        assert reg.scope == 'mmrazor'
        root = getattr(mmengine_registry, name)
        assert reg.parent is root, name
        assert root._children['mmrazor'] is reg, name


def test_one_config_mixes_mmrazor_and_mmpretrain_types():
    # ImageClassifier comes from mmpretrain, the backbone from mmrazor, the
    # dataset from mmrazor: all from one config, as a user writes it.
    model_cfg = dict(
        type='ImageClassifier',
        backbone=dict(type='_TinyTestBackbone', out_channels=8),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=3, in_channels=8))
    with DefaultScope.overwrite_default_scope('mmrazor'):
        # Built the way mmengine's Runner does: from the root registry.
        model = MMENGINE_MODELS.build(model_cfg)
    from mmpretrain.models import ImageClassifier
    assert isinstance(model, ImageClassifier)
    assert isinstance(model.backbone, _TinyTestBackbone)
    out = model(torch.rand(2, 1, 8, 8), mode='tensor')
    assert out.shape == (2, 3)

    dataset = DATASETS.build(
        dict(type='FashionMNIST', split='test', indices=4))
    from mmrazor.datasets import FashionMNIST
    assert isinstance(dataset, FashionMNIST) and len(dataset) == 4


def test_scoped_names_and_mmcls_alias():
    from mmpretrain.models import ImageClassifier, ResNet
    assert MODELS.get('mmpretrain.ResNet') is ResNet
    assert MODELS.get('mmcls.ImageClassifier') is ImageClassifier
    assert MODELS.get('mmrazor._TinyTestBackbone') is _TinyTestBackbone
    assert MODELS.get('NoSuchThingAnywhere') is None


def test_unknown_type_names_type_registry_and_near_matches():
    with pytest.raises(UnknownTypeError) as info:
        MODELS.build(dict(type='ImageClasifier'))
    text = str(info.value)
    assert "'ImageClasifier'" in text
    assert 'mmrazor::model registry' in text
    assert 'mmpretrain.ImageClassifier' in text  # the near match

    with pytest.raises(UnknownTypeError) as info:
        DATASETS.build(dict(type='FashionMnist'))
    assert 'FashionMNIST' in str(info.value)
    assert 'mmrazor::dataset' in str(info.value)


def test_unknown_nested_type_through_runner_is_explained(tmp_path):
    from mmengine import Config

    from mmrazor.apis import build_runner
    from tiny_config import tiny_cfg
    cfg = Config(tiny_cfg(str(tmp_path)))
    cfg.model.backbone.type = 'LeNet55'
    with pytest.raises(UnknownTypeError) as info:
        build_runner(cfg)
    assert "'LeNet55'" in str(info.value)
    assert 'LeNet5' in str(info.value)


def test_nested_mmrazor_type_in_mmpretrain_type_without_default_scope():
    # No default scope at all (research code that only imports mmrazor).
    saved = DefaultScope._instance_dict.copy()
    DefaultScope._instance_dict.clear()
    try:
        assert DefaultScope.get_current_instance() is None
        model = MODELS.build(
            dict(
                type='mmpretrain.ImageClassifier',
                backbone=dict(type='_TinyTestBackbone', out_channels=4),
                neck=dict(type='GlobalAveragePooling'),
                head=dict(type='LinearClsHead', num_classes=2,
                          in_channels=4)))
        assert isinstance(model.backbone, _TinyTestBackbone)
        assert DefaultScope.get_current_instance() is None  # restored
    finally:
        DefaultScope._instance_dict.clear()
        DefaultScope._instance_dict.update(saved)


def test_scope_created_inside_a_build_survives_it():
    # A Runner built through RUNNERS creates its own default scope inside
    # the build; it must stay current afterwards.
    saved = DefaultScope._instance_dict.copy()
    DefaultScope._instance_dict.clear()
    try:
        from mmrazor.registry import RUNNERS

        @RUNNERS.register_module(force=True)
        class _ScopeMaker:

            @classmethod
            def from_cfg(cls, cfg):
                DefaultScope.get_instance('made-inside', scope_name='mmrazor')
                return cls()

        RUNNERS.build(dict(runner_type='_ScopeMaker'))
        current = DefaultScope.get_current_instance()
        assert current is not None and current.instance_name == 'made-inside'
        assert list(DefaultScope._instance_dict) == ['made-inside']
    finally:
        DefaultScope._instance_dict.clear()
        DefaultScope._instance_dict.update(saved)


def test_toolbox_model_builds_in_its_scope_and_marks_mmrazor_types():
    from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS

    from mmrazor.utils.toolboxes import scope_toolbox_cfg
    cfg = dict(
        type='mmcls.ImageClassifier',
        backbone=dict(type='_TinyTestBackbone', out_channels=4),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='mmcls.LinearClsHead', num_classes=2, in_channels=4,
                  loss=dict(type='CrossEntropyLoss')))
    scoped = scope_toolbox_cfg(MODELS, cfg)
    assert scoped['_scope_'] == 'mmpretrain'
    assert scoped['type'] == 'mmpretrain.ImageClassifier'
    assert scoped['backbone']['_scope_'] == 'mmrazor'  # only mmrazor has it
    assert '_scope_' not in scoped['neck']  # the toolbox's own
    assert scoped['head']['type'] == 'mmpretrain.LinearClsHead'
    assert '_scope_' not in scoped['head']['loss']
    assert '_scope_' not in cfg and cfg['type'] == 'mmcls.ImageClassifier'
    # Not a toolbox's model: left as it is.
    plain = dict(type='_TinyTestBackbone')
    assert scope_toolbox_cfg(MODELS, plain) is plain

    # A name both register: nested in the toolbox's model it is the
    # toolbox's; at the top of an mmrazor config it is mmrazor's.
    class TwinA(nn.Identity):
        pass

    class TwinB(nn.Identity):
        pass

    MMPRETRAIN_MODELS.register_module('_RegistryTwin', module=TwinA)
    MODELS.register_module('_RegistryTwin', module=TwinB)
    try:
        model = MODELS.build(
            dict(type='ImageClassifier',
                 backbone=dict(type='_TinyTestBackbone', out_channels=4),
                 neck=dict(type='_RegistryTwin'),
                 head=dict(type='LinearClsHead', num_classes=2,
                           in_channels=4)))
        assert type(model.neck) is TwinA
        assert type(model.backbone) is _TinyTestBackbone
        assert type(MODELS.build(dict(type='_RegistryTwin'))) is TwinB
    finally:
        MMPRETRAIN_MODELS._module_dict.pop('_RegistryTwin')
        MODELS._module_dict.pop('_RegistryTwin')
