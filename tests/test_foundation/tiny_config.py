"""A tiny classification config for fast runner tests (imported by tests)."""
import os.path as osp

SUBSET_ROOT = osp.join(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'data',
    'fashion_mnist_subset')


def _loader(split: str, num_images: int, batch_size: int,
            shuffle: bool) -> dict:
    """The first ``num_images`` of a split, padded to 32x32."""
    return dict(
        batch_size=batch_size,
        num_workers=0,
        dataset=dict(
            type='FashionMNIST', data_root=SUBSET_ROOT, split=split,
            indices=num_images,
            pipeline=[dict(type='Pad', size=(32, 32)),
                      dict(type='PackInputs')]),
        sampler=dict(type='DefaultSampler', shuffle=shuffle))


def eval_loader(num_images: int) -> dict:
    """A loader of the first ``num_images`` test images, padded as
    :func:`tiny_cfg`'s model expects.

    Args:
        num_images (int): Test images used.

    Returns:
        dict: A dataloader config for ``val_dataloader`` / ``test_dataloader``.
    """
    return _loader('test', num_images, batch_size=64, shuffle=False)


def tiny_cfg(work_dir: str, max_epochs: int = 2, num_train: int = 256,
             **extra) -> dict:
    """A runner config: a 2-conv classifier on a few Fashion-MNIST images.

    Args:
        work_dir (str): The work dir.
        max_epochs (int): Training epochs.
        num_train (int): Training images used.

    Returns:
        dict: A full mmengine Runner config.
    """
    cfg = dict(
        default_scope='mmrazor',
        work_dir=work_dir,
        model=dict(
            type='ImageClassifier',
            data_preprocessor=dict(
                type='ClsDataPreprocessor', num_classes=10, mean=[72.94],
                std=[90.02], to_rgb=False),
            backbone=dict(type='LeNet5', num_classes=-1),
            neck=dict(type='GlobalAveragePooling'),
            head=dict(
                type='LinearClsHead', num_classes=10, in_channels=120,
                loss=dict(type='CrossEntropyLoss'))),
        train_dataloader=_loader('train', num_train, batch_size=32,
                                 shuffle=True),
        optim_wrapper=dict(
            optimizer=dict(type='SGD', lr=0.05, momentum=0.9)),
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs),
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', interval=1),
            logger=dict(type='LoggerHook', interval=100)),
        env_cfg=dict(dist_cfg=dict(backend='gloo')),
        randomness=dict(seed=0),
        log_level='WARNING',
    )
    cfg.update(extra)
    return cfg
