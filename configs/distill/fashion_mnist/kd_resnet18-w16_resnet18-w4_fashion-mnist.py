# Knowledge distillation (Hinton et al., 2015) of the thin ResNet-18 (width 4)
# from the ResNet-18 teacher (width 16) on Fashion-MNIST, on a CPU.
# Same data, schedule (6 epochs) and seeds as the student-alone config.
#
# 1. train the teacher:
#    python tools/train.py \
#        configs/distill/fashion_mnist/teacher_resnet18-w16_fashion-mnist.py \
#        --work-dir work_dirs/distill_fmnist/teacher
# 2. distil (teacher_ckpt below points at the teacher's last checkpoint):
#    python tools/train.py \
#        configs/distill/fashion_mnist/kd_resnet18-w16_resnet18-w4_fashion-mnist.py \
#        --work-dir work_dirs/distill_fmnist/kd_seed0 \
#        --cfg-options randomness.seed=0
# 3. keep only the student:
#    python tools/model_converters/extract_student.py \
#        work_dirs/distill_fmnist/kd_seed0/epoch_6.pth student_kd.pth
_base_ = ['./student_resnet18-w4_fashion-mnist.py']

teacher_ckpt = 'work_dirs/distill_fmnist/teacher/epoch_6.pth'

teacher = dict(
    type='mmpretrain.ImageClassifier',
    backbone=dict(
        type='mmpretrain.ResNet_CIFAR',
        depth=18,
        in_channels=1,
        stem_channels=16,
        base_channels=16,
        num_stages=4,
        out_indices=(3, ),
        style='pytorch'),
    neck=dict(type='mmpretrain.GlobalAveragePooling'),
    head=dict(
        type='mmpretrain.LinearClsHead',
        num_classes=10,
        in_channels=128,
        loss=dict(type='mmpretrain.CrossEntropyLoss', loss_weight=1.0),
        topk=(1, )),
)

model = dict(
    _delete_=True,
    _scope_='mmrazor',
    type='GeneralDistill',
    architecture=dict(type='MMClsArchitecture', model={{_base_.model}}),
    with_student_loss=True,
    with_teacher_loss=False,
    distiller=dict(
        type='SingleTeacherDistiller',
        teacher=teacher,
        teacher_ckpt=teacher_ckpt,
        teacher_trainable=False,
        teacher_norm_eval=True,
        components=[
            dict(
                student_module='head.fc',
                teacher_module='head.fc',
                losses=[
                    dict(
                        type='KLDivergence',
                        name='loss_kd',
                        tau=4,
                        loss_weight=1.0)
                ])
        ]),
)
