# Teacher for the CWD detection example on the generated Fashion-MNIST dense
# data: RetinaNet-R50-FPN (ResNet-50 at half width, 4-conv head), random
# init, 96x96 canvases, 600 iterations of 16 (12 epochs).
#   python tools/train.py \
#       configs/distill/cwd/teacher_retinanet_r50_fpn_fashion-mnist-dense.py \
#       --work-dir work_dirs/cwd_fmnist_dense_det/teacher
_base_ = ['./_base_/retinanet_fashion-mnist-dense.py']

model = _base_.teacher_model
