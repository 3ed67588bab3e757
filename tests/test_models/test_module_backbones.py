"""Searchable backbones: the SPOS ShuffleNetV2 space and DARTS cells."""
import pytest
import torch
import torch.nn as nn

from mmrazor.models.mutables import (DiffChoiceRoute, DiffMutableOP,
                                     OneShotMutableOP)
from mmrazor.models.ops import ShuffleBlock, ShuffleXception
from mmrazor.registry import MODELS

SPOS_CHOICES = ['shuffle_3x3', 'shuffle_5x5', 'shuffle_7x7',
                'shuffle_xception']


def test_searchable_shufflenet_v2_is_the_spos_space():
    model = MODELS.build(dict(type='SearchableShuffleNetV2'))
    stem = model.conv1.conv
    assert (stem.in_channels, stem.out_channels) == (3, 16)
    assert stem.kernel_size == (3, 3) and stem.stride == (2, 2)
    assert not any(isinstance(m, nn.MaxPool2d) for m in model.modules())
    assert [len(stage) for stage in model.layers] == [4, 4, 8, 4]
    for stage, channels in zip(model.layers, [64, 160, 320, 640]):
        for b, block in enumerate(stage):
            assert isinstance(block, OneShotMutableOP)
            assert block.choices == SPOS_CHOICES
            for name, cand in block.candidates.items():
                assert cand.out_channels == channels
                assert cand.stride == (2 if b == 0 else 1)
            assert block.candidates['shuffle_7x7'].kernel_size == 7
            assert isinstance(block.candidates['shuffle_xception'],
                              ShuffleXception)
    assert model.last_conv.conv.out_channels == 1024
    assert model.last_conv.conv.kernel_size == (1, 1)
    model.layers[0][0].current_choice = 'shuffle_5x5'
    assert isinstance(model.layers[0][0].candidates['shuffle_5x5'],
                      ShuffleBlock)


def test_searchable_shufflenet_v2_options():
    model = MODELS.build(
        dict(
            type='SearchableShuffleNetV2',
            widen_factor=0.5,
            out_indices=(0, 3, 4),
            frozen_stages=1,
            norm_eval=True))
    for stage in model.layers:
        for block in stage:
            block.current_choice = 'shuffle_3x3'
    outs = model(torch.randn(1, 3, 64, 64))
    assert [o.shape[1] for o in outs] == [32, 320, 1024]
    assert outs[-1].shape[-1] == 2  # stride 32
    model.train()
    assert not model.conv1.training
    assert not any(p.requires_grad for p in model.layers[0].parameters())
    assert all(p.requires_grad for p in model.layers[1].parameters())
    assert not any(m.training for m in model.modules()
                   if isinstance(m, nn.BatchNorm2d))
    with pytest.raises(ValueError, match='out_indices'):
        MODELS.build(dict(type='SearchableShuffleNetV2', out_indices=(5, )))
    custom = MODELS.build(
        dict(
            type='SearchableShuffleNetV2',
            arch_setting=[[32, 1, dict(
                type='OneShotMutableOP',
                candidates=dict(k3=dict(type='ShuffleBlock',
                                        kernel_size=3)))]],
            last_channels=64))
    assert custom.layers[0][0].choices == ['k3']
    assert custom(torch.randn(1, 3, 16, 16))[0].shape == (1, 64, 4, 4)


def test_darts_backbone():
    model = MODELS.build(
        dict(type='DartsBackbone', base_channels=4, num_layers=3,
             num_nodes=2, stem_multiplier=2, out_indices=(0, 2)))
    aliases = {m.alias for m in model.modules()
               if isinstance(m, (DiffMutableOP, DiffChoiceRoute))}
    assert aliases == {
        'normal_n2', 'normal_n2_p0', 'normal_n2_p1', 'normal_n3',
        'normal_n3_p0', 'normal_n3_p1', 'normal_n3_p2', 'reduce_n2',
        'reduce_n2_p0', 'reduce_n2_p1', 'reduce_n3', 'reduce_n3_p0',
        'reduce_n3_p1', 'reduce_n3_p2'
    }
    op = model.cells[1].nodes[0].candidates['reduce_n2_p0']
    assert op.candidates['sep_conv_3x3'].stride == 2
    assert model.cells[1].nodes[1].candidates['reduce_n3_p2'].candidates[
        'sep_conv_3x3'].stride == 1
    outs = model(torch.randn(2, 3, 16, 16))
    # cell 0 normal (4 ch * 2 nodes), cells 1-2 reduce (8 ch, 16 ch)
    assert [tuple(o.shape) for o in outs] == [(2, 8, 16, 16),
                                              (2, 32, 4, 4)]


@MODELS.register_module(force=True)
class _ConvOnlyMutable(nn.Module):
    """A stand-in stage mutable: a conv from ``module_kwargs`` only (the
    1.x contract: blocks get in/out channels and stride, nothing else)."""

    def __init__(self, choices, module_kwargs) -> None:
        super().__init__()
        self.choices = choices
        self.conv = nn.Conv2d(**module_kwargs, kernel_size=3, padding=1)

    def forward(self, x):
        return self.conv(x)


def test_shufflenet_v2_1x_contract():
    stage = dict(type='_ConvOnlyMutable', choices=['a'])
    cfg = dict(
        type='SearchableShuffleNetV2',
        arch_setting=[[8, 1, stage], [16, 2, stage]],
        norm_cfg=dict(type='GN', num_groups=1),
        last_channels=32)
    model = MODELS.build(cfg)
    assert model.arch_setting[1][:2] == [16, 2]
    assert model(torch.randn(1, 3, 32, 32))[0].shape == (1, 32, 4, 4)
    # without the last layer, out_indices must be given
    with pytest.raises(ValueError, match='with_last_layer'):
        MODELS.build(dict(cfg, with_last_layer=False))
    assert len(MODELS.build(dict(cfg, with_last_layer=False,
                                 out_indices=(1, ))).layers) == 2
    # the ShuffleNet initialisation (unless a checkpoint is loaded)
    model.init_weights()
    norm = model.conv1.gn
    assert torch.equal(norm.bias, torch.full_like(norm.bias, 1e-4))
    # the backbone's layer configs reach the candidates that take them
    spos = MODELS.build(
        dict(
            type='SearchableShuffleNetV2',
            arch_setting=[[16, 1, dict(
                type='OneShotMutableOP',
                candidates=dict(
                    k3=dict(type='ShuffleBlock', kernel_size=3),
                    k5=dict(type='ShuffleBlock', kernel_size=5,
                            norm_cfg=dict(type='BN')),
                    conv=dict(type='mmrazor._TorchConv3x3')))]],
            norm_cfg=dict(type='GN', num_groups=2)))
    cands = spos.layers[0][0].candidates
    assert any(isinstance(m, nn.GroupNorm) for m in cands['k3'].modules())
    assert not any(isinstance(m, nn.GroupNorm)
                   for m in cands['k5'].modules())


@MODELS.register_module(name='_TorchConv3x3', force=True)
def _torch_conv3x3(in_channels, out_channels, stride=1):
    return nn.Conv2d(in_channels, out_channels, 3, stride, 1)


def test_mobilenet_v2_block_mutable_form():
    first = dict(type='_ConvOnlyMutable', choices=['a'])
    other = dict(
        type='OneShotMutableOP',
        candidates=dict(
            mb_k3e3=dict(type='MBBlock', kernel_size=3, expand_ratio=3),
            identity=dict(type='Identity')))
    cfg = dict(
        type='SearchableMobileNetV2',
        arch_setting=[[8, 1, 1, first], [16, 2, 2, other]],
        first_channels=8,
        last_channels=32,
        out_indices=(1, 2))
    model = MODELS.build(cfg)
    assert model.layer_names == ['layer1', 'layer2']
    assert model.layer2[0].candidates['identity'].downsample is not None
    outs = model(torch.randn(1, 3, 32, 32))
    assert [o.shape[1] for o in outs] == [16, 32]
    frozen = MODELS.build(dict(cfg, frozen_stages=1, norm_eval=True))
    frozen.train()
    assert not frozen.layer1.training and frozen.layer2.training
    assert not any(p.requires_grad for p in frozen.conv1.parameters())
    assert MODELS.build(dict(cfg, widen_factor=2.0)).out_channel == 64
    with pytest.raises(ValueError, match='frozen_stages'):
        MODELS.build(dict(cfg, frozen_stages=3))
    with pytest.raises(ValueError, match='mixes'):
        MODELS.build(dict(cfg, arch_setting=[[1, 8, 1, 1], [8, 1, 1,
                                                            first]]))


def test_darts_backbone_1x_arguments():
    op = dict(
        type='DiffMutableOP',
        candidates=dict(
            a=dict(type='DartsSepConv', kernel_size=3),
            b=dict(type='DartsSkipConnect')))
    cfg = dict(type='DartsBackbone', base_channels=4, num_layers=3,
               num_nodes=2, stem_multiplier=2, mutable_cfg=op)
    model = MODELS.build(cfg)
    assert model.cells[0].nodes[0].candidates['normal_n2_p0'].choices == [
        'a', 'b'
    ]
    assert MODELS.build(dict(cfg, mutable_cfg=None, mixed_op_cfg=op))
    with pytest.raises(ValueError, match='mixed_op_cfg'):
        MODELS.build(dict(cfg, mixed_op_cfg=op))
    with pytest.raises(ValueError, match='aux_channels'):
        MODELS.build(dict(cfg, auxliary=True))
    aux = MODELS.build(
        dict(cfg, auxliary=True, aux_channels=8, aux_out_channels=12))
    assert aux.auxliary_indice == 2
    x = torch.randn(2, 3, 32, 32)
    train_outs = aux.train()(x)
    assert [o.shape for o in train_outs] == [(2, 12, 1, 1), (2, 32, 8, 8)]
    assert len(aux.eval()(x)) == 1
