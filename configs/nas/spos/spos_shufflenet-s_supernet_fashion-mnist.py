# SPOS supernet pre-training on the Fashion-MNIST subset (CPU, minutes).
# A small ShuffleNetV2 search space: a stride-2 stem to 16 channels, three
# stages of two searchable blocks (shuffle_3x3 / 5x5 / 7x7 / xception each),
# a 1x1 conv to 256 channels. Each step trains one random path.
#   python tools/train.py configs/nas/spos/spos_shufflenet-s_supernet_fashion-mnist.py
_base_ = [
    '../../_base_/datasets/fashion_mnist_bs64.py',
    '../../_base_/schedules/fashion_mnist_sgd_cos_6e.py',
    '../../_base_/default_runtime.py',
]

supernet = dict(
    type='mmpretrain.ImageClassifier',
    data_preprocessor={{_base_.data_preprocessor}},
    backbone=dict(
        type='SearchableShuffleNetV2',
        in_channels=1,
        arch_setting=[[32, 2], [64, 2], [128, 2]],
        last_channels=256),
    neck=dict(type='mmpretrain.GlobalAveragePooling'),
    head=dict(
        type='mmpretrain.LinearClsHead',
        num_classes=10,
        in_channels=256,
        loss=dict(type='mmpretrain.CrossEntropyLoss'),
        topk=(1, )))

# BN in batch-statistics mode when validating the supernet: a random path
# has no running statistics of its own (the search re-calibrates instead).
model = dict(
    type='SPOS',
    architecture=supernet,
    input_shape=(1, 28, 28),
    bn_training_mode=True)

# Unsampled candidates receive no gradient in a step.
find_unused_parameters = True

# Data, as in the SPOS paper: the last 1,000 images of the training split
# are held out as a validation set; the supernet trains on the other 9,000
# and is validated on the held-out 1,000, which the search (search config)
# also scores its candidates on. The test split is left for the final
# subnet (subnet config).
train_dataloader = dict(dataset=dict(holdout=1000, part='rest'))
val_dataloader = dict(
    dataset=dict(split='train', holdout=1000, part='holdout'))
