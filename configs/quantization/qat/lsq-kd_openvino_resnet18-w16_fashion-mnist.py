# LSQ quantization-aware training with knowledge distillation from the float
# model: the fake-quant ResNet-18 (width 16) learns from the labels and from
# the logits of its own float checkpoint (KL divergence, Hinton et al.,
# 2015, at temperature 1: tau=4 cost a point on Fashion-MNIST, see
# docs/quantization.md), with the recipe of
# lsq_openvino_resnet18-w16_fashion-mnist.py:
#   python tools/train.py configs/vanilla/resnet18-w16_fashion-mnist.py
#   python tools/train.py \
#       configs/quantization/qat/lsq-kd_openvino_resnet18-w16_fashion-mnist.py
# Another float checkpoint (student and teacher alike):
#   --cfg-options model.architecture.float_checkpoint=/path/to/float.pth \
#       model.teacher_ckpt=/path/to/float.pth
_base_ = ['./lsq_openvino_resnet18-w16_fashion-mnist.py']

float_checkpoint = 'work_dirs/resnet18-w16_fashion-mnist/epoch_6.pth'

# the MMArchitectureQuant of the LSQ config is the student
student = dict(_base_.model, float_checkpoint=float_checkpoint)
teacher = _base_.model.architecture

model = dict(
    _delete_=True,
    _scope_='mmrazor',
    type='SingleTeacherDistill',
    data_preprocessor={{_base_.data_preprocessor}},
    architecture=student,
    teacher=teacher,
    teacher_ckpt=float_checkpoint,
    teacher_trainable=False,
    distiller=dict(
        type='ConfigurableDistiller',
        # the logits of the fake-quant graph of the 'loss' forward
        student_recorders=dict(
            fc=dict(type='ModuleOutputs', source='qmodels.loss.head.fc')),
        teacher_recorders=dict(
            fc=dict(type='ModuleOutputs', source='head.fc')),
        distill_losses=dict(
            loss_kl=dict(type='KLDivergence', tau=1, loss_weight=1.0)),
        loss_forward_mappings=dict(
            loss_kl=dict(
                preds_S=dict(from_student=True, recorder='fc'),
                preds_T=dict(from_student=False, recorder='fc')))))

model_wrapper_cfg = dict(
    _delete_=True,
    type='MMDistributedDataParallel',
    broadcast_buffers=False,
    find_unused_parameters=True)
