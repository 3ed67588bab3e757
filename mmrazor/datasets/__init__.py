"""Small real datasets used by the quickstart, the configs and the tests."""
from .crd_dataset import CRDDataset
from .crd_transforms import PackCRDClsInputs
from .export_layouts import export_fashion_mnist
from .fashion_mnist import (FASHION_MNIST_CLASSES, FULL_FASHION_MNIST_ROOT,
                            SUBSET_FASHION_MNIST_ROOT, FashionMNIST,
                            FashionMNISTAsCIFAR)
from .idx import read_idx, write_idx

__all__ = [
    'FashionMNIST', 'FashionMNISTAsCIFAR', 'export_fashion_mnist',
    'FASHION_MNIST_CLASSES', 'FULL_FASHION_MNIST_ROOT',
    'SUBSET_FASHION_MNIST_ROOT', 'read_idx', 'write_idx', 'CRDDataset',
    'PackCRDClsInputs'
]
