# Retrain a searched channel configuration of MobileNetV2 on ImageNet from
# scratch, as a physically slimmer network (300 epochs).
#   tools/dist_train.sh configs/pruning/autoslim/autoslim_mbv2-1.5x_subnet_8xb256_in1k.py 8 \
#       --cfg-options model.channel_cfg=work_dirs/autoslim_mbv2-1.5x_search_8xb256_in1k/subnet_320000000.yaml
_base_ = ['./autoslim_mbv2-1.5x_supernet_8xb256_in1k.py']

model = dict(
    channel_cfg='work_dirs/autoslim_mbv2-1.5x_search_8xb256_in1k/'
    'subnet_320000000.yaml')
param_scheduler = [
    dict(type='LinearLR', start_factor=1.0, end_factor=0.0, by_epoch=True,
         begin=0, end=300, convert_to_iter_based=True)
]
train_cfg = dict(by_epoch=True, max_epochs=300, val_interval=10)
