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
_base_ = ['../../vanilla/resnet18-w16_fashion-mnist.py']

input_shape = (1, 1, 28, 28)
pruner = dict(
    type='ImportancePruner',
    importance=dict(type='L1Importance'),
    # the classifier's outputs are the classes
    except_start_keys=['head.fc'],
    # no channel group falls below a tenth of its width (layer collapse)
    min_ratio=0.1)
prune_target = dict(flops=0.5)
# batches a data-driven criterion (Taylor, Group Fisher) reads first
calibration = dict(batches=16)

# fine-tuning: 3 epochs from lr 0.01, cosine
finetune = dict(
    optim_wrapper=dict(
        optimizer=dict(type='SGD', lr=0.01, momentum=0.9,
                       weight_decay=5e-4, nesterov=True)),
    param_scheduler=[
        dict(type='CosineAnnealingLR', T_max=3, by_epoch=True, begin=0,
             end=3, convert_to_iter_based=True)
    ],
    train_cfg=dict(by_epoch=True, max_epochs=3, val_interval=1))
