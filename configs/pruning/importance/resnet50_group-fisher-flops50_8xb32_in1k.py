# ImageNet: ResNet-50 pruned to half its FLOPs by Group Fisher importance
# per FLOP (one-shot, from 64 training batches), then fine-tuned. The
# ImageNet data and the trained checkpoint are yours (nothing is
# downloaded):
#
#   python tools/prune.py configs/pruning/importance/resnet50_group-fisher-flops50_8xb32_in1k.py \
#       resnet50_8xb32_in1k.pth --work-dir work_dirs/r50_gf50
#   bash tools/dist_train.sh work_dirs/r50_gf50/finetune.py 8
#   python tools/deploy_subnet.py configs/pruning/importance/resnet50_group-fisher-flops50_8xb32_in1k.py \
#       --checkpoint <finetuned .pth> --channel-cfg work_dirs/r50_gf50/subnet.yaml \
#       --out-dir work_dirs/r50_gf50/deployed --onnx
_base_ = [
    'mmpretrain::resnet/resnet50_8xb32_in1k.py',
    './_base_/group-fisher-flops50_in1k.py'
]

finetune = dict(
    optim_wrapper=dict(
        optimizer=dict(type='SGD', lr=0.04, momentum=0.9, weight_decay=1e-4)),
    param_scheduler=[
        dict(type='CosineAnnealingLR', T_max=90, by_epoch=True, begin=0,
             end=90)
    ],
    train_cfg=dict(by_epoch=True, max_epochs=90, val_interval=1))
