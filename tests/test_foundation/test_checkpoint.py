"""Safe checkpoints: resume with weights_only=True, refusal, atomic writes."""
import copy
import os

import pytest
import torch
from mmengine import Config
from mmengine.hooks import Hook
from mmengine.logging import HistoryBuffer
from mmengine.runner import Runner

from mmrazor.utils import (UnsafeCheckpointError, add_safe_checkpoint_types,
                           register_all_modules, safe_torch_load,
                           trust_checkpoint)
from mmrazor.utils.checkpoint import AtomicLocalBackend, atomic_write_bytes
from tiny_config import tiny_cfg

register_all_modules()


class _Snapshot(Hook):
    """Records optimizer state and progress at chosen moments."""

    def __init__(self):
        self.after_epoch = {}
        self.at_start = None

    def before_train(self, runner):
        self.at_start = dict(
            epoch=runner.epoch,
            iter=runner.iter,
            optim=copy.deepcopy(runner.optim_wrapper.state_dict()))

    def after_train_epoch(self, runner):
        # `runner.epoch` counts finished epochs only after this hook.
        self.after_epoch[runner.epoch + 1] = dict(
            iter=runner.iter,
            optim=copy.deepcopy(runner.optim_wrapper.state_dict()),
            weights={
                k: v.clone()
                for k, v in runner.model.state_dict().items()
            })


def _assert_same_state(a, b):
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            _assert_same_state(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _assert_same_state(x, y)
    else:
        assert a == b


def test_resume_continues_at_the_right_epoch_with_identical_state(tmp_path):
    full = _Snapshot()
    runner = Runner.from_cfg(
        Config(tiny_cfg(str(tmp_path / 'full'), max_epochs=2)))
    runner.register_hook(full)
    runner.train()

    ckpt = tmp_path / 'full' / 'epoch_1.pth'
    # The checkpoint holds mmengine's log buffers (numpy arrays and
    # references to HistoryBuffer methods) and still loads weights_only.
    raw = safe_torch_load(ckpt)
    assert isinstance(raw['message_hub']['log_scalars']['train/loss'],
                      HistoryBuffer)

    resumed = _Snapshot()
    cfg = tiny_cfg(str(tmp_path / 'resumed'), max_epochs=2)
    cfg.update(resume=True, load_from=str(ckpt))
    runner2 = Runner.from_cfg(Config(cfg))
    runner2.register_hook(resumed)
    runner2.train()

    assert resumed.at_start['epoch'] == 1
    assert resumed.at_start['iter'] == full.after_epoch[1]['iter']
    _assert_same_state(resumed.at_start['optim'], full.after_epoch[1]['optim'])
    # The resumed run ends exactly where the uninterrupted run ended.
    assert resumed.after_epoch[2]['iter'] == full.after_epoch[2]['iter']
    for k, v in full.after_epoch[2]['weights'].items():
        torch.testing.assert_close(resumed.after_epoch[2]['weights'][k], v)


class _Payload:
    """An arbitrary object whose unpickling would run a command."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}', ))


class _Harmless:

    def __init__(self):
        self.value = 3


def test_checkpoint_with_arbitrary_object_is_refused(tmp_path):
    marker = tmp_path / 'pwned'
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'meta': _Payload(str(marker))}, path)
    with pytest.raises(UnsafeCheckpointError) as info:
        safe_torch_load(path)
    text = str(info.value)
    assert 'system' in text  # names the offending global (posix.system)
    assert '--trust-checkpoint' in text and str(path) in text
    assert not marker.exists()

    # The same refusal through mmengine's own loader (used by load_from).
    from mmengine.runner import load_checkpoint
    with pytest.raises(UnsafeCheckpointError):
        load_checkpoint(torch.nn.Linear(1, 1), str(path))
    assert not marker.exists()


def test_restricted_getattr_refuses_anything_but_statistics(tmp_path):

    class _Sneaky:

        def __reduce__(self):
            return (getattr, (HistoryBuffer, '_set_default_statistics'))

    path = tmp_path / 'sneaky.pth'
    torch.save({'x': _Sneaky()}, path)
    with pytest.raises(UnsafeCheckpointError):
        safe_torch_load(path)


def test_trusted_file_and_allow_listed_type_load(tmp_path):
    path = tmp_path / 'harmless.pth'
    torch.save({'obj': _Harmless()}, path)
    with pytest.raises(UnsafeCheckpointError) as info:
        safe_torch_load(path)
    assert '_Harmless' in str(info.value)

    add_safe_checkpoint_types([_Harmless])
    assert safe_torch_load(path)['obj'].value == 3

    other = tmp_path / 'other.pth'
    torch.save({'obj': _Payload(str(tmp_path / 'm'))}, other)
    trust_checkpoint(other)  # the user vouches for this very file
    safe_torch_load(other)
    assert (tmp_path / 'm').exists()


def test_add_safe_types_refuses_dangerous_builtins():
    with pytest.raises(ValueError):
        add_safe_checkpoint_types([getattr])


def test_local_writes_are_atomic(tmp_path, monkeypatch):
    from mmengine.fileio import get_file_backend
    assert isinstance(get_file_backend(str(tmp_path / 'x.pth')),
                      AtomicLocalBackend)
    target = tmp_path / 'ckpt.pth'
    atomic_write_bytes(b'old', target)

    def broken_replace(src, dst):
        raise OSError('disk full')

    monkeypatch.setattr(os, 'replace', broken_replace)
    with pytest.raises(OSError):
        atomic_write_bytes(b'new', target)
    monkeypatch.undo()
    assert target.read_bytes() == b'old'
    assert os.listdir(tmp_path) == ['ckpt.pth']  # no temporary left behind


def test_atomic_writes_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_bytes(b'x', tmp_path / 'a.pth')
        plain = tmp_path / 'b.pth'
        plain.write_bytes(b'x')
    finally:
        os.umask(old)
    assert (tmp_path / 'a.pth').stat().st_mode & 0o777 == \
        plain.stat().st_mode & 0o777 == 0o644
