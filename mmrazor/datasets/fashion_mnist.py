"""Fashion-MNIST read from local IDX files, never downloaded."""
import os.path as osp
from typing import List, Optional, Sequence

import numpy as np
from mmpretrain.datasets import BaseDataset

from mmrazor.registry import DATASETS
from .idx import read_idx

#: Where Debian's ``dataset-fashion-mnist`` package installs the full set.
FULL_FASHION_MNIST_ROOT = '/usr/share/datasets/fashion-mnist'
#: The stratified subset that ships with the repository.
SUBSET_FASHION_MNIST_ROOT = 'data/fashion_mnist_subset'

FASHION_MNIST_CLASSES = ('T-shirt/top', 'Trouser', 'Pullover', 'Dress',
                         'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag',
                         'Ankle boot')

_PREFIX = {'train': 'train', 'test': 't10k'}
#: What ``part`` may name: the images not held out, or the held-out ones.
_PARTS = ('rest', 'holdout')


def _find(data_root: str, stem: str) -> Optional[str]:
    for name in (stem, stem + '.gz'):
        path = osp.join(data_root, name)
        if osp.isfile(path):
            return path
    return None


def _resolve_root(data_root: str) -> str:
    """A relative ``data_root`` missing from the working directory is also
    looked up from the repository root, so the shipped subset is found
    wherever a command runs."""
    if osp.isabs(data_root) or osp.isdir(data_root):
        return data_root
    repo_root = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    candidate = osp.join(repo_root, data_root)
    return candidate if osp.isdir(candidate) else data_root


@DATASETS.register_module()
class FashionMNIST(BaseDataset):
    """Fashion-MNIST (Xiao et al., 2017): 28x28 grey images of 10 classes.

    Reads the IDX files ``{train,t10k}-{images-idx3,labels-idx1}-ubyte`` (or
    their ``.gz``) from ``data_root`` and never downloads anything. Two roots
    are at hand: the stratified subset in the repository
    (``data/fashion_mnist_subset``: 10,000 train / 2,000 test images) and the
    full set from Debian's ``dataset-fashion-mnist`` package
    (``/usr/share/datasets/fashion-mnist``).

    Each sample is ``dict(img=uint8 array (28, 28), gt_label=int)``.

    A split can be cut in two fixed, disjoint parts that together cover it,
    e.g. a validation set held out of the training split: ``holdout=N``
    sets the **last** N images of the split aside, and ``part`` picks
    ``'rest'`` (the other images) or ``'holdout'`` (those N). Both the
    official files and the shipped subset are in random class order, so
    the last N images are a random sample of the split. ``indices`` (of
    ``BaseDataset``) then applies within the part.

    Examples:
        >>> train = FashionMNIST(split='train', holdout=1000, part='rest')
        >>> val = FashionMNIST(split='train', holdout=1000, part='holdout')
        >>> len(train), len(val)
        (9000, 1000)

    Args:
        data_root (str): Folder holding the IDX files.
        split (str): ``'train'`` or ``'test'``. Defaults to ``'train'``.
        pipeline (Sequence): Data transforms. Defaults to ().
        test_mode (bool, optional): Defaults to True for the test split and
            for the held-out part (``part='holdout'``), else False.
        holdout (int): Number of images at the end of the split held out;
            must be smaller than the split. Defaults to 0 (none).
        part (str): ``'rest'``: the split without the held-out images;
            ``'holdout'``: the held-out images alone (needs ``holdout`` >
            0). Defaults to ``'rest'``.
        **kwargs: Other arguments of mmpretrain's ``BaseDataset``
            (``indices``, ``lazy_init``, ...).

    Raises:
        ValueError: ``split``, ``holdout`` or ``part`` has a bad value; the
            message names the key and the value.
    """

    METAINFO = {'classes': FASHION_MNIST_CLASSES}

    def __init__(self,
                 data_root: str = SUBSET_FASHION_MNIST_ROOT,
                 split: str = 'train',
                 pipeline: Sequence = (),
                 test_mode: Optional[bool] = None,
                 holdout: int = 0,
                 part: str = 'rest',
                 **kwargs) -> None:
        if split not in _PREFIX:
            raise ValueError(f"FashionMNIST split must be 'train' or 'test', "
                             f'got {split!r}')
        if isinstance(holdout, bool) or not isinstance(holdout, int) \
                or holdout < 0:
            raise ValueError('FashionMNIST holdout must be an int >= 0 (the '
                             f'number of images held out), got {holdout!r}')
        if part not in _PARTS:
            raise ValueError("FashionMNIST part must be 'rest' or "
                             f"'holdout', got {part!r}")
        if part == 'holdout' and holdout == 0:
            raise ValueError("FashionMNIST part='holdout' needs holdout > 0, "
                             'got holdout=0')
        self.split = split
        self.holdout = holdout
        self.part = part
        data_root = _resolve_root(data_root)
        if test_mode is None:
            test_mode = split == 'test' or part == 'holdout'
        super().__init__(
            ann_file='',
            data_root=data_root,
            pipeline=pipeline,
            test_mode=test_mode,
            **kwargs)

    def _files(self) -> List[str]:
        prefix = _PREFIX[self.split]
        stems = [
            f'{prefix}-images-idx3-ubyte', f'{prefix}-labels-idx1-ubyte'
        ]
        found = [_find(self.data_root, s) for s in stems]
        missing = [s for s, f in zip(stems, found) if f is None]
        if missing:
            raise FileNotFoundError(
                f'Fashion-MNIST {self.split} files {missing} (or .gz) not '
                f'found in data_root={self.data_root!r}. Use the subset that '
                f'ships with mmrazor ({SUBSET_FASHION_MNIST_ROOT!r}, relative '
                'to the repository root), or install the full set with '
                '`sudo apt-get install dataset-fashion-mnist` and set '
                f'data_root={FULL_FASHION_MNIST_ROOT!r}.')
        return found

    def load_data_list(self) -> List[dict]:
        """Read the images and labels of this split, or of its part.

        Returns:
            list[dict]: One ``dict(img, gt_label)`` per image, in file order.
        """
        image_file, label_file = self._files()
        images = read_idx(image_file)
        labels = read_idx(label_file)
        if images.ndim != 3 or labels.ndim != 1 or \
                len(images) != len(labels):
            raise ValueError(
                f'{image_file!r} and {label_file!r} do not hold matching '
                f'images (N, H, W) and labels (N,): got {images.shape} and '
                f'{labels.shape}')
        num_classes = len(self.metainfo['classes'])
        if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
            raise ValueError(f'{label_file!r} holds labels outside '
                             f'[0, {num_classes})')
        if self.holdout and self.holdout >= len(labels):
            raise ValueError(
                'FashionMNIST holdout must be smaller than the '
                f'{len(labels)} images of the {self.split!r} split in '
                f'{self.data_root!r}, got holdout={self.holdout}')
        cut = len(labels) - self.holdout
        kept = slice(0, cut) if self.part == 'rest' else slice(cut, None)
        return [
            dict(img=np.ascontiguousarray(img), gt_label=int(label))
            for img, label in zip(images[kept], labels[kept])
        ]

    def extra_repr(self) -> List[str]:
        lines = [f'Split: \t{self.split}', f'Data root: \t{self.data_root}']
        if self.holdout:
            lines.append(f'Part: \t{self.part} (holdout={self.holdout})')
        return lines


@DATASETS.register_module()
class FashionMNISTAsCIFAR(FashionMNIST):
    """Fashion-MNIST samples shaped like those of mmpretrain's ``CIFAR10``:
    ``img`` is a 32x32x3 uint8 array (the 28x28 grey image zero-padded by
    2 pixels and repeated over three channels), so a CIFAR config's
    pipeline and model run on it unchanged (set the config's dataset
    ``type`` to this one; everything else as for :class:`FashionMNIST`).
    """

    def load_data_list(self) -> List[dict]:
        data = super().load_data_list()
        for item in data:
            padded = np.pad(item['img'], 2)
            item['img'] = np.ascontiguousarray(
                np.repeat(padded[..., None], 3, axis=-1))
        return data
