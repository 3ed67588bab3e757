"""Make the stratified Fashion-MNIST subset that ships with mmrazor.

Reads the full set (Debian package ``dataset-fashion-mnist``) and writes
``--train-per-class`` training and ``--test-per-class`` test images of every
class, chosen with a fixed seed, as gzip IDX files. The output is
byte-identical across runs.

Example:
    python tools/dataset_converters/make_fashion_mnist_subset.py \
        --src /usr/share/datasets/fashion-mnist --out data/fashion_mnist_subset
"""
import argparse
import os
import os.path as osp

import numpy as np

from mmrazor.datasets import FULL_FASHION_MNIST_ROOT, read_idx, write_idx


def stratified_indices(labels: np.ndarray, per_class: int,
                       rng: np.random.Generator) -> np.ndarray:
    """Pick ``per_class`` indices of every label, sorted.

    Args:
        labels (np.ndarray): Labels of the full split.
        per_class (int): How many to keep of each class.
        rng (np.random.Generator): The random generator.

    Returns:
        np.ndarray: The chosen indices in increasing order.
    """
    chosen = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        if len(idx) < per_class:
            raise ValueError(f'class {c} has only {len(idx)} images')
        chosen.append(rng.choice(idx, per_class, replace=False))
    return np.sort(np.concatenate(chosen))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--src', default=FULL_FASHION_MNIST_ROOT)
    parser.add_argument('--out', default='data/fashion_mnist_subset')
    parser.add_argument('--train-per-class', type=int, default=1000)
    parser.add_argument('--test-per-class', type=int, default=200)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    os.makedirs(args.out, exist_ok=True)
    for prefix, per_class in (('train', args.train_per_class),
                              ('t10k', args.test_per_class)):
        images = read_idx(osp.join(args.src, f'{prefix}-images-idx3-ubyte.gz'))
        labels = read_idx(osp.join(args.src, f'{prefix}-labels-idx1-ubyte.gz'))
        keep = stratified_indices(labels, per_class, rng)
        write_idx(images[keep],
                  osp.join(args.out, f'{prefix}-images-idx3-ubyte.gz'))
        write_idx(labels[keep],
                  osp.join(args.out, f'{prefix}-labels-idx1-ubyte.gz'))
        print(f'{prefix}: kept {len(keep)} of {len(labels)} images')


if __name__ == '__main__':
    main()
