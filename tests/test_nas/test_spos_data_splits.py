"""Which data each stage of the small SPOS pipeline uses: the supernet
trains on the training split minus a held-out part, the search scores its
candidates on that held-out part (and re-calibrates BatchNorm on the
training part), and only the retrained subnet is evaluated on the test
split."""
import os.path as osp

import numpy as np
import pytest
from mmengine import Config

from mmrazor.core.loops import search_dataloader
from mmrazor.datasets import FashionMNIST, read_idx
from mmrazor.registry import DATASETS
from mmrazor.utils import register_all_modules

register_all_modules()
SPOS = 'configs/nas/spos/spos_shufflenet-s_{}_fashion-mnist.py'
HOLDOUT = 1000  # the size the configs and docs/nas.md state


def _cfg(repo_root: str, stage: str) -> Config:
    return Config.fromfile(osp.join(repo_root, SPOS.format(stage)))


def _build(loader_cfg) -> FashionMNIST:
    dataset = DATASETS.build(loader_cfg.dataset)
    assert isinstance(dataset, FashionMNIST)
    return dataset


def _images(dataset) -> np.ndarray:
    return np.stack(
        [dataset.get_data_info(i)['img'] for i in range(len(dataset))])


@pytest.fixture(scope='module')
def train_split(subset_root) -> np.ndarray:
    return read_idx(osp.join(subset_root, 'train-images-idx3-ubyte.gz'))


@pytest.fixture(scope='module')
def held_back_test_images(subset_root) -> np.ndarray:
    return read_idx(osp.join(subset_root, 't10k-images-idx3-ubyte.gz'))


def test_supernet_trains_on_the_complement_of_the_held_out_part(
        repo_root, train_split):
    cfg = _cfg(repo_root, 'supernet')
    train, val = _build(cfg.train_dataloader), _build(cfg.val_dataloader)
    assert train.split == val.split == 'train'
    assert (train.holdout, train.part) == (HOLDOUT, 'rest')
    assert (val.holdout, val.part) == (HOLDOUT, 'holdout')
    assert len(val) == HOLDOUT and len(train) == len(train_split) - HOLDOUT
    train_images, val_images = _images(train), _images(val)
    # Together the two parts are the training split, each image once ...
    np.testing.assert_array_equal(
        np.concatenate([train_images, val_images]), train_split)
    # ... and no image is in both (the shipped images are all distinct).
    trained_on = {x.tobytes() for x in train_images}
    assert not trained_on & {x.tobytes() for x in val_images}
    assert val.test_mode and not train.test_mode


def test_search_scores_on_the_held_out_part_and_calibrates_on_training(
        repo_root, train_split):
    cfg = _cfg(repo_root, 'search')
    cut = len(train_split) - HOLDOUT
    held_out = {x.tobytes() for x in train_split[cut:]}
    training = {x.tobytes() for x in train_split[:cut]}
    # The loaders the SearchLoop builds: all of the held-out part is scored.
    val_loader = search_dataloader(cfg.val_dataloader)
    scored = {x.tobytes() for x in _images(val_loader.dataset)}
    assert scored == held_out
    batch_size = cfg.train_dataloader.batch_size
    calib_loader = search_dataloader(
        cfg.train_dataloader, cfg.searcher.calib_batches * batch_size)
    calibration = [
        x.numpy().reshape(28, 28) for batch in calib_loader
        for x in batch['inputs']
    ]
    assert len(calibration) == cfg.searcher.calib_batches * batch_size
    # RandomFlip may mirror an image: either orientation must be training.
    for image in calibration:
        assert image.tobytes() in training or \
            image[:, ::-1].tobytes() in training
        assert image.tobytes() not in held_out


def test_subnet_retrains_on_the_whole_training_split_and_tests_on_test(
        repo_root, train_split, held_back_test_images):
    cfg = _cfg(repo_root, 'subnet')
    train = _build(cfg.train_dataloader)
    np.testing.assert_array_equal(_images(train), train_split)
    for loader in (cfg.val_dataloader, cfg.test_dataloader):
        dataset = _build(loader)
        assert dataset.split == 'test' and dataset.test_mode
        np.testing.assert_array_equal(_images(dataset), held_back_test_images)
