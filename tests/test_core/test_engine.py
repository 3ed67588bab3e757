"""Engine pieces: build_optimizers, set_lr, hooks, multi-loader training."""
import os

import pytest
import torch
import yaml
from mmengine.model import BaseModel
from mmengine.optim import OptimWrapper, OptimWrapperDict
from torch import nn
from torch.utils.data import Dataset

from mmrazor.core import (DropPathProbHook, MultiLoaderEpochBasedRunner,
                          MultiLoaderIterBasedRunner, SearchSubnetHook,
                          build_optimizers, set_lr)


class _TwoPart(nn.Module):

    def __init__(self):
        super().__init__()
        self.architecture = nn.Linear(3, 3)
        self.mutator = nn.Linear(2, 1, bias=False)


def test_build_optimizers_one_or_per_submodule():
    model = _TwoPart()
    single = build_optimizers(model, dict(type='SGD', lr=0.1))
    assert isinstance(single, torch.optim.SGD)
    assert sum(p.numel() for g in single.param_groups
               for p in g['params']) == 3 * 3 + 3 + 2
    many = build_optimizers(
        model,
        dict(
            architecture=dict(type='SGD', lr=0.1, momentum=0.9),
            mutator=dict(type='Adam', lr=3e-4)))
    assert isinstance(many['architecture'], torch.optim.SGD)
    assert isinstance(many['mutator'], torch.optim.Adam)
    assert many['mutator'].param_groups[0]['params'][0] is \
        model.mutator.weight
    with pytest.raises(KeyError, match="'arch'"):
        build_optimizers(model, dict(arch=dict(type='SGD', lr=0.1)))


def test_set_lr_sets_and_freezes():

    class R:
        pass

    model = _TwoPart()
    opts = build_optimizers(
        model,
        dict(architecture=dict(type='SGD', lr=0.1),
             mutator=dict(type='SGD', lr=0.2)))
    runner = R()
    runner.optim_wrapper = OptimWrapperDict(
        **{k: OptimWrapper(v) for k, v in opts.items()})
    set_lr(runner, {'architecture': [0.05]}, freeze_optimizers=['mutator'])
    assert opts['architecture'].param_groups[0]['lr'] == 0.05
    assert opts['mutator'].param_groups[0]['lr'] == 0.0
    with pytest.raises(KeyError, match='nope'):
        set_lr(runner, {'nope': [1.0]})
    with pytest.raises(TypeError):
        set_lr(runner, [0.1])


class _Counting(Dataset):

    def __init__(self, n, offset):
        self.n, self.offset = n, offset

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return torch.tensor([float(i + self.offset)])


class _TwoLoaderModel(BaseModel):
    """Records what each training step receives."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))
        self.steps = []
        self.drop_path_prob = 0.0

    def forward(self, *args, **kwargs):
        raise NotImplementedError

    def train_step(self, data, optim_wrapper):
        self.steps.append([batch.clone() for batch in data])
        loss = (self.w * data[0].mean() - data[1].mean())**2
        optim_wrapper.update_params(loss)
        return {'loss': loss.detach()}

    def search_subnet(self):
        return {'cell.0': {'chosen': ['sep_conv_3x3', int(len(self.steps))]}}


def _loader(n, offset):
    return dict(
        dataset=_Counting(n, offset),
        batch_size=2,
        sampler=dict(type='DefaultSampler', shuffle=True),
        collate_fn=dict(type='default_collate'))


def test_multi_loader_epoch_runner_pairs_batches(tmp_path):
    model = _TwoLoaderModel()
    runner = MultiLoaderEpochBasedRunner(
        model=model,
        work_dir=str(tmp_path),
        train_dataloader=[_loader(8, 0), _loader(6, 100)],
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        train_cfg=dict(by_epoch=True, max_epochs=2),
        custom_hooks=[
            dict(type='mmrazor.DropPathProbHook', max_prob=0.4),
            dict(type='mmrazor.SearchSubnetHook', max_keep_ckpts=1)
        ],
        default_hooks=dict(
            sampler_seed=dict(type='mmrazor.DistSamplerSeedHook')),
        default_scope='mmrazor')
    runner.train()
    # The first loader sets the epoch length: 8 / 2 = 4 steps per epoch.
    assert len(model.steps) == 8
    for first, second in model.steps:
        assert first.max() < 100 <= second.min()
    # Each epoch covers the first loader exactly once.
    seen = torch.cat([s[0] for s in model.steps[:4]]).flatten().tolist()
    assert sorted(seen) == list(range(8))
    # Drop-path probability rose linearly: 0.4 * 1 / 2 before epoch 2.
    assert model.drop_path_prob == pytest.approx(0.2)
    files = sorted(os.listdir(tmp_path / 'subnets'))
    assert files == ['epoch_2.yaml', 'latest.yaml']  # max_keep_ckpts=1
    assert yaml.safe_load(open(tmp_path / 'subnets' / 'epoch_2.yaml')) == \
        {'cell.0': {'chosen': ['sep_conv_3x3', 8]}}
    subnet = runner.search_subnet(out_dir=str(tmp_path / 'manual'))
    assert os.readlink(tmp_path / 'manual' / 'latest.yaml') == 'epoch_2.yaml'
    assert subnet['cell.0']['chosen'][1] == 8


def test_multi_loader_iter_runner(tmp_path):
    model = _TwoLoaderModel()
    runner = MultiLoaderIterBasedRunner(
        model=model,
        work_dir=str(tmp_path),
        train_dataloader=[_loader(4, 0), _loader(6, 100)],
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        train_cfg=dict(by_epoch=False, max_iters=5),
        default_scope='mmrazor')
    runner.train()
    assert len(model.steps) == 5
    assert all(s[1].min() >= 100 for s in model.steps)


def test_drop_path_hook_rejects_bad_probability():
    with pytest.raises(ValueError, match='1.5'):
        DropPathProbHook(max_prob=1.5)
    assert SearchSubnetHook(interval=-1).interval == 1
