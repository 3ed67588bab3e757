# Channel-wise distillation (CWD, Shu et al., ICCV 2021) of the RetinaNet-R18
# student from the RetinaNet-R50 teacher on the generated Fashion-MNIST dense
# data, on a CPU. Same data, schedule and seeds as
# student_retinanet_r18_fpn_fashion-mnist-dense.py.
#
# Distilled, with the frozen teacher in eval mode: the FPN levels of
# strides 8-64 (`neck.fpn_convs.{0..3}.conv`, 64 channels, 12x12 to 2x2
# maps) and the classification logits of the shared head
# (`bbox_head.retina_cls`, 9 anchors x 10 classes; it runs once per level,
# and the five calls are paired level by level). The stride-128 level is a
# single location on a 96x96 canvas: a spatial softmax over one location is
# constant, so CWD is zero there and the level is left out.
#
# 1. train the teacher:
#    python tools/train.py \
#        configs/distill/cwd/teacher_retinanet_r50_fpn_fashion-mnist-dense.py \
#        --work-dir work_dirs/cwd_fmnist_dense_det/teacher
# 2. distil (the default teacher_ckpt is step 1's last checkpoint):
#    python tools/train.py \
#        configs/distill/cwd/cwd_fpn_retina_r50_retina_r18_fashion-mnist-dense.py \
#        --work-dir work_dirs/cwd_fmnist_dense_det/cwd_seed0 \
#        --cfg-options randomness.seed=0 \
#        model.distiller.teacher_ckpt=work_dirs/cwd_fmnist_dense_det/teacher/iter_600.pth
_base_ = ['./_base_/retinanet_fashion-mnist-dense.py']

teacher_ckpt = 'work_dirs/cwd_fmnist_dense_det/teacher/iter_600.pth'

fpn_components = [
    dict(
        student_module=f'neck.fpn_convs.{i}.conv',
        teacher_module=f'neck.fpn_convs.{i}.conv',
        losses=[
            dict(
                type='ChannelWiseDivergence',
                name=f'loss_cwd_fpn{i}',
                tau=1.0,
                loss_weight=2.0)
        ]) for i in range(4)
]

model = dict(
    _scope_='mmrazor',
    type='GeneralDistill',
    architecture=dict(type='MMDetArchitecture', model=_base_.student_model),
    with_student_loss=True,
    with_teacher_loss=False,
    distiller=dict(
        type='SingleTeacherDistiller',
        teacher=_base_.teacher_model,
        teacher_ckpt=teacher_ckpt,
        teacher_trainable=False,
        teacher_norm_eval=True,
        components=fpn_components + [
            dict(
                student_module='bbox_head.retina_cls',
                teacher_module='bbox_head.retina_cls',
                losses=[
                    dict(
                        type='ChannelWiseDivergence',
                        name='loss_cwd_cls',
                        tau=1.0,
                        loss_weight=5.0)
                ])
        ]),
)
