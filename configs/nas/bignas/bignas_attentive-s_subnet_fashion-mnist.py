# Train the subnet found by the search from scratch (random initialisation,
# plain cross-entropy, no distillation), with the supernet's schedule:
#   python tools/train.py configs/nas/bignas/bignas_attentive-s_subnet_fashion-mnist.py \
#       --cfg-options model.fix_subnet=work_dirs/bignas_attentive-s_search_fashion-mnist/best_subnet.yaml
# This is the "from scratch" side of benchmarks/bignas_fashion_mnist.py;
# BigNAS' claim is that the subnet taken with the supernet's weights (after
# BatchNorm re-calibration) needs no such retraining.
_base_ = ['./bignas_attentive-s_supernet_fashion-mnist.py']

model = dict(
    _delete_=True,
    type='sub_model',
    cfg=_base_.supernet,
    fix_subnet='work_dirs/bignas_attentive-s_search_fashion-mnist/'
    'best_subnet.yaml',
    # A static network: the searchable layers are replaced by plain ones
    # holding the subnet's (freshly initialised) weights.
    mode='deploy')
find_unused_parameters = False

# Same training images as the supernet (9,000, the held-out 1,000 left
# out) so that the comparison is between training methods only; the
# accuracy reported is on the test split.
val_dataloader = dict(dataset=dict(split='test', holdout=0, part='rest'))
test_dataloader = val_dataloader
# A network trained alone keeps running statistics of its own.
val_cfg = dict(_delete_=True)
test_cfg = dict(_delete_=True)
