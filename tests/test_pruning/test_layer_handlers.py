"""The table of layer handlers: transposed convolutions (a kind added in
one file), ``_channel_leaf_kind`` and registration rules."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mmrazor.models.pruners import StructurePruner, stale_attributes
from mmrazor.models.task_modules import (ChannelAnalyzer, LinearHandler,
                                         NormHandler, ResourceEstimator,
                                         deploy_pruned, handler_of,
                                         register_layer_handler,
                                         structure_of)
from .toy_models import n_params, randomize_norms

SHAPE = (1, 3, 8, 8)


class UpNet(nn.Module):
    """A strided conv, then two transposed convs (the second grouped, and
    called with ``output_size``), then a 1x1 conv."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.up1 = nn.ConvTranspose2d(8, 6, 4, stride=2, padding=1)
        self.bn2 = nn.BatchNorm2d(6)
        self.up2 = nn.ConvTranspose2d(6, 6, 3, stride=2, padding=1,
                                      groups=3)
        self.out = nn.Conv2d(6, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv(x)))
        x = F.relu(self.bn2(self.up1(x)))
        size = (x.shape[2] * 2, x.shape[3] * 2)
        return self.out(self.up2(x, output_size=size))


def test_conv_transpose_groups():
    dep = ChannelAnalyzer(input_shape=SHAPE).analyze(UpNet())
    assert dep.layers['up1'].kind == 'conv_transpose'
    # up2 keeps or prunes whole groups of 2 channels; its outputs follow
    assert dep.groups['up1'].num_units == 3
    assert sorted(dep.groups['up1'].layer_names()) == [
        'bn2', 'out', 'up1', 'up2'
    ]
    assert dep.groups['conv'].prunable and dep.groups['up1'].prunable
    # MACs of a transposed conv are counted per input position
    assert dep.layers['up1'].positions == 4 * 4
    assert dep.layers['up2'].positions == 8 * 8


def test_conv_transpose_pruned_end_to_end():
    torch.manual_seed(0)
    model = UpNet().eval()
    randomize_norms(model)
    pruner = StructurePruner(except_start_keys=[])
    pruner.prepare_from_supernet(model, input_shape=SHAPE)
    pruner.set_subnet({'conv': 5, 'up1': 2})  # 2 of 3 groups: 4 channels
    estimate = pruner.estimate_subnet()
    x = torch.randn(2, *SHAPE[1:])
    with torch.no_grad():
        masked = model(x)
    pruner.deploy_subnet(model)
    with torch.no_grad():
        deployed = model(x)
    torch.testing.assert_close(deployed, masked, atol=1e-5, rtol=1e-5)
    assert stale_attributes(model) == []
    assert (model.up1.in_channels, model.up1.out_channels) == (5, 4)
    assert (model.up2.in_channels, model.up2.out_channels,
            model.up2.groups) == (4, 4, 2)
    expected = (
        (3 * 5 * 9 + 5) + 2 * 5 +  # conv, bn1
        (5 * 4 * 4 * 4 + 4) + 2 * 4 +  # up1: weight (in, out, 4, 4), bn2
        (4 * 2 * 3 * 3 + 4) +  # up2: weight (in, out / groups, 3, 3)
        (4 * 2 + 2))  # out
    assert n_params(model) == expected == 568
    real = ResourceEstimator(input_shape=SHAPE).estimate(model)
    assert estimate == dict(flops=real['flops'], params=expected)
    assert structure_of(model)['up2'] == dict(
        in_channels=4, out_channels=4, groups=2)


def test_conv_transpose_through_the_deploy_artefact(tmp_path):
    torch.manual_seed(0)
    fresh = UpNet()
    report = deploy_pruned(
        UpNet(), {'conv': 3, 'up1': 1},
        str(tmp_path),
        SHAPE,
        model_spec={'python': 'UpNet'},
        build_fresh=lambda: fresh,
        except_start_keys=[])
    assert report.ok, report.problems
    assert tuple(fresh.up2.weight.shape) == (2, 2, 3, 3)


class Affine(nn.Module):
    """A per-channel scale and shift that declares itself a ``'norm'``."""

    _channel_leaf_kind = 'norm'

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.rand(channels) + 0.5)
        self.bias = nn.Parameter(torch.rand(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight[:, None, None] + self.bias[:, None, None]


def test_channel_leaf_kind_declares_a_builtin_kind():
    model = nn.Sequential(nn.Conv2d(3, 6, 1), Affine(6), nn.Conv2d(6, 2, 1))
    assert type(handler_of(model[1])) is NormHandler
    pruner = StructurePruner(except_start_keys=[])
    pruner.prepare_from_supernet(model, input_shape=SHAPE)
    assert pruner.dependency.layers['1'].kind == 'norm'
    pruner.set_subnet({'0': 4})
    x = torch.randn(2, *SHAPE[1:])
    with torch.no_grad():
        masked = model(x)
    pruner.deploy_subnet(model)
    with torch.no_grad():
        torch.testing.assert_close(model(x), masked)
    assert model[1].weight.shape == (4, ) == model[1].bias.shape
    # an instance may declare a kind too; an unknown kind is named
    odd = nn.Identity()
    odd._channel_leaf_kind = 'nope'
    with pytest.raises(KeyError, match="'nope' is not a layer kind"):
        handler_of(odd)


def test_registration_rules():

    class Other(LinearHandler):
        pass

    with pytest.raises(KeyError, match='already has the layer handler'):
        register_layer_handler(nn.Linear)(Other)
    with pytest.raises(TypeError, match='not an nn.Module class'):
        register_layer_handler(int)
    with pytest.raises(TypeError, match='not a LayerHandler'):
        register_layer_handler(nn.Identity)(object)

    class MyLinear(nn.Linear):
        pass

    # subclasses use their base's handler until they get their own
    assert type(handler_of(MyLinear(2, 2))) is LinearHandler
    register_layer_handler(MyLinear)(Other)
    assert type(handler_of(MyLinear(2, 2))) is Other
    assert type(handler_of(nn.Linear(2, 2))) is LinearHandler
    assert handler_of(nn.PReLU()) is None  # one shared slope: not a layer
    assert handler_of(nn.PReLU(4)) is not None
