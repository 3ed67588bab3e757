# Evolution search of the BigNAS ImageNet supernet under 700M FLOPs
# (multiply-adds at 224x224, resized inside the model to each subnet's
# resolution): 20 epochs, a pool of 50, top-10, 25 mutations and 25
# crossovers per epoch, every candidate scored after re-estimating its
# BatchNorm statistics on 4,096 training images (64 batches of 64).
#   tools/dist_search.sh configs/nas/bignas/attentive_mobilenet_search_8xb128_in1k.py \
#       work_dirs/attentive_mobilenet_supernet_32xb64_in1k/epoch_360.pth 8
# Other budgets: --cfg-options searcher.constraints.flops=400e6
_base_ = ['./attentive_mobilenet_supernet_32xb64_in1k.py']

searcher = dict(
    type='EvolutionSearcher',
    candidate_pool_size=50,
    candidate_top_k=10,
    constraints=dict(flops=700e6),
    score_key='accuracy/top1',
    max_epoch=20,
    num_mutation=25,
    num_crossover=25,
    mutate_prob=0.1,
    calib_batches=64)

# candidates are scored on the validation split, 128 images per batch
val_dataloader = dict(batch_size=128)
