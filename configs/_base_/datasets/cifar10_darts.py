# CIFAR-10 for DARTS (Liu et al., 2019). Not shipped with mmrazor: download
# the "CIFAR-10 python version" from https://www.cs.toronto.edu/~kriz/cifar.html
# and extract it so that the batches lie in
#   data/cifar10/cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}
# or point `data_root` elsewhere (e.g. --cfg-options with each loader's
# dataset.data_root). Nothing is downloaded (download=False).
dataset_type = 'mmpretrain.CIFAR10'
data_root = 'data/cifar10'

data_preprocessor = dict(
    type='mmpretrain.ClsDataPreprocessor',
    num_classes=10,
    # RGB mean and std of the CIFAR-10 training set (0-255 scale)
    mean=[125.307, 122.961, 113.8575],
    std=[51.5865, 50.847, 51.255],
    to_rgb=False)

train_pipeline = [
    dict(type='mmpretrain.RandomCrop', crop_size=32, padding=4),
    dict(type='mmpretrain.RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='mmpretrain.PackInputs'),
]
test_pipeline = [dict(type='mmpretrain.PackInputs')]

cifar10_train = dict(
    type=dataset_type,
    data_root=data_root,
    split='train',
    download=False,
    pipeline=train_pipeline)
cifar10_test = dict(
    type=dataset_type,
    data_root=data_root,
    split='test',
    download=False,
    test_mode=True,
    pipeline=test_pipeline)

val_dataloader = dict(
    batch_size=256,
    num_workers=4,
    dataset=cifar10_test,
    sampler=dict(type='DefaultSampler', shuffle=False))
val_evaluator = dict(type='mmpretrain.Accuracy', topk=(1, 5))
test_dataloader = val_dataloader
test_evaluator = val_evaluator
