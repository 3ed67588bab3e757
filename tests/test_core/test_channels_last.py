"""ChannelsLastHook: CPU training in torch.channels_last, on by default."""
import copy
import os.path as osp
from types import SimpleNamespace
from typing import Dict, List

import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MMLogger
from torch import nn

from mmrazor.apis import build_runner
from mmrazor.core import ChannelsLastHook, add_channels_last_hook
from mmrazor.core.hooks import channels_last
from mmrazor.core.hooks.channels_last import (conv2d_to_channels_last,
                                              inputs_to_channels_last,
                                              skip_reason)
from mmrazor.registry import MODELS
from mmrazor.utils import register_all_modules

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
QUICKSTART = osp.join(REPO, 'configs', 'vanilla',
                      'resnet18-w16_fashion-mnist.py')
CL = torch.channels_last


def is_channels_last(t: torch.Tensor) -> bool:
    """Whether ``t`` is laid out NHWC and not also NCHW (C > 1)."""
    return t.is_contiguous(memory_format=CL) and not t.is_contiguous()


def fake_runner(model: nn.Module) -> SimpleNamespace:
    """What ``ChannelsLastHook.before_train`` reads of a runner."""
    return SimpleNamespace(
        model=model, logger=MMLogger.get_instance('test_channels_last'))


def quickstart_cfg(work_dir: str, **options) -> Config:
    """The quickstart config cut to one iteration and a tiny validation."""
    register_all_modules(init_default_scope=False)
    cfg = Config.fromfile(QUICKSTART)
    cfg.work_dir = work_dir
    cfg.train_dataloader.dataset.indices = 64
    cfg.val_dataloader.dataset.indices = 50
    cfg.val_dataloader.batch_size = 50
    cfg.train_cfg.max_epochs = 1
    cfg.param_scheduler = []
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=1)
    cfg.log_level = 'WARNING'
    cfg.merge_from_dict(options)
    return cfg


def make_batch(n: int, channels: int, size: int = 28) -> dict:
    """A batch as the dataloader gives it: uint8 images and labels."""
    from mmpretrain.structures import DataSample
    g = torch.Generator().manual_seed(0)
    return dict(
        inputs=[
            torch.randint(0, 256, (channels, size, size), generator=g,
                          dtype=torch.uint8) for _ in range(n)
        ],
        data_samples=[DataSample().set_gt_label(i % 10) for i in range(n)])


def quickstart_model(channels: int, dtype: torch.dtype) -> nn.Module:
    """The quickstart classifier with ``channels`` input channels."""
    register_all_modules(init_default_scope=False)
    cfg = Config.fromfile(QUICKSTART).model
    cfg.backbone.in_channels = channels
    cfg.data_preprocessor.mean = [72.94] * channels
    cfg.data_preprocessor.std = [90.02] * channels
    torch.manual_seed(0)
    return MODELS.build(cfg).train().to(dtype)


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer,
               batch: dict, dtype: torch.dtype,
               record: List[torch.Tensor]) -> Dict[str, torch.Tensor]:
    """One SGD step; returns the loss and gradients before the update."""
    data = model.data_preprocessor(batch, True)
    record.append(data['inputs'])
    data['inputs'] = data['inputs'].to(dtype)  # keeps the memory format
    loss, _ = model.parse_losses(model(**data, mode='loss'))
    optimizer.zero_grad()
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    optimizer.step()
    return dict(loss=loss.detach(), **grads)


@pytest.fixture
def avx512(monkeypatch):
    """Run as on an AVX-512 CPU, where the hook converts models."""
    monkeypatch.setattr(channels_last, 'cpu_capability', lambda: 'AVX512')


@pytest.mark.parametrize('channels', [1, 3])
def test_channels_last_step_equals_contiguous_step(channels, avx512):
    # float64: in float32 the two layouts sum in different orders, and about
    # one ReLU input in 1e5 lands on the other side of zero, which moves a
    # few gradients by a kink's worth (see the float32 test below).
    reference = quickstart_model(channels, torch.float64)
    model = copy.deepcopy(reference)
    ChannelsLastHook().before_train(fake_runner(model))

    conv = model.backbone.layer1[0].conv1
    assert is_channels_last(conv.weight)
    assert isinstance(conv.weight, nn.Parameter)
    assert not is_channels_last(reference.backbone.layer1[0].conv1.weight)
    features = []
    model.backbone.layer4.register_forward_hook(
        lambda m, i, o: features.append(o))

    optimizers = [
        torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
        for m in (reference, model)
    ]
    batch = make_batch(4, channels, size=16)  # float64 convs are slow
    for _ in range(2):  # the second step also uses the momentum buffers
        inputs: List[torch.Tensor] = []
        expected = train_step(reference, optimizers[0], batch, torch.float64,
                              inputs)
        got = train_step(model, optimizers[1], batch, torch.float64, inputs)
        assert expected.keys() == got.keys()
        for name in expected:
            torch.testing.assert_close(
                got[name], expected[name], rtol=1e-9, atol=1e-12, msg=name)
        assert is_channels_last(features[-1])  # 128 x 2 x 2 activations
        if channels > 1:
            assert not is_channels_last(inputs[0])
            assert is_channels_last(inputs[1])
    for (name, p), q in zip(model.named_parameters(),
                            reference.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-9, atol=1e-12, msg=name)


def test_float32_channels_last_step_is_close(avx512):
    reference = quickstart_model(1, torch.float32)
    model = copy.deepcopy(reference)
    ChannelsLastHook().before_train(fake_runner(model))
    optimizers = [
        torch.optim.SGD(m.parameters(), lr=0.1) for m in (reference, model)
    ]
    batch = make_batch(16, 1)
    expected = train_step(reference, optimizers[0], batch, torch.float32, [])
    got = train_step(model, optimizers[1], batch, torch.float32, [])
    torch.testing.assert_close(
        got.pop('loss'), expected.pop('loss'), rtol=1e-5, atol=0)
    # Measured: at most 6e-3 (a ReLU input or two across zero), 1e-5 else.
    for name in expected:
        error = (got[name] - expected[name]).norm() / expected[name].norm()
        assert error < 5e-2, (name, error)


def test_inputs_hook_changes_only_4d_float_inputs():
    x = torch.randn(2, 3, 5, 5)
    out = inputs_to_channels_last(nn.Identity(), (), dict(inputs=x))
    assert is_channels_last(out['inputs'])
    torch.testing.assert_close(out['inputs'], x, rtol=0, atol=0)
    for inputs in (torch.randn(2, 3, 4, 5, 5), torch.randn(2, 3),
                   torch.zeros(2, 3, 5, 5, dtype=torch.uint8), [x]):
        out = inputs_to_channels_last(nn.Identity(), (), dict(inputs=inputs))
        assert out['inputs'] is inputs
    assert inputs_to_channels_last(nn.Identity(), (), x) is x


def test_only_conv2d_weights_change():
    model = nn.Sequential(
        nn.Conv3d(2, 4, 3),  # (3, 4, 3, 5, 5)
        nn.Flatten(0, 1),  # (12, 3, 5, 5)
        nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(4, 2))
    x = torch.randn(3, 2, 5, 7, 7)
    before = model(x)
    assert conv2d_to_channels_last(model) == 1
    assert is_channels_last(model[2].weight)
    assert model[0].weight.is_contiguous()  # 5-D, unchanged
    torch.testing.assert_close(model(x), before, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('capability', ['AVX2', 'DEFAULT', 'SVE256'])
def test_cpus_without_avx512_are_left_as_they_are(monkeypatch, capability):
    monkeypatch.setattr(channels_last, 'cpu_capability', lambda: capability)
    reason = skip_reason(nn.Conv2d(3, 4, 3))
    assert capability in reason and 'AVX-512' in reason
    model = nn.Conv2d(3, 4, 3)
    ChannelsLastHook().before_train(fake_runner(model))
    assert model.weight.is_contiguous()


def test_models_left_as_they_are(avx512):
    mlp = nn.Sequential(nn.Linear(4, 4))
    assert 'no nn.Conv2d' in skip_reason(mlp)
    assert 'no parameters' in skip_reason(nn.Sequential(nn.ReLU()))
    on_meta = nn.Conv2d(3, 4, 3).to('meta')  # stands for a GPU model
    assert 'meta' in skip_reason(on_meta)
    wrapped = nn.DataParallel(nn.Conv2d(3, 4, 3))
    assert 'wrapped' in skip_reason(wrapped)
    assert skip_reason(nn.Conv2d(3, 4, 3)) is None
    # mmcv's compiled deformable convs need NCHW (stands for mmcv.ops's)
    deform = type('DeformConv2d', (nn.Module, ),
                  dict(__module__='mmcv.ops.deform_conv'))
    with_dcn = nn.Sequential(nn.Conv2d(3, 4, 3), deform())
    assert 'DeformConv2d' in skip_reason(with_dcn)

    hook = ChannelsLastHook()
    hook.before_train(fake_runner(wrapped))
    assert wrapped.module.weight.is_contiguous()
    assert hook.handle is None
    hook.before_train(fake_runner(nn.Conv2d(3, 4, 3)))
    assert hook.handle is None  # a plain Conv2d has no data_preprocessor


def test_add_hook_once_and_not_when_turned_off():
    cfg = Config(dict(custom_hooks=[dict(type='DropPathProbHook',
                                         max_prob=0.1)]))
    add_channels_last_hook(cfg)
    assert [h['type'] for h in cfg.custom_hooks] == [
        'DropPathProbHook', 'mmrazor.ChannelsLastHook'
    ]
    add_channels_last_hook(cfg)
    assert len(cfg.custom_hooks) == 2
    explicit = Config(dict(custom_hooks=[dict(type='ChannelsLastHook')]))
    add_channels_last_hook(explicit)
    assert len(explicit.custom_hooks) == 1
    off = Config(dict(cpu_channels_last=False))
    add_channels_last_hook(off)
    assert 'custom_hooks' not in off


def test_quickstart_trains_channels_last_by_default(tmp_path, avx512):
    runner = build_runner(quickstart_cfg(str(tmp_path)))
    assert sum(isinstance(h, ChannelsLastHook) for h in runner.hooks) == 1
    runner.train()
    model = runner.model
    assert next(model.parameters()).device.type == 'cpu'
    assert is_channels_last(model.backbone.layer1[0].conv1.weight)
    assert inputs_to_channels_last in (
        model.data_preprocessor._forward_hooks.values())


def test_quickstart_channels_last_turned_off_by_config(tmp_path):
    runner = build_runner(
        quickstart_cfg(str(tmp_path), cpu_channels_last=False))
    assert not any(isinstance(h, ChannelsLastHook) for h in runner.hooks)
    runner.train()
    model = runner.model
    assert model.backbone.layer1[0].conv1.weight.is_contiguous()
    assert not model.data_preprocessor._forward_hooks
