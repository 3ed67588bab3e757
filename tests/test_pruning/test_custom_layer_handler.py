"""A layer handler registered from a user's file (``user_layers.py``) makes
a model with the user's own layer prunable end to end; without one, the
analysis blocks the layer's channels and says why."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mmrazor.models.pruners import StructurePruner, stale_attributes
from mmrazor.models.task_modules import (ChannelAnalyzer, ResourceEstimator,
                                         deploy_pruned, handler_of)
from mmrazor.structures import SubnetError
from .toy_models import n_params
from .user_layers import ScaledLinear, ScaledLinearHandler

SHAPE = (1, 3, 4, 4)


class TokenNet(nn.Module):
    """conv -> BN -> tokens ``(N, H*W, C)`` -> the user's layer -> mean over
    tokens -> linear head.

    Args:
        layer (type): The class of the middle layer.
    """

    def __init__(self, layer: type = ScaledLinear) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.mix = layer(8, 12)
        self.head = nn.Linear(12, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn(self.conv(x)))
        tokens = x.flatten(2).transpose(1, 2)
        return self.head(F.relu(self.mix(tokens)).mean(1))


def test_user_handler_is_in_the_table():
    assert isinstance(handler_of(ScaledLinear(2, 3)), ScaledLinearHandler)


def test_user_layer_pruned_end_to_end():
    torch.manual_seed(0)
    model = TokenNet().eval()
    pruner = StructurePruner(except_start_keys=[])
    pruner.prepare_from_supernet(model, input_shape=SHAPE)
    assert set(pruner.channel_groups) == {'conv', 'mix'}
    rec = pruner.dependency.layers['mix']
    assert rec.kind == 'scaled_linear' and rec.positions == 16  # tokens
    pruner.set_subnet({'conv': 5, 'mix': 7})
    estimate = pruner.estimate_subnet()
    x = torch.randn(2, *SHAPE[1:])
    with torch.no_grad():
        masked = model(x)
    pruner.deploy_subnet(model)
    with torch.no_grad():
        deployed = model(x)
    torch.testing.assert_close(deployed, masked, atol=1e-5, rtol=1e-5)
    assert tuple(model.mix.weight.shape) == (7, 5)
    assert tuple(model.mix.scale.shape) == (7, )
    expected = (
        (3 * 5 * 9 + 5) + 2 * 5 +  # conv, bn
        (5 * 7 + 7) +  # mix: weight, scale
        (7 * 4 + 4))  # head
    assert n_params(model) == expected
    real = ResourceEstimator(input_shape=SHAPE).estimate(model)
    assert estimate == dict(flops=real['flops'], params=expected)
    assert estimate['flops'] == 16 * (3 * 5 * 9 + 5 * 7) + 7 * 4
    assert stale_attributes(model) == []


def test_user_layer_through_the_deploy_artefact(tmp_path):
    torch.manual_seed(0)
    model = TokenNet()
    fresh = TokenNet()
    report = deploy_pruned(
        model, {'conv': 6, 'mix': 3},
        str(tmp_path),
        SHAPE,
        model_spec={'python': 'TokenNet'},
        build_fresh=lambda: fresh,
        except_start_keys=[])
    assert report.ok, report.problems
    assert report.params_after == (3 * 6 * 9 + 6) + 2 * 6 + (6 * 3 + 3) + (
        3 * 4 + 4)
    assert tuple(fresh.mix.weight.shape) == (3, 6)


class UnhandledScaledLinear(nn.Module):
    """The same layer as :class:`ScaledLinear`, with no handler."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features))
        self.scale = nn.Parameter(torch.rand(out_features) + 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.weight.t() * self.scale


def test_without_a_handler_the_layer_is_blocked_and_named():
    model = TokenNet(UnhandledScaledLinear)
    dep = ChannelAnalyzer(input_shape=SHAPE).analyze(model)
    assert handler_of(model.mix) is None and 'mix' not in dep.layers
    group = dep.groups['conv']
    assert not group.prunable
    reason = '; '.join(group.blocked_by)
    assert '`matmul`' in reason and 'in mix' in reason
    assert 'UnhandledScaledLinear holds weights but has no layer handler' \
        in reason
    assert 'register_layer_handler' in dep.report(only_blocked=True)
    # nothing of the layer can be pruned, so nothing is mis-pruned
    assert not dep.prunable_groups
    pruner = StructurePruner(except_start_keys=[])
    pruner.prepare_from_supernet(model, input_shape=SHAPE)
    with pytest.raises(SubnetError, match='cannot be pruned'):
        pruner.set_subnet({'conv': 4})
