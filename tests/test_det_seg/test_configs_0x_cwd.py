"""The original 0.x CWD configs (mmseg 0.x / mmdet 2.x era) translated and
trained.

Unit tests map hand-written mmdet 2.x / mmseg 0.x snippets through each
entry of the translation tables of
:mod:`mmrazor.apis.config_compat.v0_detseg`; end-to-end tests run
``tools/train.py`` on the two original 0.x CWD configs for two iterations on
the Fashion-MNIST dense data, with data paths, batch sizes, lengths,
smaller resize / crop scales (96x96 canvases: a 2048x1024 resize would only
slow the CPU down) and the downloads switched off, all given on the command
line.
"""
import math
import os.path as osp
from typing import Any, Dict, List

import pytest
import torch
from mmengine.config import Config

from mmrazor.apis.config_compat.v0 import translate_0x
from mmrazor.apis.config_compat.v0_errors import Untranslatable
from mmrazor.utils.checkpoint import safe_torch_load
from tool_runs import train_in_process

pytestmark = pytest.mark.det_seg

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
REFERENCE = osp.join(
    osp.dirname(REPO), 'shared', 'reference', 'mmrazor-0.x', 'configs')
DENSE = osp.join(REPO, 'data', 'fashion_mnist_dense')
SEG_CONFIG = ('distill/cwd/cwd_cls_head_pspnet_r101_d8_pspnet_r18_d8_'
              '512x1024_cityscapes_80k.py')
DET_CONFIG = 'distill/cwd/cwd_cls_head_gfl_r101_fpn_gfl_r50_fpn_1x_coco.py'

needs_reference = pytest.mark.skipif(
    not osp.isdir(REFERENCE), reason='0.x reference configs not available')

NORM = dict(type='Normalize', mean=[1., 2., 3.], std=[2., 2., 2.],
            to_rgb=True)


# ------------------------------------------------------------------ helpers
def translate(**old: Any) -> Config:
    """Translate a minimal 0.x config holding ``old``."""
    base: Dict[str, Any] = dict(
        algorithm=dict(type='GeneralDistill', architecture=dict(
            type='MMDetArchitecture', model=dict(type='mmdet.GFL'))),
        runner=dict(type='IterBasedRunner', max_iters=4))
    base.update(old)
    return translate_0x(Config(base))


def coco(pipeline: List[dict], **kwargs: Any) -> dict:
    return dict(type='CocoDataset', ann_file='a/train.json',
                img_prefix='a/img/', pipeline=pipeline, **kwargs)


def cityscapes(pipeline: List[dict], **kwargs: Any) -> dict:
    return dict(type='CityscapesDataset', data_root='d/', img_dir='img',
                ann_dir='ann', pipeline=pipeline, **kwargs)


def translated(dataset: dict, split: str = 'train') -> Config:
    return translate(data={'samples_per_gpu': 2, 'workers_per_gpu': 0,
                           split: dataset})


def det_pipeline(pipeline: List[dict]) -> List[dict]:
    cfg = translated(coco(pipeline))
    return cfg.train_dataloader['dataset']['pipeline']


def seg_pipeline(pipeline: List[dict]) -> List[dict]:
    cfg = translated(cityscapes(pipeline))
    return cfg.train_dataloader['dataset']['pipeline']


DET_PACK = dict(type='mmdet.PackDetInputs')
SEG_PACK = dict(type='mmseg.PackSegInputs')


# ------------------------------------------------------ mmdet 2.x transforms
@pytest.mark.parametrize('old, new', [
    (dict(type='LoadImageFromFile'), dict(type='mmdet.LoadImageFromFile')),
    (dict(type='LoadAnnotations', with_bbox=True),
     dict(type='mmdet.LoadAnnotations', with_bbox=True)),
    (dict(type='Resize', img_scale=(1333, 800), keep_ratio=True),
     dict(type='mmdet.Resize', scale=(1333, 800), keep_ratio=True)),
    # 0.x kept the ratio by default, mmdet 3 does not
    (dict(type='Resize', img_scale=(1333, 800)),
     dict(type='mmdet.Resize', scale=(1333, 800), keep_ratio=True)),
    (dict(type='Resize', img_scale=[(1333, 800)], keep_ratio=False),
     dict(type='mmdet.Resize', scale=(1333, 800), keep_ratio=False)),
    (dict(type='Resize', img_scale=[(1333, 640), (1333, 800)],
          multiscale_mode='range', bbox_clip_border=False),
     dict(type='RandomResize', scale=[(1333, 640), (1333, 800)],
          resize_type='mmdet.Resize', keep_ratio=True,
          clip_object_border=False)),
    (dict(type='Resize', img_scale=[(1333, 640), (1333, 800)],
          multiscale_mode='value'),
     dict(type='RandomChoiceResize', scales=[(1333, 640), (1333, 800)],
          resize_type='mmdet.Resize', keep_ratio=True)),
    (dict(type='RandomFlip', flip_ratio=0.5),
     dict(type='mmdet.RandomFlip', prob=0.5)),
    (dict(type='PhotoMetricDistortion', hue_delta=9),
     dict(type='mmdet.PhotoMetricDistortion', hue_delta=9)),
])
def test_det_transform_table(old: dict, new: dict) -> None:
    assert det_pipeline([old]) == [new, DET_PACK]


def test_det_formatting_and_pad_become_pack_and_preprocessor() -> None:
    cfg = translated(coco([
        dict(type='RandomFlip'),  # no ratio: never flipped
        NORM, dict(type='Pad', size_divisor=32),
        dict(type='DefaultFormatBundle'),
        dict(type='Collect', keys=['img', 'gt_bboxes', 'gt_labels'])]))
    assert cfg.train_dataloader['dataset']['pipeline'] == [DET_PACK]
    assert cfg.model['architecture']['model']['data_preprocessor'] == dict(
        type='mmdet.DetDataPreprocessor', mean=[1., 2., 3.],
        std=[2., 2., 2.], bgr_to_rgb=True, pad_size_divisor=32)


def test_det_multi_scale_flip_aug_becomes_its_transforms() -> None:
    pipeline = det_pipeline([
        dict(type='LoadImageFromFile'),
        dict(type='MultiScaleFlipAug', img_scale=(1333, 800), flip=False,
             transforms=[
                 dict(type='Resize', keep_ratio=True),
                 dict(type='RandomFlip'), NORM,
                 dict(type='Pad', size_divisor=32),
                 dict(type='ImageToTensor', keys=['img']),
                 dict(type='Collect', keys=['img'])])])
    assert pipeline == [
        dict(type='mmdet.LoadImageFromFile'),
        dict(type='mmdet.Resize', scale=(1333, 800), keep_ratio=True),
        DET_PACK]


@pytest.mark.parametrize('aug', [
    dict(img_scale=[(1333, 640), (1333, 800)], flip=False),
    dict(img_scale=(1333, 800), flip=True),
])
def test_det_test_time_augmentation_is_refused(aug: dict) -> None:
    with pytest.raises(Untranslatable, match=r'data.train.pipeline: '
                       'MultiScaleFlipAug'):
        det_pipeline([dict(type='MultiScaleFlipAug', transforms=[], **aug)])


def test_pad_before_normalize_is_refused() -> None:
    with pytest.raises(Untranslatable, match='Pad before Normalize'):
        det_pipeline([dict(type='Pad', size_divisor=32), NORM])


def test_unknown_det_transform_is_refused_by_position() -> None:
    with pytest.raises(Untranslatable, match=r"data.train.pipeline\[1\] "
                       r"\(type='Mosaic'\).*Resize"):
        det_pipeline([NORM, dict(type='Mosaic')])


# ------------------------------------------------------ mmseg 0.x transforms
@pytest.mark.parametrize('old, new', [
    (dict(type='LoadAnnotations'),
     dict(type='mmseg.LoadAnnotations', reduce_zero_label=False)),
    (dict(type='LoadAnnotations', reduce_zero_label=True),
     dict(type='mmseg.LoadAnnotations', reduce_zero_label=True)),
    (dict(type='Resize', img_scale=(2048, 1024), ratio_range=(0.5, 2.0)),
     dict(type='RandomResize', scale=(2048, 1024), ratio_range=(0.5, 2.0),
          resize_type='mmseg.Resize', keep_ratio=True)),
    (dict(type='RandomCrop', crop_size=(512, 1024), cat_max_ratio=0.75),
     dict(type='mmseg.RandomCrop', crop_size=(512, 1024),
          cat_max_ratio=0.75)),
    (dict(type='RandomFlip', prob=0.5),
     dict(type='mmseg.RandomFlip', prob=0.5)),
    (dict(type='PhotoMetricDistortion'),
     dict(type='mmseg.PhotoMetricDistortion')),
])
def test_seg_transform_table(old: dict, new: dict) -> None:
    assert seg_pipeline([old]) == [new, SEG_PACK]


def test_seg_pad_becomes_the_segmentor_preprocessor() -> None:
    cfg = translated(cityscapes([
        dict(type='LoadAnnotations'), NORM,
        dict(type='Pad', size=(512, 1024), pad_val=0, seg_pad_val=255),
        dict(type='DefaultFormatBundle'),
        dict(type='Collect', keys=['img', 'gt_semantic_seg'])]))
    assert cfg.model['architecture']['model']['data_preprocessor'] == dict(
        type='mmseg.SegDataPreProcessor', mean=[1., 2., 3.],
        std=[2., 2., 2.], bgr_to_rgb=True, size=(512, 1024), pad_val=0,
        seg_pad_val=255)


def test_seg_test_pipeline_loads_the_label_maps() -> None:
    cfg = translated(cityscapes([
        dict(type='LoadImageFromFile'),
        dict(type='MultiScaleFlipAug', img_scale=(2048, 1024), flip=False,
             transforms=[dict(type='Resize', keep_ratio=True), NORM,
                         dict(type='Collect', keys=['img'])])],
        ), 'val')
    assert cfg.val_dataloader['dataset']['pipeline'] == [
        dict(type='mmseg.LoadImageFromFile'),
        dict(type='mmseg.Resize', scale=(2048, 1024), keep_ratio=True),
        dict(type='mmseg.LoadAnnotations'), SEG_PACK]


# ---------------------------------------------------------------- data sets
def test_coco_dataset() -> None:
    cfg = translated(coco([], classes=('a', 'b'), filter_empty_gt=False))
    assert cfg.train_dataloader['dataset'] == dict(
        type='mmdet.CocoDataset', data_root='', ann_file='a/train.json',
        data_prefix=dict(img='a/img/'),
        filter_cfg=dict(filter_empty_gt=False, min_size=32),
        metainfo=dict(classes=('a', 'b')), pipeline=[DET_PACK])


def test_coco_classes_from_a_file(tmp_path) -> None:
    names = tmp_path / 'classes.txt'
    names.write_text('cat\ndog\n')
    cfg = translated(coco([], classes=str(names), test_mode=True), 'val')
    dataset = cfg.val_dataloader['dataset']
    assert dataset['metainfo'] == dict(classes=('cat', 'dog'))
    assert dataset['test_mode'] and 'filter_cfg' not in dataset


def test_cityscapes_dataset() -> None:
    cfg = translated(cityscapes([], img_suffix='.png', split='s.txt'))
    assert cfg.train_dataloader['dataset'] == dict(
        type='mmseg.CityscapesDataset', data_root='d/',
        data_prefix=dict(img_path='img', seg_map_path='ann'),
        ann_file='s.txt', img_suffix='.png', pipeline=[SEG_PACK])
    # 0.x tools built the validation set in test mode
    cfg = translated(cityscapes([]), 'val')
    assert cfg.val_dataloader['dataset']['test_mode'] is True


def test_unknown_dataset_argument_is_refused() -> None:
    with pytest.raises(Untranslatable, match='data.train.gt_seg_map_loader'):
        translated(cityscapes([], gt_seg_map_loader_cfg=dict()))


def test_dense_and_classification_data_sets_are_not_mixed() -> None:
    with pytest.raises(Untranslatable, match='tasks'):
        translate(data=dict(
            train=coco([NORM]),
            val=dict(type='ImageNet', data_prefix='x', pipeline=[NORM])))


# ------------------------------------------------------------ evaluation
def test_bbox_evaluation_becomes_coco_metric() -> None:
    cfg = translate(data=dict(train=coco([]), val=coco(
        [], test_mode=True, data_root='r/')),
        evaluation=dict(interval=2, metric='bbox', classwise=True))
    assert cfg.val_evaluator == dict(type='mmdet.CocoMetric',
                                     ann_file='r/a/train.json',
                                     metric='bbox', classwise=True)
    assert cfg.train_cfg['val_interval'] == 2


def test_miou_evaluation_becomes_iou_metric() -> None:
    cfg = translate(data=dict(val=cityscapes([], test_mode=True)),
                    evaluation=dict(interval=8000, metric='mIoU',
                                    pre_eval=True))
    assert cfg.val_evaluator == dict(type='mmseg.IoUMetric',
                                     iou_metrics=['mIoU'])


def test_metrics_of_two_toolboxes_are_refused() -> None:
    with pytest.raises(Untranslatable, match='two toolboxes'):
        translate(data=dict(val=coco([])),
                  evaluation=dict(metric=['bbox', 'mIoU']))


# ---------------------------------------------------------------- runtime
def test_mmdet_runtime_keys() -> None:
    cfg = translate(custom_hooks=[dict(type='NumClassCheckHook'),
                                  dict(type='DropPathProbHook')],
                    checkpoint_config=dict(by_epoch=False, interval=8000),
                    workflow=[('train', 1)], cudnn_benchmark=True)
    assert cfg.custom_hooks == [dict(type='mmdet.NumClassCheckHook'),
                                dict(type='DropPathProbHook')]
    assert cfg.default_hooks['checkpoint'] == dict(
        type='CheckpointHook', by_epoch=False, interval=8000)
    assert cfg.env_cfg == dict(cudnn_benchmark=True)
    assert 'workflow' not in cfg


def test_max_iters_for_an_epoch_runner_saves_by_iterations() -> None:
    cfg = translate(runner=dict(type='EpochBasedRunner', max_epochs=12),
                    checkpoint_config=dict(interval=1),
                    train_cfg=dict(max_iters=2))
    assert cfg.train_cfg == dict(by_epoch=False, max_iters=2)
    assert cfg.default_hooks['checkpoint'] == dict(
        type='CheckpointHook', by_epoch=False, interval=1)


# ------------------------------------------------------------- end to end
def train(config: str, work_dir: str, options: List[str],
          monkeypatch) -> Any:
    """Run ``tools/train.py`` on an original 0.x config; return its
    runner."""
    return train_in_process(
        osp.join(REFERENCE, config), work_dir, options, monkeypatch)


def assert_distilled(runner: Any, distill_loss: str, work_dir: str) -> None:
    """A ``GeneralDistill`` trained with the config's CWD loss among its
    finite logged losses, and a checkpoint that loads back into it."""
    model = runner.model.module if hasattr(runner.model, 'module') \
        else runner.model
    assert type(model).__name__ == 'GeneralDistill'
    assert type(model.distiller).__name__ == 'SingleTeacherDistiller'
    losses = {k: v.current() for k, v in
              runner.message_hub.log_scalars.items()
              if k.startswith('train/') and 'loss' in k}
    assert f'train/distiller.{distill_loss}' in losses, sorted(losses)
    assert all(math.isfinite(v) for v in losses.values()), losses
    assert losses[f'train/distiller.{distill_loss}'] > 0
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        checkpoint = safe_torch_load(f.read().strip())
    model.load_state_dict(checkpoint['state_dict'], strict=True)


def seg_options() -> List[str]:
    """Cityscapes -> the dense label maps; smaller resize / crop."""
    opts = ['data.samples_per_gpu=2', 'data.workers_per_gpu=0',
            'runner.max_iters=2',
            'algorithm.distiller.teacher.init_cfg=None',
            'algorithm.architecture.model.backbone.init_cfg=None',
            # Resize(img_scale), RandomCrop(crop_size), Pad(size)
            'data.train.pipeline.2.img_scale=(192,96)',
            'data.train.pipeline.3.crop_size=(64,64)',
            'data.train.pipeline.7.size=(64,64)',
            # MultiScaleFlipAug(img_scale)
            'data.val.pipeline.1.img_scale=(96,96)',
            'data.test.pipeline.1.img_scale=(96,96)']
    for split in ('train', 'val', 'test'):
        folder = 'train' if split == 'train' else 'val'
        opts += [f'data.{split}.data_root={DENSE}',
                 f'data.{split}.img_dir=images/{folder}',
                 f'data.{split}.ann_dir=masks/{folder}',
                 f'data.{split}.img_suffix=.png',
                 f'data.{split}.seg_map_suffix=.png']
    return opts


def coco80_classes(path: str) -> str:
    """A class file for the 80-class head: the 10 dense classes (category
    ids 1..10) first, then COCO's names 11..80 (unused)."""
    from mmdet.datasets import CocoDataset
    names = ('T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal',
             'Shirt', 'Sneaker', 'Bag', 'Ankle boot')
    names += tuple(CocoDataset.METAINFO['classes'][10:])
    with open(path, 'w') as f:
        f.write('\n'.join(names) + '\n')
    return path


def det_options(classes: str) -> List[str]:
    """COCO -> the dense boxes; smaller resize."""
    opts = ['data.samples_per_gpu=1', 'data.workers_per_gpu=0',
            'train_cfg.max_iters=2',
            # No validation: CocoMetric maps labels to the annotation file's
            # 10 categories, and the untrained 80-class head predicts others
            'train_cfg.val_begin=3',
            'algorithm.distiller.teacher.init_cfg=None',
            'algorithm.architecture.model.backbone.init_cfg=None',
            # Resize(img_scale), MultiScaleFlipAug(img_scale)
            'data.train.pipeline.2.img_scale=(128,128)',
            'data.val.pipeline.1.img_scale=(128,128)',
            'data.test.pipeline.1.img_scale=(128,128)']
    for split in ('train', 'val', 'test'):
        folder = 'train' if split == 'train' else 'val'
        opts += [f'data.{split}.ann_file={DENSE}/annotations/'
                 f'instances_{folder}.json',
                 f'data.{split}.img_prefix={DENSE}/images/{folder}/',
                 f'data.{split}.classes={classes}']
    return opts


@needs_reference
def test_cwd_pspnet_cityscapes_0x(tmp_path, monkeypatch) -> None:
    work_dir = str(tmp_path)
    runner = train(SEG_CONFIG, work_dir, seg_options(), monkeypatch)
    assert_distilled(runner, 'loss_cwd_logits', work_dir)
    student = runner.model.architecture.model
    assert type(student).__name__ == 'EncoderDecoder'
    assert student.decode_head.num_classes == 19


@needs_reference
def test_cwd_gfl_coco_0x(tmp_path, monkeypatch) -> None:
    work_dir = str(tmp_path)
    classes = coco80_classes(str(tmp_path / 'classes.txt'))
    runner = train(DET_CONFIG, work_dir, det_options(classes), monkeypatch)
    assert_distilled(runner, 'loss_cwd_cls_head', work_dir)
    assert type(runner.model.architecture.model).__name__ == 'GFL'
    assert osp.isfile(osp.join(work_dir, 'iter_2.pth'))
    # the boxes of the dense data reached the detector (labels 0..9)
    dataset = runner.train_dataloader.dataset
    labels = {i['bbox_label'] for i in dataset.get_data_info(0)['instances']}
    assert labels and labels <= set(range(10))
