# Prune MobileNetV2 (width 0.5) on Fashion-MNIST to half its FLOPs by L1
# importance (depthwise convs are pruned with the expansion convs feeding
# them), then fine-tune 3 epochs: the three commands of
# resnet18-w16_l1-flops50_fashion-mnist.py with this config and the
# checkpoint of configs/vanilla/mobilenet-v2_fashion-mnist.py.
_base_ = ['../../vanilla/mobilenet-v2_fashion-mnist.py']

input_shape = (1, 3, 32, 32)
pruner = dict(
    type='ImportancePruner',
    importance=dict(type='L1Importance'),
    except_start_keys=['head.fc'],
    min_ratio=0.1)
prune_target = dict(flops=0.5)
calibration = dict(batches=16)
finetune = dict(
    optim_wrapper=dict(
        optimizer=dict(type='SGD', lr=0.01, momentum=0.9,
                       weight_decay=4e-5, nesterov=True)),
    param_scheduler=[
        dict(type='CosineAnnealingLR', T_max=3, by_epoch=True, begin=0,
             end=3, convert_to_iter_based=True)
    ],
    train_cfg=dict(by_epoch=True, max_epochs=3, val_interval=1))
