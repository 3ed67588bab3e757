# Shared base of the small PSPNet configs on the generated Fashion-MNIST
# dense data (configs/_base_/datasets/fashion_mnist_dense_seg.py): data,
# schedule, runtime, and the teacher / student segmentors (as
# `teacher_model` / `student_model`, so that the teacher config, the
# student config and the CWD config use one definition of each).
#
# Sized for a CPU: the 96x96 canvases are resized to 64x64 (items of 13-29
# pixels), batches of 8, an iteration-based schedule with one validation
# (mIoU over the 11 classes on the 200 val canvases, at their original 96x96
# size) at the end. Every model starts from random weights: nothing is
# downloaded.
_base_ = [
    '../../../_base_/datasets/fashion_mnist_dense_seg.py',
    '../../../_base_/default_runtime.py',
]

input_size = (64, 64)
num_classes = 11
norm_cfg = dict(type='BN', requires_grad=True)

data_preprocessor = dict(
    type='mmseg.SegDataPreProcessor',
    mean=[23.69, 23.69, 23.69],
    std=[59.86, 59.86, 59.86],
    bgr_to_rgb=False,
    pad_val=0,
    seg_pad_val=255,
    size=input_size)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='mmseg.LoadAnnotations', reduce_zero_label=False),
    dict(type='Resize', scale=input_size, keep_ratio=True),
    dict(type='mmseg.RandomFlip', prob=0.5),
    dict(type='mmseg.PackSegInputs'),
]
# The label maps stay at 96x96: predictions are resized back to the
# original canvas before the mIoU is computed.
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=input_size, keep_ratio=True),
    dict(type='mmseg.LoadAnnotations', reduce_zero_label=False),
    dict(type='mmseg.PackSegInputs'),
]
train_dataloader = dict(batch_size=8, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(batch_size=20, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader


def _pspnet(depth, width, head_channels, aux_channels):
    """PSPNet-d8 (dilated ResNet-V1c, output stride 8) of base width
    ``width`` (64 is the usual ResNet)."""
    expansion = 4 if depth >= 50 else 1
    return dict(
        type='mmseg.EncoderDecoder',
        data_preprocessor=data_preprocessor,
        backbone=dict(
            type='mmseg.ResNetV1c',
            depth=depth,
            stem_channels=width,
            base_channels=width,
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
            in_channels=8 * width * expansion,
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
            in_channels=4 * width * expansion,
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


# Teacher: PSPNet-R50-d8, ResNet-V1c-50 at a quarter of the usual width
# (2.1M parameters; 512 channels out of the backbone).
teacher_model = _pspnet(50, 16, 64, 32)
# Student: PSPNet-R18-d8, ResNet-V1c-18 at the same quarter width (0.8M
# parameters; 128 channels out of the backbone).
student_model = _pspnet(18, 16, 32, 16)

# Schedule: AdamW with a short linear warm-up and poly decay, 1,200
# iterations of 8 canvases (12 epochs); the teacher config trains longer
# (`train_cfg.max_iters` and the scheduler's `end`).
max_iters = 1200
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-3, weight_decay=1e-4))
param_scheduler = [
    dict(
        type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=40),
    dict(
        type='PolyLR',
        power=0.9,
        eta_min=1e-5,
        by_epoch=False,
        begin=40,
        end=max_iters),
]
train_cfg = dict(
    type='IterBasedTrainLoop',
    max_iters=max_iters,
    val_interval=max_iters)
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
        _delete_=True, type='mmseg.SegVisualizationHook', draw=False))
visualizer = dict(
    _delete_=True,
    type='mmseg.SegLocalVisualizer',
    vis_backends=[dict(type='LocalVisBackend')],
    name='visualizer')
log_processor = dict(by_epoch=False)
