"""Every torchvision model of the acceptance list: a random subnet deploys,
the deployed model is physically smaller and equals the masked model."""
import random

import pytest
import torch
import torchvision
from torch import nn

from mmrazor.models.pruners import StructurePruner, stale_attributes

# model -> smallest input side that works well (kept small for CPU time)
SIDES = {
    'resnet18': 32,
    'mobilenet_v2': 32,
    'mobilenet_v3_small': 32,
    'shufflenet_v2_x0_5': 32,
    'regnet_x_400mf': 32,
    'efficientnet_b0': 32,
    'mnasnet0_5': 32,
    'squeezenet1_1': 64,
    'googlenet': 32,
    'alexnet': 64,
    'resnet50': 32,
    'resnext50_32x4d': 32,
    'densenet121': 32,
    'vgg11_bn': 32,
    'convnext_tiny': 32,
    'wide_resnet50_2': 32,
}
def build(name: str) -> nn.Module:
    """A torchvision model with random weights and random BN statistics."""
    torch.manual_seed(0)
    kwargs = dict(aux_logits=False, init_weights=True) \
        if name == 'googlenet' else {}
    model = getattr(torchvision.models, name)(weights=None, **kwargs)
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(n, generator=g) - 0.5)
    return model.eval()


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def check_model(name: str, seed: int = 0, side: int = 0) -> dict:
    """Prepare, sample, deploy; returns figures for the report."""
    side = side or SIDES[name]
    model = build(name)
    before = _params(model)
    x = torch.randn(2, 3, side, side)
    with torch.no_grad():
        dense = model(x)
    pruner = StructurePruner(except_start_keys=[])
    pruner.prepare_from_supernet(model, input_shape=(1, 3, side, side))
    assert pruner.channel_groups, pruner.report()
    random.seed(seed)
    pruner.set_subnet(pruner.sample_subnet())
    with torch.no_grad():
        masked = model(x)
    assert not torch.allclose(masked, dense), 'masks had no effect'
    pruner.deploy_subnet(model, pruner.export_subnet())
    with torch.no_grad():
        deployed = model(x)
    after = _params(model)
    assert after < before
    assert stale_attributes(model) == []
    assert not any(
        type(m).__module__.startswith('mmrazor') or m._forward_hooks
        or m._forward_pre_hooks for m in model.modules())
    torch.testing.assert_close(deployed, masked, atol=1e-3, rtol=1e-3)
    # outputs are not vanishingly small, so the comparison means something
    scale = masked.abs().max().item()
    diff = (deployed - masked).abs().max().item()
    assert scale > 1e-4 and diff <= 1e-4 * scale
    return dict(before=before, after=after, diff=diff, scale=scale,
                groups=len(pruner.dependency.prunable_groups),
                all_groups=len(pruner.dependency.groups))


@pytest.mark.parametrize('name', list(SIDES))
def test_torchvision_deploy_equals_masked(name):
    check_model(name)


@pytest.mark.e2e
@pytest.mark.parametrize('name', list(SIDES))
def test_torchvision_more_subnets_larger_inputs(name):
    """More random subnets, at 2x the input side (e2e suite)."""
    for seed in (1, 2):
        check_model(name, seed, SIDES[name] * 2)
