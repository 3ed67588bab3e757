# Channel-wise distillation (CWD, Shu et al., ICCV 2021) of PSPNet-R18 from
# PSPNet-R101 on Cityscapes, 512x1024 crops, 4 GPUs x 2 images, 80k iters.
#
# The teacher is OpenMMLab's published PSPNet-R101-d8 (80k, 79.76 mIoU); the
# student is mmseg's PSPNet-R18-d8 with an ImageNet-pretrained ResNet-18-V1c
# backbone. The decode-head logits (`decode_head.conv_seg`, 19 channels at
# 1/8 resolution) are distilled with ChannelWiseDivergence, next to the
# student's own cross-entropy losses.
#
# Data: data/cityscapes/{leftImg8bit,gtFine} as in mmsegmentation
# (`python tools/dataset_converters/cityscapes.py data/cityscapes` of mmseg
# creates the *_labelTrainIds.png files).
#
#   bash tools/dist_train.sh \
#       configs/distill/cwd/cwd_logits_pspnet_r101-d8_pspnet_r18-d8_4xb2-80k_cityscapes-512x1024.py 4
#
# Not trained by us (no Cityscapes or GPUs here); no result is claimed.
_base_ = ['./_base_/cityscapes-512x1024_80k_mmseg-runtime.py']

crop_size = (512, 1024)
num_classes = 19
norm_cfg = dict(type='SyncBN', requires_grad=True)

teacher_ckpt = ('https://download.openmmlab.com/mmsegmentation/v0.5/pspnet/'
                'pspnet_r101-d8_512x1024_80k_cityscapes/'
                'pspnet_r101-d8_512x1024_80k_cityscapes_20200606_112211-'
                'e1e1100f.pth')

data_preprocessor = dict(
    type='mmseg.SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size=crop_size)


def _pspnet(depth, pretrained, head_in, head_channels, aux_in, aux_channels):
    """A PSPNet-d8 (dilated ResNet-V1c, PSP decode head, FCN auxiliary
    head) as mmseg builds it."""
    return dict(
        type='mmseg.EncoderDecoder',
        data_preprocessor=data_preprocessor,
        pretrained=pretrained,
        backbone=dict(
            type='mmseg.ResNetV1c',
            depth=depth,
            num_stages=4,
            out_indices=(0, 1, 2, 3),
            dilations=(1, 1, 2, 4),
            strides=(1, 2, 1, 1),
            norm_cfg=norm_cfg,
            norm_eval=False,
            style='pytorch',
            contract_dilation=True),
        decode_head=dict(
            type='mmseg.PSPHead',
            in_channels=head_in,
            in_index=3,
            channels=head_channels,
            pool_scales=(1, 2, 3, 6),
            dropout_ratio=0.1,
            num_classes=num_classes,
            norm_cfg=norm_cfg,
            align_corners=False,
            loss_decode=dict(
                type='mmseg.CrossEntropyLoss',
                use_sigmoid=False,
                loss_weight=1.0)),
        auxiliary_head=dict(
            type='mmseg.FCNHead',
            in_channels=aux_in,
            in_index=2,
            channels=aux_channels,
            num_convs=1,
            concat_input=False,
            dropout_ratio=0.1,
            num_classes=num_classes,
            norm_cfg=norm_cfg,
            align_corners=False,
            loss_decode=dict(
                type='mmseg.CrossEntropyLoss',
                use_sigmoid=False,
                loss_weight=0.4)),
        train_cfg=dict(),
        test_cfg=dict(mode='whole'))


student = _pspnet(18, 'open-mmlab://resnet18_v1c', 512, 128, 256, 64)
# The teacher's weights all come from `teacher_ckpt`.
teacher = _pspnet(101, None, 2048, 512, 1024, 256)

model = dict(
    _scope_='mmrazor',
    type='GeneralDistill',
    architecture=dict(type='MMSegArchitecture', model=student),
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
                student_module='decode_head.conv_seg',
                teacher_module='decode_head.conv_seg',
                losses=[
                    dict(
                        type='ChannelWiseDivergence',
                        name='loss_cwd_logits',
                        tau=1.0,
                        loss_weight=3.0)
                ])
        ]),
)
