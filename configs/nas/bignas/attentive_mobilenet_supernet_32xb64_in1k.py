# BigNAS supernet training on ImageNet-1k over the AttentiveNAS MobileNetV3
# space (configs/_base_/nas_backbones/attentive_mobilenetv3_supernet.py):
# 360 epochs, 32 GPUs x 64 images. Every step trains the largest subnet on
# the labels and two random subnets and the smallest one on its logits.
#   tools/dist_train.sh configs/nas/bignas/attentive_mobilenet_supernet_32xb64_in1k.py 32
# Small-scale counterpart that runs on a CPU:
# bignas_attentive-s_supernet_fashion-mnist.py.
_base_ = [
    '../../_base_/datasets/imagenet_bs64_bignas.py',
    '../../_base_/nas_backbones/attentive_mobilenetv3_supernet.py',
    '../../_base_/default_runtime.py',
]

supernet = dict(
    type='SearchableImageClassifier',
    data_preprocessor=_base_.data_preprocessor,
    backbone=_base_.nas_backbone,
    # global pooling, then dropout before the classifier
    neck=dict(type='SqueezeMeanPoolingWithDropout', drop_ratio=0.2),
    head=dict(
        type='DynamicLinearClsHead',
        num_classes=1000,
        # the largest width of the feature-mix conv
        in_channels=1984,
        loss=dict(
            type='mmpretrain.LabelSmoothLoss',
            num_classes=1000,
            label_smooth_val=0.1,
            mode='original',
            loss_weight=1.0),
        topk=(1, 5)),
    # searched resolutions 192-288 (see the search space file)
    input_resizer_cfg=_base_.input_resizer_cfg,
    connect_head=dict(connect_with_backbone='backbone.last_mutable_channels'))

model = dict(
    type='BigNAS',
    architecture=supernet,
    mutator=dict(type='NasMutator'),
    num_random_samples=2,
    # in-place distillation: KL divergence to the largest subnet's logits
    distill_loss=dict(type='KLDivergence', tau=1.0, loss_weight=1.0),
    # drop-path on the largest subnet only, in the last two stages
    drop_path_rate=0.2,
    backbone_dropout_stages=[6, 7],
    input_shape=(3, 224, 224))

# The sandwich runs inside the algorithm's train_step, which this wrapper
# calls; candidates a subnet leaves out get no gradient.
model_wrapper_cfg = dict(
    type='RazorDistributedDataParallel',
    broadcast_buffers=False,
    find_unused_parameters=True)

# SGD with Nesterov momentum for a total batch of 2048, no weight decay on
# norms and biases. (1.x's config also set value clipping of 0.2, under a
# key, `optim_wrapper_cfg`, that mmengine never reads: its runs trained
# without clipping, and so does this one.)
optim_wrapper = dict(
    optimizer=dict(
        type='SGD', lr=0.8, momentum=0.9, weight_decay=1e-5, nesterov=True),
    paramwise_cfg=dict(bias_decay_mult=0., norm_decay_mult=0.))
max_epochs = 360
param_scheduler = [
    # 3,125 iterations of warm-up from 0.1 % of the learning rate
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
         end=3125),
    dict(type='CosineAnnealingLR', T_max=max_epochs, eta_min=0,
         by_epoch=True, begin=0, end=max_epochs,
         convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=1)
# The largest subnet is validated with BatchNorm statistics re-estimated
# on 4,096 training images: the supernet's BatchNorm has momentum 0 (see
# the search space file) and keeps no statistics of its own.
val_cfg = dict(type='CalibratedValLoop', calibrate_sample_num=4096)
test_cfg = dict(type='CalibratedValLoop', calibrate_sample_num=4096)
auto_scale_lr = dict(base_batch_size=2048)

default_hooks = dict(
    checkpoint=dict(
        type='CheckpointHook', interval=1, max_keep_ckpts=1,
        save_best='auto'))
