"""Detection / segmentation tests: they need mmdet, mmseg and full mmcv
with compiled ops (``bash tools/build_mmcv.sh``, then
``pip install -e ".[det,seg]"``).

Every test of this folder is marked ``det_seg`` (``pytest -m det_seg`` runs
them). Without compiled mmcv ops no module of this folder is collected but
those listed in :data:`RUN_WITHOUT_MMCV_OPS` (the checks of the generated
data and of the errors raised without ops, which need numpy only).
"""
import os
import os.path as osp

import pytest

HERE = osp.dirname(osp.abspath(__file__))

#: Modules of this folder that need neither mmdet / mmseg nor mmcv ops.
RUN_WITHOUT_MMCV_OPS = ('test_dense_data.py', 'test_missing_ops_errors.py')


def _mmcv_ops_importable() -> bool:
    try:
        import mmcv.ops  # noqa: F401
    except ImportError:
        return False
    return True


MMCV_OPS = _mmcv_ops_importable()
collect_ignore = [] if MMCV_OPS else [
    name for name in sorted(os.listdir(HERE))
    if name.startswith('test_') and name.endswith('.py')
    and name not in RUN_WITHOUT_MMCV_OPS
]


def pytest_collection_modifyitems(config, items):
    for item in items:
        if str(item.fspath).startswith(HERE + osp.sep):
            item.add_marker(pytest.mark.det_seg)


@pytest.fixture(scope='session')
def dense_root() -> str:
    """Absolute path of the shipped Fashion-MNIST dense data."""
    root = osp.join(osp.dirname(osp.dirname(HERE)), 'data',
                    'fashion_mnist_dense')
    if not osp.isdir(root):
        pytest.fail(f'{root} is missing: run '
                    'tools/dataset_converters/make_fashion_mnist_dense.py')
    return root

