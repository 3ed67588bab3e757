# Channel-wise distillation (CWD, Shu et al., ICCV 2021) of RetinaNet-R50
# from RetinaNet-R101 on COCO, 8 GPUs x 2 images, 12 epochs.
#
# The teacher is OpenMMLab's published RetinaNet-R101-FPN 1x (38.5 box AP);
# the student is mmdet's RetinaNet-R50-FPN with an ImageNet-pretrained
# backbone. Both FPNs output 256 channels, so the five FPN levels
# (`neck.fpn_convs.{0..4}`) and the classification logits of the shared head
# (`bbox_head.retina_cls`, called once per level; the five calls are paired
# level by level and summed) are distilled with ChannelWiseDivergence
# without align modules.
#
#   bash tools/dist_train.sh configs/distill/cwd/cwd_fpn_retina_r101_retina_r50_1x_coco.py 8
#
# Not trained by us (no COCO or GPUs here); no result is claimed.
_base_ = ['./_base_/coco-detection_1x_mmdet-runtime.py']

teacher_ckpt = ('https://download.openmmlab.com/mmdetection/v2.0/retinanet/'
                'retinanet_r101_fpn_1x_coco/'
                'retinanet_r101_fpn_1x_coco_20200130-7a93545f.pth')


def _retinanet(depth, backbone_init, in_channels):
    """RetinaNet with a ResNet-FPN as mmdet 3.x builds it (80 classes)."""
    return dict(
        type='mmdet.RetinaNet',
        data_preprocessor=dict(
            type='mmdet.DetDataPreprocessor',
            mean=[123.675, 116.28, 103.53],
            std=[58.395, 57.12, 57.375],
            bgr_to_rgb=True,
            pad_size_divisor=32),
        backbone=dict(
            type='mmdet.ResNet',
            depth=depth,
            num_stages=4,
            out_indices=(0, 1, 2, 3),
            frozen_stages=1,
            norm_cfg=dict(type='BN', requires_grad=True),
            norm_eval=True,
            style='pytorch',
            init_cfg=backbone_init),
        neck=dict(
            type='mmdet.FPN',
            in_channels=in_channels,
            out_channels=256,
            start_level=1,
            add_extra_convs='on_input',
            num_outs=5),
        bbox_head=dict(
            type='mmdet.RetinaHead',
            num_classes=80,
            in_channels=256,
            stacked_convs=4,
            feat_channels=256,
            anchor_generator=dict(
                type='mmdet.AnchorGenerator',
                octave_base_scale=4,
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
            max_per_img=100))


student = _retinanet(
    50, dict(type='Pretrained', checkpoint='torchvision://resnet50'),
    [256, 512, 1024, 2048])
# The teacher's weights all come from `teacher_ckpt`.
teacher = _retinanet(101, None, [256, 512, 1024, 2048])

fpn_components = [
    dict(
        student_module=f'neck.fpn_convs.{i}.conv',
        teacher_module=f'neck.fpn_convs.{i}.conv',
        losses=[
            dict(
                type='ChannelWiseDivergence',
                name=f'loss_cwd_fpn{i}',
                tau=1.0,
                loss_weight=10.0)
        ]) for i in range(5)
]

model = dict(
    _scope_='mmrazor',
    type='GeneralDistill',
    architecture=dict(type='MMDetArchitecture', model=student),
    with_student_loss=True,
    with_teacher_loss=False,
    distiller=dict(
        type='SingleTeacherDistiller',
        teacher=teacher,
        teacher_ckpt=teacher_ckpt,
        teacher_trainable=False,
        teacher_norm_eval=True,
        components=fpn_components + [
            dict(
                student_module='bbox_head.retina_cls',
                teacher_module='bbox_head.retina_cls',
                losses=[
                    dict(
                        type='ChannelWiseDivergence',
                        name='loss_cwd_cls',
                        tau=1.0,
                        loss_weight=5.0)
                ])
        ]),
)
