"""Helpers of the detection / segmentation tests: the shipped dense data
through the base dataset configs."""
import os.path as osp

HERE = osp.dirname(osp.abspath(__file__))
REPO = osp.dirname(osp.dirname(HERE))
DENSE_ROOT = osp.join(REPO, 'data', 'fashion_mnist_dense')


def dense_config(kind: str, root: str):
    """The base dataset config ``fashion_mnist_dense_{kind}.py`` with its
    data root made absolute (and the evaluator's annotation file)."""
    from mmengine import Config
    cfg = Config.fromfile(
        osp.join(REPO, 'configs', '_base_', 'datasets',
                 f'fashion_mnist_dense_{kind}.py'))
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        loader.dataset.data_root = root
    if kind == 'det':
        cfg.val_evaluator.ann_file = osp.join(root, 'annotations',
                                              'instances_val.json')
    return cfg


def real_batch(kind: str, root: str, split: str = 'train', num: int = 2):
    """The first ``num`` samples of a split, through the config's pipeline
    (random flips off), collated as a dataloader does."""
    from mmengine.dataset import pseudo_collate

    from mmrazor.registry import DATASETS
    cfg = dense_config(kind, root)
    loader = cfg.train_dataloader if split == 'train' else cfg.val_dataloader
    dataset_cfg = loader.dataset
    for step in dataset_cfg.pipeline:
        if step['type'].endswith('RandomFlip'):
            step['prob'] = 0.0
    dataset = DATASETS.build(dataset_cfg)
    return pseudo_collate([dataset[i] for i in range(num)])


#: A small RetinaNet (ResNet-18, 3-level FPN, 10 classes) for the dense
#: data, shared by the tests of this folder.
NORM = dict(type='BN', requires_grad=True)
ANCHORS = dict(
    type='AnchorGenerator',
    octave_base_scale=4,
    scales_per_octave=3,
    ratios=[0.5, 1.0, 2.0],
    strides=[8, 16, 32])
RESNET18 = dict(
    type='ResNet',
    depth=18,
    num_stages=4,
    out_indices=(1, 2, 3),
    norm_cfg=NORM,
    norm_eval=False,
    style='pytorch')
RETINANET = dict(
    type='mmdet.RetinaNet',
    data_preprocessor=dense_config('det', DENSE_ROOT).data_preprocessor,
    backbone=RESNET18,
    neck=dict(
        type='FPN', in_channels=[128, 256, 512], out_channels=32,
        num_outs=3),
    bbox_head=dict(
        type='RetinaHead',
        num_classes=10,
        in_channels=32,
        stacked_convs=1,
        feat_channels=32,
        anchor_generator=ANCHORS,
        bbox_coder=dict(
            type='DeltaXYWHBBoxCoder',
            target_means=[0.0, 0.0, 0.0, 0.0],
            target_stds=[1.0, 1.0, 1.0, 1.0]),
        loss_cls=dict(
            type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25,
            loss_weight=1.0),
        loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
    train_cfg=dict(
        assigner=dict(
            type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.4,
            min_pos_iou=0, ignore_iof_thr=-1),
        sampler=dict(type='PseudoSampler'),
        allowed_border=-1,
        pos_weight=-1,
        debug=False),
    test_cfg=dict(
        nms_pre=100, min_bbox_size=0, score_thr=0.05,
        nms=dict(type='nms', iou_threshold=0.5), max_per_img=20))
