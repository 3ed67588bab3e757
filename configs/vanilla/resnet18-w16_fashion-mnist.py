# Quickstart: a thin ResNet-18 (CIFAR-style 3x3 stem, no max-pool,
# base width 16 instead of 64) trained on the Fashion-MNIST subset that ships with mmrazor.
# On 2 CPU cores it trains in a few minutes and reaches ~88% top-1.
_base_ = [
    '../_base_/datasets/fashion_mnist_bs64.py',
    '../_base_/schedules/fashion_mnist_sgd_cos_6e.py',
    '../_base_/default_runtime.py',
]

model = dict(
    type='mmpretrain.ImageClassifier',
    data_preprocessor={{_base_.data_preprocessor}},
    backbone=dict(
        type='mmpretrain.ResNet_CIFAR',
        depth=18,
        in_channels=1,
        stem_channels=16,
        base_channels=16,
        num_stages=4,
        out_indices=(3, ),
        style='pytorch'),
    neck=dict(type='mmpretrain.GlobalAveragePooling'),
    head=dict(
        type='mmpretrain.LinearClsHead',
        num_classes=10,
        in_channels=128,
        loss=dict(type='mmpretrain.CrossEntropyLoss', loss_weight=1.0),
        topk=(1, )),
)
