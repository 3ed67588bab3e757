"""Clear errors: truncated checkpoints and badly typed config values."""
import argparse
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine import Config
from mmengine.runner import load_checkpoint

from mmrazor.apis.runner import (ConfigValueError, check_config_types,
                                 config_from_args)
from mmrazor.registry import MODELS
from mmrazor.utils import (IncompleteCheckpointError, UnsafeCheckpointError,
                           register_all_modules, safe_torch_load,
                           trust_checkpoint)
from tiny_config import eval_loader, tiny_cfg

register_all_modules()
REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
ENV = {'CUDA_VISIBLE_DEVICES': '', 'PATH': '/usr/bin:/bin'}


def _truncated_checkpoint(tmp_path, name='epoch_3.pth'):
    """A real checkpoint of the tiny model, cut to half its bytes."""
    model = MODELS.build(Config(tiny_cfg(str(tmp_path))).model)
    path = tmp_path / name
    torch.save(dict(meta=dict(epoch=3), state_dict=model.state_dict()), path)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    return path


def _tool(*argv):
    return subprocess.run([sys.executable, *argv],
                          cwd=REPO,
                          capture_output=True,
                          text=True,
                          env=ENV,
                          timeout=300)


def _last_line(text):
    return [line for line in text.splitlines() if line.strip()][-1]


def test_truncated_checkpoint_names_the_file(tmp_path):
    path = _truncated_checkpoint(tmp_path)
    with pytest.raises(IncompleteCheckpointError) as info:
        safe_torch_load(path)
    text = str(info.value)
    assert repr(str(path)) in text
    assert 'incomplete or corrupt' in text
    assert isinstance(info.value, RuntimeError)
    assert info.value.__cause__ is not None  # torch's error stays chained

    # The same through mmengine's loader (load_from, resume, tools/test.py).
    with pytest.raises(IncompleteCheckpointError, match='incomplete'):
        load_checkpoint(torch.nn.Linear(1, 1), str(path))

    # A trusted file is loaded with weights_only=False: same error.
    trust_checkpoint(path)
    with pytest.raises(IncompleteCheckpointError, match='incomplete'):
        safe_torch_load(path)


@pytest.mark.parametrize('content', [b'', b'PK\x03\x04', b'not a model\n'])
def test_empty_and_foreign_files_are_reported_as_corrupt(tmp_path, content):
    path = tmp_path / 'x.pth'
    path.write_bytes(content)
    with pytest.raises(IncompleteCheckpointError, match='x.pth'):
        safe_torch_load(path)


class _Object:
    """A class no allow list knows."""


def test_whole_files_are_not_reported_as_corrupt(tmp_path):
    whole = tmp_path / 'whole.pth'
    torch.save({'w': torch.ones(3)}, whole)
    assert torch.equal(safe_torch_load(whole)['w'], torch.ones(3))

    unsafe = tmp_path / 'unsafe.pth'
    torch.save({'obj': _Object()}, unsafe)
    with pytest.raises(UnsafeCheckpointError) as info:
        safe_torch_load(unsafe)
    assert not isinstance(info.value, IncompleteCheckpointError)


def _tiny_config_file(tmp_path, **extra):
    cfg_path = tmp_path / 'tiny.py'
    Config(tiny_cfg(str(tmp_path / 'work'), max_epochs=1,
                    **extra)).dump(str(cfg_path))
    return cfg_path


def test_train_resume_from_truncated_checkpoint_says_so(tmp_path):
    path = _truncated_checkpoint(tmp_path)
    train = _tool('tools/train.py', str(_tiny_config_file(tmp_path)),
                  '--resume', str(path))
    assert train.returncode != 0
    assert f'checkpoint {str(path)!r} is incomplete or corrupt' in \
        train.stderr, train.stderr[-2000:]
    last = _last_line(train.stderr)
    assert last.startswith('mmrazor.utils.checkpoint.'
                           'IncompleteCheckpointError'), last
    assert not last.startswith('RuntimeError: PytorchStreamReader')


def test_test_tool_with_truncated_checkpoint_says_so(tmp_path):
    path = _truncated_checkpoint(tmp_path)
    cfg_path = _tiny_config_file(
        tmp_path, test_dataloader=eval_loader(64), test_cfg=dict(),
        test_evaluator=dict(type='Accuracy', topk=(1, )))
    test = _tool('tools/test.py', str(cfg_path), str(path))
    assert test.returncode != 0
    assert 'IncompleteCheckpointError' in _last_line(test.stderr), \
        test.stderr[-2000:]
    assert str(path) in _last_line(test.stderr)


def test_train_rejects_a_string_learning_rate(tmp_path):
    train = _tool('tools/train.py', str(_tiny_config_file(tmp_path)),
                  '--cfg-options', 'optim_wrapper.optimizer.lr=abc')
    assert train.returncode != 0
    assert ("config key optim_wrapper.optimizer.lr must be a number, got "
            "'abc' (str)") in train.stderr, train.stderr[-2000:]
    assert 'TypeError' not in train.stderr
    assert not (tmp_path / 'work').exists()  # nothing was built


def test_config_from_args_checks_merged_options(tmp_path, monkeypatch):
    monkeypatch.setenv('LOCAL_RANK', '0')
    args = argparse.Namespace(
        config=str(_tiny_config_file(tmp_path)), work_dir=None,
        launcher='none', local_rank=0,
        cfg_options={'train_dataloader.batch_size': '32'})
    with pytest.raises(ConfigValueError,
                       match=r"train_dataloader\.batch_size must be an "
                       r"integer, got '32' \(str\)"):
        config_from_args(args)
    args.cfg_options = {'train_dataloader.batch_size': 16}
    assert config_from_args(args).train_dataloader.batch_size == 16


def test_check_config_types_accepts_a_good_config():
    cfg = Config(tiny_cfg('work', val_dataloader=[dict(batch_size=8)]))
    cfg.randomness.seed = None
    cfg.optim_wrapper.clip_grad = dict(max_norm=5)  # an int is a number
    check_config_types(cfg)
    check_config_types(tiny_cfg('work'))  # a plain dict too


@pytest.mark.parametrize('key, value, message', [
    ('optim_wrapper.optimizer.lr', 'abc',
     "config key optim_wrapper.optimizer.lr must be a number, got 'abc' "
     '(str)'),
    ('optim_wrapper.optimizer.momentum', True,
     'config key optim_wrapper.optimizer.momentum must be a number, got '
     'True (bool)'),
    ('train_cfg.max_epochs', 2.0,
     'config key train_cfg.max_epochs must be an integer, got 2.0 (float)'),
    ('train_cfg.max_epochs', False,
     'config key train_cfg.max_epochs must be an integer, got False (bool)'),
    ('randomness.seed', '0',
     "config key randomness.seed must be an integer or None, got '0' (str)"),
])
def test_check_config_types_names_key_value_and_type(key, value, message):
    cfg = Config(tiny_cfg('work'))
    cfg.merge_from_dict({key: value})
    with pytest.raises(ConfigValueError) as info:
        check_config_types(cfg)
    assert str(info.value) == message
    assert isinstance(info.value, ValueError)


def test_check_config_types_looks_into_lists_and_separate_wrappers():
    cfg = Config(
        tiny_cfg(
            'work',
            val_dataloader=[dict(batch_size=8),
                            dict(batch_size=8, num_workers='2')]))
    with pytest.raises(ConfigValueError,
                       match=r"val_dataloader\[1\]\.num_workers must be an "
                       r"integer, got '2'"):
        check_config_types(cfg)

    cfg = Config(
        tiny_cfg(
            'work',
            optim_wrapper=dict(
                architecture=dict(optimizer=dict(type='SGD', lr=0.1)),
                mutator=dict(optimizer=dict(type='Adam', lr=[3e-4])))))
    with pytest.raises(ConfigValueError,
                       match=r'optim_wrapper\.mutator\.optimizer\.lr must be '
                       r'a number, got \[0\.0003\] \(list\)'):
        check_config_types(cfg)
