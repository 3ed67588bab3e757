# Prune MobileNetV2 (width 0.5) on Fashion-MNIST to half its FLOPs by L1
# importance (depthwise convs are pruned with the expansion convs feeding
# them), then fine-tune 3 epochs: the three commands of
# resnet18-w16_l1-flops50_fashion-mnist.py with this config and the
# checkpoint of configs/vanilla/mobilenet-v2_fashion-mnist.py.
_base_ = [
    '../../vanilla/mobilenet-v2_fashion-mnist.py',
    './_base_/l1-flops50_fashion-mnist.py'
]

input_shape = (1, 3, 32, 32)
finetune = dict(optim_wrapper=dict(optimizer=dict(weight_decay=4e-5)))
