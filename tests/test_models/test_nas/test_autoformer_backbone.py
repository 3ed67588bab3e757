"""AutoformerBackbone (AutoFormer's ViT search space) and its dynamic ops.

The published AutoFormer-B subnet of MMRazor 1.x must load and give the
published size (54.319M parameters, 10.57G FLOPs at 224x224 in the mmcv
convention).
"""
import copy
import math
import random
from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

from mmrazor.models.architectures.backbones import AutoformerBackbone
from mmrazor.models.architectures.dynamic_ops import (
    DynamicLayerNorm, DynamicMultiheadAttention, MultiheadAttention)
from mmrazor.models.mutables import OneShotMutableChannel, OneShotMutableValue
from mmrazor.models.task_modules import ResourceEstimator
from mmrazor.registry import MODELS
from mmrazor.structures import export_fix_subnet, load_fix_subnet

SUBNET_B = Path('/work/shared/peer/subnets/1.x/configs/nas/mmcls/'
                'autoformer/AUTOFORMER_SUBNET_B.yaml')
# arch_setting of configs/nas/mmcls/autoformer/
# autoformer_supernet_32xb256_in1k.py
ARCH_SETTING = dict(
    mlp_ratios=[3.0, 3.5, 4.0],
    num_heads=[8, 9, 10],
    depth=[14, 15, 16],
    embed_dims=[528, 576, 624])
PUBLISHED_PARAMS = 54.319e6
PUBLISHED_FLOPS = 10.57e9
TOKENS = 14 * 14 + 1  # 16x16 patches of a 224x224 image + class token
REL_POS_ROWS = 2 * 14 + 2  # max relative distance 14, row 0 for cls

needs_subnet = pytest.mark.skipif(
    not SUBNET_B.is_file(), reason='published subnet file not available')


class _Classifier(nn.Module):
    """The backbone under ``backbone.`` (+ an optional linear head)."""

    def __init__(self, backbone: nn.Module, num_classes: int = 0,
                 in_channels: int = 0) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(in_channels, num_classes) \
            if num_classes else None

    def forward(self, x):
        feat = self.backbone(x)[0]
        return feat if self.head is None else self.head(feat)


def _num_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _subnet_b() -> dict:
    with open(SUBNET_B) as f:
        return {k: v['chosen'] for k, v in yaml.safe_load(f).items()}


def _hand_count(chosen: dict) -> dict:
    """Parameters of AutoFormer-B written out from the subnet values."""
    e = chosen['backbone.mutable_embed_dims']
    d = chosen['backbone.base_embed_dims']
    parts = dict(
        patch_embed=3 * 16 * 16 * e + e,
        cls_token=e,
        pos_embed=TOKENS * e,
        final_norm=2 * e,
        rel_pos=0,
        blocks=0)
    for i in range(chosen['backbone.mutable_depth']):
        heads = chosen[f'backbone.blocks.{i}.attn.mutable_attrs.num_heads']
        ratio = chosen[f'backbone.blocks.{i}.mutable_mlp_ratios']
        q = heads * d  # q/k/v width (the stored derived value is ignored)
        mid = int(e * ratio)  # MLP width (likewise)
        norms = 2 * (2 * e)
        qkv = 3 * (e * q + q)
        proj = q * e + e
        fc1 = e * mid + mid
        fc2 = mid * e + e
        rel_pos = 2 * 2 * REL_POS_ROWS * d  # k and v, vertical+horizontal
        parts['blocks'] += norms + qkv + proj + fc1 + fc2
        parts['rel_pos'] += rel_pos
    return parts


@pytest.fixture(scope='module')
def subnet_b():
    """The supernet of the config with AutoFormer-B loaded, and its
    exported static subnet (built once: the supernet is large)."""
    torch.manual_seed(0)
    model = _Classifier(AutoformerBackbone(ARCH_SETTING))
    model.eval()
    load_fix_subnet(model, SUBNET_B)
    subnet, static = export_fix_subnet(model, slice_weight=True)
    return model, subnet, static


@needs_subnet
def test_subnet_b_loads_and_exports(subnet_b):
    model, subnet, static = subnet_b
    chosen = _subnet_b()
    backbone = model.backbone
    assert backbone.mutable_embed_dims.current_choice == 576
    assert backbone.last_mutable is backbone.mutable_embed_dims
    assert backbone.blocks.active_depth == 14
    assert len(static.backbone.blocks) == 14
    for i in range(16):
        block = backbone.blocks[i]
        assert block.attn.active_num_heads == chosen[
            f'backbone.blocks.{i}.attn.mutable_attrs.num_heads']
        # derived: follows embed_dims * mlp_ratio, whatever the file says
        ratio = chosen[f'backbone.blocks.{i}.mutable_mlp_ratios']
        assert block.middle_channels.current_choice == int(576 * ratio)
        assert block.mutable_q_embed_dims.current_choice == \
            64 * block.attn.active_num_heads
    # every searched key of the file is exported with the same choice
    for key, value in chosen.items():
        if key.endswith(('middle_channels', 'mutable_q_embed_dims')):
            continue
        assert subnet[key].chosen == value, key
    # the static subnet holds no dynamic op
    assert not any(
        hasattr(m, 'mutable_attrs') for m in static.modules())


@needs_subnet
def test_subnet_b_loads_into_bare_backbone():
    backbone = AutoformerBackbone(
        dict(ARCH_SETTING, depth=[14, 15, 16]), drop_path_rate=0.)
    load_fix_subnet(backbone, SUBNET_B)
    assert backbone.mutable_depth.current_choice == 14
    assert backbone.blocks[12].attn.active_num_heads == 9


@needs_subnet
def test_subnet_b_params(subnet_b):
    _, _, static = subnet_b
    parts = _hand_count(_subnet_b())
    assert _num_params(static.backbone) == sum(parts.values())
    # ... and per part
    bb = static.backbone
    assert _num_params(bb.patch_embed) == parts['patch_embed']
    assert _num_params(bb.token_embed) == parts['cls_token'] + \
        parts['pos_embed']
    assert _num_params(bb.norm) == parts['final_norm']

    head = 576 * 1000 + 1000
    total = sum(parts.values()) + head
    assert total == 54_540_232
    assert abs(total - PUBLISHED_PARAMS) / PUBLISHED_PARAMS < 0.01
    # The published figure is what MMRazor 1.x's counter saw: parameters of
    # the conv / linear / norm layers only; the position embedding and the
    # relative-position tables are bare parameters it did not count.
    layers_only = total - parts['pos_embed'] - parts['rel_pos']
    assert round(layers_only / 1e6, 3) == 54.319


def _mmcv_layer_flops(model: nn.Module, by_module: dict) -> int:
    """FLOPs of the layers mmcv's counter hooks (conv, linear, norms,
    ReLU-like activations): attention matrix products outside layers are
    not counted, GELU has no counter."""
    counted = (nn.Conv2d, nn.Linear, nn.LayerNorm, nn.ReLU)
    return sum(by_module[name]['flops']
               for name, m in model.named_modules()
               if isinstance(m, counted))


@needs_subnet
def test_subnet_b_flops(subnet_b):
    _, _, static = subnet_b
    model = _Classifier(static.backbone, 1000, 576).eval()
    result = ResourceEstimator(input_shape=(1, 3, 224, 224)).estimate(
        model, flops_params_cfg=dict(units=None), by_module=True)
    assert result['params'] == 54_540_232
    mmcv_flops = _mmcv_layer_flops(model, result['by_module'])
    assert abs(mmcv_flops - PUBLISHED_FLOPS) / PUBLISHED_FLOPS < 0.03
    # The estimator's mmcv convention leaves out, as mmcv did, the 4
    # token-by-token products per block (q k^T, q R_k^T, a v, a R_v; each
    # TOKENS^2 * q_width MACs) run outside layers; its MACs keep them.
    assert result['flops'] == mmcv_flops
    chosen = _subnet_b()
    q_total = sum(
        64 * chosen[f'backbone.blocks.{i}.attn.mutable_attrs.num_heads']
        for i in range(14))
    layer_macs = sum(
        m.in_features * m.out_features * TOKENS for m in model.modules()
        if isinstance(m, nn.Linear) and m is not model.head) + \
        model.head.in_features * model.head.out_features + \
        static.backbone.patch_embed.projection.weight.numel() * (TOKENS - 1)
    assert result['macs'] - layer_macs == 4 * TOKENS**2 * q_total


@needs_subnet
def test_supernet_estimate_matches_static(subnet_b):
    model, _, static = subnet_b
    est = ResourceEstimator(input_shape=(1, 3, 224, 224))
    dyn = est.estimate(model, flops_params_cfg=dict(units=None))
    sta = est.estimate(static, flops_params_cfg=dict(units=None))
    assert dyn == sta


# ------------------------------------------------------------ small supernet
SMALL = dict(
    mlp_ratios=[2.0, 3.0], num_heads=[2, 3], depth=[2, 3], embed_dims=[32,
                                                                        48])


def _sample(model: nn.Module) -> None:
    for m in model.modules():
        if hasattr(m, 'sample_choice') and not getattr(m, 'derived', False) \
                and not m.is_fixed:
            m.current_choice = m.sample_choice()


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_dynamic_equals_static(seed):
    random.seed(seed)
    torch.manual_seed(seed)
    backbone = AutoformerBackbone(
        SMALL, img_size=32, patch_size=8, max_relative_position=2)
    backbone.init_weights()
    model = _Classifier(backbone).eval()
    _sample(model)
    subnet, static = export_fix_subnet(model, slice_weight=True)
    static.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        out = model(x)
        expected = static(x)
    width = backbone.mutable_embed_dims.current_choice
    assert out.shape == (2, width)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)
    assert isinstance(static.backbone.blocks[0].attn, MultiheadAttention)
    assert not isinstance(static.backbone.blocks[0].attn,
                          DynamicMultiheadAttention)

    # the exported subnet loads into a fresh supernet: same outputs
    fresh = _Classifier(
        AutoformerBackbone(
            SMALL, img_size=32, patch_size=8,
            max_relative_position=2)).eval()
    fresh.load_state_dict(model.state_dict())
    load_fix_subnet(fresh, subnet)
    with torch.no_grad():
        torch.testing.assert_close(fresh(x), out, atol=1e-6, rtol=0)


def test_build_from_registry():
    backbone = MODELS.build(
        dict(
            type='AutoformerBackbone',
            arch_setting=SMALL,
            img_size=32,
            patch_size=8))
    assert isinstance(backbone.norm, DynamicLayerNorm)
    assert backbone.last_mutable.choices == [32, 48]
    out = backbone(torch.randn(1, 3, 32, 32))
    assert isinstance(out, tuple) and out[0].shape == (1, 48)


# ------------------------------------------------------------ attention
def _attention(relative_position: bool) -> DynamicMultiheadAttention:
    torch.manual_seed(0)
    attn = DynamicMultiheadAttention(
        32,
        4,
        head_dims=8,
        relative_position=relative_position,
        max_relative_position=1).eval()
    if relative_position:
        for rel in (attn.rel_pos_embed_k, attn.rel_pos_embed_v):
            nn.init.normal_(rel.embeddings_table_v)
            nn.init.normal_(rel.embeddings_table_h)
    embed = OneShotMutableChannel(32, [16, 32], candidate_mode='number')
    heads = OneShotMutableValue([2, 4])
    attn.register_mutable_attr('embed_dims', embed)
    attn.register_mutable_attr('num_heads', heads)
    embed.current_choice = 16
    heads.current_choice = 2
    return attn


def _rel_index(n_tokens: int, max_rel: int):
    """Table rows of pair (i, j), written out: row 0 with the class token,
    else clipped (key - query) distance + max_rel + 1."""
    side = math.isqrt(n_tokens - 1)
    rows_v = torch.zeros(n_tokens, n_tokens, dtype=torch.long)
    rows_h = torch.zeros(n_tokens, n_tokens, dtype=torch.long)
    for i in range(1, n_tokens):
        for j in range(1, n_tokens):
            dv = (j - 1) // side - (i - 1) // side
            dh = (j - 1) % side - (i - 1) % side
            rows_v[i, j] = max(-max_rel, min(max_rel, dv)) + max_rel + 1
            rows_h[i, j] = max(-max_rel, min(max_rel, dh)) + max_rel + 1
    return rows_v, rows_h


def _reference(attn: DynamicMultiheadAttention, x: torch.Tensor,
               relative: bool) -> torch.Tensor:
    """softmax(q k^T / sqrt(d)) v per head (plus relative terms), with the
    first 16 input channels and the first 2 heads of 8 channels."""
    e, heads, d = 16, 2, 8
    q_w = heads * d

    def lin(layer, inp, rows, cols):
        return inp @ layer.weight[:rows, :cols].T + layer.bias[:rows]

    q = lin(attn.w_qs, x, q_w, e)
    k = lin(attn.w_ks, x, q_w, e)
    v = lin(attn.w_vs, x, q_w, e)
    n = x.shape[1]
    if relative:
        rows_v, rows_h = _rel_index(n, 1)
        rel_k = attn.rel_pos_embed_k.embeddings_table_v[rows_v] + \
            attn.rel_pos_embed_k.embeddings_table_h[rows_h]
        rel_v = attn.rel_pos_embed_v.embeddings_table_v[rows_v] + \
            attn.rel_pos_embed_v.embeddings_table_h[rows_h]
    outs = []
    for h in range(heads):
        qh, kh, vh = (t[..., h * d:(h + 1) * d] for t in (q, k, v))
        logits = qh @ kh.transpose(-2, -1)
        if relative:
            logits = logits + torch.einsum('bid,ijd->bij', qh, rel_k)
        a = torch.softmax(logits / math.sqrt(d), dim=-1)
        o = a @ vh
        if relative:
            o = o + torch.einsum('bij,ijd->bid', a, rel_v)
        outs.append(o)
    out = torch.cat(outs, dim=-1)
    return out @ attn.proj.weight[:e, :q_w].T + attn.proj.bias[:e]


@pytest.mark.parametrize('relative', [False, True])
def test_dynamic_attention_matches_plain_computation(relative):
    attn = _attention(relative)
    x = torch.randn(2, 10, 16)  # class token + 3x3 patches
    with torch.no_grad():
        out = attn(x)
        ref = _reference(attn, x, relative)
        static = attn.to_static_op()
        static_out = static(x)
    assert out.shape == (2, 10, 16)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)
    torch.testing.assert_close(static_out, out, atol=1e-6, rtol=0)
    assert type(static) is MultiheadAttention
    assert static.w_qs.weight.shape == (16, 16)
    assert static.num_heads == 2


def test_attention_heads_must_match_q_width():
    attn = _attention(False)
    other = OneShotMutableChannel(32, [8, 32], candidate_mode='number')
    attn.register_mutable_attr('q_embed_dims', other)
    other.current_choice = 8  # 1 head of 8, but num_heads says 2
    with pytest.raises(ValueError, match='num_heads'):
        attn(torch.randn(1, 10, 16))


def test_dynamic_layernorm_static():
    norm = DynamicLayerNorm(8)
    nn.init.normal_(norm.weight)
    nn.init.normal_(norm.bias)
    width = OneShotMutableChannel(8, [4, 8], candidate_mode='number')
    norm.register_mutable_attr('num_features', width)
    width.current_choice = 4
    x = torch.randn(3, 5, 4)
    static = norm.to_static_op()
    assert type(static) is nn.LayerNorm and static.normalized_shape == (4, )
    torch.testing.assert_close(norm(x), static(x))
    with pytest.raises(ValueError, match='masks 4 channels'):
        DynamicLayerNorm(6).register_mutable_attr(
            'num_features', OneShotMutableChannel(4, [4], 'number'))


# ------------------------------------------------------------ arch_setting
@pytest.mark.parametrize('change, key', [
    (dict(num_heads=[]), 'num_heads'),
    (dict(embed_dims=[528, 57.6]), 'embed_dims'),
    (dict(depth='14'), 'depth'),
    (dict(mlp_ratios=[3.0, -1]), 'mlp_ratios'),
    (dict(depth=[14, 14]), 'depth'),
    (dict(kernel_size=[3]), 'kernel_size'),
])
def test_bad_arch_setting(change, key):
    arch = dict(copy.deepcopy(SMALL), **change)
    with pytest.raises(ValueError, match=key):
        AutoformerBackbone(arch, img_size=32, patch_size=8)


def test_missing_arch_key():
    arch = copy.deepcopy(SMALL)
    del arch['embed_dims']
    with pytest.raises(ValueError, match='embed_dims'):
        AutoformerBackbone(arch, img_size=32, patch_size=8)
