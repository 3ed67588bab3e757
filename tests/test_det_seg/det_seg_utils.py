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
