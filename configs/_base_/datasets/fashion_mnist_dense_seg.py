# Fashion-MNIST dense, segmentation view: 96x96 grey canvases with 2-4
# Fashion-MNIST items each, label maps with 11 classes (0 = background,
# k + 1 = Fashion-MNIST class k). Made by
# tools/dataset_converters/make_fashion_mnist_dense.py; see
# data/fashion_mnist_dense/README.md. Needs mmsegmentation and full mmcv
# (`bash tools/build_mmcv.sh`, then `pip install -e ".[det,seg]"`).
#
# The images are grey; LoadImageFromFile reads them as 3 equal channels.
dataset_type = 'mmseg.BaseSegDataset'
data_root = 'data/fashion_mnist_dense/'
classes = ('background', 'T-shirt/top', 'Trouser', 'Pullover', 'Dress',
           'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot')
palette = [[0, 0, 0], [230, 25, 75], [60, 180, 75], [255, 225, 25],
           [0, 130, 200], [245, 130, 48], [145, 30, 180], [70, 240, 240],
           [240, 50, 230], [210, 245, 60], [250, 190, 212]]
metainfo = dict(classes=classes, palette=palette)
image_size = (96, 96)

# Pixel statistics of the training canvases (0-255 scale), for the model's
# `data_preprocessor = data_preprocessor` in configs that inherit this file.
data_preprocessor = dict(
    type='mmseg.SegDataPreProcessor',
    mean=[23.69, 23.69, 23.69],
    std=[59.86, 59.86, 59.86],
    bgr_to_rgb=False,
    pad_val=0,
    seg_pad_val=255,
    size=image_size)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='mmseg.LoadAnnotations', reduce_zero_label=False),
    dict(type='mmseg.RandomFlip', prob=0.5),
    dict(type='mmseg.PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='mmseg.LoadAnnotations', reduce_zero_label=False),
    dict(type='mmseg.PackSegInputs'),
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
        img_suffix='.png',
        seg_map_suffix='.png',
        reduce_zero_label=False,
        data_prefix=dict(
            img_path='images/train', seg_map_path='masks/train'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=16,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        metainfo=metainfo,
        img_suffix='.png',
        seg_map_suffix='.png',
        reduce_zero_label=False,
        test_mode=True,
        data_prefix=dict(img_path='images/val', seg_map_path='masks/val'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader

val_evaluator = dict(type='mmseg.IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
