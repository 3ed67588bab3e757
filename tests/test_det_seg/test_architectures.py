"""MMDetArchitecture / MMSegArchitecture on tiny real models (a RetinaNet,
a Faster R-CNN, a PSPNet) and real batches of the Fashion-MNIST dense
data."""
import copy
import math

import pytest
import torch
from det_seg_utils import (ANCHORS, DENSE_ROOT, NORM, RESNET18, RETINANET,
                           dense_config, real_batch)
from torch import nn

from mmrazor.models.architectures import MMDetArchitecture, MMSegArchitecture
from mmrazor.models.task_modules import ResourceEstimator
from mmrazor.registry import MODELS

PSPNET = dict(
    type='mmseg.EncoderDecoder',
    data_preprocessor=dense_config('seg', DENSE_ROOT).data_preprocessor,
    backbone=dict(
        type='ResNetV1c',
        depth=18,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        dilations=(1, 1, 2, 4),
        strides=(1, 2, 1, 1),
        norm_cfg=NORM,
        norm_eval=False,
        style='pytorch',
        contract_dilation=True),
    decode_head=dict(
        type='PSPHead', in_channels=512, in_index=3, channels=32,
        pool_scales=(1, 2, 3, 6), dropout_ratio=0.1, num_classes=11,
        norm_cfg=NORM, align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False,
                         loss_weight=1.0)),
    auxiliary_head=dict(
        type='FCNHead', in_channels=256, in_index=2, channels=16,
        num_convs=1, concat_input=False, dropout_ratio=0.1, num_classes=11,
        norm_cfg=NORM, align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False,
                         loss_weight=0.4)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))


def _flat(losses: dict) -> dict:
    """``{name: tensor}`` with per-level lists summed."""
    return {
        k: sum(v) if isinstance(v, (list, tuple)) else v
        for k, v in losses.items()
    }


def _all_tensors(out):
    if isinstance(out, torch.Tensor):
        return [out]
    return [t for o in out for t in _all_tensors(o)]


@pytest.fixture(scope='module')
def retinanet():
    torch.manual_seed(0)
    return MODELS.build(
        dict(type='MMDetArchitecture', model=copy.deepcopy(RETINANET)))


@pytest.fixture(scope='module')
def pspnet():
    torch.manual_seed(0)
    return MODELS.build(
        dict(type='MMSegArchitecture', model=copy.deepcopy(PSPNET)))


# ------------------------------------------------------------- detection
def test_detector_is_built_from_mmdet(retinanet):
    from mmdet.models.detectors import RetinaNet
    from mmdet.models.losses import FocalLoss
    assert isinstance(retinanet, MMDetArchitecture)
    assert isinstance(retinanet.model, RetinaNet)
    # Unscoped names nested in an mmdet model are mmdet's, although
    # mmpretrain also registers a FocalLoss.
    assert type(retinanet.model.bbox_head.loss_cls) is FocalLoss
    assert retinanet.data_preprocessor is retinanet.model.data_preprocessor
    # Unscoped top-level type, and an already built detector, work too.
    cfg = copy.deepcopy(RETINANET)
    cfg['type'] = 'RetinaNet'
    assert isinstance(MMDetArchitecture(model=cfg).model, RetinaNet)
    assert MMDetArchitecture(
        model=retinanet.model).model is retinanet.model
    with pytest.raises(TypeError, match='BaseDetector'):
        MMDetArchitecture(model=nn.Conv2d(3, 3, 1))


def test_detector_losses_pass_through(retinanet):
    retinanet.train()
    data = retinanet.data_preprocessor(real_batch('det', DENSE_ROOT), True)
    losses = retinanet(**data, mode='loss')
    assert set(losses) == {'loss_cls', 'loss_bbox'}
    # One value per FPN level.
    assert len(losses['loss_cls']) == len(ANCHORS['strides'])
    flat = _flat(losses)
    for name, value in flat.items():
        assert torch.isfinite(value) and value > 0, name
    direct = _flat(retinanet.model.loss(data['inputs'],
                                        data['data_samples']))
    for name in flat:
        torch.testing.assert_close(flat[name], direct[name])
    retinanet.zero_grad()
    sum(flat.values()).backward()
    grad = retinanet.model.backbone.conv1.weight.grad
    assert grad is not None and grad.abs().sum() > 0


def test_detector_predictions(retinanet):
    from mmdet.structures import DetDataSample
    retinanet.eval()
    data = retinanet.data_preprocessor(
        real_batch('det', DENSE_ROOT, 'val', num=2), False)
    with torch.no_grad():
        preds = retinanet(**data, mode='predict')
    assert len(preds) == 2
    for pred in preds:
        assert isinstance(pred, DetDataSample)
        inst = pred.pred_instances
        k = len(inst)
        assert k <= RETINANET['test_cfg']['max_per_img']
        assert inst.bboxes.shape == (k, 4) and inst.scores.shape == (k, )
        assert ((inst.labels >= 0) & (inst.labels < 10)).all()
        assert (inst.scores >= RETINANET['test_cfg']['score_thr']).all()
        assert torch.isfinite(inst.bboxes).all()


def test_detector_forward_dummy_and_pseudo_loss(retinanet):
    retinanet.eval()
    size = 96
    img = torch.rand(2, 3, size, size)
    cls_scores, bbox_preds = retinanet.forward_dummy(img)
    # Expected from the config alone: one output per FPN level (stride),
    # anchors = ratios x scales per octave, a score per class and anchor.
    anchors = len(ANCHORS['ratios']) * ANCHORS['scales_per_octave']
    assert len(cls_scores) == len(bbox_preds) == RETINANET['neck']['num_outs']
    for stride, cls, box in zip(ANCHORS['strides'], cls_scores, bbox_preds):
        side = math.ceil(size / stride)
        assert cls.shape == (2, anchors * 10, side, side)
        assert box.shape == (2, anchors * 4, side, side)
    with torch.no_grad():
        expected = sum(t.sum() for t in cls_scores + bbox_preds)
        torch.testing.assert_close(retinanet.cal_pseudo_loss(img), expected)
    retinanet.zero_grad()
    retinanet.cal_pseudo_loss(img).backward()
    for name, param in retinanet.model.named_parameters():
        if name.startswith(('neck.', 'bbox_head.')):
            assert param.grad is not None and param.grad.abs().sum() > 0, \
                name


def test_detector_flops_through_forward_dummy(retinanet):
    estimator = ResourceEstimator(input_shape=(1, 3, 96, 96))
    whole = estimator.estimate(retinanet)
    backbone = estimator.estimate(retinanet, module='model.backbone')
    assert 0 < backbone['flops'] < whole['flops']
    # The head's two output convs alone (3x3, stride 1): per level
    # side^2 * 9 * in_channels * out_channels multiply-adds.
    anchors = len(ANCHORS['ratios']) * ANCHORS['scales_per_octave']
    head_out = sum(
        math.ceil(96 / s)**2 * 9 * 32 * anchors * (10 + 4)
        for s in ANCHORS['strides'])
    assert whole['flops'] - backbone['flops'] > head_out


def test_two_stage_detector_forward_dummy():
    # Faster R-CNN's RPN needs image shapes in 'tensor' mode: the wrapper
    # gives it meta-only data samples.
    cfg = dict(
        type='mmdet.FasterRCNN',
        data_preprocessor=RETINANET['data_preprocessor'],
        backbone=RESNET18,
        neck=dict(type='FPN', in_channels=[128, 256, 512], out_channels=32,
                  num_outs=3),
        rpn_head=dict(
            type='RPNHead', in_channels=32, feat_channels=32,
            anchor_generator=dict(type='AnchorGenerator', scales=[4],
                                  ratios=[0.5, 1.0, 2.0],
                                  strides=[8, 16, 32]),
            bbox_coder=dict(type='DeltaXYWHBBoxCoder',
                            target_means=[0.0] * 4, target_stds=[1.0] * 4),
            loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=True),
            loss_bbox=dict(type='L1Loss')),
        roi_head=dict(
            type='StandardRoIHead',
            bbox_roi_extractor=dict(
                type='SingleRoIExtractor',
                roi_layer=dict(type='RoIAlign', output_size=7,
                               sampling_ratio=0),
                out_channels=32, featmap_strides=[8, 16, 32]),
            bbox_head=dict(
                type='Shared2FCBBoxHead', in_channels=32, fc_out_channels=64,
                roi_feat_size=7, num_classes=10,
                bbox_coder=dict(type='DeltaXYWHBBoxCoder',
                                target_means=[0.0] * 4,
                                target_stds=[0.1, 0.1, 0.2, 0.2]),
                reg_class_agnostic=False,
                loss_cls=dict(type='CrossEntropyLoss'),
                loss_bbox=dict(type='L1Loss'))),
        train_cfg=None,
        test_cfg=dict(
            rpn=dict(nms_pre=200, max_per_img=50,
                     nms=dict(type='nms', iou_threshold=0.7),
                     min_bbox_size=0),
            rcnn=dict(score_thr=0.05, nms=dict(type='nms', iou_threshold=0.5),
                      max_per_img=20)))
    torch.manual_seed(0)
    arch = MMDetArchitecture(model=cfg).eval()
    img = torch.rand(2, 3, 96, 96)
    with torch.no_grad():
        (cls_score, bbox_pred), = arch.forward_dummy(img)
        # mode='tensor' without data samples, as mmengine tools call it.
        (again, _), = arch(img, mode='tensor')
    torch.testing.assert_close(again, cls_score)
    rois = cls_score.shape[0]
    assert 0 < rois <= 2 * cfg['test_cfg']['rpn']['max_per_img']
    assert cls_score.shape == (rois, 10 + 1)  # classes + background
    assert bbox_pred.shape == (rois, 4 * 10)  # class-specific boxes


# ---------------------------------------------------------- segmentation
def test_segmentor_is_built_from_mmseg(pspnet):
    from mmseg.models.losses import CrossEntropyLoss
    from mmseg.models.segmentors import EncoderDecoder
    assert isinstance(pspnet, MMSegArchitecture)
    assert isinstance(pspnet.model, EncoderDecoder)
    # mmseg's CrossEntropyLoss, not mmpretrain's namesake.
    assert type(pspnet.model.decode_head.loss_decode) is CrossEntropyLoss
    with pytest.raises(TypeError, match='BaseSegmentor'):
        MMSegArchitecture(model=nn.Conv2d(3, 3, 1))


def test_segmentor_losses_pass_through(pspnet):
    pspnet.train()
    data = pspnet.data_preprocessor(real_batch('seg', DENSE_ROOT), True)
    torch.manual_seed(1)
    losses = pspnet(**data, mode='loss')
    assert set(losses) == {
        'decode.loss_ce', 'decode.acc_seg', 'aux.loss_ce', 'aux.acc_seg'
    }
    for name, value in losses.items():
        assert torch.isfinite(value).all(), name
    assert losses['decode.loss_ce'] > 0 and losses['aux.loss_ce'] > 0
    torch.manual_seed(1)  # same dropout masks
    direct = pspnet.model.loss(data['inputs'], data['data_samples'])
    for name in losses:
        torch.testing.assert_close(losses[name], direct[name])


def test_segmentor_predictions(pspnet):
    from mmseg.structures import SegDataSample
    pspnet.eval()
    data = pspnet.data_preprocessor(
        real_batch('seg', DENSE_ROOT, 'val', num=2), False)
    with torch.no_grad():
        preds = pspnet(**data, mode='predict')
    assert len(preds) == 2
    for pred in preds:
        assert isinstance(pred, SegDataSample)
        labels = pred.pred_sem_seg.data
        logits = pred.seg_logits.data
        assert labels.shape == (1, 96, 96) and logits.shape == (11, 96, 96)
        assert ((labels >= 0) & (labels < 11)).all()
        assert torch.equal(labels[0], logits.argmax(dim=0))


def test_segmentor_forward_dummy_and_pseudo_loss(pspnet):
    pspnet.eval()  # no dropout: outputs are reproducible
    img = torch.rand(2, 3, 96, 96)
    logits = pspnet.forward_dummy(img)
    # ResNetV1c: stem (conv stride 2, max-pool stride 2), then the stage
    # strides of the config.
    stride = 4 * math.prod(PSPNET['backbone']['strides'])
    assert logits.shape == (2, 11, 96 // stride, 96 // stride)
    with torch.no_grad():
        feats = pspnet.model.backbone(img)
        aux = pspnet.model.auxiliary_head(feats)
        expected = logits.sum() + aux.sum()
        torch.testing.assert_close(pspnet.cal_pseudo_loss(img), expected)
    pspnet.zero_grad()
    pspnet.cal_pseudo_loss(img).backward()
    for head in ('decode_head', 'auxiliary_head'):
        grad = getattr(pspnet.model, head).conv_seg.weight.grad
        assert grad is not None and grad.abs().sum() > 0, head
