"""Write Fashion-MNIST in the on-disk layouts that original configs read.

Configs of the older toolbox name their data set by type (``ImageNet``,
``CIFAR10``) and by path. To run such a config unchanged except for its
data paths, the local Fashion-MNIST images are written in that type's
layout:

* ``imagenet``: ``<root>/{train,val}/<class>/<n>.png`` and
  ``<root>/meta/{train,val}.txt`` (``"<class>/<n>.png <label>"`` lines),
  the layout of mmpretrain's ``ImageNet`` / ``CustomDataset`` (and of the
  0.x ``data_prefix`` + ``ann_file`` pair).

mmpretrain's ``CIFAR10`` accepts only the official files (it checks their
md5 sums, and downloads otherwise): for CIFAR configs set the dataset
``type`` to :class:`~mmrazor.datasets.FashionMNISTAsCIFAR` instead.
"""
import os
import os.path as osp
from typing import Dict, Tuple

import numpy as np

from .fashion_mnist import FASHION_MNIST_CLASSES, SUBSET_FASHION_MNIST_ROOT
from .fashion_mnist import _find, _resolve_root
from .idx import read_idx

LAYOUTS = ('imagenet', )


def _load(data_root: str, split: str, per_class: int
          ) -> Tuple[np.ndarray, np.ndarray]:
    """The first ``per_class`` images of each class of a split."""
    prefix = 'train' if split == 'train' else 't10k'
    root = _resolve_root(data_root)
    images_path = _find(root, f'{prefix}-images-idx3-ubyte')
    labels_path = _find(root, f'{prefix}-labels-idx1-ubyte')
    if images_path is None or labels_path is None:
        raise FileNotFoundError(
            f'no Fashion-MNIST {prefix}-* IDX files in {root!r}')
    images, labels = read_idx(images_path), read_idx(labels_path)
    keep = np.concatenate([
        np.flatnonzero(labels == c)[:per_class]
        for c in range(len(FASHION_MNIST_CLASSES))
    ])
    keep.sort()
    return images[keep], labels[keep].astype(np.int64)


def _write_imagenet(out: str, splits: Dict[str, Tuple[np.ndarray,
                                                       np.ndarray]]) -> None:
    from PIL import Image
    os.makedirs(osp.join(out, 'meta'), exist_ok=True)
    for split, (images, labels) in splits.items():
        lines = []
        for i, (img, label) in enumerate(zip(images, labels)):
            rel = f'class_{int(label)}/{i:05d}.png'
            path = osp.join(out, split, rel)
            os.makedirs(osp.dirname(path), exist_ok=True)
            Image.fromarray(img).convert('RGB').save(path)
            lines.append(f'{rel} {int(label)}')
        with open(osp.join(out, 'meta', f'{split}.txt'), 'w') as f:
            f.write('\n'.join(lines) + '\n')



def export_fashion_mnist(out: str,
                         layout: str = 'imagenet',
                         per_class: int = 8,
                         data_root: str = SUBSET_FASHION_MNIST_ROOT) -> str:
    """Write Fashion-MNIST images under ``out`` in a data set's layout.

    Args:
        out (str): The folder to write (the config's ``data_root``).
        layout (str): ``'imagenet'`` (see the module docstring).
        per_class (int): Images per class and split. Defaults to 8.
        data_root (str): Where the IDX files are. Defaults to the subset
            shipped in ``data/``.

    Returns:
        str: ``out``.
    """
    if layout not in LAYOUTS:
        raise ValueError(f'layout must be one of {LAYOUTS}, got {layout!r}')
    if per_class < 1:
        raise ValueError(f'per_class must be >= 1, got {per_class}')
    splits = {
        'train': _load(data_root, 'train', per_class),
        'val': _load(data_root, 'test', per_class),
    }
    _write_imagenet(out, splits)
    return out
