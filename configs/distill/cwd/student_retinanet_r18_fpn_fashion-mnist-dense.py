# The student of the CWD detection example trained alone: RetinaNet-R18-FPN
# (ResNet-18 at quarter width, 2-conv head), random init; same data,
# schedule and seeds as the CWD detection config.
#   python tools/train.py \
#       configs/distill/cwd/student_retinanet_r18_fpn_fashion-mnist-dense.py \
#       --work-dir work_dirs/cwd_fmnist_dense_det/student_seed0 \
#       --cfg-options randomness.seed=0
_base_ = ['./_base_/retinanet_fashion-mnist-dense.py']

model = _base_.student_model
