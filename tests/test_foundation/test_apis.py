"""High-level APIs: seeding, train_model, CPU mixed precision, tools."""
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine import Config
from mmengine.optim import OptimWrapper

from mmrazor.apis import enable_amp, set_random_seed
from mmrazor.apis.mmcls import train_model
from mmrazor.core import CPUAmpOptimWrapper
from mmrazor.registry import DATASETS, MODELS
from mmrazor.utils import register_all_modules, safe_torch_load
from tiny_config import eval_loader, tiny_cfg

register_all_modules()
REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def test_set_random_seed_reproduces_draws():
    assert set_random_seed(123) == 123
    a = (torch.rand(3), torch.randint(0, 100, (3, )))
    set_random_seed(123)
    b = (torch.rand(3), torch.randint(0, 100, (3, )))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_train_model_trains_and_stores_meta(tmp_path):
    cfg = Config(tiny_cfg(str(tmp_path), max_epochs=1))
    model = MODELS.build(cfg.model)
    before = model.backbone.features[0].weight.detach().clone()
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    runner = train_model(
        model, [dataset], cfg, device='cuda', meta=dict(note='hello'))
    assert runner.epoch == 1
    assert not torch.equal(before, model.backbone.features[0].weight)
    ckpt = safe_torch_load(tmp_path / 'epoch_1.pth')
    assert ckpt['meta']['note'] == 'hello'


def test_cpu_amp_wrapper_runs_forward_in_bfloat16():
    cfg = Config(dict(optim_wrapper=dict(optimizer=dict(type='SGD', lr=1))))
    enable_amp(cfg)
    if torch.cuda.is_available():
        assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
        return
    assert cfg.optim_wrapper.type == 'mmrazor.CPUAmpOptimWrapper'
    layer = torch.nn.Linear(4, 4)
    wrapper = CPUAmpOptimWrapper(
        optimizer=torch.optim.SGD(layer.parameters(), lr=0.1))
    with wrapper.optim_context(layer):
        assert layer(torch.rand(2, 4)).dtype == torch.bfloat16
    assert layer(torch.rand(2, 4)).dtype == torch.float32
    with pytest.raises(ValueError, match='int8'):
        CPUAmpOptimWrapper(
            dtype='int8', optimizer=torch.optim.SGD(layer.parameters(), 1))


def test_enable_amp_rejects_custom_wrappers():
    cfg = Config(dict(optim_wrapper=dict(type='MyWrapper', optimizer={})))
    with pytest.raises(ValueError, match='MyWrapper'):
        enable_amp(cfg)
    assert issubclass(CPUAmpOptimWrapper, OptimWrapper)


def test_train_and_test_tools_end_to_end(tmp_path):
    cfg_path = tmp_path / 'tiny.py'
    cfg = Config(
        tiny_cfg(
            str(tmp_path / 'work'),
            max_epochs=1,
            val_dataloader=eval_loader(128),
            val_evaluator=dict(type='Accuracy', topk=(1, )),
            val_cfg=dict()))
    cfg.test_dataloader = cfg.val_dataloader
    cfg.test_evaluator = cfg.val_evaluator
    cfg.test_cfg = dict()
    cfg.dump(str(cfg_path))
    env = {'CUDA_VISIBLE_DEVICES': '', 'PATH': '/usr/bin:/bin'}
    train = subprocess.run(
        [sys.executable, 'tools/train.py', str(cfg_path), '--amp'],
        cwd=REPO, capture_output=True, text=True, env=env, timeout=300)
    assert train.returncode == 0, train.stderr[-2000:]
    ckpt = tmp_path / 'work' / 'epoch_1.pth'
    assert ckpt.exists()
    test = subprocess.run(
        [sys.executable, 'tools/test.py', str(cfg_path), str(ckpt)],
        cwd=REPO, capture_output=True, text=True, env=env, timeout=300)
    assert test.returncode == 0, test.stderr[-2000:]
    assert 'accuracy/top1' in test.stdout + test.stderr
