# Fashion-MNIST, 28x28 grey images, 10 classes, read from local IDX files.
# `data_root` is the stratified subset that ships with the repository
# (10,000 train / 2,000 test); for the full set run
# `sudo apt-get install dataset-fashion-mnist` and pass
# `--cfg-options data_root=/usr/share/datasets/fashion-mnist` ... or override
# `train_dataloader.dataset.data_root` and `val_dataloader.dataset.data_root`.
dataset_type = 'FashionMNIST'
data_root = 'data/fashion_mnist_subset'

# Per-channel statistics of the Fashion-MNIST training set (0-255 scale).
data_preprocessor = dict(
    type='mmpretrain.ClsDataPreprocessor',
    num_classes=10,
    mean=[72.94],
    std=[90.02],
    to_rgb=False)

train_pipeline = [
    dict(type='mmpretrain.RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='mmpretrain.PackInputs'),
]
test_pipeline = [dict(type='mmpretrain.PackInputs')]

train_dataloader = dict(
    batch_size=64,
    num_workers=0,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='train',
        pipeline=train_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True),
)
val_dataloader = dict(
    batch_size=250,
    num_workers=0,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='test',
        pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False),
)
val_evaluator = dict(type='mmpretrain.Accuracy', topk=(1, ))

test_dataloader = val_dataloader
test_evaluator = val_evaluator
