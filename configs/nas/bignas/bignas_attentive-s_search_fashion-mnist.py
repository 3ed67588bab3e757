# Evolution search on the supernet trained by
# bignas_attentive-s_supernet_fashion-mnist.py, under a FLOPs budget:
#   python tools/search.py configs/nas/bignas/bignas_attentive-s_search_fashion-mnist.py \
#       work_dirs/bignas_attentive-s_supernet_fashion-mnist/epoch_6.pth
# Writes best_subnet.yaml (and per epoch), candidates.csv/json and
# search_progress.png to the work dir. Other budgets:
#   --cfg-options searcher.constraints.flops=1.4e6
# (benchmarks/bignas_fashion_mnist.py searches three and compares each
# subnet with the same architecture trained from scratch.)
_base_ = ['./bignas_attentive-s_supernet_fashion-mnist.py']

searcher = dict(
    type='EvolutionSearcher',
    candidate_pool_size=16,
    candidate_top_k=4,
    # Multiply-adds of one 28x28 image. The space spans ~0.25M (smallest
    # subnet) to ~2.23M (largest), but random subnets crowd its lower part:
    # 0.8M is about their median.
    constraints=dict(flops=0.8e6),
    score_key='accuracy/top1',
    max_epoch=3,
    num_mutation=6,
    num_crossover=6,
    mutate_prob=0.2,
    seed=0,
    # Every candidate is scored with BatchNorm statistics of its own:
    # re-estimated on 10 batches (640 images) of `train_dataloader`, the
    # 9,000 training images the supernet saw.
    calib_batches=10)

# Candidates are scored on `val_dataloader` of the supernet config: the
# 1,000 images held out of the training split. The test split is not used.
