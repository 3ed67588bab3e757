# PKD (Cao et al., NeurIPS 2022: the squared error between feature maps
# normalised to zero mean and unit variance per channel, i.e. one minus
# their Pearson correlation) on the third stage, plus KD on the logits (as
# the KD config), from the ResNet-18 teacher (width 16) to the thin
# ResNet-18 (width 4); a 1x1 convolution maps the student's 16 channels
# onto the teacher's 64 first.
#   python tools/train.py \
#       configs/distill/fashion_mnist/pkd_kd_resnet18-w16_resnet18-w4_fashion-mnist.py \
#       --work-dir work_dirs/distill_fmnist/pkd_kd_seed0 \
#       --cfg-options randomness.seed=0
_base_ = ['./kd_resnet18-w16_resnet18-w4_fashion-mnist.py']

model = dict(
    distiller=dict(components=[
        dict(
            student_module='head.fc',
            teacher_module='head.fc',
            losses=[
                dict(
                    type='KLDivergence',
                    name='loss_kd',
                    tau=4,
                    loss_weight=1.0)
            ]),
        dict(
            student_module='backbone.layer3',
            teacher_module='backbone.layer3',
            align_module=dict(
                type='conv2d', student_channels=16, teacher_channels=64),
            losses=[dict(type='PKDLoss', name='loss_pkd', loss_weight=2.0)]),
    ]))
