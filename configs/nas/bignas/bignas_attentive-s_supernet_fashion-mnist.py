# BigNAS supernet training on the Fashion-MNIST subset (CPU, minutes).
# A small AttentiveMobileNetV3 search space for 28x28 grey images: the
# backbone's stride-2 3x3 stem, then four stages of inverted-residual blocks
# (depthwise kernel 3 or 5, expand ratio 2 or 4, 1-3 blocks, searched widths;
# squeeze-excitation in the last two), a 1x1 expand conv, pooling and a 1x1
# feature-mix conv. The input resolution is not searched here (see below).
# Every training step follows the sandwich rule: the largest subnet on the
# labels, two random subnets and the smallest on the largest one's logits.
#   python tools/train.py configs/nas/bignas/bignas_attentive-s_supernet_fashion-mnist.py
_base_ = [
    '../../_base_/datasets/fashion_mnist_bs64.py',
    '../../_base_/schedules/fashion_mnist_sgd_cos_6e.py',
    '../../_base_/default_runtime.py',
]

# Every entry is [min, max, step]. With the stem at stride 2 and the stages
# at strides 1, 2, 2, 2, a 28x28 image is 14x14 in stages 1-2, 7x7 in stage
# 3 and 4x4 in stage 4: small enough for a CPU, large enough that kernels
# 3 and 5 differ.
arch_setting = dict(
    kernel_size=[[3, 5, 2]] * 4,
    num_blocks=[[1, 1, 1], [1, 2, 1], [1, 3, 1], [1, 2, 1]],
    # one entry per stage, then the final 1x1 expand conv (fixed at 4x)
    expand_ratio=[[1, 1, 1], [2, 4, 2], [2, 4, 2], [2, 4, 2], [4, 4, 1]],
    # the stem, one entry per stage, then the feature-mix conv
    num_out_channels=[[8, 16, 8], [8, 16, 8], [16, 24, 8], [24, 40, 8],
                      [40, 64, 8], [128, 256, 128]])

# A grey image is normalised against three equal channel statistics: the
# single channel broadcasts to the three the backbone's stem takes.
data_preprocessor = dict(
    type='mmpretrain.ClsDataPreprocessor',
    num_classes=10,
    mean=[72.94] * 3,
    std=[90.02] * 3,
    to_rgb=False)

supernet = dict(
    type='SearchableImageClassifier',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='AttentiveMobileNetV3',
        arch_setting=arch_setting,
        stride_list=[1, 2, 2, 2],
        with_se_list=[False, False, True, True],
        # the stem, the four stages, the final expand and feature-mix convs
        act_cfg_list=['HSwish', 'ReLU', 'ReLU', 'HSwish', 'HSwish', 'HSwish',
                      'HSwish'],
        # BatchNorm statistics are re-estimated for every searched subnet
        # (the search config), so the supernet's own running statistics
        # need not track any one subnet: keep them as a plain average.
        norm_cfg=dict(type='DynamicBatchNorm2d', momentum=0.1)),
    neck=dict(type='SqueezeMeanPoolingWithDropout', drop_ratio=0.1),
    head=dict(
        type='DynamicLinearClsHead',
        num_classes=10,
        in_channels=256,
        loss=dict(type='mmpretrain.CrossEntropyLoss'),
        topk=(1, )),
    # No searched resolution (``input_resizer_cfg``, as the ImageNet
    # configs have): these images come at one scale, without the random
    # resized crops that teach ImageNet supernets to share weights across
    # resolutions. With 24, 28 and 32 px searched, the sandwich's ends tie
    # the weights to their own resolution: after 15 epochs the smallest
    # subnet scored 86.2 at 24 px and 81.5 at 32 px, the largest 88.5 at
    # 32 px and 84.1 at 24 px, and the searched subnets 2.5-5.8 points
    # below the same architectures trained alone (docs/nas.md).
    # The head's input width follows the feature-mix conv's searched width.
    connect_head=dict(connect_with_backbone='backbone.last_mutable_channels'))

model = dict(
    type='BigNAS',
    architecture=supernet,
    mutator=dict(type='NasMutator'),
    # The sandwich: the largest subnet, two random ones and the smallest per
    # step; the three smaller ones learn the largest one's logits.
    num_random_samples=2,
    distill_loss=dict(type='KLDivergence', tau=1.0, loss_weight=1.0),
    # Drop-path regularises the largest subnet only; with a few epochs on
    # 9,000 images a light rate on the last two stages is enough.
    drop_path_rate=0.1,
    backbone_dropout_stages=[3, 4],
    # FLOPs (multiply-adds) and parameters are counted on one 28x28 image,
    # resized inside the model to the subnet's resolution.
    input_shape=(3, 28, 28))

# Not every candidate of a step is used by every subnet.
find_unused_parameters = True

# Data as in the SPOS configs: the last 1,000 images of the training split
# are held out for validation and for scoring the search's candidates; the
# supernet trains on the other 9,000. The test split is kept for the final
# comparison (subnet config, benchmarks/bignas_fashion_mnist.py).
train_dataloader = dict(dataset=dict(holdout=1000, part='rest'))
val_dataloader = dict(
    dataset=dict(split='train', holdout=1000, part='holdout'))

# Validation scores the largest subnet with BatchNorm statistics
# re-estimated on 640 training images: the running statistics mix every
# subnet the sandwich trained.
val_cfg = dict(type='CalibratedValLoop', calibrate_sample_num=640)
