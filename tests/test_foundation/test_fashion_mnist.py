"""The IDX reader and the FashionMNIST dataset."""
import gzip
import os.path as osp
import struct

import numpy as np
import pytest

from mmrazor.datasets import (FULL_FASHION_MNIST_ROOT, FashionMNIST,
                              read_idx, write_idx)


def _idx_bytes(array: np.ndarray, code: int) -> bytes:
    """IDX encoding written here from the format description, independent
    of mmrazor's writer."""
    header = bytes([0, 0, code, array.ndim])
    header += b''.join(struct.pack('>I', d) for d in array.shape)
    return header + array.astype(array.dtype.newbyteorder('>')).tobytes()


def _write_split(root, prefix, images, labels, gz=True):
    suffix = '.gz' if gz else ''
    opener = gzip.open if gz else open
    with opener(osp.join(root, f'{prefix}-images-idx3-ubyte{suffix}'),
                'wb') as f:
        f.write(_idx_bytes(images, 0x08))
    with opener(osp.join(root, f'{prefix}-labels-idx1-ubyte{suffix}'),
                'wb') as f:
        f.write(_idx_bytes(labels, 0x08))


@pytest.mark.parametrize('gz', [True, False])
def test_read_idx_matches_the_format(tmp_path, gz):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (7, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, (7, ), dtype=np.uint8)
    _write_split(str(tmp_path), 'train', images, labels, gz=gz)
    suffix = '.gz' if gz else ''
    got = read_idx(tmp_path / f'train-images-idx3-ubyte{suffix}')
    assert got.dtype == np.uint8 and got.shape == (7, 28, 28)
    np.testing.assert_array_equal(got, images)
    np.testing.assert_array_equal(
        read_idx(tmp_path / f'train-labels-idx1-ubyte{suffix}'), labels)


def test_read_idx_other_dtypes_and_writer_round_trip(tmp_path):
    ints = np.arange(-6, 6, dtype=np.int32).reshape(3, 4)
    (tmp_path / 'ints.idx').write_bytes(_idx_bytes(ints, 0x0C))
    np.testing.assert_array_equal(read_idx(tmp_path / 'ints.idx'), ints)
    floats = np.linspace(0, 1, 10, dtype=np.float32)
    write_idx(floats, tmp_path / 'f.idx.gz')
    with gzip.open(tmp_path / 'f.idx.gz', 'rb') as f:
        assert f.read() == _idx_bytes(floats, 0x0D)


def test_read_idx_rejects_bad_files(tmp_path):
    (tmp_path / 'bad').write_bytes(b'\x01\x02\x08\x01' + b'\x00' * 8)
    with pytest.raises(ValueError, match='magic'):
        read_idx(tmp_path / 'bad')
    truncated = _idx_bytes(np.zeros((4, 2), np.uint8), 0x08)[:-3]
    (tmp_path / 'short').write_bytes(truncated)
    with pytest.raises(ValueError, match='shape'):
        read_idx(tmp_path / 'short')


def test_dataset_reads_samples_and_labels(tmp_path):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (12, 28, 28), dtype=np.uint8)
    labels = np.arange(12, dtype=np.uint8) % 10
    _write_split(str(tmp_path), 't10k', images, labels)
    ds = FashionMNIST(data_root=str(tmp_path), split='test')
    assert len(ds) == 12 and ds.test_mode
    for i in (0, 5, 11):
        info = ds.get_data_info(i)
        np.testing.assert_array_equal(info['img'], images[i])
        assert info['gt_label'] == labels[i]
    assert ds.metainfo['classes'][9] == 'Ankle boot'


def test_missing_data_root_says_how_to_get_the_data(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        FashionMNIST(data_root=str(tmp_path / 'nowhere'), split='train')
    text = str(info.value)
    assert 'nowhere' in text
    assert 'apt-get install dataset-fashion-mnist' in text
    assert 'data/fashion_mnist_subset' in text


def test_bad_split_is_named():
    with pytest.raises(ValueError, match="'val'"):
        FashionMNIST(split='val')


def test_shipped_subset_is_stratified(subset_root):
    for split, per_class in (('train', 1000), ('test', 200)):
        ds = FashionMNIST(data_root=subset_root, split=split)
        labels = [ds.get_data_info(i)['gt_label'] for i in range(len(ds))]
        assert np.bincount(labels, minlength=10).tolist() == [per_class] * 10


@pytest.mark.skipif(
    not osp.isdir(FULL_FASHION_MNIST_ROOT),
    reason='Debian package dataset-fashion-mnist not installed')
def test_full_set_from_debian_package(subset_root):
    full = FashionMNIST(data_root=FULL_FASHION_MNIST_ROOT, split='test')
    assert len(full) == 10000
    # Every image of the shipped subset is an image of the full set.
    subset = FashionMNIST(data_root=subset_root, split='test')
    full_images = {
        full.get_data_info(i)['img'].tobytes(): full.get_data_info(i)
        ['gt_label']
        for i in range(len(full))
    }
    for i in range(0, len(subset), 97):
        info = subset.get_data_info(i)
        assert full_images[info['img'].tobytes()] == info['gt_label']


def _labelled_split(root, n: int = 20) -> np.ndarray:
    """A train split of ``n`` images whose first pixel is its position."""
    images = np.zeros((n, 28, 28), dtype=np.uint8)
    images[:, 0, 0] = np.arange(n)
    _write_split(str(root), 'train', images, np.arange(n, dtype=np.uint8) % 10)
    return images


def _positions(ds: FashionMNIST) -> list:
    return [int(ds.get_data_info(i)['img'][0, 0]) for i in range(len(ds))]


def test_holdout_cuts_the_split_into_two_disjoint_parts(tmp_path):
    _labelled_split(tmp_path)
    rest = FashionMNIST(data_root=str(tmp_path), holdout=6, part='rest')
    held = FashionMNIST(data_root=str(tmp_path), holdout=6, part='holdout')
    # The last 6 images are held out, in file order; the rest is the others.
    assert _positions(rest) == list(range(14))
    assert _positions(held) == list(range(14, 20))
    assert not rest.test_mode and held.test_mode
    assert 'holdout=6' in repr(held)
    # holdout=0 (the default) is the whole split.
    assert _positions(FashionMNIST(data_root=str(tmp_path))) == list(
        range(20))
    # `indices` applies within the part.
    first = FashionMNIST(data_root=str(tmp_path), holdout=6,
                         part='holdout', indices=2)
    assert _positions(first) == [14, 15]


@pytest.mark.parametrize('kwargs, key, value', [
    (dict(holdout=-1), 'holdout', '-1'),
    (dict(holdout=1.5), 'holdout', '1.5'),
    (dict(holdout=True), 'holdout', 'True'),
    (dict(holdout=3, part='val'), 'part', "'val'"),
    (dict(part='holdout'), 'holdout', 'holdout=0'),
])
def test_bad_holdout_arguments_are_named(tmp_path, kwargs, key, value):
    _labelled_split(tmp_path)
    with pytest.raises(ValueError) as info:
        FashionMNIST(data_root=str(tmp_path), **kwargs)
    assert key in str(info.value) and value in str(info.value)


@pytest.mark.parametrize('holdout', [20, 25])
def test_holdout_must_leave_images_to_train_on(tmp_path, holdout):
    _labelled_split(tmp_path)
    with pytest.raises(ValueError) as info:
        FashionMNIST(data_root=str(tmp_path), holdout=holdout)
    assert f'holdout={holdout}' in str(info.value)
    assert '20 images' in str(info.value)
