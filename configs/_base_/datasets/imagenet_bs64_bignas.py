# ImageNet-1k for BigNAS / AttentiveNAS supernets (32 GPUs x 64 images).
# Prepare the data as mmpretrain documents (data/imagenet/{train,val} +
# meta/{train,val}.txt); nothing is downloaded.
dataset_type = 'mmpretrain.ImageNet'
data_root = 'data/imagenet'

data_preprocessor = dict(
    type='mmpretrain.ClsDataPreprocessor',
    num_classes=1000,
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    to_rgb=True)

# Images are cropped to 224 here; the supernet resizes them again to the
# searched resolution (192-288) inside the model. AutoAugment with
# mmpretrain's ImageNet policies, as the AttentiveNAS recipe has it (1.x
# configs that spell it `mmrazor.AutoAugmentV2` still load: see
# mmrazor/apis/config_compat/v1_augment.py).
train_pipeline = [
    dict(type='mmpretrain.LoadImageFromFile'),
    dict(type='mmpretrain.RandomResizedCrop', scale=224, backend='pillow'),
    dict(type='mmpretrain.RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='mmpretrain.AutoAugment', policies='imagenet'),
    dict(type='mmpretrain.PackInputs'),
]
test_pipeline = [
    dict(type='mmpretrain.LoadImageFromFile'),
    dict(type='mmpretrain.ResizeEdge', scale=256, edge='short',
         backend='pillow', interpolation='bilinear'),
    dict(type='mmpretrain.CenterCrop', crop_size=224),
    dict(type='mmpretrain.PackInputs'),
]

train_dataloader = dict(
    batch_size=64,
    num_workers=16,
    dataset=dict(
        type=dataset_type, data_root=data_root, split='train',
        pipeline=train_pipeline),
    # every image three times per epoch, on different GPUs (as in 1.x)
    sampler=dict(type='mmpretrain.RepeatAugSampler', shuffle=True),
    persistent_workers=True)
val_dataloader = dict(
    batch_size=64,
    num_workers=16,
    dataset=dict(
        type=dataset_type, data_root=data_root, split='val',
        pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False),
    persistent_workers=True)
val_evaluator = dict(type='mmpretrain.Accuracy', topk=(1, 5))
test_dataloader = val_dataloader
test_evaluator = val_evaluator
