# Retrain a searched subnet from scratch on ImageNet (300 epochs). By default
# the subnet published with the SPOS paper (3.35M params, ~0.33G FLOPs);
# pass your own with --cfg-options model.fix_subnet=PATH.
#   tools/dist_train.sh configs/nas/spos/spos_shufflenetv2_subnet_8xb128_in1k.py 8
_base_ = ['./spos_shufflenetv2_supernet_8xb128_in1k.py']

model = dict(
    fix_subnet='configs/nas/spos/SPOS_SHUFFLENETV2_330M_IN1k_PAPER.yaml')
find_unused_parameters = False

param_scheduler = [
    dict(type='LinearLR', start_factor=1.0, end_factor=0.0, by_epoch=True,
         begin=0, end=300, convert_to_iter_based=True)
]
train_cfg = dict(by_epoch=True, max_epochs=300, val_interval=10)
