# Prune the quickstart ResNet-18 (width 16) to half its FLOPs by the L1 norm
# of the weights that follow every channel, then fine-tune 3 epochs:
#
#   python tools/train.py configs/vanilla/resnet18-w16_fashion-mnist.py \
#       --work-dir work_dirs/r18
#   python tools/prune.py configs/pruning/importance/resnet18-w16_l1-flops50_fashion-mnist.py \
#       work_dirs/r18/epoch_6.pth --work-dir work_dirs/r18_pruned
#   python tools/train.py work_dirs/r18_pruned/finetune.py \
#       --work-dir work_dirs/r18_pruned/finetune
#   python tools/deploy_subnet.py configs/pruning/importance/resnet18-w16_l1-flops50_fashion-mnist.py \
#       --checkpoint work_dirs/r18_pruned/finetune/epoch_3.pth \
#       --channel-cfg work_dirs/r18_pruned/subnet.yaml \
#       --out-dir work_dirs/r18_pruned/deployed --onnx
#
# `--target flops=3x` (a third of the FLOPs) or `--importance
# TaylorImportance` on the command line override the settings below.
_base_ = [
    '../../vanilla/resnet18-w16_fashion-mnist.py',
    './_base_/l1-flops50_fashion-mnist.py'
]

input_shape = (1, 1, 28, 28)
