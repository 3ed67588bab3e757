# Greedy slimming of the ImageNet supernet to the AutoSlim paper's budgets
# (530M / 320M / 220M multiply-adds).
#   tools/dist_search.sh configs/pruning/autoslim/autoslim_mbv2-1.5x_search_8xb256_in1k.py \
#       work_dirs/autoslim_mbv2-1.5x_supernet_8xb256_in1k/epoch_50.pth 8
_base_ = ['./autoslim_mbv2-1.5x_supernet_8xb256_in1k.py']

searcher = dict(
    type='GreedySearcher',
    target_flops=[530e6, 320e6, 220e6],
    max_channel_bins=12,
    min_channel_bins=1,
    score_key='accuracy/top1',
    calib_batches=20)
