"""RatioPruner refuses a ratio that keeps no channel of a group (the 0.x
"Output channels should be a positive integer not zero"), instead of
silently widening that group to one channel."""
import pytest
import torch
from torch import nn

from mmrazor.models.pruners import EmptyGroupError, RatioPruner

SHAPE = (1, 3, 8, 8)


class TwoConvNet(nn.Module):
    """conv1 has 3 output channels, conv2 has 8; fc is left unpruned."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 3, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(3)
        self.conv2 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn1(self.conv1(x)).relu()
        x = self.bn2(self.conv2(x)).relu()
        return self.fc(x.mean((2, 3)))


def test_smallest_ratio_emptying_a_group_fails_when_applied() -> None:
    # round(3 / 8) == 0 channels of conv1; conv2 keeps round(8 / 8) == 1.
    pruner = RatioPruner(ratios=[1 / 8, 1.0], except_start_keys=['fc'])
    pruner.prepare_from_supernet(TwoConvNet(), input_shape=SHAPE)
    # the original raised an AssertionError there: both kinds are caught
    for kind in (ValueError, AssertionError):
        with pytest.raises(kind) as info:
            pruner.set_min_channel()
        message = str(info.value)
        assert "'conv1' (3 units)" in message
        assert 'ratio 0.125' in message
        assert 'conv2' not in message


def test_ratio_zero_is_accepted_at_build_and_refused_when_applied() -> None:
    pruner = RatioPruner(ratios=[0, 0.5, 1.0], except_start_keys=['fc'])
    pruner.prepare_from_supernet(TwoConvNet(), input_shape=SHAPE)
    pruner.set_max_channel()
    with pytest.raises(EmptyGroupError, match="'conv1'.*'conv2'"):
        pruner.set_min_channel()
    # nothing changed
    assert pruner.current_subnet() == {'conv1': 3, 'conv2': 8}


def test_ratio_keeping_one_channel_is_accepted() -> None:
    # round(0.25 * 3) == 1 and round(0.25 * 8) == 2.
    pruner = RatioPruner(ratios=[0.25, 1.0], except_start_keys=['fc'])
    model = TwoConvNet()
    pruner.prepare_from_supernet(model, input_shape=SHAPE)
    assert pruner.min_choices == {'conv1': 1, 'conv2': 2}
    assert pruner.max_choices == {'conv1': 3, 'conv2': 8}
    pruner.set_min_channel()
    assert pruner.current_subnet() == {'conv1': 1, 'conv2': 2}
    assert model(torch.rand(*SHAPE)).shape == (1, 2)


def test_set_ratio_emptying_a_group_fails_and_changes_nothing() -> None:
    pruner = RatioPruner(ratios=[0.25, 1.0], except_start_keys=['fc'])
    pruner.prepare_from_supernet(TwoConvNet(), input_shape=SHAPE)
    pruner.set_max_channel()
    with pytest.raises(ValueError, match="'conv1' \\(3 units\\)"):
        pruner.set_ratio(0.1)
    assert pruner.current_subnet() == {'conv1': 3, 'conv2': 8}


def test_excluding_the_small_layer_allows_the_ratio() -> None:
    pruner = RatioPruner(ratios=[1 / 8, 1.0], except_start_keys=['fc'],
                         excluded=['conv1'])
    pruner.prepare_from_supernet(TwoConvNet(), input_shape=SHAPE)
    assert pruner.min_choices == {'conv2': 1}


@pytest.mark.parametrize('ratios', [[-0.5, 1.0], [0.5, 1.5], []])
def test_ratios_outside_unit_interval_fail_at_build(ratios) -> None:
    with pytest.raises(ValueError, match='ratios must be non-empty'):
        RatioPruner(ratios=ratios)


def test_channel_spaces_are_the_keep_masks_of_the_groups() -> None:
    pruner = RatioPruner(ratios=[0.5, 1.0], except_start_keys=['fc'])
    pruner.prepare_from_supernet(TwoConvNet(), input_shape=SHAPE)
    pruner.set_min_channel()
    spaces = pruner.channel_spaces
    # conv1 has 3 output channels, conv2 has 8 (see TwoConvNet)
    assert {k: tuple(v.shape) for k, v in spaces.items()} == {
        'conv1': (1, 3, 1, 1),
        'conv2': (1, 8, 1, 1)
    }
    # round(0.5 * 3) == 2 and 0.5 * 8 == 4 channels kept
    assert spaces['conv1'].sum() == 2 and spaces['conv2'].sum() == 4
