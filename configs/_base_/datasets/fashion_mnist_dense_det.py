# Fashion-MNIST dense, detection view: 96x96 grey canvases with 2-4
# Fashion-MNIST items each, COCO boxes of 10 classes (category ids 1..10).
# Made by tools/dataset_converters/make_fashion_mnist_dense.py; see
# data/fashion_mnist_dense/README.md. Needs mmdet and full mmcv
# (`bash tools/build_mmcv.sh`, then `pip install -e ".[det,seg]"`).
#
# The images are grey; LoadImageFromFile reads them as 3 equal channels.
dataset_type = 'mmdet.CocoDataset'
data_root = 'data/fashion_mnist_dense/'
classes = ('T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal',
           'Shirt', 'Sneaker', 'Bag', 'Ankle boot')
metainfo = dict(classes=classes)
image_size = (96, 96)

# Pixel statistics of the training canvases (0-255 scale), for the model's
# `data_preprocessor = data_preprocessor` in configs that inherit this file.
data_preprocessor = dict(
    type='mmdet.DetDataPreprocessor',
    mean=[23.69, 23.69, 23.69],
    std=[59.86, 59.86, 59.86],
    bgr_to_rgb=False,
    pad_size_divisor=32)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='mmdet.LoadAnnotations', with_bbox=True),
    dict(type='mmdet.Resize', scale=image_size, keep_ratio=True),
    dict(type='mmdet.RandomFlip', prob=0.5),
    dict(type='mmdet.PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='mmdet.Resize', scale=image_size, keep_ratio=True),
    dict(type='mmdet.LoadAnnotations', with_bbox=True),
    dict(
        type='mmdet.PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor')),
]

train_dataloader = dict(
    batch_size=16,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_train.json',
        data_prefix=dict(img='images/train/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=1),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=16,
    num_workers=0,
    persistent_workers=False,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_val.json',
        data_prefix=dict(img='images/val/'),
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader

val_evaluator = dict(
    type='mmdet.CocoMetric',
    ann_file=data_root + 'annotations/instances_val.json',
    metric='bbox',
    format_only=False)
test_evaluator = val_evaluator
