"""The original MMRazor 1.x CWD distillation configs of mmseg and mmdet,
trained by ``tools/train.py``.

Each test runs one original config (its ``mmseg::`` / ``mmdet::`` bases read
from the installed packages) for two iterations on the Fashion-MNIST dense
data, with only data paths, sizes, lengths and the downloads changed on the
command line: the teacher's ``teacher_ckpt`` (a URL) becomes a local file
holding a freshly built teacher, and the student's pretrained backbone is
switched off through the ``model`` overrides of its ``cfg_path`` entry.
"""
import math
import os.path as osp
from typing import Any, List, Tuple

import pytest
import torch

from mmrazor.utils.checkpoint import safe_torch_load
from tool_runs import train_in_process

pytestmark = pytest.mark.det_seg

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
REFERENCE = osp.join(
    osp.dirname(REPO), 'shared', 'reference', 'mmrazor-1.x', 'configs',
    'distill')
DENSE = osp.join(REPO, 'data', 'fashion_mnist_dense')
SEG_CONFIG = ('mmseg/cwd/cwd_logits_pspnet_r101-d8_pspnet_r18-d8_4xb2-80k_'
              'cityscapes-512x1024.py')
DET_CONFIG = 'mmdet/cwd/cwd_cls_head_gfl_r101_fpn_gfl_r50_fpn_1x_coco.py'
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')
#: The classes of the dense data, in the order of their category ids.
DENSE_CLASSES = ('T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat',
                 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot')

needs_reference = pytest.mark.skipif(
    not osp.isdir(REFERENCE), reason='1.x reference configs not available')


def save_teacher(config: str, path: str) -> torch.nn.Module:
    """Build the config's teacher and save its weights to ``path``.

    Args:
        config (str): The distillation config.
        path (str): The checkpoint file to write.

    Returns:
        nn.Module: The saved teacher.
    """
    from mmrazor.apis.config_compat import load_config
    from mmrazor.registry import MODELS
    teacher = MODELS.build(load_config(config).model.teacher)
    torch.save(dict(state_dict=teacher.state_dict()), path)
    return teacher


def loader_options(split: str, batch_size: int) -> List[str]:
    """Small batches from the main process, two samples per split.

    Args:
        split (str): E.g. ``'train_dataloader'``.
        batch_size (int): The batch size.

    Returns:
        list[str]: ``key=value`` overrides.
    """
    return [f'{split}.batch_size={batch_size}', f'{split}.num_workers=0',
            f'{split}.persistent_workers=False', f'{split}.dataset.indices=2']


def seg_options(teacher_ckpt: str) -> List[str]:
    """Cityscapes -> the dense label maps; smaller resize, crop and pad."""
    opts = [f'model.teacher_ckpt={teacher_ckpt}',
            'model.architecture.model.pretrained=None',
            'model.architecture.model.data_preprocessor.size=(64,64)',
            'train_cfg.max_iters=2',
            # RandomResize(scale), RandomCrop(crop_size)
            'train_dataloader.dataset.pipeline.2.scale=(192,96)',
            'train_dataloader.dataset.pipeline.3.crop_size=(64,64)',
            # Resize(scale): 2x2 locations on the coarsest FPN level
            # (stride 128); over a single location CWD is 0 by construction
            'val_dataloader.dataset.pipeline.1.scale=(96,96)',
            'test_dataloader.dataset.pipeline.1.scale=(96,96)']
    for split in LOADERS:
        folder = 'train' if split == 'train_dataloader' else 'val'
        opts += loader_options(split, 2)
        opts += [f'{split}.dataset.data_root={DENSE}',
                 f'{split}.dataset.data_prefix.img_path=images/{folder}',
                 f'{split}.dataset.data_prefix.seg_map_path=masks/{folder}',
                 f'{split}.dataset.img_suffix=.png',
                 f'{split}.dataset.seg_map_suffix=.png']
    return opts


def det_options(teacher_ckpt: str) -> List[str]:
    """COCO -> the dense boxes; smaller resize; one epoch of two
    iterations."""
    classes = '(' + ','.join(DENSE_CLASSES) + ')'
    opts = [f'model.teacher_ckpt={teacher_ckpt}',
            'model.architecture.model.backbone.init_cfg=None',
            'train_cfg.max_epochs=1',
            # No validation: CocoMetric maps labels to the annotation file's
            # 10 categories, and the untrained 80-class heads (of the
            # student, and of the teacher, which SingleTeacherDistillValLoop
            # validates too) predict the others
            'train_cfg.val_begin=2',
            # Resize(scale): 2x2 locations on the coarsest FPN level
            # (stride 128); over a single location CWD is 0 by construction
            'train_dataloader.dataset.pipeline.2.scale=(256,256)',
            'val_dataloader.dataset.pipeline.1.scale=(256,256)',
            'test_dataloader.dataset.pipeline.1.scale=(256,256)']
    for split in LOADERS:
        folder = 'train' if split == 'train_dataloader' else 'val'
        opts += loader_options(split, 1)
        opts += [f'{split}.dataset.data_root={DENSE}',
                 f'{split}.dataset.ann_file=annotations/'
                 f'instances_{folder}.json',
                 f'{split}.dataset.data_prefix.img=images/{folder}/',
                 f'{split}.dataset.metainfo.classes={classes}']
    for evaluator in ('val_evaluator', 'test_evaluator'):
        opts.append(f'{evaluator}.ann_file={DENSE}/annotations/'
                    'instances_val.json')
    return opts


def train(config: str, tmp_path, options_of, monkeypatch
          ) -> Tuple[Any, torch.nn.Module, str]:
    """Save the config's teacher, then train the config.

    Args:
        config (str): The config, relative to the 1.x distill configs.
        tmp_path: pytest's folder.
        options_of (callable): Teacher checkpoint -> the overrides.
        monkeypatch: pytest's fixture.

    Returns:
        tuple: The runner, the saved teacher and the work dir.
    """
    config = osp.join(REFERENCE, config)
    teacher_ckpt = str(tmp_path / 'teacher.pth')
    teacher = save_teacher(config, teacher_ckpt)
    work_dir = str(tmp_path / 'work')
    runner = train_in_process(config, work_dir, options_of(teacher_ckpt),
                              monkeypatch)
    return runner, teacher, work_dir


def assert_distilled(runner: Any, teacher: torch.nn.Module,
                     distill_losses: List[str], work_dir: str) -> None:
    """A ``SingleTeacherDistill`` with a ``ConfigurableDistiller`` that
    logged finite, positive CWD losses, kept its teacher frozen and wrote a
    checkpoint that loads back."""
    from mmrazor.models.algorithms import SingleTeacherDistill
    from mmrazor.models.distillers import ConfigurableDistiller
    model = runner.model
    assert isinstance(model, SingleTeacherDistill)
    assert isinstance(model.distiller, ConfigurableDistiller)
    scalars = runner.message_hub.log_scalars
    losses = {k: v.current() for k, v in scalars.items()
              if k.startswith('train/') and 'loss' in k}
    assert all(math.isfinite(v) for v in losses.values()), losses
    for name in distill_losses:
        assert losses.get(f'train/{name}', 0) > 0, sorted(losses)
    # the frozen teacher is the saved one, unchanged by training
    trained = model.teacher.state_dict()
    for key, value in teacher.state_dict().items():
        torch.testing.assert_close(trained[key], value)
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        checkpoint = safe_torch_load(f.read().strip())
    model.load_state_dict(checkpoint['state_dict'], strict=True)


@needs_reference
def test_cwd_logits_pspnet_cityscapes_1x(tmp_path, monkeypatch) -> None:
    runner, teacher, work_dir = train(SEG_CONFIG, tmp_path, seg_options,
                                      monkeypatch)
    assert_distilled(runner, teacher, ['loss_cwd'], work_dir)
    assert type(runner.model.student).__name__ == 'EncoderDecoder'
    assert runner.model.student.backbone.depth == 18
    assert osp.isfile(osp.join(work_dir, 'iter_2.pth'))
    assert 'val/mIoU' in runner.message_hub.log_scalars


@needs_reference
def test_cwd_fpn_gfl_coco_1x(tmp_path, monkeypatch) -> None:
    runner, teacher, work_dir = train(DET_CONFIG, tmp_path, det_options,
                                      monkeypatch)
    levels = [f'loss_cwd_fpn{i}' for i in range(5)]
    assert_distilled(runner, teacher, levels, work_dir)
    assert type(runner.model).__name__ == 'FpnTeacherDistill'
    assert type(runner.model.student).__name__ == 'GFL'
    assert runner.model.teacher.backbone.depth == 101
    assert osp.isfile(osp.join(work_dir, 'epoch_1.pth'))
    # the boxes of the dense data reached the detector (labels 0..9)
    dataset = runner.train_dataloader.dataset
    labels = {i['bbox_label'] for i in dataset.get_data_info(0)['instances']}
    assert labels and labels <= set(range(10))
