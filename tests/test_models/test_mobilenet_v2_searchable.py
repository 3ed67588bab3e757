"""MBBlock and the searchable MobileNetV2 against hand-built plain models."""
import random

import pytest
import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from torch import nn

from mmrazor.models.architectures.backbones import SearchableMobileNetV2
from mmrazor.models.mutators import (OneShotChannelMutator,
                                     OneShotValueMutator)
from mmrazor.models.ops import MBBlock
from mmrazor.registry import MODELS
from mmrazor.structures import export_fix_subnet, load_fix_subnet

SMALL = dict(
    arch_setting=[[1, 8, 1, 1], [6, 16, 2, 2], [6, 24, 2, 2]],
    first_channels=16,
    last_channels=32,
    out_indices=(3, ))


def bn_eval(x, bn):
    return F.batch_norm(x, bn.running_mean, bn.running_var, bn.weight,
                        bn.bias, False, 0., bn.eps)


def test_mb_block_matches_hand_computation():
    torch.manual_seed(0)
    block = MBBlock(5, 3, in_channels=4, out_channels=4).eval()
    assert block.with_res_shortcut and block.mid_channels == 12
    x = torch.randn(2, 4, 6, 6)
    e, d, p = block.expand_conv, block.depthwise_conv, block.linear_conv
    h = F.relu6(bn_eval(F.conv2d(x, e.conv.weight), e.bn))
    h = F.relu6(
        bn_eval(F.conv2d(h, d.conv.weight, padding=2, groups=12), d.bn))
    h = bn_eval(F.conv2d(h, p.conv.weight), p.bn)
    assert torch.allclose(block(x), x + h, atol=1e-5)


def test_mb_block_variants():
    x = torch.randn(2, 8, 8, 8)
    down = MBBlock(3, 6, in_channels=8, out_channels=16, stride=2)
    assert not down.with_res_shortcut
    assert down(x).shape == (2, 16, 4, 4)
    no_expand = MBBlock(3, 1, in_channels=8, out_channels=8)
    assert no_expand.expand_conv is None
    se = MODELS.build(
        dict(
            type='MBBlock',
            kernel_size=7,
            expand_ratio=4,
            se_cfg=dict(ratio=4),
            in_channels=8,
            out_channels=8,
            drop_path_rate=0.5,
            with_cp=True))
    assert se.se.conv1.out_channels == 8  # make_divisible(32 / 4, 8)
    y = se(x.requires_grad_())
    y.sum().backward()
    assert y.shape == x.shape
    se.eval()
    assert torch.equal(se(x), se(x))  # no drop path in eval
    with pytest.raises(ValueError, match='kernel_size'):
        MBBlock(4, 3, in_channels=8, out_channels=8)
    with pytest.raises(TypeError, match='out_channels'):
        MBBlock(3, 3, in_channels=8)


def build_plain(choices, cfg):
    """A plain MobileNetV2 of the given subnet, built by hand."""
    act = dict(type='ReLU6')
    stem = choices['stem_width']
    model = nn.Module()
    model.conv1 = ConvModule(
        3, stem, 3, stride=2, padding=1, norm_cfg=dict(type='BN'),
        act_cfg=act)
    layers = []
    in_ch = stem
    for i, (expand, _, n, stride) in enumerate(cfg['arch_setting']):
        out_ch = choices[f'stage{i}_width']
        blocks = []
        for j in range(n):
            ratio = 1 if expand == 1 else \
                choices[f'stage{i}_block{j}_expand_ratio']
            block = MBBlock(
                choices[f'stage{i}_block{j}_kernel'],
                ratio,
                in_channels=in_ch,
                out_channels=out_ch,
                stride=stride if j == 0 else 1)
            # Residuals are those of the full network: the first block of
            # every stage of SMALL changes the full width, so it has none
            # even when a subnet's widths happen to match.
            block.with_res_shortcut = j > 0
            blocks.append(block)
            in_ch = out_ch
        layers.append(nn.Sequential(*blocks))
    model.layers = nn.ModuleList(layers)
    model.conv2 = ConvModule(
        in_ch, cfg['last_channels'], 1, norm_cfg=dict(type='BN'),
        act_cfg=act)
    return model


def slice_into(plain, supernet_state):
    """Fill ``plain`` with the leading channels / centre kernel of the
    supernet's tensors (what weight sharing means), by hand."""
    state = {}
    for key, target in plain.state_dict().items():
        source = supernet_state[key]
        if target.dim() == 0:
            state[key] = source
            continue
        index = []
        for dim, size in enumerate(target.shape):
            if dim >= 2:  # kernel: centre crop
                start = (source.shape[dim] - size) // 2
                index.append(slice(start, start + size))
            else:
                index.append(slice(0, size))
        state[key] = source[tuple(index)]
    plain.load_state_dict(state, strict=True)


def plain_forward(plain, x):
    x = plain.conv1(x)
    for layer in plain.layers:
        x = layer(x)
    return plain.conv2(x)


def test_subnet_equals_hand_built_plain_model():
    torch.manual_seed(0)
    supernet = SearchableMobileNetV2(**SMALL)
    # Give BN non-trivial statistics, then evaluate.
    supernet.train()
    supernet(torch.randn(4, 3, 32, 32))
    supernet.eval()
    channel_mutator = OneShotChannelMutator()
    value_mutator = OneShotValueMutator()
    channel_mutator.prepare_from_supernet(supernet)
    value_mutator.prepare_from_supernet(supernet)
    x = torch.randn(2, 3, 32, 32)
    for seed in range(6):
        random.seed(seed)
        choices = channel_mutator.sample_choices()
        choices.update(value_mutator.sample_choices())
        if seed == 0:
            choices.update(channel_mutator.min_choices)
            choices.update(value_mutator.min_choices)
        channel_mutator.set_choices(
            {k: choices[k]
             for k in channel_mutator.search_groups})
        value_mutator.set_choices(
            {k: choices[k]
             for k in value_mutator.search_groups})
        out = supernet(x)[0]

        plain = build_plain(choices, SMALL).eval()
        slice_into(plain, supernet.state_dict())
        assert torch.allclose(plain_forward(plain, x), out, atol=1e-5)

        subnet, static = export_fix_subnet(supernet, slice_weight=True)
        assert {k: v['chosen'] for k, v in subnet.items()} == choices
        assert torch.allclose(static(x)[0], out, atol=1e-5)
        assert not any(
            hasattr(m, 'mutable_attrs') for m in static.modules())
        static_params = sum(p.numel() for p in static.parameters())
        assert static_params == sum(p.numel() for p in plain.parameters())


def test_mutators_dump_and_load(tmp_path):
    supernet = SearchableMobileNetV2(**SMALL).eval()
    mutator = OneShotChannelMutator()
    mutator.prepare_from_supernet(supernet)
    assert list(mutator.search_groups) == [
        'stem_width', 'stage0_width', 'stage1_width', 'stage2_width'
    ]
    assert mutator.max_choices == dict(
        stem_width=16, stage0_width=8, stage1_width=16, stage2_width=24)
    mutator.set_min_choices()
    path = tmp_path / 'subnet.yaml'
    mutator.dump_subnet(path)
    mutator.set_max_choices()
    mutator.load_subnet(path)
    assert mutator.current_choices == mutator.min_choices
    assert supernet.conv1.conv.active_out_channels == 8

    values = OneShotValueMutator()
    values.prepare_from_supernet(supernet)
    full = values.dump_subnet()
    full.update(mutator.dump_subnet())
    load_fix_subnet(supernet, full)
    assert all(m.is_fixed for m in supernet.mutables.values())


def test_bad_settings():
    with pytest.raises(ValueError, match='kernel choice 4'):
        SearchableMobileNetV2(kernel_choices=(3, 4))
    with pytest.raises(ValueError, match='arch_setting\\[0\\]'):
        SearchableMobileNetV2(arch_setting=[[1, 16, 1]])
    with pytest.raises(ValueError, match='out_indices entry 9'):
        SearchableMobileNetV2(out_indices=(9, ))


def test_docs_example_runs(tmp_path, monkeypatch):
    """The code of docs/search_space_values_channels.md runs as written."""
    import os.path as osp
    import re
    root = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    with open(osp.join(root, 'docs', 'search_space_values_channels.md')) as f:
        text = f.read()
    code = '\n'.join(re.findall(r'```python\n(.*?)```', text, re.S))
    monkeypatch.chdir(tmp_path)
    exec(compile(code, 'search_space_values_channels.md', 'exec'), {})
    assert (tmp_path / 'widths.yaml').is_file()
