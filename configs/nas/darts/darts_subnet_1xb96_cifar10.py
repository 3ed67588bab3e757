# Retrain a DARTS genotype on CIFAR-10, the setting of the paper: 20 cells
# of 36 base channels, 600 epochs, batch 96, cutout 16, drop-path 0.2,
# gradient clipping 5. (The paper also adds an auxiliary head of weight 0.4:
# DartsBackbone builds its tower with `auxliary=True, aux_channels=128,
# aux_out_channels=768`, but no head here consumes it yet.)
# By default it retrains the published DARTS (second order) cell,
# DARTS_SUBNET_CIFAR_PAPER.yaml; for your own search:
#   python tools/train.py configs/nas/darts/darts_subnet_1xb96_cifar10.py \
#       --cfg-options model.fix_subnet=WORK_DIR/subnets/latest.yaml
# CIFAR-10 must be provided: see configs/_base_/datasets/cifar10_darts.py.
_base_ = [
    '../../_base_/datasets/cifar10_darts.py',
    '../../_base_/default_runtime.py',
]

train_dataloader = dict(
    batch_size=96,
    num_workers=4,
    dataset=dict(
        type='mmpretrain.CIFAR10',
        data_root={{_base_.data_root}},
        split='train',
        download=False,
        pipeline=[
            dict(type='mmpretrain.RandomCrop', crop_size=32, padding=4),
            dict(
                type='mmpretrain.RandomFlip',
                prob=0.5,
                direction='horizontal'),
            dict(type='mmpretrain.Cutout', shape=16, pad_val=0, prob=1.0),
            dict(type='mmpretrain.PackInputs'),
        ]),
    sampler=dict(type='DefaultSampler', shuffle=True))

# The eight DARTS ops for retraining: affine BN, drop-path.
_op_norm = dict(type='BN')
retrain_mixed_op = dict(
    type='DiffMutableOP',
    candidates=dict(
        zero=dict(type='DartsZero'),
        skip_connect=dict(
            type='DartsSkipConnect', norm_cfg=_op_norm, use_drop_path=True),
        max_pool_3x3=dict(
            type='DartsPoolBN',
            pool_type='max',
            norm_cfg=_op_norm,
            use_drop_path=True),
        avg_pool_3x3=dict(
            type='DartsPoolBN',
            pool_type='avg',
            norm_cfg=_op_norm,
            use_drop_path=True),
        sep_conv_3x3=dict(
            type='DartsSepConv',
            kernel_size=3,
            norm_cfg=_op_norm,
            use_drop_path=True),
        sep_conv_5x5=dict(
            type='DartsSepConv',
            kernel_size=5,
            norm_cfg=_op_norm,
            use_drop_path=True),
        dil_conv_3x3=dict(
            type='DartsDilConv',
            kernel_size=3,
            norm_cfg=_op_norm,
            use_drop_path=True),
        dil_conv_5x5=dict(
            type='DartsDilConv',
            kernel_size=5,
            norm_cfg=_op_norm,
            use_drop_path=True)))

subnet = dict(
    type='mmpretrain.ImageClassifier',
    data_preprocessor={{_base_.data_preprocessor}},
    backbone=dict(
        type='DartsBackbone',
        in_channels=3,
        base_channels=36,
        num_layers=20,
        num_nodes=4,
        stem_multiplier=3,
        out_indices=(19, ),
        mutable_cfg=retrain_mixed_op),
    neck=dict(type='mmpretrain.GlobalAveragePooling'),
    head=dict(
        type='mmpretrain.LinearClsHead',
        num_classes=10,
        in_channels=576,
        loss=dict(type='mmpretrain.CrossEntropyLoss', loss_weight=1.0),
        topk=(1, 5),
        cal_acc=True),
)

model = dict(
    type='Darts',
    architecture=dict(type='MMClsArchitecture', model=subnet),
    fix_subnet='configs/nas/darts/DARTS_SUBNET_CIFAR_PAPER.yaml',
    retraining=True)

optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.025, momentum=0.9, weight_decay=3e-4),
    clip_grad=dict(max_norm=5, norm_type=2))
param_scheduler = [
    dict(
        type='CosineAnnealingLR',
        T_max=600,
        eta_min=0,
        by_epoch=True,
        convert_to_iter_based=True)
]
train_cfg = dict(by_epoch=True, max_epochs=600, val_interval=1)
val_cfg = dict()
test_cfg = dict()

custom_hooks = [dict(type='DropPathProbHook', max_prob=0.2, interval=1)]
