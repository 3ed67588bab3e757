"""Without compiled mmcv ops, mmdet / mmseg types fail with a message that
says how to build full mmcv, and unscoped lookups skip those toolboxes.

The absence of the ops is simulated, so these tests run in both kinds of
environment."""
import importlib.util

import pytest

import mmrazor.utils.toolboxes as toolboxes
from mmrazor.models.architectures import MMDetArchitecture, MMSegArchitecture
from mmrazor.registry import (DATASETS, MODELS, SiblingImportError,
                              UnknownTypeError)


@pytest.fixture
def no_mmcv_ops(monkeypatch):
    monkeypatch.setattr(toolboxes, 'mmcv_ops_available',
                        lambda: False)


def test_scoped_types_name_the_fix(no_mmcv_ops):
    with pytest.raises(SiblingImportError) as info:
        MODELS.build(dict(type='mmdet.RetinaNet'))
    text = str(info.value)
    assert "'mmdet.RetinaNet'" in text
    assert 'bash tools/build_mmcv.sh' in text
    with pytest.raises(SiblingImportError) as info:
        DATASETS.get('mmseg.BaseSegDataset')
    assert 'mmsegmentation' in str(info.value)
    assert 'bash tools/build_mmcv.sh' in str(info.value)


@pytest.mark.parametrize('wrapper,scope', [(MMDetArchitecture, 'mmdet'),
                                           (MMSegArchitecture, 'mmseg')])
def test_wrappers_fail_early(no_mmcv_ops, wrapper, scope):
    with pytest.raises(SiblingImportError) as info:
        wrapper(model=dict(type=f'{scope}.Anything'))
    assert wrapper.__name__ in str(info.value)
    assert 'bash tools/build_mmcv.sh' in str(info.value)


def test_unscoped_unknown_type_skips_mmdet_and_mmseg(no_mmcv_ops):
    # Only mmdet has RetinaNet: without ops it is an unknown type, and the
    # error says which toolboxes were skipped and why (when they are
    # installed: the default install has neither).
    for package in ('mmdet', 'mmseg'):
        if importlib.util.find_spec(package) is None:
            pytest.skip(f'{package} is not installed')
    with pytest.raises(UnknownTypeError) as info:
        MODELS.build(dict(type='RetinaNet'))
    text = str(info.value)
    assert "'RetinaNet'" in text
    assert 'skipped mmdet, mmseg' in text
    assert 'tools/build_mmcv.sh' in text
    # Types of the other toolboxes still resolve.
    from mmpretrain.models import ImageClassifier
    assert MODELS.get('ImageClassifier') is ImageClassifier
