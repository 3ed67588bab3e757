# Data-free distillation (DAFL, Chen et al., ICCV 2019) on Fashion-MNIST,
# as the paper's MNIST experiment: a LeNet-5 student learns from the
# LeNet-5 teacher (lenet5_fashion-mnist.py) on 32x32 images a generator
# makes from noise. No training image reaches the student or the
# generator: the training loader only sets the batch size, the test split
# is only validated on. The generator is trained to make the teacher
# confident (one-hot loss), its predicted classes balanced (information
# entropy) and its features strong (activation); the student then matches
# the teacher's logits on those images. Loss weights and learning rates
# are those of the DAFL code's MNIST run.
#   python tools/train.py configs/distill/fashion_mnist/lenet5_fashion-mnist.py \
#       --work-dir work_dirs/distill_fmnist/lenet5
#   python tools/train.py configs/distill/fashion_mnist/dafl_lenet5_fashion-mnist.py \
#       --work-dir work_dirs/distill_fmnist/dafl_seed0 \
#       --cfg-options randomness.seed=0
_base_ = ['./lenet5_fashion-mnist.py']

teacher_ckpt = 'work_dirs/distill_fmnist/lenet5/epoch_6.pth'
lenet5 = dict(
    type='mmpretrain.ImageClassifier',
    backbone=dict(type='mmpretrain.LeNet5'),
    neck=dict(type='mmpretrain.GlobalAveragePooling'),
    head=dict(
        type='mmpretrain.LinearClsHead',
        num_classes=10,
        in_channels=120,
        loss=dict(type='mmpretrain.CrossEntropyLoss', loss_weight=1.0),
        topk=(1, )))
fc = dict(type='ModuleOutputs', source='teacher.head.fc')

model = dict(
    _delete_=True,
    _scope_='mmrazor',
    type='DAFLDataFreeDistillation',
    data_preprocessor={{_base_.data_preprocessor}},
    architecture=lenet5,
    teachers=dict(teacher=dict(build_cfg=lenet5, ckpt_path=teacher_ckpt)),
    generator=dict(
        type='DAFLGenerator',
        img_size=32,
        latent_dim=100,
        hidden_channels=128,
        img_channels=1),
    distiller=dict(
        type='ConfigurableDistiller',
        student_recorders=dict(fc=dict(fc, source='head.fc')),
        teacher_recorders=dict(fc=fc),
        distill_losses=dict(
            loss_kl=dict(type='KLDivergence', tau=1, loss_weight=1)),
        loss_forward_mappings=dict(
            loss_kl=dict(
                preds_S=dict(from_student=True, recorder='fc'),
                preds_T=dict(from_student=False, recorder='fc')))),
    generator_distiller=dict(
        type='ConfigurableDistiller',
        teacher_recorders=dict(
            feat=dict(type='ModuleOutputs',
                      source='teacher.backbone.features'),
            fc=fc),
        distill_losses=dict(
            loss_oh=dict(type='OnehotLikeLoss', loss_weight=1.0),
            loss_ie=dict(type='InformationEntropyLoss', loss_weight=5.0),
            loss_ac=dict(type='ActivationLoss', loss_weight=0.1)),
        loss_forward_mappings=dict(
            loss_oh=dict(preds_T=dict(from_student=False, recorder='fc')),
            loss_ie=dict(preds_T=dict(from_student=False, recorder='fc')),
            loss_ac=dict(feat_T=dict(from_student=False, recorder='feat')))))

optim_wrapper = dict(
    _delete_=True,
    constructor='mmrazor.SeparateOptimWrapperConstructor',
    architecture=dict(optimizer=dict(type='Adam', lr=2e-3)),
    generator=dict(optimizer=dict(type='Adam', lr=0.2)))

max_iters = 2000
param_scheduler = dict(
    _delete_=True,
    architecture=dict(
        type='CosineAnnealingLR', T_max=max_iters, by_epoch=False),
    generator=dict(
        type='CosineAnnealingLR', T_max=max_iters, by_epoch=False))

train_cfg = dict(
    _delete_=True, type='IterBasedTrainLoop', max_iters=max_iters,
    val_interval=250)
val_cfg = dict(_delete_=True)
train_dataloader = dict(
    batch_size=128, sampler=dict(type='InfiniteSampler', shuffle=True))
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    checkpoint=dict(
        type='CheckpointHook', by_epoch=False, interval=250,
        max_keep_ckpts=1, save_best='auto'))
log_processor = dict(by_epoch=False)
