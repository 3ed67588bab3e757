"""``mmrazor.utils.find_latest_checkpoint``: the 0.x helper that picks the
checkpoint to resume from in a work dir."""
import os
import os.path as osp
from pathlib import Path
from typing import Iterable

import pytest

from mmrazor.utils import find_latest_checkpoint


def _touch(root: Path, names: Iterable[str]) -> None:
    for name in names:
        (root / name).write_text(name)


def test_missing_dir_and_empty_dir_give_none(tmp_path: Path) -> None:
    with pytest.warns(UserWarning, match='does not exist'):
        assert find_latest_checkpoint(str(tmp_path / 'absent')) is None
    with pytest.warns(UserWarning, match='no checkpoints'):
        assert find_latest_checkpoint(str(tmp_path)) is None


def test_latest_pth_wins_over_numbered(tmp_path: Path) -> None:
    _touch(tmp_path, ['epoch_7.pth', 'latest.pth'])
    assert find_latest_checkpoint(str(tmp_path)) == osp.join(
        str(tmp_path), 'latest.pth')


@pytest.mark.parametrize('kind', ['epoch', 'iter'])
def test_highest_number_not_lexicographic(tmp_path: Path, kind: str) -> None:
    # 10 > 9 > 2 numerically; 'epoch_9' > 'epoch_10' as strings.
    _touch(tmp_path, [f'{kind}_2.pth', f'{kind}_9.pth', f'{kind}_10.pth'])
    assert find_latest_checkpoint(str(tmp_path)) == osp.join(
        str(tmp_path), f'{kind}_10.pth')


def test_other_files_and_suffixes_are_ignored(tmp_path: Path) -> None:
    _touch(tmp_path, [
        'epoch_3.pth', 'best_acc_epoch_50.pth', 'epoch_99.pth.tmp',
        'epoch_40.log', 'model_100.pth', 'last_checkpoint'
    ])
    (tmp_path / 'epoch_77.pth').mkdir()  # a directory, not a checkpoint
    assert find_latest_checkpoint(str(tmp_path)) == osp.join(
        str(tmp_path), 'epoch_3.pth')


def test_custom_suffix(tmp_path: Path) -> None:
    _touch(tmp_path, ['iter_5.ckpt', 'iter_50.pth', 'iter_6.ckpt'])
    assert find_latest_checkpoint(str(tmp_path), suffix='ckpt') == osp.join(
        str(tmp_path), 'iter_6.ckpt')
    _touch(tmp_path, ['latest.ckpt'])
    assert find_latest_checkpoint(str(tmp_path), suffix='ckpt') == osp.join(
        str(tmp_path), 'latest.ckpt')


def test_mixed_kinds_pick_the_newest_file(tmp_path: Path) -> None:
    _touch(tmp_path, ['epoch_12.pth', 'iter_300.pth'])
    os.utime(tmp_path / 'iter_300.pth', (1000, 1000))
    os.utime(tmp_path / 'epoch_12.pth', (2000, 2000))
    with pytest.warns(UserWarning, match='both epoch_N.pth and iter_N.pth'):
        found = find_latest_checkpoint(str(tmp_path))
    assert found == osp.join(str(tmp_path), 'epoch_12.pth')
