# Pruning settings shared by the Fashion-MNIST importance configs (read by
# tools/prune.py): half the FLOPs by L1 importance, then 3 fine-tuning
# epochs from lr 0.01 (the `finetune` keys replace the model config's in the
# fine-tuning config tools/prune.py writes).
pruner = dict(
    type='ImportancePruner',
    importance=dict(type='L1Importance'),
    # the classifier's outputs are the classes
    except_start_keys=['head.fc'],
    # no channel group falls below a tenth of its width (layer collapse)
    min_ratio=0.1)
prune_target = dict(flops=0.5)
# batches a data-driven criterion (Taylor, Group Fisher) reads first, and
# batches that recompute the BatchNorm statistics of the pruned model
calibration = dict(batches=16, bn_batches=8)
finetune = dict(
    optim_wrapper=dict(
        optimizer=dict(type='SGD', lr=0.01, momentum=0.9,
                       weight_decay=5e-4, nesterov=True)),
    param_scheduler=[
        dict(type='CosineAnnealingLR', T_max=3, by_epoch=True, begin=0,
             end=3, convert_to_iter_based=True)
    ],
    train_cfg=dict(by_epoch=True, max_epochs=3, val_interval=1))
