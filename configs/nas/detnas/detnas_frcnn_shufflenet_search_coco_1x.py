# Evolution search of the COCO DetNAS supernet: candidates are scored by
# their bbox mAP on val2017 (BatchNorm re-calibrated on 20 training batches
# for each), under a budget on the FLOPs of the backbone alone (at
# 224x224, the DetNAS-300M setting); the evolution settings are those of
# the paper: 20 epochs, pool of 50, top-10, 25 mutations + 25 crossovers.
#   tools/dist_search.sh configs/nas/detnas/detnas_frcnn_shufflenet_search_coco_1x.py \
#       work_dirs/detnas_frcnn_shufflenet_supernet_coco_1x/epoch_12.pth 8
# Writes best_subnet.yaml (keys backbone.layers.{stage}.{block}) and
# candidates.csv / search_progress.png to the work dir.
_base_ = ['./detnas_frcnn_shufflenet_supernet_coco_1x.py']

searcher = dict(
    type='EvolutionSearcher',
    candidate_pool_size=50,
    candidate_top_k=10,
    # Backbone multiply-adds at 3x224x224 (no last 1x1 conv): the space
    # spans ~259M to ~328M (all 3x3: 262M, all 7x7: 306M, all xception:
    # 325M); about 70% of random paths fit under 300M.
    constraints=dict(flops=300e6),
    score_key='coco/bbox_mAP',
    max_epoch=20,
    num_mutation=25,
    num_crossover=25,
    mutate_prob=0.1,
    calib_batches=20)

# The supernet weights come from the checkpoint given on the command line.
model = dict(architecture=dict(backbone=dict(init_cfg=None)))
