# The student alone: the same ResNet-18 layout at a quarter of the width
# (base width 4, ~16x fewer parameters than the teacher), same data,
# schedule (6 epochs) and seeds as the distilled run, for a fair comparison.
#   python tools/train.py \
#       configs/distill/fashion_mnist/student_resnet18-w4_fashion-mnist.py \
#       --work-dir work_dirs/distill_fmnist/student_seed0 \
#       --cfg-options randomness.seed=0
_base_ = ['../../vanilla/resnet18-w16_fashion-mnist.py']

model = dict(
    backbone=dict(stem_channels=4, base_channels=4),
    head=dict(in_channels=32))
