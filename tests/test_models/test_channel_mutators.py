"""Channel and value mutators on small hand-made spaces."""
import pytest
import torch
from torch import nn

from mmrazor.models.architectures.dynamic_ops import DynamicConv2d
from mmrazor.models.mutables import (MutableValue, OneShotMutableChannel,
                                     OneShotMutableValue, SimpleMutableChannel)
from mmrazor.models.mutators import (ChannelMutator, OneShotChannelMutator,
                                     SlimmableChannelMutator, ValueMutator)
from mmrazor.registry import MODELS
from mmrazor.structures import SubnetError


class TiedNet(nn.Module):
    """Two convs whose outputs are added: their widths are one decision."""

    def __init__(self, mutable_type=OneShotMutableChannel):
        super().__init__()
        self.a = DynamicConv2d(3, 8, 3, padding=1)
        self.b = DynamicConv2d(3, 8, 1)
        self.c = DynamicConv2d(8, 4, 1)
        if mutable_type is OneShotMutableChannel:
            make = (lambda: OneShotMutableChannel(
                8, [2, 4, 8], candidate_mode='number', alias='sum'))
            self.width_a, self.width_b = make(), make()
        else:
            self.width_a = SimpleMutableChannel(8, alias='sum')
            self.width_b = SimpleMutableChannel(8, alias='sum')
        self.out = OneShotMutableChannel(4, [0.5, 1.0], alias='out')
        self.kernel = OneShotMutableValue([1, 3], alias='kernel')
        self.a.register_mutable_attr('out_channels', self.width_a)
        self.a.register_mutable_attr('kernel_size', self.kernel)
        self.b.register_mutable_attr('out_channels', self.width_b)
        self.c.register_mutable_attr('in_channels', self.width_a)
        self.c.register_mutable_attr('out_channels', self.out)

    def forward(self, x):
        return self.c(self.a(x) + self.b(x))


def test_aliases_are_one_decision():
    net = TiedNet()
    mutator = MODELS.build(dict(type='OneShotChannelMutator'))
    mutator.prepare_from_supernet(net)
    assert list(mutator.search_groups) == ['sum', 'out']
    assert len(mutator.channel_groups['sum']) == 2
    assert mutator.num_channels_of('sum') == 8
    for _ in range(5):
        mutator.set_choices(mutator.sample_choices())
        assert net.width_a.current_choice == net.width_b.current_choice
        out = net(torch.randn(1, 3, 5, 5))
        assert out.shape[1] == net.out.current_choice
    mutator.set_min_choices()
    assert mutator.current_choices == {'sum': 2, 'out': 2}
    mutator.set_max_choices()
    assert mutator.current_choices == {'sum': 8, 'out': 4}
    with pytest.raises(SubnetError, match="'nope'"):
        mutator.set_choices({'sum': 2, 'out': 2, 'nope': 1})
    with pytest.raises(SubnetError, match="'sum'.*3"):
        mutator.set_choices({'sum': 3, 'out': 2})


def test_value_mutator():
    net = TiedNet()
    mutator = ValueMutator()
    mutator.prepare_from_supernet(net)
    assert list(mutator.search_groups) == ['kernel']
    mutator.set_max_choices()
    assert net.a.active_kernel_size == (3, 3)
    mutator.set_min_choices()
    assert net.a.active_kernel_size == (1, 1)


def test_mask_subnet_yaml_round_trip(tmp_path):
    net = TiedNet(SimpleMutableChannel)
    mutator = ChannelMutator()
    mutator.prepare_from_supernet(net)
    mask = [True, False, True, True, False, False, True, False]
    mutator.set_choices({'sum': mask, 'out': 4})
    x = torch.randn(1, 3, 5, 5)
    expected = net(x)
    path = tmp_path / 'subnet.yaml'
    mutator.dump_subnet(path)
    mutator.set_choices({'sum': 8, 'out': 4})
    mutator.load_subnet(path)
    assert net.width_b.dump_chosen().chosen == mask
    assert torch.allclose(net(x), expected)


def test_slimmable_channel_mutator(tmp_path):
    net = TiedNet()
    narrow = {'sum': {'chosen': 2}, 'out': {'chosen': 2}}
    path = tmp_path / 'wide.yaml'
    path.write_text('sum:\n  chosen: 8\nout:\n  chosen: 4\n')
    mutator = SlimmableChannelMutator([narrow, str(path)])
    mutator.prepare_from_supernet(net)
    assert mutator.num_subnets == 2
    mutator.switch_subnet(1)
    assert mutator.current_choices == {'sum': 8, 'out': 4}
    mutator.switch_subnet(0)
    assert net(torch.randn(1, 3, 4, 4)).shape[1] == 2
    assert mutator.max_choices == {'sum': 8, 'out': 4}
    assert mutator.min_choices == {'sum': 2, 'out': 2}
    assert mutator.sample_choices() in mutator.channel_cfgs
    with pytest.raises(IndexError, match='subnet index 2'):
        mutator.switch_subnet(2)
    with pytest.raises(SubnetError, match=r'channel_cfgs\[0\].*out'):
        mutator.set_channel_cfgs([{'sum': 2}])
    with pytest.raises(SubnetError, match=r'channel_cfgs\[0\]'):
        mutator.set_channel_cfgs([{'sum': 5, 'out': 2}])
    assert mutator.num_subnets == 2  # unchanged after the errors


def test_channel_mutator_skips_values_and_fixed():
    net = TiedNet()
    net.out.fix_chosen(2)
    mutator = OneShotChannelMutator()
    mutator.prepare_from_supernet(net)
    assert list(mutator.search_groups) == ['sum']
    assert isinstance(net.kernel, MutableValue)
