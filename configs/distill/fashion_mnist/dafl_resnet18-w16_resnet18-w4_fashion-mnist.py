# Data-free distillation (DAFL, Chen et al., ICCV 2019) on Fashion-MNIST:
# the thin ResNet-18 (width 4) learns from the ResNet-18 teacher (width 16)
# on images a generator makes from noise; no training image reaches the
# student or the generator (the training loader only sets the batch size).
# The generator is trained to make the teacher confident (one-hot loss),
# its class balance even (information entropy) and its features strong
# (activation); the student then matches the teacher's logits on them.
# Loss weights and learning rates are those of the DAFL code's MNIST run.
#   python tools/train.py \
#       configs/distill/fashion_mnist/dafl_resnet18-w16_resnet18-w4_fashion-mnist.py \
#       --work-dir work_dirs/distill_fmnist/dafl_seed0 \
#       --cfg-options randomness.seed=0 \
#       model.teachers.teacher.ckpt_path=work_dirs/distill_fmnist/teacher/epoch_6.pth
_base_ = ['./student_resnet18-w4_fashion-mnist.py']

teacher_ckpt = 'work_dirs/distill_fmnist/teacher/epoch_6.pth'

def resnet18(width: int) -> dict:
    """The CIFAR-style ResNet-18 of the Fashion-MNIST configs."""
    return dict(
        type='mmpretrain.ImageClassifier',
        backbone=dict(
            type='mmpretrain.ResNet_CIFAR',
            depth=18,
            in_channels=1,
            stem_channels=width,
            base_channels=width,
            num_stages=4,
            out_indices=(3, ),
            style='pytorch'),
        neck=dict(type='mmpretrain.GlobalAveragePooling'),
        head=dict(
            type='mmpretrain.LinearClsHead',
            num_classes=10,
            in_channels=8 * width,
            loss=dict(type='mmpretrain.CrossEntropyLoss', loss_weight=1.0),
            topk=(1, )))


model = dict(
    _delete_=True,
    _scope_='mmrazor',
    type='DAFLDataFreeDistillation',
    data_preprocessor={{_base_.data_preprocessor}},
    architecture=resnet18(4),
    teachers=dict(
        teacher=dict(build_cfg=resnet18(16), ckpt_path=teacher_ckpt)),
    generator=dict(
        type='DAFLGenerator',
        img_size=28,
        latent_dim=100,
        hidden_channels=128,
        img_channels=1),
    distiller=dict(
        type='ConfigurableDistiller',
        student_recorders=dict(
            fc=dict(type='ModuleOutputs', source='head.fc')),
        teacher_recorders=dict(
            fc=dict(type='ModuleOutputs', source='teacher.head.fc')),
        distill_losses=dict(
            loss_kl=dict(type='KLDivergence', tau=1, loss_weight=1)),
        loss_forward_mappings=dict(
            loss_kl=dict(
                preds_S=dict(from_student=True, recorder='fc'),
                preds_T=dict(from_student=False, recorder='fc')))),
    generator_distiller=dict(
        type='ConfigurableDistiller',
        teacher_recorders=dict(
            gap=dict(type='ModuleOutputs', source='teacher.neck.gap'),
            fc=dict(type='ModuleOutputs', source='teacher.head.fc')),
        distill_losses=dict(
            loss_oh=dict(type='OnehotLikeLoss', loss_weight=1.0),
            loss_ie=dict(type='InformationEntropyLoss', loss_weight=5.0),
            loss_ac=dict(type='ActivationLoss', loss_weight=0.1)),
        loss_forward_mappings=dict(
            loss_oh=dict(preds_T=dict(from_student=False, recorder='fc')),
            loss_ie=dict(preds_T=dict(from_student=False, recorder='fc')),
            loss_ac=dict(feat_T=dict(from_student=False, recorder='gap')))))

optim_wrapper = dict(
    _delete_=True,
    constructor='mmrazor.SeparateOptimWrapperConstructor',
    architecture=dict(optimizer=dict(type='Adam', lr=2e-3)),
    generator=dict(optimizer=dict(type='Adam', lr=0.2)))

param_scheduler = dict(
    _delete_=True,
    architecture=dict(
        type='CosineAnnealingLR', T_max=1500, by_epoch=False, begin=0,
        end=1500),
    generator=dict(
        type='CosineAnnealingLR', T_max=1500, by_epoch=False, begin=0,
        end=1500))

train_cfg = dict(
    _delete_=True, type='IterBasedTrainLoop', max_iters=1500,
    val_interval=250)
train_dataloader = dict(
    batch_size=128, sampler=dict(type='InfiniteSampler', shuffle=True))
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    checkpoint=dict(
        type='CheckpointHook', by_epoch=False, interval=250,
        max_keep_ckpts=1))
log_processor = dict(by_epoch=False)
