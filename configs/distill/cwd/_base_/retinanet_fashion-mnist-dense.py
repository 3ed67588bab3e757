# Shared base of the small RetinaNet configs on the generated Fashion-MNIST
# dense data (configs/_base_/datasets/fashion_mnist_dense_det.py): data,
# schedule, runtime, and the teacher / student detectors (as
# `teacher_model` / `student_model`, used by the teacher, student and CWD
# configs alike).
#
# Sized for a CPU: 96x96 canvases, batches of 16, an iteration-based
# schedule with one COCO-style bbox evaluation on the 200 val canvases at
# the end. Every model starts from random weights: nothing is downloaded.
_base_ = [
    '../../../_base_/datasets/fashion_mnist_dense_det.py',
    '../../../_base_/default_runtime.py',
]

num_classes = 10
norm_cfg = dict(type='BN', requires_grad=True)
# Both FPNs output this many channels, so FPN maps and head logits of the
# teacher and the student have equal shapes (no align module needed).
fpn_channels = 64

data_preprocessor = dict(
    type='mmdet.DetDataPreprocessor',
    mean=[23.69, 23.69, 23.69],
    std=[59.86, 59.86, 59.86],
    bgr_to_rgb=False,
    pad_size_divisor=32)


def _retinanet(depth, width, stacked_convs):
    """RetinaNet with a ResNet of base width ``width`` and an FPN of
    ``fpn_channels``; anchors of 24-38 pixels on the finest level (stride
    8) for the 20-44 pixel items."""
    expansion = 4 if depth >= 50 else 1
    return dict(
        type='mmdet.RetinaNet',
        data_preprocessor=data_preprocessor,
        backbone=dict(
            type='mmdet.ResNet',
            depth=depth,
            stem_channels=width,
            base_channels=width,
            num_stages=4,
            out_indices=(0, 1, 2, 3),
            frozen_stages=-1,
            norm_cfg=norm_cfg,
            norm_eval=False,
            style='pytorch'),
        neck=dict(
            type='mmdet.FPN',
            in_channels=[width * expansion * 2**i for i in range(4)],
            out_channels=fpn_channels,
            start_level=1,
            add_extra_convs='on_input',
            num_outs=5),
        bbox_head=dict(
            type='mmdet.RetinaHead',
            num_classes=num_classes,
            in_channels=fpn_channels,
            stacked_convs=stacked_convs,
            feat_channels=fpn_channels,
            anchor_generator=dict(
                type='mmdet.AnchorGenerator',
                octave_base_scale=3,
                scales_per_octave=3,
                ratios=[0.5, 1.0, 2.0],
                strides=[8, 16, 32, 64, 128]),
            bbox_coder=dict(
                type='mmdet.DeltaXYWHBBoxCoder',
                target_means=[.0, .0, .0, .0],
                target_stds=[1.0, 1.0, 1.0, 1.0]),
            loss_cls=dict(
                type='mmdet.FocalLoss',
                use_sigmoid=True,
                gamma=2.0,
                alpha=0.25,
                loss_weight=1.0),
            loss_bbox=dict(type='mmdet.L1Loss', loss_weight=1.0)),
        train_cfg=dict(
            assigner=dict(
                type='mmdet.MaxIoUAssigner',
                pos_iou_thr=0.5,
                neg_iou_thr=0.4,
                min_pos_iou=0,
                ignore_iof_thr=-1),
            sampler=dict(type='mmdet.PseudoSampler'),
            allowed_border=-1,
            pos_weight=-1,
            debug=False),
        test_cfg=dict(
            nms_pre=1000,
            min_bbox_size=0,
            score_thr=0.05,
            nms=dict(type='nms', iou_threshold=0.5),
            max_per_img=20))


# Teacher: RetinaNet-R50 (ResNet-50 at half width) with a 4-conv head.
teacher_model = _retinanet(50, 32, 4)
# Student: RetinaNet-R18 (ResNet-18 at quarter width) with a 2-conv head.
student_model = _retinanet(18, 16, 2)

# Schedule: AdamW, linear warm-up, poly decay, gradient clipping.
max_iters = 600
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=1e-4),
    clip_grad=dict(max_norm=10, norm_type=2))
param_scheduler = [
    dict(
        type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=50),
    dict(
        type='PolyLR',
        power=0.9,
        eta_min=1e-5,
        by_epoch=False,
        begin=50,
        end=max_iters),
]
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    checkpoint=dict(
        _delete_=True,
        type='CheckpointHook',
        by_epoch=False,
        interval=max_iters,
        max_keep_ckpts=1),
    visualization=dict(
        _delete_=True, type='mmdet.DetVisualizationHook', draw=False))
visualizer = dict(
    _delete_=True,
    type='mmdet.DetLocalVisualizer',
    vis_backends=[dict(type='LocalVisBackend')],
    name='visualizer')
log_processor = dict(by_epoch=False)
