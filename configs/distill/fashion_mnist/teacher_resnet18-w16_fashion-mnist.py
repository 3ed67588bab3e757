# Teacher for the Fashion-MNIST distillation example: the quickstart
# ResNet-18 (CIFAR stem, base width 16, ~0.7M parameters), 6 epochs.
#   python tools/train.py \
#       configs/distill/fashion_mnist/teacher_resnet18-w16_fashion-mnist.py \
#       --work-dir work_dirs/distill_fmnist/teacher
_base_ = ['../../vanilla/resnet18-w16_fashion-mnist.py']
