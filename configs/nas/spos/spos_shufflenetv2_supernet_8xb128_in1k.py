# SPOS supernet on ImageNet-1k: the standard ShuffleNetV2 search space
# (stem 3x3/2 to 16 ch, stages [64,4] [160,4] [320,8] [640,4], each block one
# of shuffle_3x3/5x5/7x7/xception, 1x1 conv to 1024), 120 epochs on 8 GPUs.
#   tools/dist_train.sh configs/nas/spos/spos_shufflenetv2_supernet_8xb128_in1k.py 8
_base_ = [
    '../../_base_/datasets/imagenet_bs128_spos.py',
    '../../_base_/default_runtime.py',
]

supernet = dict(
    type='mmpretrain.ImageClassifier',
    data_preprocessor={{_base_.data_preprocessor}},
    backbone=dict(type='SearchableShuffleNetV2', widen_factor=1.0),
    neck=dict(type='mmpretrain.GlobalAveragePooling'),
    head=dict(
        type='mmpretrain.LinearClsHead',
        num_classes=1000,
        in_channels=1024,
        loss=dict(
            type='mmpretrain.LabelSmoothLoss',
            num_classes=1000,
            label_smooth_val=0.1,
            mode='original',
            loss_weight=1.0),
        topk=(1, 5)))

model = dict(type='SPOS', architecture=supernet, input_shape=(3, 224, 224))
find_unused_parameters = True

optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.5, momentum=0.9, weight_decay=4e-5),
    paramwise_cfg=dict(norm_decay_mult=0, bias_decay_mult=0))
param_scheduler = [
    dict(type='LinearLR', start_factor=1.0, end_factor=0.0, by_epoch=True,
         begin=0, end=120, convert_to_iter_based=True)
]
train_cfg = dict(by_epoch=True, max_epochs=120, val_interval=10)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=1024)
