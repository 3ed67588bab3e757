# Attention transfer (Zagoruyko & Komodakis, ICLR 2017) on the outputs of
# the first three stages, plus KD on the logits (as the KD config), from
# the ResNet-18 teacher (width 16) to the thin ResNet-18 (width 4).
# The spatial sizes of student and teacher stages agree; only channels
# differ, which attention maps sum away. Weight 500 per stage is the
# paper's beta / 2 with beta = 1000 (loss: mean over positions).
#   python tools/train.py \
#       configs/distill/fashion_mnist/at_kd_resnet18-w16_resnet18-w4_fashion-mnist.py \
#       --work-dir work_dirs/distill_fmnist/at_kd_seed0 \
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
    ] + [
        dict(
            student_module=f'backbone.layer{i}',
            teacher_module=f'backbone.layer{i}',
            losses=[dict(type='ATLoss', name=f'loss_at{i}', loss_weight=500)])
        for i in (1, 2, 3)
    ]))
