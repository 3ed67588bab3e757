"""``mmrazor.apis.init_mmcls_model`` / ``init_mmdet_model`` /
``init_mmseg_model``: the 0.x inference helpers."""
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmpretrain.models import ImageClassifier

from mmrazor.apis import init_mmcls_model, init_mmdet_model, init_mmseg_model
from mmrazor.registry import MODELS
from mmrazor.utils import register_all_modules
from mmrazor.utils.toolboxes import SiblingImportError, usable_scopes

register_all_modules(init_default_scope=False)

CLASSIFIER = dict(
    type='mmcls.ImageClassifier',
    backbone=dict(type='mmcls.LeNet5', num_classes=-1),
    neck=dict(type='mmcls.GlobalAveragePooling'),
    head=dict(
        type='mmcls.LinearClsHead', num_classes=10, in_channels=120,
        loss=dict(type='mmcls.CrossEntropyLoss')))

ALGORITHM = dict(
    type='BaseAlgorithm',
    architecture=dict(type='MMClsArchitecture', model=CLASSIFIER))

CONFIG_TEXT = f'algorithm = {ALGORITHM!r}\nmodel = None\n'


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / 'razor_cfg.py'
    path.write_text(CONFIG_TEXT)
    return path


def _algorithm_with_seed(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return MODELS.build(ALGORITHM)


def test_path_config_gives_the_task_model(config_file: Path) -> None:
    model = init_mmcls_model(
        str(config_file),
        device='cpu',
        cfg_options={'algorithm.architecture.model.head.num_classes': 7})
    assert isinstance(model, ImageClassifier)
    assert not hasattr(model, 'architecture')
    assert not model.training
    assert model.head.fc.out_features == 7  # the override was applied
    assert isinstance(model.cfg, Config)
    assert model.cfg.algorithm.architecture.model.head.num_classes == 7
    out = model(torch.rand(2, 1, 32, 32), mode='tensor')
    assert out.shape == (2, 7)


def test_config_object_is_not_changed(config_file: Path) -> None:
    cfg = Config.fromfile(str(config_file))
    init_mmcls_model(
        cfg, device='cpu',
        cfg_options={'algorithm.architecture.model.head.num_classes': 3})
    assert cfg.algorithm.architecture.model.head.num_classes == 10


def test_1x_config_uses_model_key() -> None:
    cfg = Config(dict(model=ALGORITHM))
    assert isinstance(init_mmcls_model(cfg, device='cpu'), ImageClassifier)


def test_algorithm_checkpoint_is_loaded(config_file: Path,
                                        tmp_path: Path) -> None:
    trained = _algorithm_with_seed(1)
    ckpt = tmp_path / 'algo.pth'
    torch.save(
        dict(state_dict=trained.state_dict(),
             meta=dict(CLASSES=[f'c{i}' for i in range(10)])), ckpt)
    model = init_mmcls_model(
        str(config_file), checkpoint=str(ckpt), device='cpu')
    expected = trained.architecture.model.state_dict()
    for key, value in model.state_dict().items():
        assert torch.equal(value, expected[key]), key
    assert model.dataset_meta == {'classes': [f'c{i}' for i in range(10)]}


def test_task_model_checkpoint_is_loaded(config_file: Path,
                                         tmp_path: Path) -> None:
    trained = _algorithm_with_seed(2).architecture.model
    ckpt = tmp_path / 'student.pth'
    meta = dict(dataset_meta=dict(classes=['a', 'b']))
    torch.save(dict(state_dict=trained.state_dict(), meta=meta), ckpt)
    model = init_mmcls_model(
        str(config_file), checkpoint=str(ckpt), device='cpu')
    assert torch.equal(model.head.fc.weight, trained.head.fc.weight)
    assert model.dataset_meta == {'classes': ['a', 'b']}


def test_unrelated_checkpoint_is_refused(config_file: Path,
                                         tmp_path: Path) -> None:
    ckpt = tmp_path / 'other.pth'
    torch.save(dict(state_dict={'foo.weight': torch.zeros(1)}), ckpt)
    with pytest.raises(ValueError, match='other.pth'):
        init_mmcls_model(str(config_file), checkpoint=str(ckpt), device='cpu')


def test_bad_configs_are_named() -> None:
    with pytest.raises(KeyError, match='neither `algorithm`'):
        init_mmcls_model(Config(dict(model=None)), device='cpu')
    with pytest.raises(TypeError, match='`algorithm` must be a dict'):
        init_mmcls_model(Config(dict(algorithm=dict(a=1))), device='cpu')
    with pytest.raises(TypeError, match='file path or an mmengine Config'):
        init_mmcls_model(dict(algorithm=ALGORITHM), device='cpu')


@pytest.mark.parametrize('func,scope', [(init_mmdet_model, 'mmdet'),
                                        (init_mmseg_model, 'mmseg')])
def test_det_seg_need_their_toolbox(config_file: Path, func,
                                    scope: str) -> None:
    if scope in usable_scopes():
        pytest.skip(f'{scope} is usable here')
    with pytest.raises(SiblingImportError, match=func.__name__):
        func(str(config_file), device='cpu')


def test_cuda_device_without_cuda_says_to_pass_cpu(monkeypatch, tmp_path):
    import torch
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    with pytest.raises(ValueError, match="device='cpu'"):
        init_mmcls_model(Config(dict(algorithm=ALGORITHM)))
