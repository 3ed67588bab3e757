"""Channel dependency analysis on hand-built models (exact groups)."""
import pytest
import torch
from torch import nn

from mmrazor.models.task_modules import (ChannelAnalysisError,
                                         ChannelAnalyzer)
from mmrazor.registry import TASK_UTILS
from .toy_models import BlockedNet, SharedHeadNet, ShuffleLNNet, ToyNet


def _analyze(model, **kwargs):
    return ChannelAnalyzer(input_shape=(1, 3, 16, 16), **kwargs).analyze(
        model)


def test_toy_groups():
    dep = _analyze(ToyNet())
    groups = {
        name: (g.num_units, sorted(g.sources), sorted(g.layers), g.prunable)
        for name, g in dep.groups.items()
    }
    assert groups == {
        'conv1': (8, ['conv1', 'conv2'],
                  sorted([
                      'conv1:out', 'bn1:in', 'bn1:out', 'conv2:in',
                      'conv2:out', 'bn2:in', 'bn2:out', 'conv3:in',
                      'conv4:in'
                  ]), True),
        'conv3': (10, ['conv3', 'conv4', 'se2'],
                  sorted([
                      'conv3:out', 'conv4:out', 'dw:in', 'dw:out', 'se1:in',
                      'se2:out', 'conv5:in'
                  ]), True),
        'se1': (3, ['se1'], ['se1:out', 'se2:in'], True),
        'conv5': (5, ['conv5'], ['conv5:out', 'fc1:in'], True),
        'fc1': (7, ['fc1'], ['fc1:out', 'fc2:in'], True),
        'fc2': (2, ['fc2'], ['fc2:out'], False),
    }
    assert dep.groups['fc2'].blocked_by == ['model output']
    # flatten -> linear: every conv5 channel is 16 fc1 input features
    counts = dep.unit_counts('conv5', dep.layers['fc1'].in_ids)
    assert counts.tolist() == [16] * 5
    # concat order: conv3's channels, then conv4's
    order = dep.groups['conv3'].units
    root = dep.root_of
    assert [int(root[i]) for i in dep.layers["conv3"].out_ids] == order[:4]
    assert [int(root[i]) for i in dep.layers['conv4'].out_ids] == order[4:]


def test_blocking_op_is_reported():
    dep = _analyze(BlockedNet())
    g = dep.groups['conv1']
    assert not g.prunable
    assert any('softmax' in r for r in g.blocked_by)
    assert 'softmax' in dep.report(only_blocked=True)
    assert dep.groups['conv2'].prunable
    assert not dep.groups['conv3'].prunable  # model output


def test_user_exclusion_and_manual_group():
    dep = _analyze(ToyNet(), excluded=['se1'])
    assert dep.groups['se1'].excluded_by == "excluded='se1'"
    assert not dep.groups['se1'].prunable
    assert 'excluded' in dep.report()
    # declare conv1 and conv2 of BlockedNet tied: one (blocked) group
    dep = _analyze(BlockedNet(), manual_groups=[['conv1', 'conv2']])
    assert 'conv2' not in dep.groups
    assert sorted(dep.groups['conv1'].sources) == ['conv1', 'conv2']
    assert not dep.groups['conv1'].prunable
    with pytest.raises(ValueError, match='conv3'):
        _analyze(BlockedNet(), manual_groups=[['conv1', 'conv3']])
    with pytest.raises(KeyError, match='nope'):
        _analyze(BlockedNet(), manual_groups=[['conv1', 'nope']])
    # the escape hatch for ops the analysis does not know
    dep = _analyze(BlockedNet(), passthrough_ops=['softmax'])
    assert dep.groups['conv1'].prunable


def test_shared_head_ties_levels():
    dep = _analyze(SharedHeadNet())
    assert sorted(dep.groups['level1'].sources) == ['level1', 'level2']
    assert dep.layers['head'].calls == 2
    assert dep.groups['head'].prunable


def test_shuffle_layernorm_groupnorm_layerscale():
    dep = _analyze(ShuffleLNNet())
    g = dep.groups['stem']
    # GroupNorm(2, 8) keeps whole norm groups; shuffle + chunk tie the
    # halves: two units of four channels.
    assert g.num_units == 2
    assert sorted(g.sources) == ['branch', 'gamma', 'proj', 'stem']
    assert 'gamma:param' in g.layers and 'ln:in' in g.layers
    assert dep.layers['ln'].in_dim == 3 and dep.layers['ln'].masked_stats
    assert dep.groups['fc'].prunable


def test_unknown_op_blocks_and_untraced_mix():

    class Net(nn.Module):

        def __init__(self):
            super().__init__()
            self.a = nn.Conv2d(3, 4, 1)
            self.b = nn.Conv2d(3, 4, 1)
            self.c = nn.Conv2d(4, 2, 1)

        def forward(self, x):
            y = self.a(x) + torch.ones(1, 4, 1, 1)  # untraced, full width
            z = torch.matmul(self.b(x), torch.ones(16, 16))
            return self.c(y + z)

    dep = _analyze(Net())
    assert any('mixes traced' in r for r in dep.groups['a'].blocked_by)
    assert any('matmul' in r for r in dep.groups['b'].blocked_by)


def test_bounded_walk_and_errors():
    with pytest.raises(ChannelAnalysisError, match='max_ops'):
        _analyze(ToyNet(), max_ops=5)

    class Bad(nn.Module):

        def forward(self, x):
            raise ValueError('boom')

    with pytest.raises(ChannelAnalysisError, match='boom'):
        _analyze(Bad())


def test_registry_and_mode_restored():
    analyzer = TASK_UTILS.build(
        dict(type='ChannelAnalyzer', input_shape=(1, 3, 16, 16)))
    model = ToyNet().train()
    dep = analyzer.analyze(model)
    assert model.training
    assert all(not m._forward_hooks and not m._forward_pre_hooks
               for m in model.modules())
    assert len(dep.prunable_groups) == 5


def test_concat_with_untraced_pooled_view_and_flatten():

    class Net(nn.Module):

        def __init__(self):
            super().__init__()
            self.a = nn.Conv2d(3, 4, 1)
            self.c = nn.Conv2d(7, 5, 1)
            self.d = nn.Conv2d(7, 5, 1)
            self.fc = nn.Linear(5, 2)

        def forward(self, x):
            both = torch.cat([x, self.a(x)], dim=1)  # 3 untraced + 4
            c = self.c(both)
            gate = c.mean((2, 3)).view(1, 5, 1, 1)  # pooled, re-shaped
            y = self.d(both) * gate  # ties d's channels to c's
            return self.fc(y.mean((2, 3), keepdim=True).flatten(1))

    dep = _analyze(Net())
    c_in = dep.layers['c'].in_ids
    # the image's 3 channels are untraced, then a's 4 channels in order
    assert (c_in[:3] < 0).all()
    assert dep.unit_counts('a', c_in).tolist() == [1, 1, 1, 1]
    assert dep.groups['a'].prunable
    assert sorted(dep.groups['c'].sources) == ['c', 'd']
    assert dep.groups['c'].prunable
    # position by position: d's channel k meets c's channel k
    root = dep.root_of
    assert root[dep.layers['d'].out_ids].tolist() == \
        root[dep.layers['c'].out_ids].tolist()
    # flatten of the pooled (1, 5, 1, 1) map: one fc input per channel
    assert root[dep.layers['fc'].in_ids].tolist() == \
        root[dep.layers['c'].out_ids].tolist()
    assert not dep.groups['fc'].prunable  # the model output


def test_in_place_reshape_of_a_norm_output_leaves_its_input_alone():
    """Norms run shape-only during the analysis (their output shares the
    input's memory); an in-place change of the output's shape must not
    change the input, which the model uses afterwards."""

    class Net(nn.Module):

        def __init__(self):
            super().__init__()
            self.a = nn.Conv2d(3, 4, 3, padding=1)
            self.bn = nn.BatchNorm2d(4)
            self.b = nn.Conv2d(4, 4, 1)
            self.c = nn.Conv2d(4, 6, 1)

        def forward(self, x):
            x = self.a(x)
            y = self.bn(x)
            y.unsqueeze_(0)  # (1, 1, 4, 16, 16)
            z = self.b(x) + y.squeeze(0)  # x keeps its 4-d shape
            return self.c(z)

    model = Net().eval()
    x = torch.randn(1, 3, 16, 16)
    expected = model(x)  # the model itself runs
    dep = _analyze(model)
    root = dep.root_of
    # a, bn and b are tied by the residual add; c is its own group
    assert sorted(dep.groups['a'].sources) == ['a', 'b']
    assert root[dep.layers['bn'].out_ids].tolist() == \
        root[dep.layers['a'].out_ids].tolist()
    assert dep.groups['a'].prunable
    assert not dep.groups['c'].prunable  # the model output
    assert torch.equal(model(x), expected)  # analysis left the model as is


class _ActNet(nn.Module):
    """conv -> act -> conv -> act -> residual; ``functional`` calls the
    same activations as functions instead of modules."""

    def __init__(self, functional: bool, act: nn.Module = None):
        super().__init__()
        self.functional = functional
        self.a = nn.Conv2d(3, 8, 3, padding=1)
        self.b = nn.Conv2d(8, 8, 1)
        self.c = nn.Conv2d(8, 4, 1)
        self.act1 = act if act is not None else nn.ReLU(inplace=True)
        self.act2 = nn.Hardswish()
        self.drop = nn.Dropout(0.2)

    def forward(self, x):
        x = self.a(x)
        if self.functional:
            y = torch.nn.functional.relu(x, inplace=True)
            z = torch.nn.functional.hardswish(self.b(y))
            z = torch.nn.functional.dropout(z, 0.2, training=False)
        else:
            y = self.act1(x)
            z = self.drop(self.act2(self.b(y)))
        return self.c(y + z)


def _group_summary(dep):
    return {
        name: (g.num_units, sorted(g.sources), sorted(g.layers), g.prunable,
               g.blocked_by)
        for name, g in dep.groups.items()
    }


def test_activation_modules_match_their_functional_form():
    """Activation / dropout modules take a shortcut in the tracer; the
    groups and op counts must equal those of the same calls made as
    functions (the general path)."""
    by_module = _analyze(_ActNet(functional=False))
    by_function = _analyze(_ActNet(functional=True))
    assert _group_summary(by_module) == _group_summary(by_function)
    assert sorted(by_module.groups['a'].sources) == ['a', 'b']
    for op in ('relu', 'hardswish', 'dropout'):
        assert by_module.op_counts.get(op) == by_function.op_counts.get(op) \
            == 1


def test_activation_subclass_with_own_forward_is_traced_as_written():
    """A subclass of an activation that overrides ``forward`` (here it
    reverses the channel order) takes the general path and is seen."""

    class FlipReLU(nn.ReLU):

        def forward(self, x):
            return super().forward(x).flip(1)

    dep = _analyze(_ActNet(functional=False, act=FlipReLU()))
    assert any('flip' in r for r in dep.groups['a'].blocked_by)
    assert not dep.groups['a'].prunable
