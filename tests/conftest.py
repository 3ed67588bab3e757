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


def _visualizer_classes() -> list:
    """mmengine's ``Visualizer`` and its subclasses imported so far (each
    keeps its own instances by name)."""
    from mmengine.visualization import Visualizer
    classes, todo = [], [Visualizer]
    while todo:
        cls = todo.pop()
        classes.append(cls)
        todo.extend(cls.__subclasses__())
    return classes


@pytest.fixture(autouse=True)
def visualizers_forgotten():
    """Forget the visualizers a test creates.

    A runner asks mmengine for its visualizer by name and gets an existing
    one of that name: mmdet's configs all name theirs ``'visualizer'``, so
    without this a later test's runner would write into an earlier test's
    work dir (a ``tmp_path`` removed once that test passed).
    """
    before = {cls: set(cls._instance_dict) for cls in _visualizer_classes()}
    yield
    for cls in _visualizer_classes():
        for name in set(cls._instance_dict) - before.get(cls, set()):
            cls._instance_dict.pop(name)
