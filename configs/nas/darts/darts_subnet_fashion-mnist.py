# Retrain the genotype found by darts_supernet_fashion-mnist.py: the same
# cell types (2 nodes), now 5 cells of 16 base channels with affine BN and
# drop-path, trained as a plain model on the 10,000 training images.
#   python tools/train.py configs/nas/darts/darts_supernet_fashion-mnist.py
#   python tools/train.py configs/nas/darts/darts_subnet_fashion-mnist.py
#   python tools/test.py configs/nas/darts/darts_subnet_fashion-mnist.py \
#       work_dirs/darts_subnet_fashion-mnist/epoch_3.pth
# Another genotype: --cfg-options model.fix_subnet=PATH/TO/epoch_N.yaml
_base_ = [
    '../../_base_/datasets/fashion_mnist_bs64.py',
    '../../_base_/default_runtime.py',
]

# Written by SearchSubnetHook during the search (relative to the repository
# root, where tools/train.py is run).
genotype = 'work_dirs/darts_supernet_fashion-mnist/subnets/latest.yaml'

# The eight DARTS ops, for retraining: affine BN and drop-path.
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

model = dict(
    type='Darts',
    architecture=dict(
        type='mmpretrain.ImageClassifier',
        data_preprocessor={{_base_.data_preprocessor}},
        backbone=dict(
            type='DartsBackbone',
            in_channels=1,
            base_channels=16,
            num_layers=5,
            num_nodes=2,  # must match the searched cells
            stem_multiplier=2,
            mutable_cfg=retrain_mixed_op),
        neck=dict(type='mmpretrain.GlobalAveragePooling'),
        head=dict(
            type='mmpretrain.LinearClsHead',
            num_classes=10,
            in_channels=128,  # num_nodes * 4 * base_channels
            loss=dict(type='mmpretrain.CrossEntropyLoss', loss_weight=1.0),
            topk=(1, ))),
    fix_subnet=genotype,
    retraining=True)

optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=3e-4),
    clip_grad=dict(max_norm=5, norm_type=2))
param_scheduler = [
    dict(
        type='CosineAnnealingLR',
        T_max=3,
        eta_min=0,
        by_epoch=True,
        convert_to_iter_based=True)
]
train_cfg = dict(by_epoch=True, max_epochs=3, val_interval=1)
val_cfg = dict()
test_cfg = dict()

custom_hooks = [dict(type='DropPathProbHook', max_prob=0.1)]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=40),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=1,
                    save_best=None))
