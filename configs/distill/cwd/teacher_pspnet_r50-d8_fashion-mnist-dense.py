# Teacher for the CWD example on the generated Fashion-MNIST dense data:
# PSPNet-R50-d8 (ResNet-V1c-50 at quarter width, 2.1M parameters), random
# init, 64x64 inputs, 3,000 iterations of 8 canvases (30 epochs).
#   python tools/train.py \
#       configs/distill/cwd/teacher_pspnet_r50-d8_fashion-mnist-dense.py \
#       --work-dir work_dirs/cwd_fmnist_dense/teacher
_base_ = ['./_base_/pspnet_fashion-mnist-dense-64x64.py']

model = _base_.teacher_model

max_iters = 3000
param_scheduler = [
    dict(
        type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=40),
    dict(
        type='PolyLR',
        power=0.9,
        eta_min=1e-5,
        by_epoch=False,
        begin=40,
        end=max_iters),
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(checkpoint=dict(interval=max_iters))
