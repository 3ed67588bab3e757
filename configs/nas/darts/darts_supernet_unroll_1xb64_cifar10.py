# DARTS search on CIFAR-10 (second order), the setting of the paper: an
# 8-cell supernet of 16 base channels, 50 epochs, batch 64, the 50,000
# training images split in two halves (weights / architecture parameters).
# CIFAR-10 must be provided: see configs/_base_/datasets/cifar10_darts.py.
#   python tools/train.py configs/nas/darts/darts_supernet_unroll_1xb64_cifar10.py
# The genotype of every epoch goes to WORK_DIR/subnets/epoch_{N}.yaml and
# latest.yaml; retrain it with darts_subnet_1xb96_cifar10.py
# (--cfg-options model.fix_subnet=WORK_DIR/subnets/latest.yaml).
# First order: --cfg-options model.unroll=False.
_base_ = [
    '../../_base_/datasets/cifar10_darts.py',
    '../../_base_/default_runtime.py',
]

runner_type = 'MultiLoaderEpochBasedRunner'

# [weights half, architecture half] of the training set
train_dataloader = [
    dict(
        batch_size=64,
        num_workers=4,
        dataset=dict(
            type='mmpretrain.KFoldDataset',
            dataset={{_base_.cifar10_train}},
            num_splits=2,
            fold=0,
            test_mode=False),
        sampler=dict(type='DefaultSampler', shuffle=True)),
    dict(
        batch_size=64,
        num_workers=4,
        dataset=dict(
            type='mmpretrain.KFoldDataset',
            dataset={{_base_.cifar10_train}},
            num_splits=2,
            fold=0,
            test_mode=True),
        sampler=dict(type='DefaultSampler', shuffle=True)),
]

supernet = dict(
    type='mmpretrain.ImageClassifier',
    data_preprocessor={{_base_.data_preprocessor}},
    backbone=dict(
        type='DartsBackbone',
        in_channels=3,
        base_channels=16,
        num_layers=8,
        num_nodes=4,
        stem_multiplier=3,
        out_indices=(7, )),
    neck=dict(type='mmpretrain.GlobalAveragePooling'),
    head=dict(
        type='mmpretrain.LinearClsHead',
        num_classes=10,
        in_channels=256,
        loss=dict(type='mmpretrain.CrossEntropyLoss', loss_weight=1.0),
        topk=(1, 5),
        cal_acc=True),
)

model = dict(
    type='Darts',
    architecture=dict(type='MMClsArchitecture', model=supernet),
    mutator=dict(type='DartsMutator'),
    unroll=True)

# weights: SGD with cosine decay; architecture parameters: Adam, constant lr
optim_wrapper = dict(
    constructor='mmrazor.SeparateOptimWrapperConstructor',
    architecture=dict(
        optimizer=dict(
            type='SGD', lr=0.025, momentum=0.9, weight_decay=3e-4),
        clip_grad=dict(max_norm=5, norm_type=2)),
    mutator=dict(
        optimizer=dict(
            type='Adam', lr=3e-4, betas=(0.5, 0.999), weight_decay=1e-3)))
param_scheduler = dict(
    architecture=[
        dict(
            type='CosineAnnealingLR',
            T_max=50,
            eta_min=1e-3,
            by_epoch=True,
            convert_to_iter_based=True)
    ],
    mutator=[])

train_cfg = dict(by_epoch=True, max_epochs=50, val_interval=1)
val_cfg = dict()
test_cfg = dict()

custom_hooks = [dict(type='SearchSubnetHook', interval=1)]
# several forward/backward passes per step, not every op used in each:
model_wrapper_cfg = dict(
    type='mmrazor.RazorDistributedDataParallel', find_unused_parameters=True)
