# Group Fisher pruning (MMRazor 1.x keys) of the quickstart ResNet-18
# (width 16) on Fashion-MNIST: while training at a low learning rate, one
# channel unit goes every `interval` iterations, the one with the least
# Fisher information per FLOP. ResourceInfoHook writes flops_0.50.pth and
# flops_0.50.yaml when half the FLOPs are left; fine-tune that checkpoint
# with group-fisher-flops_finetune_resnet18-w16_fashion-mnist.py.
#
#   python tools/train.py configs/vanilla/resnet18-w16_fashion-mnist.py \
#       --work-dir work_dirs/r18
#   python tools/train.py configs/pruning/group_fisher/group-fisher-flops_prune_resnet18-w16_fashion-mnist.py \
#       --work-dir work_dirs/r18_gf --cfg-options load_from=work_dirs/r18/epoch_6.pth
_base_ = ['../../vanilla/resnet18-w16_fashion-mnist.py']

interval = 4
normalization_type = 'flops'
lr_ratio = 0.1
target_flop_ratio = 0.5
input_shape = [1, 1, 28, 28]

architecture = _base_.model

model = dict(
    _delete_=True,
    _scope_='mmrazor',
    type='GroupFisherAlgorithm',
    architecture=architecture,
    interval=interval,
    mutator=dict(
        type='GroupFisherChannelMutator',
        parse_cfg=dict(
            type='ChannelAnalyzer',
            demo_input=dict(type='DefaultDemoInput', input_shape=input_shape),
            tracer_type='FxTracer'),
        channel_unit_cfg=dict(
            type='GroupFisherChannelUnit',
            default_args=dict(normalization_type=normalization_type))))

model_wrapper_cfg = dict(
    type='mmrazor.GroupFisherDDP', broadcast_buffers=False)

optim_wrapper = dict(
    optimizer=dict(lr=_base_.optim_wrapper.optimizer.lr * lr_ratio))
param_scheduler = []

custom_hooks = [
    dict(type='mmrazor.PruningStructureHook'),
    dict(
        type='mmrazor.ResourceInfoHook',
        interval=interval,
        demo_input=dict(type='mmrazor.DefaultDemoInput',
                        input_shape=input_shape),
        save_ckpt_thr=[target_flop_ratio],
        early_stop=True),
]
