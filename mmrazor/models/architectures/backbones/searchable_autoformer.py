"""AutoFormer's weight-sharing vision-transformer search space.

AutoFormer (Chen et al., "AutoFormer: Searching Transformers for Visual
Recognition", ICCV 2021) trains one ViT supernet whose subnets share
weights: the embedding width (one choice for the whole network), the
depth, and per block the number of attention heads (64 channels each) and
the MLP ratio are searched. The network is a ViT: a 16x16 patch embedding,
a class token, an absolute position embedding, pre-norm blocks
(LayerNorm, multi-head self-attention with 2-d relative position encoding,
LayerNorm, GELU MLP) and a final LayerNorm; the class token's feature is
the output.

Mutables (subnet keys, as in MMRazor 1.x's ``AUTOFORMER_SUBNET_*.yaml``,
relative to a classifier holding the backbone as ``backbone``):

* ``backbone.mutable_embed_dims``: the embedding width (also
  :attr:`AutoformerBackbone.last_mutable`, which a dynamic head follows);
* ``backbone.mutable_depth``: how many blocks run;
* ``backbone.base_embed_dims``: the head width (one choice, 64);
* ``backbone.blocks.{i}.attn.mutable_attrs.num_heads`` and
  ``backbone.blocks.{i}.mutable_mlp_ratios`` for every block;
* derived (keys accepted and ignored when loading):
  ``backbone.blocks.{i}.mutable_q_embed_dims`` (``num_heads * 64``) and
  ``backbone.blocks.{i}.middle_channels`` (``embed_dims * mlp_ratio``).

These keys are the mutables' aliases, so a subnet file loads whether the
backbone sits in a classifier or is used alone.
"""
import copy
from numbers import Real
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmcv.cnn import build_activation_layer
from mmcv.cnn.bricks.drop import DropPath
from mmengine.model import BaseModule
from torch import nn

from mmrazor.models.mutables import (BaseMutable, OneShotMutableChannel,
                                     OneShotMutableValue)
from mmrazor.registry import MODELS
from ..dynamic_ops import (DynamicClsTokenPosEmbed, DynamicLinear,
                           DynamicMultiheadAttention, DynamicPatchEmbed,
                           DynamicSequential)

#: The keys of ``arch_setting`` and the type of their values.
ARCH_KEYS = {
    'mlp_ratios': Real,
    'num_heads': int,
    'depth': int,
    'embed_dims': int
}


def check_arch_setting(arch_setting: Dict) -> Dict[str, List]:
    """Validate an AutoFormer ``arch_setting``.

    Args:
        arch_setting (dict): ``mlp_ratios`` (positive numbers),
            ``num_heads``, ``depth`` and ``embed_dims`` (positive ints):
            each a non-empty list of distinct candidate values.

    Returns:
        dict[str, list]: The candidate lists (``mlp_ratios`` as floats).

    Raises:
        ValueError: A key is missing or unknown, or a value is not a
            non-empty list of distinct positive numbers of the right type
            (the message names the key and the value).
    """
    if not isinstance(arch_setting, dict):
        raise ValueError('arch_setting must be a dict with keys '
                         f'{list(ARCH_KEYS)}, got {arch_setting!r}')
    unknown = [k for k in arch_setting if k not in ARCH_KEYS]
    if unknown:
        raise ValueError(f'arch_setting has unknown key(s) {unknown}; '
                         f'accepted keys: {list(ARCH_KEYS)}')
    checked: Dict[str, List] = {}
    for key, kind in ARCH_KEYS.items():
        if key not in arch_setting:
            raise ValueError(f'arch_setting is missing key {key!r} (needs '
                             f'{list(ARCH_KEYS)})')
        values = arch_setting[key]
        if isinstance(values, (str, bytes)) or not isinstance(
                values, Sequence) or not len(values):
            raise ValueError(f'arch_setting[{key!r}] must be a non-empty '
                             f'list of candidates, got {values!r}')
        for v in values:
            if isinstance(v, bool) or not isinstance(v, kind) or v <= 0:
                what = 'positive number' if kind is Real else \
                    'positive int'
                raise ValueError(f'arch_setting[{key!r}] = {values!r}: '
                                 f'{v!r} is not a {what}')
        values = [float(v) for v in values] if kind is Real else list(values)
        if len(set(values)) != len(values):
            raise ValueError(f'arch_setting[{key!r}] = {values!r} repeats '
                             'a candidate')
        checked[key] = values
    return checked


def build_dynamic_norm(norm_cfg: Dict, num_features: int) -> nn.Module:
    """A dynamic LayerNorm from ``norm_cfg``.

    Args:
        norm_cfg (dict): ``type`` is ``'DynamicLayerNorm'`` (``'LN'`` and
            ``'LayerNorm'`` are read as it); other keys go to the layer
            (e.g. ``eps``).
        num_features (int): The (largest) normalized width.

    Returns:
        nn.Module: A layer with ``register_mutable_attr``.
    """
    cfg = copy.deepcopy(norm_cfg)
    if not isinstance(cfg, dict) or 'type' not in cfg:
        raise ValueError(f'norm_cfg must be a dict with a type, got '
                         f'{norm_cfg!r}')
    if cfg['type'] in ('LN', 'LayerNorm', nn.LayerNorm):
        cfg['type'] = 'DynamicLayerNorm'
    cfg.pop('requires_grad', None)
    layer = MODELS.build(dict(cfg, normalized_shape=num_features))
    if not hasattr(layer, 'register_mutable_attr'):
        raise ValueError(f'norm_cfg {norm_cfg!r} builds a '
                         f'{type(layer).__name__}, which is not a dynamic '
                         'op; use dict(type="DynamicLayerNorm")')
    return layer


class TransformerEncoderLayer(BaseModule):
    """A pre-norm ViT block of the AutoFormer supernet, built at its
    largest size.

    ``x = x + drop_path(attn(norm1(x)))``; ``x = x + drop_path(fc2(drop(
    act(fc1(norm2(x))))))`` (with dropout after ``fc2`` too). The searched
    sizes follow mutables given to :meth:`register_mutables`.

    Args:
        embed_dims (int): Largest token width.
        num_heads (int): Largest number of heads.
        mlp_ratio (float): Largest MLP ratio.
        head_dims (int): Width of a head. Defaults to 64.
        drop_rate (float): Dropout after the attention projection and in the
            MLP. Defaults to 0.
        attn_drop_rate (float): Dropout of the attention weights.
        drop_path_rate (float): Stochastic depth rate of this block.
        qkv_bias (bool): Biases in q/k/v. Defaults to True.
        relative_position (bool): Relative position encoding in the
            attention. Defaults to True.
        max_relative_position (int): Its clipping distance. Defaults to 14.
        act_cfg (dict): The MLP activation. Defaults to GELU.
        norm_cfg (dict): The norms. Defaults to DynamicLayerNorm.
        init_cfg (dict, optional): mmengine initialisation config.
    """

    def __init__(self,
                 embed_dims: int,
                 num_heads: int,
                 mlp_ratio: float,
                 head_dims: int = 64,
                 drop_rate: float = 0.,
                 attn_drop_rate: float = 0.,
                 drop_path_rate: float = 0.,
                 qkv_bias: bool = True,
                 relative_position: bool = True,
                 max_relative_position: int = 14,
                 act_cfg: Dict = dict(type='GELU'),
                 norm_cfg: Dict = dict(type='DynamicLayerNorm'),
                 init_cfg: Optional[Dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.embed_dims = embed_dims
        self.max_middle_channels = int(embed_dims * mlp_ratio)
        self.norm1 = build_dynamic_norm(norm_cfg, embed_dims)
        self.attn = DynamicMultiheadAttention(
            embed_dims,
            num_heads,
            head_dims=head_dims,
            qkv_bias=qkv_bias,
            attn_drop_rate=attn_drop_rate,
            proj_drop_rate=drop_rate,
            relative_position=relative_position,
            max_relative_position=max_relative_position)
        self.norm2 = build_dynamic_norm(norm_cfg, embed_dims)
        self.fc1 = DynamicLinear(embed_dims, self.max_middle_channels)
        self.act = build_activation_layer(act_cfg)
        self.fc2 = DynamicLinear(self.max_middle_channels, embed_dims)
        self.ffn_drop = nn.Dropout(drop_rate)
        self.drop_path = DropPath(drop_path_rate) if drop_path_rate > 0 \
            else nn.Identity()

    def register_mutables(self, embed_dims: BaseMutable,
                          num_heads: BaseMutable, q_embed_dims: BaseMutable,
                          mlp_ratios: BaseMutable,
                          middle_channels: BaseMutable) -> None:
        """Make the block follow the searched sizes.

        Args:
            embed_dims (BaseMutable): Token width (channel mutable).
            num_heads (BaseMutable): Heads (value mutable).
            q_embed_dims (BaseMutable): q/k/v width, ``num_heads *
                head_dims`` (derived channel mutable).
            mlp_ratios (BaseMutable): MLP ratio (value mutable); kept as
                ``self.mutable_mlp_ratios``.
            middle_channels (BaseMutable): MLP width, ``embed_dims *
                mlp_ratio`` (derived channel mutable).
        """
        self.mutable_mlp_ratios = mlp_ratios
        self.mutable_q_embed_dims = q_embed_dims
        self.middle_channels = middle_channels
        for norm in (self.norm1, self.norm2):
            norm.register_mutable_attr('num_features', embed_dims)
        self.attn.register_mutable_attr('embed_dims', embed_dims)
        self.attn.register_mutable_attr('num_heads', num_heads)
        self.attn.register_mutable_attr('q_embed_dims', q_embed_dims)
        self.fc1.register_mutable_attr('in_features', embed_dims)
        self.fc1.register_mutable_attr('out_features', middle_channels)
        self.fc2.register_mutable_attr('in_features', middle_channels)
        self.fc2.register_mutable_attr('out_features', embed_dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x)))
        y = self.ffn_drop(self.act(self.fc1(self.norm2(x))))
        return x + self.drop_path(self.ffn_drop(self.fc2(y)))


@MODELS.register_module()
class AutoformerBackbone(BaseModule):
    """The AutoFormer supernet (a weight-sharing ViT), MMRazor 1.x's
    ``AutoformerBackbone``.

    Built at the largest candidates; every block has its own searched
    number of heads and MLP ratio, the embedding width and depth are
    searched for the whole network (see the module docstring for the
    mutables and their subnet keys).

    Args:
        arch_setting (dict): Candidates: ``mlp_ratios`` (e.g. ``[3.0, 3.5,
            4.0]``), ``num_heads`` (e.g. ``[8, 9, 10]``), ``depth`` (e.g.
            ``[14, 15, 16]``), ``embed_dims`` (e.g. ``[528, 576, 624]``).
        img_size (int): Input image size. Defaults to 224.
        patch_size (int): Patch size. Defaults to 16.
        in_channels (int): Image channels. Defaults to 3.
        drop_rate (float): Dropout after the position embedding, the
            attention projection and in the MLPs. Defaults to 0.
        drop_path_rate (float): Largest stochastic depth rate (linearly
            increasing over the blocks). Defaults to 0.1.
        qkv_bias (bool): Biases in q/k/v. Defaults to True.
        conv_cfg (dict, optional): Kept for 1.x configs; the patch
            projection is always a ``DynamicConv2d``. Defaults to None.
        norm_cfg (dict): Norm layers. Defaults to
            ``dict(type='DynamicLayerNorm')``.
        act_cfg (dict): MLP activation. Defaults to ``dict(type='GELU')``.
        use_final_norm (bool): LayerNorm after the last block. Defaults to
            True.
        relative_position (bool): Relative position encoding in the
            attention. Defaults to True.
        max_relative_position (int): Clip of the relative distances.
            Defaults to 14.
        head_dims (int): Width of an attention head. Defaults to 64.
        init_cfg (dict, optional): mmengine initialisation config; without
            it :meth:`init_weights` applies the ViT initialisation
            (truncated normal, std 0.02).

    Returns (forward):
        tuple[Tensor]: The class token feature, ``(B, embed_dims)``.
    """

    def __init__(self,
                 arch_setting: Dict[str, List],
                 img_size: int = 224,
                 patch_size: int = 16,
                 in_channels: int = 3,
                 drop_rate: float = 0.,
                 drop_path_rate: float = 0.1,
                 qkv_bias: bool = True,
                 conv_cfg: Optional[Dict] = None,
                 norm_cfg: Dict = dict(type='DynamicLayerNorm'),
                 act_cfg: Dict = dict(type='GELU'),
                 use_final_norm: bool = True,
                 relative_position: bool = True,
                 max_relative_position: int = 14,
                 head_dims: int = 64,
                 init_cfg: Optional[Dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        setting = check_arch_setting(arch_setting)
        if conv_cfg is not None and conv_cfg.get('type') not in (
                'Conv2d', 'DynamicConv2d', 'BigNasConv2d',
                'mmrazor.BigNasConv2d'):
            raise ValueError(f'conv_cfg {conv_cfg!r} is not supported; the '
                             'patch projection is a DynamicConv2d')
        self.arch_setting = setting
        self.mlp_ratios = sorted(setting['mlp_ratios'])
        self.num_heads = sorted(setting['num_heads'])
        self.depth_list = sorted(setting['depth'])
        self.embed_dims_list = sorted(setting['embed_dims'])
        self.embed_dims = self.embed_dims_list[-1]
        self.depth = self.depth_list[-1]
        self.head_dims = head_dims
        self.use_final_norm = use_final_norm

        # searched for the whole network
        self.mutable_embed_dims = OneShotMutableChannel(
            self.embed_dims,
            self.embed_dims_list,
            candidate_mode='number',
            alias='backbone.mutable_embed_dims')
        self.mutable_depth = OneShotMutableValue(
            self.depth_list, alias='backbone.mutable_depth')
        self.base_embed_dims = OneShotMutableChannel(
            head_dims, [head_dims],
            candidate_mode='number',
            alias='backbone.base_embed_dims')

        self.patch_embed = DynamicPatchEmbed(img_size, patch_size,
                                             in_channels, self.embed_dims)
        self.patch_embed.register_mutable_attr('embed_dims',
                                               self.mutable_embed_dims)
        self.token_embed = DynamicClsTokenPosEmbed(
            self.patch_embed.num_patches, self.embed_dims)
        self.token_embed.register_mutable_attr('embed_dims',
                                               self.mutable_embed_dims)
        self.drop_after_pos = nn.Dropout(drop_rate)

        rates = torch.linspace(0, drop_path_rate, self.depth).tolist()
        blocks = []
        for i in range(self.depth):
            block = TransformerEncoderLayer(
                self.embed_dims,
                self.num_heads[-1],
                self.mlp_ratios[-1],
                head_dims=head_dims,
                drop_rate=drop_rate,
                drop_path_rate=rates[i],
                qkv_bias=qkv_bias,
                relative_position=relative_position,
                max_relative_position=max_relative_position,
                act_cfg=act_cfg,
                norm_cfg=norm_cfg)
            self._register_block_mutables(i, block)
            blocks.append(block)
        self.blocks = DynamicSequential(*blocks)
        self.blocks.register_mutable_attr('depth', self.mutable_depth)

        if use_final_norm:
            self.norm = build_dynamic_norm(norm_cfg, self.embed_dims)
            self.norm.register_mutable_attr('num_features',
                                            self.mutable_embed_dims)

    def _register_block_mutables(self, index: int,
                                 block: TransformerEncoderLayer) -> None:
        prefix = f'backbone.blocks.{index}.'
        num_heads = OneShotMutableValue(
            self.num_heads, alias=prefix + 'attn.mutable_attrs.num_heads')
        mlp_ratios = OneShotMutableValue(
            self.mlp_ratios, alias=prefix + 'mutable_mlp_ratios')
        q_embed_dims = self.base_embed_dims * num_heads
        q_embed_dims.alias = prefix + 'mutable_q_embed_dims'
        middle_channels = self.mutable_embed_dims * mlp_ratios
        middle_channels.alias = prefix + 'middle_channels'
        block.register_mutables(self.mutable_embed_dims, num_heads,
                                q_embed_dims, mlp_ratios, middle_channels)

    @property
    def last_mutable(self) -> BaseMutable:
        """The mutable of the output width (a dynamic head follows it)."""
        return self.mutable_embed_dims

    def init_weights(self) -> None:
        """ViT initialisation (truncated normal, std 0.02, for linear
        weights and the embeddings; zero biases; unit norms) unless an
        ``init_cfg`` is given."""
        if self.init_cfg is not None:
            super().init_weights()
            return
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm) and \
                    module.weight is not None:
                nn.init.ones_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        nn.init.trunc_normal_(self.token_embed.cls_token, std=.02)
        nn.init.trunc_normal_(self.token_embed.pos_embed, std=.02)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor]:
        """``(B, C, H, W)`` images to ``((B, embed_dims), )``: the class
        token feature after the final norm."""
        x = self.patch_embed(x)
        x = self.drop_after_pos(self.token_embed(x))
        x = self.blocks(x)
        if self.use_final_norm:
            x = self.norm(x)
        return (x[:, 0], )
