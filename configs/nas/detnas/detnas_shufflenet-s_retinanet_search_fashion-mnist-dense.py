# Evolution search on the supernet trained by
# detnas_shufflenet-s_retinanet_supernet_fashion-mnist-dense.py: candidates
# are scored by their bbox mAP on the 200 validation canvases (BatchNorm
# re-calibrated on 5 training batches for each), under a budget on the
# FLOPs of the backbone alone.
#   python tools/search.py configs/nas/detnas/detnas_shufflenet-s_retinanet_search_fashion-mnist-dense.py \
#       work_dirs/detnas_shufflenet-s_retinanet_supernet_fashion-mnist-dense/epoch_10.pth
# Writes best_subnet.yaml (and per epoch), candidates.csv/json and
# search_progress.png to the work dir; the log names the mAP of the best
# candidate after every epoch.
_base_ = ['./detnas_shufflenet-s_retinanet_supernet_fashion-mnist-dense.py']

searcher = dict(
    type='EvolutionSearcher',
    candidate_pool_size=8,
    candidate_top_k=3,
    # Multiply-adds of the backbone on one 3x96x96 canvas: the space spans
    # ~3.40M (all xception) to ~4.99M (all 7x7), median ~4.0M.
    constraints=dict(flops=3.9e6),
    score_key='coco/bbox_mAP',
    max_epoch=3,
    num_mutation=3,
    num_crossover=3,
    mutate_prob=0.2,
    seed=0,
    calib_batches=5)

# Candidates are scored with re-calibrated running statistics.
model = dict(bn_training_mode=False)
