# ImageNet: MobileNetV2 pruned to half its FLOPs by Group Fisher importance
# per FLOP (one-shot, 64 training batches), then fine-tuned; the three
# commands of resnet50_group-fisher-flops50_8xb32_in1k.py with this config.
_base_ = [
    'mmpretrain::mobilenet_v2/mobilenet-v2_8xb32_in1k.py',
    './_base_/group-fisher-flops50_in1k.py'
]

finetune = dict(
    optim_wrapper=dict(
        optimizer=dict(type='SGD', lr=0.036, momentum=0.9,
                       weight_decay=4e-5)),
    param_scheduler=[
        dict(type='CosineAnnealingLR', T_max=150, by_epoch=True, begin=0,
             end=150)
    ],
    train_cfg=dict(by_epoch=True, max_epochs=150, val_interval=1))
