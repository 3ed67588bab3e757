# Retrain a channel configuration found by the greedy search, as a
# physically slimmer network:
#   python tools/train.py configs/pruning/autoslim/autoslim_resnet18-w16_subnet_fashion-mnist.py \
#       --cfg-options model.channel_cfg=work_dirs/autoslim_resnet18-w16_search_fashion-mnist/subnet_12000000.yaml
_base_ = ['./autoslim_resnet18-w16_supernet_fashion-mnist.py']

model = dict(
    channel_cfg='work_dirs/autoslim_resnet18-w16_search_fashion-mnist/'
    'subnet_12000000.yaml',
    bn_training_mode=False)
