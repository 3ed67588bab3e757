# Channel-wise distillation (CWD, Shu et al., ICCV 2021) of GFL-R50 from
# GFL-R101 on COCO, 8 GPUs x 2 images, 12 epochs.
#
# The teacher is OpenMMLab's published GFL-R101-FPN (multi-scale 2x, 44.7 box
# AP); the student is mmdet's GFL-R50-FPN 1x with an ImageNet-pretrained
# backbone. The classification (quality) logits of the shared GFL head
# (`bbox_head.gfl_cls`, 80 channels, called once per FPN level) are distilled
# with ChannelWiseDivergence, level by level.
#
#   bash tools/dist_train.sh configs/distill/cwd/cwd_cls_head_gfl_r101_fpn_gfl_r50_fpn_1x_coco.py 8
#
# Not trained by us (no COCO or GPUs here); no result is claimed.
_base_ = ['./_base_/coco-detection_1x_mmdet-runtime.py']

teacher_ckpt = ('https://download.openmmlab.com/mmdetection/v2.0/gfl/'
                'gfl_r101_fpn_mstrain_2x_coco/'
                'gfl_r101_fpn_mstrain_2x_coco_20200629_200126-dd12f847.pth')


def _gfl(depth, backbone_init):
    """GFL with a ResNet-FPN as mmdet 3.x builds it (80 classes)."""
    return dict(
        type='mmdet.GFL',
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
            in_channels=[256, 512, 1024, 2048],
            out_channels=256,
            start_level=1,
            add_extra_convs='on_output',
            num_outs=5),
        bbox_head=dict(
            type='mmdet.GFLHead',
            num_classes=80,
            in_channels=256,
            stacked_convs=4,
            feat_channels=256,
            anchor_generator=dict(
                type='mmdet.AnchorGenerator',
                ratios=[1.0],
                octave_base_scale=8,
                scales_per_octave=1,
                strides=[8, 16, 32, 64, 128]),
            loss_cls=dict(
                type='mmdet.QualityFocalLoss',
                use_sigmoid=True,
                beta=2.0,
                loss_weight=1.0),
            loss_dfl=dict(
                type='mmdet.DistributionFocalLoss', loss_weight=0.25),
            reg_max=16,
            loss_bbox=dict(type='mmdet.GIoULoss', loss_weight=2.0)),
        train_cfg=dict(
            assigner=dict(type='mmdet.ATSSAssigner', topk=9),
            allowed_border=-1,
            pos_weight=-1,
            debug=False),
        test_cfg=dict(
            nms_pre=1000,
            min_bbox_size=0,
            score_thr=0.05,
            nms=dict(type='nms', iou_threshold=0.6),
            max_per_img=100))


student = _gfl(50, dict(type='Pretrained', checkpoint='torchvision://resnet50'))
# The teacher's weights all come from `teacher_ckpt`.
teacher = _gfl(101, None)

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
        components=[
            dict(
                student_module='bbox_head.gfl_cls',
                teacher_module='bbox_head.gfl_cls',
                losses=[
                    dict(
                        type='ChannelWiseDivergence',
                        name='loss_cwd_cls',
                        tau=1.0,
                        loss_weight=5.0)
                ])
        ]),
)
