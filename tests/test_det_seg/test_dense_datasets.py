"""The mmdet / mmseg dataset configs of the Fashion-MNIST dense data load
exactly what the files hold, and their evaluators score ground truth as
perfect."""
import json
import os.path as osp

import numpy as np
import torch
from det_seg_utils import DENSE_ROOT, dense_config, real_batch
from mmengine.registry import DefaultScope
from mmengine.runner import Runner
from PIL import Image

from mmrazor.registry import DATASETS, METRICS


def _png(*parts) -> np.ndarray:
    return np.array(Image.open(osp.join(DENSE_ROOT, *parts)))


def _coco(split: str) -> dict:
    with open(osp.join(DENSE_ROOT, 'annotations',
                       f'instances_{split}.json')) as f:
        return json.load(f)


def test_det_dataset_matches_the_files():
    from mmdet.datasets import CocoDataset
    from mmdet.structures import DetDataSample
    cfg = dense_config('det', DENSE_ROOT)
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    assert isinstance(dataset, CocoDataset) and len(dataset) == 800
    assert dataset.metainfo['classes'][9] == 'Ankle boot'
    batch = real_batch('det', DENSE_ROOT, 'val', num=3)
    coco = _coco('val')
    for i, (inputs, sample) in enumerate(
            zip(batch['inputs'], batch['data_samples'])):
        assert isinstance(sample, DetDataSample)
        name = coco['images'][i]['file_name']
        assert sample.img_path.endswith(osp.join('images', 'val', name))
        grey = _png('images', 'val', name)
        assert inputs.shape == (3, 96, 96) and inputs.dtype == torch.uint8
        for channel in inputs:
            np.testing.assert_array_equal(channel.numpy(), grey)
        anns = [a for a in coco['annotations'] if a['image_id'] == i + 1]
        expected = torch.tensor([[x, y, x + w, y + h]
                                 for x, y, w, h in (a['bbox']
                                                    for a in anns)],
                                dtype=torch.float32)
        torch.testing.assert_close(sample.gt_instances.bboxes.tensor,
                                   expected)
        assert sample.gt_instances.labels.tolist() == [
            a['category_id'] - 1 for a in anns
        ]


def test_seg_dataset_matches_the_files():
    from mmseg.structures import SegDataSample
    batch = real_batch('seg', DENSE_ROOT, 'train', num=2)
    for i, (inputs, sample) in enumerate(
            zip(batch['inputs'], batch['data_samples'])):
        assert isinstance(sample, SegDataSample)
        name = f'{i:06d}.png'
        mask = _png('masks', 'train', name)
        np.testing.assert_array_equal(sample.gt_sem_seg.data[0].numpy(),
                                      mask)
        np.testing.assert_array_equal(inputs[0].numpy(),
                                      _png('images', 'train', name))
    cfg = dense_config('seg', DENSE_ROOT)
    assert len(cfg.train_dataloader.dataset.metainfo['classes']) == 11


def test_runner_builds_the_dataloaders():
    for kind, size in (('det', 200), ('seg', 200)):
        cfg = dense_config(kind, DENSE_ROOT)
        with DefaultScope.overwrite_default_scope('mmrazor'):
            loader = Runner.build_dataloader(cfg.val_dataloader, seed=0)
        assert len(loader.dataset) == size
        batch = next(iter(loader))
        assert len(batch['inputs']) == cfg.val_dataloader.batch_size


def test_coco_metric_scores_ground_truth_as_perfect():
    cfg = dense_config('det', DENSE_ROOT)
    metric = METRICS.build(cfg.val_evaluator)
    metric.dataset_meta = dict(classes=cfg.classes)
    coco = _coco('val')
    samples = []
    for img in coco['images']:
        anns = [a for a in coco['annotations'] if a['image_id'] == img['id']]
        boxes = [[x, y, x + w, y + h]
                 for x, y, w, h in (a['bbox'] for a in anns)]
        samples.append(
            dict(img_id=img['id'], ori_shape=(96, 96),
                 pred_instances=dict(
                     bboxes=torch.tensor(boxes, dtype=torch.float32),
                     scores=torch.ones(len(anns)),
                     labels=torch.tensor(
                         [a['category_id'] - 1 for a in anns]))))
    metric.process({}, samples)
    result = metric.evaluate(len(samples))
    assert result['coco/bbox_mAP'] == 1.0


def test_iou_metric_scores_ground_truth_as_perfect():
    cfg = dense_config('seg', DENSE_ROOT)
    metric = METRICS.build(cfg.val_evaluator)
    metric.dataset_meta = dict(classes=cfg.classes)
    masks = [
        torch.from_numpy(_png('masks', 'val', f'{i:06d}.png')).long()[None]
        for i in range(20)
    ]
    metric.process({}, [
        dict(pred_sem_seg=dict(data=m), gt_sem_seg=dict(data=m))
        for m in masks
    ])
    assert metric.evaluate(len(masks))['mIoU'] == 100.0
    metric.process({}, [
        dict(pred_sem_seg=dict(data=torch.zeros_like(m)),
             gt_sem_seg=dict(data=m)) for m in masks
    ])
    # All background: only the background class has a non-zero IoU, the
    # pixel share of the background; classes absent from both are skipped.
    stacked = torch.stack(masks)
    present = len(torch.unique(stacked))
    background_iou = (stacked == 0).float().mean().item()
    expected = 100.0 * background_iou / present
    assert abs(metric.evaluate(len(masks))['mIoU'] - expected) < 0.01
