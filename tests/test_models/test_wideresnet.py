"""Tests of the ``WideResNet`` backbone (Zagoruyko & Komodakis, BMVC 2016)."""
import os.path as osp

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmrazor.apis.config_compat import load_config
from mmrazor.registry import MODELS

WRN_1X_CONFIGS = '/work/shared/reference/mmrazor-1.x/configs/vanilla/' \
    'mmcls/wide-resnet'


def build_wrn(**kwargs) -> nn.Module:
    return MODELS.build(dict(type='WideResNet', **kwargs))


def count_params(module: nn.Module) -> int:
    return sum(param.numel() for param in module.parameters())


@pytest.mark.parametrize('depth, width, paper_millions', [(28, 10, 36.5),
                                                          (16, 8, 11.0),
                                                          (40, 4, 8.9)])
def test_parameter_count_matches_paper(depth, width, paper_millions):
    # Shapes only: build on the meta device, no memory is filled.
    with torch.device('meta'):
        backbone = build_wrn(depth=depth, widen_factor=width)
        # A 10-class linear head on the 64k-channel pooled features.
        head = nn.Linear(64 * width, 10)
    total = count_params(backbone) + count_params(head)
    assert abs(total / 1e6 - paper_millions) / paper_millions < 0.01


def test_output_shapes_and_tuple():
    backbone = build_wrn(depth=10, widen_factor=2)
    backbone.eval()
    outs = backbone(torch.randn(2, 3, 32, 32))
    assert isinstance(outs, tuple) and len(outs) == 1
    assert outs[0].shape == (2, 128, 8, 8)
    assert backbone.feat_dim == 128

    backbone = build_wrn(depth=10, widen_factor=1, out_indices=(0, 1, 2))
    outs = backbone(torch.randn(1, 3, 16, 16))
    assert [tuple(out.shape) for out in outs] == [(1, 16, 16, 16),
                                                  (1, 32, 8, 8),
                                                  (1, 64, 4, 4)]
    # The last output has gone through the final BN and ReLU.
    assert outs[2].min() >= 0


def _bn(x: torch.Tensor, bn: nn.BatchNorm2d) -> torch.Tensor:
    """Eval-mode batch norm written out."""
    shape = (1, -1, 1, 1)
    return (x - bn.running_mean.view(shape)) / torch.sqrt(
        bn.running_var.view(shape) + bn.eps) * bn.weight.view(
            shape) + bn.bias.view(shape)


def _reference_block(x: torch.Tensor, block: nn.Module,
                     stride: int) -> torch.Tensor:
    """The paper's pre-activation basic block, with plain torch ops."""
    activated = torch.clamp(_bn(x, block.bn1), min=0)
    out = F.conv2d(activated, block.conv1.weight, stride=stride, padding=1)
    out = torch.clamp(_bn(out, block.bn2), min=0)
    out = F.conv2d(out, block.conv2.weight, stride=1, padding=1)
    if x.shape[1] != out.shape[1] or stride != 1:
        shortcut = F.conv2d(activated, block.downsample.weight, stride=stride)
    else:
        shortcut = x
    return out + shortcut


def test_forward_matches_hand_written_network():
    torch.manual_seed(0)
    backbone = build_wrn(depth=16, widen_factor=1)
    # Non-trivial BN statistics, so every BN matters.
    for module in backbone.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.5, 0.5)
    backbone.eval()
    x = torch.randn(2, 3, 8, 8)

    expected = F.conv2d(x, backbone.conv1.weight, padding=1)
    for stage, stride in zip((backbone.layer1, backbone.layer2,
                              backbone.layer3), (1, 2, 2)):
        assert len(stage) == 2  # (16 - 4) / 6 blocks
        for j, block in enumerate(stage):
            expected = _reference_block(expected, block,
                                        stride if j == 0 else 1)
    expected = torch.clamp(_bn(expected, backbone.bn1), min=0)

    assert torch.allclose(backbone(x)[0], expected, atol=1e-5)


def test_ofd_module_paths_and_channels():
    # Paths recorded by the 1.x OFD config, with the connector channels it
    # uses: student WRN-16-2 (32, 64, 128), teacher WRN-28-4 (64, 128, 256).
    paths = ('layer2.0.bn1', 'layer3.0.bn1', 'bn1')
    for (depth, width), channels in (((16, 2), (32, 64, 128)),
                                     ((28, 4), (64, 128, 256))):
        backbone = build_wrn(depth=depth, widen_factor=width)
        modules = dict(backbone.named_modules())
        for path, num_channels in zip(paths, channels):
            assert isinstance(modules[path], nn.BatchNorm2d)
            assert modules[path].num_features == num_channels


def test_recorded_bn1_output_stays_pre_activation():
    backbone = build_wrn(depth=10, widen_factor=1)
    recorded = {}
    backbone.layer2[0].bn1.register_forward_hook(
        lambda module, inputs, output: recorded.setdefault('bn1', output))
    backbone.train()
    backbone(torch.randn(2, 3, 8, 8))
    # Train-mode BN output has zero mean per channel, so it has negatives
    # unless a later in-place ReLU clamped it.
    assert recorded['bn1'].min() < 0


def test_drop_rate_only_in_training():
    torch.manual_seed(0)
    backbone = build_wrn(depth=10, widen_factor=1, drop_rate=0.5)
    x = torch.randn(2, 3, 8, 8)
    backbone.eval()
    assert torch.equal(backbone(x)[0], backbone(x)[0])
    backbone.train()
    assert not torch.equal(backbone(x)[0], backbone(x)[0])


def test_frozen_stages_and_norm_eval():
    backbone = build_wrn(depth=10, widen_factor=1, frozen_stages=1)
    backbone.train()
    assert not backbone.conv1.weight.requires_grad
    assert all(not p.requires_grad for p in backbone.layer1.parameters())
    assert not backbone.layer1[0].bn1.training
    assert all(p.requires_grad for p in backbone.layer2.parameters())
    assert backbone.layer2[0].bn1.training

    backbone = build_wrn(depth=10, widen_factor=1, norm_eval=True)
    backbone.train()
    assert not backbone.bn1.training and not backbone.layer3[0].bn2.training
    assert backbone.layer3[0].conv1.training


def test_zero_init_residual_makes_blocks_identities():
    backbone = build_wrn(depth=10, widen_factor=1, zero_init_residual=True)
    backbone.init_weights()
    block = backbone.layer1[0]  # 16 -> 16 channels, stride 1: no shortcut
    assert block.downsample is None
    x = torch.randn(1, 16, 4, 4)
    block.eval()
    assert torch.equal(block(x), x)


@pytest.mark.parametrize('kwargs, message', [
    (dict(depth=18), 'depth'),
    (dict(depth=16, widen_factor=0), 'widen_factor'),
    (dict(depth=16, num_stages=4), 'num_stages'),
    (dict(depth=16, out_indices=(3, )), 'out_indices'),
    (dict(depth=16, drop_rate=1.5), 'drop_rate'),
    (dict(depth=16, frozen_stages=5), 'frozen_stages'),
])
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_wrn(**kwargs)


def test_bad_input_shape_is_named():
    backbone = build_wrn(depth=10, widen_factor=1)
    with pytest.raises(ValueError, match=r'\(3, 8, 8\)'):
        backbone(torch.randn(3, 8, 8))


@pytest.mark.skipif(
    not osp.isdir(WRN_1X_CONFIGS), reason='1.x reference configs absent')
def test_1x_vanilla_config_builds_and_runs():
    cfg = load_config(osp.join(WRN_1X_CONFIGS, 'wrn16-w2_b16x8_cifar10.py'))
    model = MODELS.build(cfg.model)
    assert type(model.backbone).__name__ == 'WideResNet'
    model.eval()
    with torch.no_grad():
        logits = model(torch.randn(2, 3, 32, 32))
    assert logits.shape == (2, 10)


@pytest.mark.skipif(
    not osp.isdir(WRN_1X_CONFIGS), reason='1.x reference configs absent')
@pytest.mark.parametrize('name, depth, width', [
    ('wrn22-w4_b16x8_cifar10.py', 22, 4),
    ('wrn28-w4_b16x8_cifar10.py', 28, 4),
    ('wrn40-w2_b16x8_cifar10.py', 40, 2),
])
def test_other_1x_vanilla_configs_match_their_heads(name, depth, width):
    cfg = load_config(osp.join(WRN_1X_CONFIGS, name))
    backbone_cfg = dict(cfg.model.backbone)
    assert (backbone_cfg['depth'], backbone_cfg['widen_factor']) == (depth,
                                                                     width)
    backbone = MODELS.build(backbone_cfg)
    assert backbone.feat_dim == cfg.model.head.in_channels == 64 * width
