# Evolution search on the supernet trained by
# spos_shufflenet-s_supernet_fashion-mnist.py, under a FLOPs budget:
#   python tools/search.py configs/nas/spos/spos_shufflenet-s_search_fashion-mnist.py \
#       work_dirs/spos_shufflenet-s_supernet_fashion-mnist/epoch_6.pth
# Writes best_subnet.yaml (and per epoch), candidates.csv/json and
# search_progress.png to the work dir.
_base_ = ['./spos_shufflenet-s_supernet_fashion-mnist.py']

searcher = dict(
    type='EvolutionSearcher',
    candidate_pool_size=16,
    candidate_top_k=4,
    # Multiply-adds at 1x1x28x28; the space spans ~0.55M (all 3x3) to
    # ~0.74M (all 7x7).
    constraints=dict(flops=0.62e6),
    score_key='accuracy/top1',
    max_epoch=3,
    num_mutation=6,
    num_crossover=6,
    mutate_prob=0.2,
    seed=0,
    # Re-estimate BatchNorm statistics of each candidate on 10 batches of
    # `train_dataloader`: the 9,000 training images the supernet saw.
    calib_batches=10)

# Candidates are scored with re-calibrated running statistics.
model = dict(bn_training_mode=False)

# Candidates are scored on `val_dataloader` of the supernet config: the
# 1,000 images held out of the training split. The test split is not used.
