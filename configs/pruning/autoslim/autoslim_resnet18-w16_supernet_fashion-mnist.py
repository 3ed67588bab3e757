# AutoSlim slimmable training of the quickstart classifier (ResNet-18, base
# width 16) on the Fashion-MNIST subset, on a CPU. Every step trains the
# widest network (labels), the narrowest and one random width (in-place
# distillation from the widest).
#   python tools/train.py configs/pruning/autoslim/autoslim_resnet18-w16_supernet_fashion-mnist.py
_base_ = ['../../vanilla/resnet18-w16_fashion-mnist.py']

architecture = {{_base_.model}}

model = dict(
    _delete_=True,
    type='AutoSlim',
    architecture=architecture,
    pruner=dict(
        type='RatioPruner',
        ratios=[i / 8 for i in range(2, 9)],
        except_start_keys=['head.fc']),
    distill_loss=dict(type='KLDivergence', tau=1.0, loss_weight=1.0),
    num_sample_training=3,
    input_shape=(1, 28, 28),
    # Narrow widths update the running statistics of channels the widest
    # network uses: validate with batch statistics (the search re-calibrates
    # BN for every candidate instead).
    bn_training_mode=True)
