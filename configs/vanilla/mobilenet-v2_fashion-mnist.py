# MobileNetV2 (width 0.5, mmpretrain's) on Fashion-MNIST: the images are
# served as 32x32x3 arrays (FashionMNISTAsCIFAR: zero-padded by 2 pixels,
# grey repeated over three channels), so the ImageNet backbone runs
# unchanged (statistics of the padded training subset). A few minutes per
# epoch on 2 CPU cores.
_base_ = [
    '../_base_/datasets/fashion_mnist_bs64.py',
    '../_base_/schedules/fashion_mnist_sgd_cos_6e.py',
    '../_base_/default_runtime.py',
]

data_preprocessor = dict(
    type='mmpretrain.ClsDataPreprocessor',
    num_classes=10,
    mean=[55.45, 55.45, 55.45],
    std=[84.17, 84.17, 84.17],
    to_rgb=False)
train_dataloader = dict(dataset=dict(type='FashionMNISTAsCIFAR'))
val_dataloader = dict(dataset=dict(type='FashionMNISTAsCIFAR'))
test_dataloader = val_dataloader

model = dict(
    type='mmpretrain.ImageClassifier',
    data_preprocessor=data_preprocessor,
    backbone=dict(type='mmpretrain.MobileNetV2', widen_factor=0.5),
    neck=dict(type='mmpretrain.GlobalAveragePooling'),
    head=dict(
        type='mmpretrain.LinearClsHead',
        num_classes=10,
        in_channels=1280,
        loss=dict(type='mmpretrain.CrossEntropyLoss', loss_weight=1.0),
        topk=(1, )),
)
