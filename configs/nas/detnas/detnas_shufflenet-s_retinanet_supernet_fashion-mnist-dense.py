# DetNAS supernet pre-training on Fashion-MNIST dense (10 epochs of about
# 15 s each on 2 idle CPU cores):
# RetinaNet whose backbone is a small searchable ShuffleNetV2. Each step
# trains one random backbone path (SPOS); the FPN and the head are shared
# by every path.
#   python tools/train.py configs/nas/detnas/detnas_shufflenet-s_retinanet_supernet_fashion-mnist-dense.py
#
# Backbone: a 3x3 stride-2 stem to 16 channels, four stages of
# [24, 1], [48, 2], [96, 2], [160, 1] blocks (each block one of shuffle_3x3
# / 5x5 / 7x7 / xception; 4^6 = 4096 paths), no last 1x1 conv. Stages 1-3
# (strides 8, 16, 32: 12x12, 6x6 and 3x3 maps of a 96x96 canvas) feed a
# 3-level FPN; the anchors (2x stride, 3 scales per octave: 16-101 px)
# cover the 5-44 px items.
_base_ = [
    '../../_base_/datasets/fashion_mnist_dense_det.py',
    '../../_base_/default_runtime.py',
]

backbone_channels = [48, 96, 160]  # outputs of stages 1, 2, 3

supernet = dict(
    type='mmdet.RetinaNet',
    data_preprocessor={{_base_.data_preprocessor}},
    backbone=dict(
        type='mmrazor.SearchableShuffleNetV2',
        arch_setting=[[24, 1], [48, 2], [96, 2], [160, 1]],
        out_indices=(1, 2, 3),
        with_last_layer=False,
        norm_cfg=dict(type='BN')),
    neck=dict(
        type='mmdet.FPN',
        in_channels=backbone_channels,
        out_channels=64,
        start_level=0,
        num_outs=3),
    bbox_head=dict(
        type='mmdet.RetinaHead',
        num_classes=10,
        in_channels=64,
        stacked_convs=2,
        feat_channels=64,
        norm_cfg=dict(type='GN', num_groups=8, requires_grad=True),
        anchor_generator=dict(
            type='mmdet.AnchorGenerator',
            octave_base_scale=2,
            scales_per_octave=3,
            ratios=[0.5, 1.0, 2.0],
            strides=[8, 16, 32]),
        bbox_coder=dict(
            type='mmdet.DeltaXYWHBBoxCoder',
            target_means=[0.0, 0.0, 0.0, 0.0],
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
        max_per_img=100))

# BN in batch-statistics mode when validating the supernet: the path in
# use has no running statistics of its own (the search re-calibrates).
model = dict(
    type='DetNAS',
    architecture=supernet,
    # Backbone FLOPs are counted on one 96x96 canvas.
    input_shape=(3, 96, 96),
    bn_training_mode=True)

# Unsampled candidates receive no gradient in a step.
find_unused_parameters = True

optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=2e-3, weight_decay=1e-4),
    clip_grad=dict(max_norm=10.0, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,
         end=50),
    dict(type='CosineAnnealingLR', T_max=10, by_epoch=True, begin=0, end=10,
         convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=10, val_interval=5)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=16)

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=2,
                    save_best=None),
    visualization=dict(
        _delete_=True, type='mmdet.DetVisualizationHook', draw=False))
visualizer = dict(
    _delete_=True,
    type='mmdet.DetLocalVisualizer',
    vis_backends=[dict(type='LocalVisBackend')],
    name='visualizer')
