# Pruning settings shared by the ImageNet importance configs: half the
# FLOPs by Group Fisher importance per FLOP, one-shot from 64 training
# batches, channel counts multiples of 8; the pruned model's BatchNorm
# statistics recomputed on 64 training batches (2,048 images at 32 a batch).
pruner = dict(
    type='ImportancePruner',
    importance=dict(type='GroupFisherImportance'),
    cost_normalization='flops',
    except_start_keys=['head.fc'],
    min_ratio=0.1,
    round_to=8)
prune_target = dict(flops=0.5)
calibration = dict(batches=64, bn_batches=64)
input_shape = (1, 3, 224, 224)
