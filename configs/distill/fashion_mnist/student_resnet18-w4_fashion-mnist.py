# The student alone: the same ResNet-18 layout at a quarter of the width
# (base width 4, ~16x fewer parameters than the teacher), same data,
# schedule (6 epochs) and seeds as the distilled run, for a fair comparison.
#   python tools/train.py \
#       configs/distill/fashion_mnist/student_resnet18-w4_fashion-mnist.py \
#       --work-dir work_dirs/distill_fmnist/student_seed0 \
#       --cfg-options randomness.seed=0
_base_ = [
    '../../_base_/datasets/fashion_mnist_bs64.py',
    '../../_base_/schedules/fashion_mnist_sgd_cos_6e.py',
    '../../_base_/default_runtime.py',
]

model = dict(
    type='mmpretrain.ImageClassifier',
    data_preprocessor={{_base_.data_preprocessor}},
    backbone=dict(
        type='mmpretrain.ResNet_CIFAR',
        depth=18,
        in_channels=1,
        stem_channels=4,
        base_channels=4,
        num_stages=4,
        out_indices=(3, ),
        style='pytorch'),
    neck=dict(type='mmpretrain.GlobalAveragePooling'),
    head=dict(
        type='mmpretrain.LinearClsHead',
        num_classes=10,
        in_channels=32,
        loss=dict(type='mmpretrain.CrossEntropyLoss', loss_weight=1.0),
        topk=(1, )),
)
