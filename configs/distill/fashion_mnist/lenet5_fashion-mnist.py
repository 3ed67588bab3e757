# LeNet-5 (tanh, average pooling: mmpretrain's LeNet5 backbone, a linear
# head on its 120 features) on Fashion-MNIST resized to 32x32, the input
# LeNet-5 was made for: the teacher of the data-free (DAFL) config, as in
# the DAFL paper's MNIST experiment.
#   python tools/train.py configs/distill/fashion_mnist/lenet5_fashion-mnist.py \
#       --work-dir work_dirs/distill_fmnist/lenet5
_base_ = [
    '../../_base_/datasets/fashion_mnist_bs64.py',
    '../../_base_/schedules/fashion_mnist_sgd_cos_6e.py',
    '../../_base_/default_runtime.py',
]

model = dict(
    type='mmpretrain.ImageClassifier',
    data_preprocessor={{_base_.data_preprocessor}},
    backbone=dict(type='mmpretrain.LeNet5'),
    neck=dict(type='mmpretrain.GlobalAveragePooling'),
    head=dict(
        type='mmpretrain.LinearClsHead',
        num_classes=10,
        in_channels=120,
        loss=dict(type='mmpretrain.CrossEntropyLoss', loss_weight=1.0),
        topk=(1, )),
)

resize = dict(type='mmpretrain.Resize', scale=(32, 32))
train_dataloader = dict(dataset=dict(pipeline=[
    resize,
    dict(type='mmpretrain.RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='mmpretrain.PackInputs'),
]))
val_dataloader = dict(
    dataset=dict(pipeline=[resize, dict(type='mmpretrain.PackInputs')]))
test_dataloader = val_dataloader
