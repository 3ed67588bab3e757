# AutoSlim on ImageNet-1k: slimmable training of MobileNetV2 at width 1.5
# (the setting of the AutoSlim paper), 8 GPUs x 256 images.
#   tools/dist_train.sh configs/pruning/autoslim/autoslim_mbv2-1.5x_supernet_8xb256_in1k.py 8
_base_ = [
    '../../_base_/datasets/imagenet_bs128_spos.py',
    '../../_base_/default_runtime.py',
]

architecture = dict(
    type='mmpretrain.ImageClassifier',
    data_preprocessor={{_base_.data_preprocessor}},
    backbone=dict(type='mmpretrain.MobileNetV2', widen_factor=1.5),
    neck=dict(type='mmpretrain.GlobalAveragePooling'),
    head=dict(
        type='mmpretrain.LinearClsHead',
        num_classes=1000,
        in_channels=1920,
        loss=dict(type='mmpretrain.CrossEntropyLoss', loss_weight=1.0),
        topk=(1, 5)))

model = dict(
    type='AutoSlim',
    architecture=architecture,
    pruner=dict(
        type='RatioPruner',
        ratios=[i / 12 for i in range(2, 13)],
        except_start_keys=['head.fc'],
        round_to=8),
    distill_loss=dict(type='KLDivergence', tau=1.0, loss_weight=1.0),
    num_sample_training=4,
    input_shape=(3, 224, 224))

train_dataloader = dict(batch_size=256)
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.8, momentum=0.9, weight_decay=4e-5,
                   nesterov=True),
    paramwise_cfg=dict(norm_decay_mult=0, bias_decay_mult=0))
param_scheduler = [
    dict(type='LinearLR', start_factor=1.0, end_factor=0.0, by_epoch=True,
         begin=0, end=50, convert_to_iter_based=True)
]
train_cfg = dict(by_epoch=True, max_epochs=50, val_interval=5)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=2048)
