# Prune the quickstart ResNet-18 (width 16) to a fifth of its FLOPs by
# first-order Taylor importance (activation x gradient over 16 training
# batches), each unit's score per FLOP it costs; then fine-tune 3 epochs.
# Same three commands as resnet18-w16_l1-flops50_fashion-mnist.py.
_base_ = ['./resnet18-w16_l1-flops50_fashion-mnist.py']

pruner = dict(
    importance=dict(_delete_=True, type='TaylorImportance'),
    cost_normalization='flops')
prune_target = dict(flops=0.2)
