"""Dynamic ops against plain ops built by hand from sliced weights."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mmrazor.models.architectures.dynamic_ops import (DynamicBatchNorm2d,
                                                      DynamicConv2d,
                                                      DynamicLinear,
                                                      DynamicSequential)
from mmrazor.models.mutables import (MutableValue, OneShotMutableChannel,
                                     OneShotMutableValue,
                                     SimpleMutableChannel)


def seq(n, choices):
    return OneShotMutableChannel(n, choices, candidate_mode='number')


def test_conv_channels_and_kernel_match_hand_sliced():
    torch.manual_seed(0)
    conv = DynamicConv2d(6, 8, 5, stride=2, padding=2, bias=True)
    cin, cout = seq(6, [3, 6]), seq(8, [4, 8])
    kernel = MutableValue([3, 5])
    conv.register_mutable_attr('in_channels', cin)
    conv.register_mutable_attr('out_channels', cout)
    conv.register_mutable_attr('kernel_size', kernel)
    cin.current_choice, cout.current_choice = 3, 4
    kernel.current_choice = 3
    x = torch.randn(2, 3, 9, 9)

    plain = nn.Conv2d(3, 4, 3, stride=2, padding=1, bias=True)
    with torch.no_grad():
        plain.weight.copy_(conv.weight[:4, :3, 1:4, 1:4])
        plain.bias.copy_(conv.bias[:4])
    assert torch.allclose(conv(x), plain(x), atol=1e-6)
    assert conv.active_in_channels == 3
    assert conv.active_out_channels == 4
    assert conv.active_kernel_size == (3, 3)
    assert conv.active_groups == 1

    static = conv.to_static_op()
    assert type(static) is nn.Conv2d
    assert static.weight.shape == (4, 3, 3, 3) and static.padding == (1, 1)
    assert torch.equal(static(x), conv(x))
    # The static op owns copies: changing it leaves the supernet alone.
    with torch.no_grad():
        static.weight.zero_()
    assert conv.weight.abs().sum() > 0

    kernel.current_choice = 5
    cin.current_choice, cout.current_choice = 6, 8
    full = F.conv2d(torch.randn(1, 6, 9, 9), conv.weight, conv.bias, 2, 2)
    assert full.shape == conv(torch.randn(1, 6, 9, 9)).shape


def test_conv_arbitrary_masks():
    torch.manual_seed(0)
    conv = DynamicConv2d(4, 5, 3, padding=1)
    cin, cout = SimpleMutableChannel(4), SimpleMutableChannel(5)
    conv.register_mutable_attr('in_channels', cin)
    conv.register_mutable_attr('out_channels', cout)
    in_mask = torch.tensor([True, False, True, True])
    out_mask = torch.tensor([False, True, False, False, True])
    cin.set_mask(in_mask)
    cout.set_mask(out_mask)
    x = torch.randn(2, 3, 6, 6)
    weight = conv.weight[out_mask][:, in_mask]
    expected = F.conv2d(x, weight, conv.bias[out_mask], padding=1)
    assert torch.allclose(conv(x), expected, atol=1e-6)
    assert torch.allclose(conv.to_static_op()(x), expected, atol=1e-6)


def test_depthwise_conv():
    torch.manual_seed(0)
    conv = DynamicConv2d(8, 8, 7, padding=3, groups=8, bias=False)
    channels = seq(8, [4, 8])
    kernel = MutableValue([3, 5, 7])
    conv.register_mutable_attr('in_channels', channels)
    conv.register_mutable_attr('out_channels', channels)
    conv.register_mutable_attr('kernel_size', kernel)
    channels.current_choice, kernel.current_choice = 4, 5
    x = torch.randn(2, 4, 8, 8)
    plain = nn.Conv2d(4, 4, 5, padding=2, groups=4, bias=False)
    with torch.no_grad():
        plain.weight.copy_(conv.weight[:4, :, 1:6, 1:6])
    assert torch.allclose(conv(x), plain(x), atol=1e-6)
    assert conv.active_groups == 4 and conv.is_depthwise
    static = conv.to_static_op()
    assert static.groups == 4 and static.weight.shape == (4, 1, 5, 5)
    assert torch.allclose(static(x), plain(x), atol=1e-6)

    other = seq(8, [2, 8])
    conv.register_mutable_attr('out_channels', other)
    other.current_choice = 2
    with pytest.raises(RuntimeError, match='disagree'):
        conv(x)


def test_grouped_conv_same_channels_per_group():
    torch.manual_seed(0)
    conv = DynamicConv2d(8, 4, 1, groups=2, bias=False)
    cin, cout = SimpleMutableChannel(8), SimpleMutableChannel(4)
    conv.register_mutable_attr('in_channels', cin)
    conv.register_mutable_attr('out_channels', cout)
    # Each group of 4 inputs keeps its channels 0 and 2; outputs 0 and 3.
    cin.set_mask(torch.tensor([1, 0, 1, 0, 1, 0, 1, 0], dtype=torch.bool))
    cout.set_mask(torch.tensor([1, 0, 0, 1], dtype=torch.bool))
    x = torch.randn(1, 4, 3, 3)
    weight = conv.weight[[0, 3]][:, [0, 2]]
    expected = F.conv2d(x, weight, groups=2)
    assert torch.allclose(conv(x), expected, atol=1e-6)
    assert torch.allclose(conv.to_static_op()(x), expected, atol=1e-6)
    assert conv.active_groups == 2 and conv.active_in_channels == 4
    cin.set_mask(torch.tensor([1, 1, 1, 0, 1, 0, 1, 0], dtype=torch.bool))
    with pytest.raises(RuntimeError, match='same in_channels'):
        conv(x)


def test_conv_register_errors():
    conv = DynamicConv2d(4, 4, 3, padding=1)
    with pytest.raises(KeyError, match="'stride'"):
        conv.register_mutable_attr('stride', MutableValue([1, 2]))
    with pytest.raises(ValueError, match='masks 5 channels'):
        conv.register_mutable_attr('in_channels', seq(5, [5]))
    with pytest.raises(TypeError, match='channel mutable'):
        conv.register_mutable_attr('in_channels', MutableValue([2, 4]))
    with pytest.raises(ValueError, match='kernel size choice 5'):
        conv.register_mutable_attr('kernel_size', MutableValue([3, 5]))
    with pytest.raises(ValueError, match='kernel size choice 2'):
        conv.register_mutable_attr('kernel_size', MutableValue([1, 2]))


def test_conv_without_mutables_is_plain():
    torch.manual_seed(0)
    plain = nn.Conv2d(3, 4, 3, padding=1)
    conv = DynamicConv2d.convert_from(plain)
    x = torch.randn(1, 3, 5, 5)
    assert torch.equal(conv(x), plain(x))
    assert conv.active_in_channels == 3 and conv.active_kernel_size == (3, 3)


def test_linear():
    torch.manual_seed(0)
    linear = DynamicLinear(6, 5)
    fin, fout = seq(6, [2, 6]), SimpleMutableChannel(5)
    linear.register_mutable_attr('in_features', fin)
    linear.register_mutable_attr('out_channels', fout)  # alias
    fin.current_choice = 2
    mask = torch.tensor([True, False, True, True, False])
    fout.set_mask(mask)
    x = torch.randn(3, 2)
    expected = x @ linear.weight[mask][:, :2].t() + linear.bias[mask]
    assert torch.allclose(linear(x), expected, atol=1e-6)
    static = linear.to_static_op()
    assert type(static) is nn.Linear and static.weight.shape == (3, 2)
    assert torch.allclose(static(x), expected, atol=1e-6)
    assert (linear.active_in_features, linear.active_out_features) == (2, 3)


@pytest.mark.parametrize('sequential', [True, False])
def test_batchnorm_train_and_eval(sequential):
    torch.manual_seed(0)
    bn = DynamicBatchNorm2d(6, momentum=0.5)
    with torch.no_grad():
        bn.weight.uniform_()
        bn.bias.uniform_()
    if sequential:
        channels = seq(6, [3, 6])
        channels.current_choice = 3
        mask = torch.arange(6) < 3
    else:
        channels = SimpleMutableChannel(6)
        mask = torch.tensor([False, True, True, False, False, True])
        channels.set_mask(mask)
    bn.register_mutable_attr('num_features', channels)
    assert bn.active_num_features == 3

    plain = nn.BatchNorm2d(3, momentum=0.5)
    with torch.no_grad():
        plain.weight.copy_(bn.weight[mask])
        plain.bias.copy_(bn.bias[mask])
    x = torch.randn(4, 3, 5, 5)
    bn.train()
    plain.train()
    assert torch.allclose(bn(x), plain(x), atol=1e-5)
    # Running stats of the active channels moved like the plain op's;
    # the others did not.
    assert torch.allclose(bn.running_mean[mask], plain.running_mean)
    assert torch.allclose(bn.running_var[mask], plain.running_var)
    assert torch.equal(bn.running_mean[~mask], torch.zeros(3))
    assert torch.equal(bn.running_var[~mask], torch.ones(3))
    bn.eval()
    plain.eval()
    assert torch.allclose(bn(x), plain(x), atol=1e-5)
    static = bn.to_static_op()
    assert type(static) is nn.BatchNorm2d and static.num_features == 3
    assert not static.training
    assert torch.allclose(static(x), plain(x), atol=1e-5)


def test_dynamic_sequential_depth():
    layers = [nn.Linear(2, 2) for _ in range(3)]
    stage = DynamicSequential(*layers)
    depth = MutableValue([1, 2, 3], default_value=3)
    stage.register_mutable_attr('depth', depth)
    assert len(stage) == 3 and list(stage) == layers
    x = torch.randn(1, 2)
    depth.current_choice = 2
    assert stage.active_depth == 2
    assert torch.equal(stage(x), layers[1](layers[0](x)))
    # 1.x contract: exporting needs the depth fixed first
    with pytest.raises(RuntimeError, match='fixed'):
        stage.to_static_op()
    depth.fix_chosen(2)
    static = stage.to_static_op()
    assert type(static) is nn.Sequential and len(static) == 2
    assert list(static) == layers[:2]
    plain = nn.Sequential(*layers)
    converted = DynamicSequential.convert_from(plain)
    assert type(converted) is DynamicSequential and list(converted) == layers
    assert torch.equal(converted(x), plain(x))
    with pytest.raises(ValueError, match='depth choice 4'):
        stage.register_mutable_attr('depth', MutableValue([4]))


def test_mb_block_with_se_made_dynamic_matches_plain_block():
    from mmrazor.models.architectures.dynamic_ops import \
        make_mb_block_dynamic
    from mmrazor.models.ops import MBBlock
    torch.manual_seed(0)
    se_cfg = dict(ratio=4, divisor=8)
    block = MBBlock(
        5, 6, in_channels=8, out_channels=8, se_cfg=se_cfg).eval()
    width = seq(8, [4, 8])
    ratio = OneShotMutableValue([3, 6])  # a channel * a one-shot ratio
    kernel = MutableValue([3, 5])
    make_mb_block_dynamic(
        block,
        in_channels=width,
        mid_channels=width * ratio,
        out_channels=width,
        kernel_size=kernel)
    width.current_choice, ratio.current_choice = 4, 3
    kernel.current_choice = 3
    plain = MBBlock(3, 3, in_channels=4, out_channels=4,
                    se_cfg=se_cfg).eval()
    assert plain.se.conv1.out_channels == 8  # make_divisible(12 / 4, 8)
    # Fill the plain block with the leading channels / centre kernels.
    state = {}
    for key, target in plain.state_dict().items():
        source = block.state_dict()[key]
        index = tuple(
            slice((s - t) // 2, (s - t) // 2 + t) if d >= 2 else slice(0, t)
            for d, (s, t) in enumerate(zip(source.shape, target.shape)))
        state[key] = source[index] if target.dim() else source
    plain.load_state_dict(state)
    x = torch.randn(2, 4, 6, 6)
    assert torch.allclose(block(x), plain(x), atol=1e-5)
