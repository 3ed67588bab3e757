# Greedy slimming of the AutoSlim supernet: drop one channel bin at a time
# from the group that hurts accuracy least, record a channel config at each
# FLOPs target (the full network has ~30M multiply-adds at 28x28).
#   python tools/search.py configs/pruning/autoslim/autoslim_resnet18-w16_search_fashion-mnist.py \
#       work_dirs/autoslim_resnet18-w16_supernet_fashion-mnist/epoch_6.pth
_base_ = ['./autoslim_resnet18-w16_supernet_fashion-mnist.py']

searcher = dict(
    type='GreedySearcher',
    target_flops=[20e6, 12e6, 6e6],
    max_channel_bins=4,  # bins of 25% width
    min_channel_bins=1,
    score_key='accuracy/top1',
    calib_batches=4)

# Candidates are scored with re-calibrated running statistics.
model = dict(bn_training_mode=False)

val_dataloader = dict(dataset=dict(indices=500))
