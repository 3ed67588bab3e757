# Retrain the subnet found by the search from scratch:
#   python tools/train.py configs/nas/spos/spos_shufflenet-s_subnet_fashion-mnist.py \
#       --cfg-options model.fix_subnet=work_dirs/spos_shufflenet-s_search_fashion-mnist/best_subnet.yaml
_base_ = ['./spos_shufflenet-s_supernet_fashion-mnist.py']

model = dict(
    fix_subnet='work_dirs/spos_shufflenet-s_search_fashion-mnist/'
    'best_subnet.yaml',
    bn_training_mode=False)
find_unused_parameters = False

# Retrain on the whole training split (the held-out 1,000 images included,
# as in the SPOS paper) and report accuracy on the test split.
train_dataloader = dict(dataset=dict(holdout=0, part='rest'))
val_dataloader = dict(dataset=dict(split='test', holdout=0, part='rest'))
test_dataloader = val_dataloader
