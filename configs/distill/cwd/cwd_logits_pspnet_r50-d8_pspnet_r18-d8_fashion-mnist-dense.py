# Channel-wise distillation (CWD, Shu et al., ICCV 2021) of the PSPNet-R18
# student from the PSPNet-R50 teacher on the generated Fashion-MNIST dense
# data, on a CPU. Same data, schedule (1,200 iterations of 8) and seeds as
# student_pspnet_r18-d8_fashion-mnist-dense.py.
#
# The decode-head logits (`decode_head.conv_seg`: 11 channels at 1/8 of the
# input) of the frozen teacher (eval mode, no gradients) are matched with
# ChannelWiseDivergence (per-channel spatial softmax, KL, tau^2 / (N C)),
# next to the student's own cross-entropy losses.
#
# 1. train the teacher:
#    python tools/train.py \
#        configs/distill/cwd/teacher_pspnet_r50-d8_fashion-mnist-dense.py \
#        --work-dir work_dirs/cwd_fmnist_dense/teacher
# 2. distil (the default teacher_ckpt is step 1's last checkpoint):
#    python tools/train.py \
#        configs/distill/cwd/cwd_logits_pspnet_r50-d8_pspnet_r18-d8_fashion-mnist-dense.py \
#        --work-dir work_dirs/cwd_fmnist_dense/cwd_seed0 \
#        --cfg-options randomness.seed=0 \
#        model.distiller.teacher_ckpt=work_dirs/cwd_fmnist_dense/teacher/iter_3000.pth
_base_ = ['./_base_/pspnet_fashion-mnist-dense-64x64.py']

teacher_ckpt = 'work_dirs/cwd_fmnist_dense/teacher/iter_3000.pth'

model = dict(
    _scope_='mmrazor',
    type='GeneralDistill',
    architecture=dict(type='MMSegArchitecture', model=_base_.student_model),
    with_student_loss=True,
    with_teacher_loss=False,
    distiller=dict(
        type='SingleTeacherDistiller',
        teacher=_base_.teacher_model,
        teacher_ckpt=teacher_ckpt,
        teacher_trainable=False,
        teacher_norm_eval=True,
        components=[
            dict(
                student_module='decode_head.conv_seg',
                teacher_module='decode_head.conv_seg',
                losses=[
                    dict(
                        type='ChannelWiseDivergence',
                        name='loss_cwd_logits',
                        tau=1.0,
                        loss_weight=3.0)
                ])
        ]),
)
