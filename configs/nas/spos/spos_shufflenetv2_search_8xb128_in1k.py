# Evolution search of the ImageNet supernet under 330M FLOPs (multiply-adds),
# as in the SPOS paper: 20 epochs, pool of 50, top-10, 25 mutations and 25
# crossovers per epoch; BN re-calibrated on 20 training batches.
#   tools/dist_search.sh configs/nas/spos/spos_shufflenetv2_search_8xb128_in1k.py \
#       work_dirs/spos_shufflenetv2_supernet_8xb128_in1k/epoch_120.pth 8
_base_ = ['./spos_shufflenetv2_supernet_8xb128_in1k.py']

searcher = dict(
    type='EvolutionSearcher',
    candidate_pool_size=50,
    candidate_top_k=10,
    constraints=dict(flops=330e6),
    score_key='accuracy/top1',
    max_epoch=20,
    num_mutation=25,
    num_crossover=25,
    mutate_prob=0.1,
    calib_batches=20)
