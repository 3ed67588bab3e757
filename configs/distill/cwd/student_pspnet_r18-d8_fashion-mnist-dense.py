# The student of the CWD example trained alone: PSPNet-R18-d8 (ResNet-V1c-18
# at quarter width, 0.8M parameters), random init, 64x64 inputs, 1,200
# iterations of 8 canvases (12 epochs) -- the same data, schedule and seeds
# as the CWD config, for a fair comparison.
#   python tools/train.py \
#       configs/distill/cwd/student_pspnet_r18-d8_fashion-mnist-dense.py \
#       --work-dir work_dirs/cwd_fmnist_dense/student_seed0 \
#       --cfg-options randomness.seed=0
_base_ = ['./_base_/pspnet_fashion-mnist-dense-64x64.py']

model = _base_.student_model
