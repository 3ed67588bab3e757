# DARTS search on the Fashion-MNIST subset that ships with mmrazor: a small
# supernet (3 cells of 2 nodes, 8 base channels) searched for 2 epochs on
# 2 x 1920 training images, first-order. On 2 CPU cores it takes a few
# minutes. The genotype is written every epoch to
#   work_dirs/darts_supernet_fashion-mnist/subnets/epoch_{N}.yaml
# (and latest.yaml), which darts_subnet_fashion-mnist.py retrains:
#   python tools/train.py configs/nas/darts/darts_supernet_fashion-mnist.py
#   python tools/train.py configs/nas/darts/darts_subnet_fashion-mnist.py
# Second order: add `--cfg-options model.unroll=True` (about 3x slower).
_base_ = [
    '../../_base_/datasets/fashion_mnist_bs64.py',
    '../../_base_/default_runtime.py',
]

# Each step reads one batch of every train loader: [train_batch, val_batch].
runner_type = 'MultiLoaderEpochBasedRunner'

# The weights train on one half of the first 3840 training images, the
# architecture parameters on the other half (disjoint; same augmentation).
# (`mmrazor.` is needed inside the mmpretrain wrapper: mmpretrain has a
# FashionMNIST of its own, which downloads.)
search_subset = dict(
    type='mmrazor.FashionMNIST',
    data_root={{_base_.data_root}},
    split='train',
    indices=3840,
    pipeline={{_base_.train_pipeline}})
train_dataloader = [
    dict(
        batch_size=32,
        num_workers=0,
        dataset=dict(
            type='mmpretrain.KFoldDataset',
            dataset=search_subset,
            num_splits=2,
            fold=0,
            test_mode=False),
        sampler=dict(type='DefaultSampler', shuffle=True)),
    dict(
        batch_size=32,
        num_workers=0,
        dataset=dict(
            type='mmpretrain.KFoldDataset',
            dataset=search_subset,
            num_splits=2,
            fold=0,
            test_mode=True),
        sampler=dict(type='DefaultSampler', shuffle=True)),
]
# The supernet is evaluated on the first 1000 test images.
val_dataloader = dict(dataset=dict(indices=1000))
test_dataloader = val_dataloader

model = dict(
    type='Darts',
    architecture=dict(
        type='mmpretrain.ImageClassifier',
        data_preprocessor={{_base_.data_preprocessor}},
        backbone=dict(
            type='DartsBackbone',
            in_channels=1,
            base_channels=8,
            num_layers=3,
            num_nodes=2,
            stem_multiplier=2),
        neck=dict(type='mmpretrain.GlobalAveragePooling'),
        head=dict(
            type='mmpretrain.LinearClsHead',
            num_classes=10,
            in_channels=64,  # num_nodes * 4 * base_channels
            loss=dict(type='mmpretrain.CrossEntropyLoss', loss_weight=1.0),
            topk=(1, ))),
    mutator=dict(type='DartsMutator'),
    unroll=False)

# One optimizer per group: weights (`architecture`) and architecture
# parameters (`mutator`); only the weights follow a schedule.
optim_wrapper = dict(
    constructor='mmrazor.SeparateOptimWrapperConstructor',
    architecture=dict(
        optimizer=dict(
            type='SGD', lr=0.05, momentum=0.9, weight_decay=3e-4),
        clip_grad=dict(max_norm=5, norm_type=2)),
    mutator=dict(
        optimizer=dict(
            type='Adam', lr=3e-3, betas=(0.5, 0.999), weight_decay=1e-3)))
param_scheduler = dict(
    architecture=[
        dict(
            type='CosineAnnealingLR',
            T_max=2,
            eta_min=1e-3,
            by_epoch=True,
            convert_to_iter_based=True)
    ],
    mutator=[])

train_cfg = dict(by_epoch=True, max_epochs=2, val_interval=1)
val_cfg = dict()
test_cfg = dict()

custom_hooks = [dict(type='SearchSubnetHook', interval=1)]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=1,
                    save_best=None))
