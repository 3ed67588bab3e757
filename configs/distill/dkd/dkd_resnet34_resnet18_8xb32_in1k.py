# Decoupled KD (DKD, Zhao et al., CVPR 2022): ResNet-34 teacher -> ResNet-18
# student on ImageNet-1k, with the paper's ImageNet setting (tau=1,
# alpha=0.5, beta=0.5).
#   bash tools/dist_train.sh \
#       configs/distill/dkd/dkd_resnet34_resnet18_8xb32_in1k.py 8
_base_ = ['../_base_/imagenet_bs32_resnet34_resnet18.py']

model = dict(
    _scope_='mmrazor',
    type='GeneralDistill',
    architecture=dict(type='MMClsArchitecture', model={{_base_.student}}),
    with_student_loss=True,
    with_teacher_loss=False,
    distiller=dict(
        type='SingleTeacherDistiller',
        teacher={{_base_.teacher}},
        teacher_trainable=False,
        teacher_norm_eval=True,
        components=[
            dict(
                student_module='head.fc',
                teacher_module='head.fc',
                losses=[
                    dict(
                        type='DKDLoss',
                        name='loss_dkd',
                        tau=1,
                        alpha=0.5,
                        beta=0.5,
                        loss_weight=1.0)
                ])
        ]),
)
