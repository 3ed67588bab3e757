# Fine-tune the Group Fisher pruned ResNet-18 (physically pruned: it trains
# at the pruned model's speed), as MMRazor 1.x did with
# GroupFisherSubModel:
#
#   python tools/train.py configs/pruning/group_fisher/group-fisher-flops_finetune_resnet18-w16_fashion-mnist.py \
#       --work-dir work_dirs/r18_gf_ft \
#       --cfg-options model.algorithm.init_cfg.checkpoint=work_dirs/r18_gf/flops_0.50.pth
#
# (the default below is that path).
_base_ = ['./group-fisher-flops_prune_resnet18-w16_fashion-mnist.py']

pruned_path = 'work_dirs/r18_gf/flops_0.50.pth'
finetune_lr = 0.01

algorithm = _base_.model
algorithm.init_cfg = dict(type='Pretrained', checkpoint=pruned_path)

model = dict(
    _delete_=True,
    _scope_='mmrazor',
    type='GroupFisherSubModel',
    algorithm=algorithm)

optim_wrapper = dict(optimizer=dict(lr=finetune_lr))
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=3, by_epoch=True, begin=0, end=3,
         convert_to_iter_based=True)
]
train_cfg = dict(by_epoch=True, max_epochs=3, val_interval=1)

# the pruning hooks have nothing to do on the pruned model
custom_hooks = _base_.custom_hooks[:-2]
model_wrapper_cfg = None
