"""Shared fixtures of the test suite."""
import os.path as osp

import pytest

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
SUBSET_ROOT = osp.join(REPO_ROOT, 'data', 'fashion_mnist_subset')


@pytest.fixture(scope='session')
def repo_root() -> str:
    return REPO_ROOT


@pytest.fixture(scope='session')
def subset_root() -> str:
    return SUBSET_ROOT
