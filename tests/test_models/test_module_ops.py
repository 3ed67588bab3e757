"""Search-space ops: shapes, configs, checkpointing, reference values."""
import pytest
import torch
import torch.nn as nn

from mmrazor.models.ops import (DartsDilConv, DartsPoolBN, DartsSepConv,
                                DartsSkipConnect, DartsZero, Identity,
                                ShuffleBlock, ShuffleXception,
                                channel_shuffle)
from mmrazor.registry import MODELS


def test_channel_shuffle_interleaves_groups():
    x = torch.arange(6.).view(1, 6, 1, 1)
    out = channel_shuffle(x, 2).flatten().tolist()
    assert out == [0., 3., 1., 4., 2., 5.]
    with pytest.raises(ValueError, match='groups'):
        channel_shuffle(torch.zeros(1, 5, 1, 1), 2)


@pytest.mark.parametrize('cls,kwargs', [(ShuffleBlock, dict(kernel_size=5)),
                                        (ShuffleXception, {})])
def test_shuffle_blocks(cls, kwargs):
    down = cls(8, 16, stride=2, **kwargs)
    same = cls(16, 16, stride=1, **kwargs)
    x = torch.randn(2, 8, 9, 9)
    y = down(x)
    assert y.shape == (2, 16, 5, 5)
    assert same(y).shape == y.shape
    # stride 1: the first half of the input passes through, shuffled in
    same.eval()
    out = same(y)
    assert torch.equal(out[:, 0::2], y[:, :8])
    with pytest.raises(ValueError, match='in_channels'):
        cls(8, 16, stride=1, **kwargs)


def test_shuffle_block_layer_configs_and_param_count():
    block = ShuffleBlock(
        8, 16, kernel_size=3, stride=2, norm_cfg=dict(type='GN',
                                                      num_groups=4))
    assert any(isinstance(m, nn.GroupNorm) for m in block.modules())
    # projection: dw 3x3 (8*9) + BN(16), 1x1 8->8 + BN(16)
    # main: 1x1 8->8 + BN, dw 3x3 8 + BN, 1x1 8->8 + BN
    ref = ShuffleBlock(8, 16, kernel_size=3, stride=2)
    expect = (8 * 9 + 16) + (64 + 16) + (64 + 16) + (8 * 9 + 16) + (64 + 16)
    assert sum(p.numel() for p in ref.parameters()) == expect
    built = MODELS.build(
        dict(type='ShuffleBlock', in_channels=8, out_channels=8,
             kernel_size=7, act_cfg=dict(type='HSwish')))
    assert built.kernel_size == 7


def test_with_cp_gives_same_outputs_and_grads():
    torch.manual_seed(0)
    a = ShuffleXception(8, 8)
    b = ShuffleXception(8, 8, with_cp=True)
    b.load_state_dict(a.state_dict())
    x1 = torch.randn(2, 8, 6, 6, requires_grad=True)
    x2 = x1.detach().clone().requires_grad_()
    a(x1).square().sum().backward()
    b(x2).square().sum().backward()
    assert torch.allclose(x1.grad, x2.grad, atol=1e-6)


def test_darts_ops():
    x = torch.randn(2, 8, 8, 8)
    for stride in (1, 2):
        for op in (DartsSepConv(8, 8, stride), DartsDilConv(8, 8, stride),
                   DartsPoolBN(8, 8, stride, pool_type='max'),
                   DartsPoolBN(8, 8, stride, pool_type='avg'),
                   DartsSkipConnect(8, 8, stride), DartsZero(8, 8, stride)):
            assert op(x).shape == (2, 8, 8 // stride, 8 // stride), op
    assert torch.equal(DartsSkipConnect(8, 8)(x), x)
    assert torch.equal(Identity(8, 8)(x), x)
    assert not DartsZero(8, 8, 2)(x).any()
    pool = DartsPoolBN(8, 8, pool_type='avg', norm_cfg=None)
    # average of a 3x3 window (padding excluded) at an inner pixel
    assert torch.allclose(pool(x)[:, :, 3, 3], x[:, :, 2:5, 2:5].mean((2, 3)))
    with pytest.raises(ValueError, match='pool_type'):
        DartsPoolBN(8, 8, pool_type='min')
    # The 0.x / 1.x contract: where the shape changes, Identity downsamples
    # with a 1x1 ConvModule instead of refusing.
    down = Identity(8, 16, stride=2)
    assert down.downsample is not None and down(x).shape == (2, 16, 4, 4)
    assert Identity(8, 8).downsample is None
    with pytest.raises(ValueError, match='Identity'):
        Identity(stride=2)
    # DARTS ops must not modify their input (it feeds several edges)
    y = x.clone()
    DartsSepConv(8, 8)(y)
    assert torch.equal(x, y)


def test_darts_drop_path():
    op = DartsSepConv(4, 4, use_drop_path=True)
    assert type(op.drop_path).__name__ == 'DropPath'
    op.drop_path.drop_prob = 1.0 - 1e-7  # as DropPathProbHook would set
    op.train()
    x = torch.randn(8, 4, 5, 5)
    assert not op(x).any()  # every sample dropped
    op.eval()
    assert op(x).any()
    skip = DartsSkipConnect(4, 4, use_drop_path=True)
    skip.drop_path.drop_prob = 1.0 - 1e-7
    assert torch.equal(skip.train()(x), x)  # identity is never dropped
