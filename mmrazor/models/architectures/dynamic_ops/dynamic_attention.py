"""Multi-head self-attention with 2-d relative position encoding (AutoFormer),
in a plain and a dynamic (weight-sharing) form.

AutoFormer (Chen et al., ICCV 2021) searches, per block, the number of
heads of an attention whose heads have a fixed width (``head_dims``, 64),
so that the q/k/v width is ``num_heads * head_dims``, and the embedding
width shared by the whole network. Attention logits and outputs get
relative position terms looked up in two learnt tables (vertical and
horizontal distance between patches, clipped to ``max_relative_position``;
row 0 is reserved for pairs involving the class token).

The plain classes (:class:`RelativePosition2D`, :class:`MultiheadAttention`)
are what :meth:`to_static_op` of the dynamic ones returns.
"""
from typing import Any, Optional

import numpy as np
import torch
from torch import nn

from mmrazor.models.mutables import BaseMutable
from mmrazor.models.mutables.mutable_channel import DerivedChannelMutable
from mmrazor.models.mutables.mutable_channel.base_mutable_channel import \
    first_k_mask
from mmrazor.registry import MODELS
from .base import DynamicMixin, take
from .dynamic_linear import DynamicLinear


def _static_of(module: nn.Module) -> nn.Module:
    """``module.to_static_op()`` when it has one, else ``module`` (an
    exporter may have converted the children already)."""
    convert = getattr(module, 'to_static_op', None)
    return convert() if callable(convert) else module


class RelativePosition2D(nn.Module):
    """Learnt 2-d relative position embeddings of the tokens of a square
    patch grid preceded by a class token.

    Args:
        head_dims (int): Width of one embedding (the head width).
        max_relative_position (int): Row/column distances are clipped to
            ``[-max_relative_position, max_relative_position]``. Defaults
            to 14.
    """

    def __init__(self, head_dims: int, max_relative_position: int = 14
                 ) -> None:
        super().__init__()
        if max_relative_position < 1:
            raise ValueError('max_relative_position must be >= 1, got '
                             f'{max_relative_position!r}')
        self.head_dims = head_dims
        self.max_relative_position = max_relative_position
        rows = 2 * max_relative_position + 2
        self.embeddings_table_v = nn.Parameter(torch.zeros(rows, head_dims))
        self.embeddings_table_h = nn.Parameter(torch.zeros(rows, head_dims))
        nn.init.trunc_normal_(self.embeddings_table_v, std=.02)
        nn.init.trunc_normal_(self.embeddings_table_h, std=.02)

    def get_active_params(self):
        """``(table_v, table_h)`` in use."""
        return self.embeddings_table_v, self.embeddings_table_h

    def distance_index(self, length: int, device: torch.device):
        """Table rows of every (query, key) pair of ``length`` tokens.

        Args:
            length (int): Tokens: one class token and a square grid.
            device (torch.device): Device of the result.

        Returns:
            tuple[Tensor]: ``(index_v, index_h)``, long ``(length,
            length)`` tensors; pairs with the class token use row 0.
        """
        patches = length - 1
        side = int(round(patches**0.5))
        if side * side != patches:
            raise ValueError(f'{type(self).__name__} needs a class token and '
                             f'a square grid of patches, got {length} tokens')
        # numpy: index bookkeeping is not a model op (FLOPs counters)
        pos = np.arange(patches)
        row, col = pos // side, pos % side
        m = self.max_relative_position
        index_v = np.zeros((length, length), dtype=np.int64)
        index_h = np.zeros((length, length), dtype=np.int64)
        index_v[1:, 1:] = np.clip(row[None, :] - row[:, None], -m, m) + m + 1
        index_h[1:, 1:] = np.clip(col[None, :] - col[:, None], -m, m) + m + 1
        return (torch.from_numpy(index_v).to(device),
                torch.from_numpy(index_h).to(device))

    def forward(self, length_q: int, length_k: int) -> torch.Tensor:
        """The embeddings of all pairs: ``(length_q, length_k, head_dims)``.
        """
        if length_q != length_k:
            raise ValueError('RelativePosition2D is for self-attention: '
                             f'length_q ({length_q}) != length_k '
                             f'({length_k})')
        table_v, table_h = self.get_active_params()
        index_v, index_h = self.distance_index(length_q, table_v.device)
        return table_v[index_v] + table_h[index_h]


@MODELS.register_module()
class DynamicRelativePosition2D(RelativePosition2D, DynamicMixin):
    """:class:`RelativePosition2D` whose embedding width may follow a
    channel mutable (mutable attribute ``'head_dims'``; the first columns
    of the tables are used, as in AutoFormer).

    Active hyper-parameter, for resource estimators: ``active_head_dims``;
    the current choice has ``2 * (2 * max_relative_position + 2) *
    active_head_dims`` parameters.

    Args: as :class:`RelativePosition2D`.
    """

    mutable_attr_names = ('head_dims', )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._init_mutable_attrs()

    def _check_mutable_attr(self, name: str, mutable: BaseMutable) -> None:
        self._check_channel_mutable(name, mutable, self.head_dims)

    @property
    def active_head_dims(self) -> int:
        """Embedding width in use."""
        return self._active_count('head_dims', self.head_dims)

    def get_active_params(self):
        index = self._channel_index('head_dims',
                                    self.embeddings_table_v.device)
        return (take(self.embeddings_table_v, index, 1),
                take(self.embeddings_table_h, index, 1))

    def to_static_op(self) -> RelativePosition2D:
        """A plain :class:`RelativePosition2D` of the current width."""
        table_v, table_h = self.get_active_params()
        static = RelativePosition2D(self.active_head_dims,
                                    self.max_relative_position)
        static = static.to(table_v.device, table_v.dtype)
        with torch.no_grad():
            static.embeddings_table_v.copy_(table_v)
            static.embeddings_table_h.copy_(table_h)
        static.train(self.training)
        return static


class MultiheadAttention(nn.Module):
    """Multi-head self-attention with separate q/k/v projections of width
    ``num_heads * head_dims`` and optional 2-d relative position terms.

    For ``x`` of shape ``(B, N, embed_dims)`` and each head (``d =
    head_dims``, ``s = qk_scale or d ** -0.5``)::

        logits = s * (q @ k^T + q @ R_k^T)      # R_k: (N, N, d) per pair
        a = softmax(logits)
        out = a @ v + sum_j a[:, j] * R_v[:, j]

    then the heads are concatenated and projected back to ``embed_dims``.

    Args:
        embed_dims (int): Token width.
        num_heads (int): Number of heads.
        head_dims (int): Width of one head. Defaults to 64.
        qkv_bias (bool): Biases in the q/k/v projections. Defaults to True.
        qk_scale (float, optional): Logit scale. Defaults to
            ``head_dims ** -0.5``.
        attn_drop_rate (float): Dropout on the attention weights.
        proj_drop_rate (float): Dropout on the output.
        relative_position (bool): Add 2-d relative position terms (needs a
            class token and a square patch grid). Defaults to True.
        max_relative_position (int): Clip of the relative distances.
            Defaults to 14.
    """

    def __init__(self,
                 embed_dims: int,
                 num_heads: int,
                 head_dims: int = 64,
                 qkv_bias: bool = True,
                 qk_scale: Optional[float] = None,
                 attn_drop_rate: float = 0.,
                 proj_drop_rate: float = 0.,
                 relative_position: bool = True,
                 max_relative_position: int = 14) -> None:
        super().__init__()
        for name, value in (('embed_dims', embed_dims),
                            ('num_heads', num_heads),
                            ('head_dims', head_dims)):
            if not isinstance(value, int) or isinstance(value, bool) \
                    or value < 1:
                raise ValueError(f'{name} must be a positive int, got '
                                 f'{value!r}')
        self.embed_dims = embed_dims
        self.num_heads = num_heads
        self.head_dims = head_dims
        self.q_embed_dims = num_heads * head_dims
        self.qkv_bias = qkv_bias
        self.qk_scale = qk_scale
        self.scale = qk_scale or head_dims**-0.5
        self.attn_drop_rate = attn_drop_rate
        self.proj_drop_rate = proj_drop_rate
        self.relative_position = relative_position
        self.max_relative_position = max_relative_position

        self.w_qs = self._make_linear(embed_dims, self.q_embed_dims, qkv_bias)
        self.w_ks = self._make_linear(embed_dims, self.q_embed_dims, qkv_bias)
        self.w_vs = self._make_linear(embed_dims, self.q_embed_dims, qkv_bias)
        self.attn_drop = nn.Dropout(attn_drop_rate)
        self.proj = self._make_linear(self.q_embed_dims, embed_dims, True)
        self.proj_drop = nn.Dropout(proj_drop_rate)
        if relative_position:
            self.rel_pos_embed_k = self._make_rel_pos()
            self.rel_pos_embed_v = self._make_rel_pos()

    def _make_linear(self, in_features: int, out_features: int,
                     bias: bool) -> nn.Linear:
        return nn.Linear(in_features, out_features, bias=bias)

    def _make_rel_pos(self) -> RelativePosition2D:
        return RelativePosition2D(self.head_dims, self.max_relative_position)

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        # (B, N, h * d) -> (B, h, N, d)
        b, n, width = x.shape
        if width % self.head_dims:
            raise ValueError(f'q/k/v width {width} is not a multiple of '
                             f'head_dims {self.head_dims}')
        return x.reshape(b, n, width // self.head_dims,
                         self.head_dims).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, N, embed_dims)`` tokens to ``(B, N, embed_dims)``."""
        b, n, _ = x.shape
        q = self._split_heads(self.w_qs(x))
        k = self._split_heads(self.w_ks(x))
        v = self._split_heads(self.w_vs(x))
        heads = q.shape[1]

        attn = torch.matmul(q, k.transpose(-2, -1))
        if self.relative_position:
            r_k = self.rel_pos_embed_k(n, n)  # (N, N, d)
            # (N, B*h, d) @ (N, d, N) -> (N, B*h, N)
            q_by_token = q.permute(2, 0, 1, 3).reshape(n, b * heads, -1)
            rel = torch.matmul(q_by_token, r_k.transpose(1, 2))
            attn = attn + rel.transpose(0, 1).reshape(b, heads, n, n)
        attn = (attn * self.scale).softmax(dim=-1)
        attn = self.attn_drop(attn)

        out = torch.matmul(attn, v)  # (B, h, N, d)
        if self.relative_position:
            r_v = self.rel_pos_embed_v(n, n)  # (N, N, d)
            a_by_token = attn.permute(2, 0, 1, 3).reshape(n, b * heads, n)
            rel = torch.matmul(a_by_token, r_v)  # (N, B*h, d)
            out = out + rel.transpose(0, 1).reshape(b, heads, n, -1)
        out = out.transpose(1, 2).reshape(b, n, -1)
        return self.proj_drop(self.proj(out))


@MODELS.register_module()
class DynamicMultiheadAttention(MultiheadAttention, DynamicMixin):
    """:class:`MultiheadAttention` built at its largest size, whose
    embedding width and number of heads follow mutables.

    Mutable attributes:

    * ``'embed_dims'``: a channel mutable of length ``embed_dims`` (the
      input of q/k/v and the output of ``proj``);
    * ``'num_heads'``: a value mutable of ints in ``[1, num_heads]``;
      registering it also derives ``'q_embed_dims'`` (``num_heads *
      head_dims``, the first heads) unless one is registered already;
    * ``'q_embed_dims'``: a channel mutable of length ``num_heads *
      head_dims`` (the output of q/k/v and the input of ``proj``), e.g.
      ``base_embed_dims * mutable_num_heads``; its value must stay a
      multiple of ``head_dims``.

    The head width is fixed (AutoFormer searches heads of 64 channels).
    Static export gives a plain :class:`MultiheadAttention` with the active
    heads and channels and the same outputs.

    Args: as :class:`MultiheadAttention`.
    """

    mutable_attr_names = ('embed_dims', 'num_heads', 'q_embed_dims')
    mutable_attr_aliases = {
        'in_channels': 'embed_dims',
        'out_channels': 'embed_dims'
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._init_mutable_attrs()
        self._derived_q = False

    def _make_linear(self, in_features: int, out_features: int,
                     bias: bool) -> DynamicLinear:
        return DynamicLinear(in_features, out_features, bias=bias)

    def _make_rel_pos(self) -> DynamicRelativePosition2D:
        return DynamicRelativePosition2D(self.head_dims,
                                         self.max_relative_position)

    def _check_mutable_attr(self, name: str, mutable: BaseMutable) -> None:
        if name == 'embed_dims':
            self._check_channel_mutable(name, mutable, self.embed_dims)
        elif name == 'q_embed_dims':
            self._check_channel_mutable(name, mutable, self.q_embed_dims)
        else:
            for choice in mutable.choices:
                if not isinstance(choice, int) or isinstance(choice, bool) \
                        or not 1 <= choice <= self.num_heads:
                    raise ValueError(
                        f'num_heads choice {choice!r} is not an int in '
                        f'[1, {self.num_heads}]')

    def register_mutable_attr(self, attr: str, mutable: BaseMutable
                              ) -> 'DynamicMultiheadAttention':
        """Make ``attr`` follow ``mutable`` and pass it on to the
        projections (see the class docstring).

        Returns:
            The op itself, so calls chain.
        """
        name = self.mutable_attr_aliases.get(attr, attr)
        super().register_mutable_attr(attr, mutable)
        if name == 'embed_dims':
            for linear in (self.w_qs, self.w_ks, self.w_vs):
                linear.register_mutable_attr('in_features', mutable)
            self.proj.register_mutable_attr('out_features', mutable)
        elif name == 'q_embed_dims':
            self._derived_q = False
            self._set_q_embed_dims(mutable)
        elif name == 'num_heads' and (
                self._derived_q
                or self.get_mutable_attr('q_embed_dims') is None):
            self._derived_q = True
            self._set_q_embed_dims(self._derive_q_embed_dims(mutable))
        return self

    def _derive_q_embed_dims(self, num_heads: BaseMutable
                             ) -> DerivedChannelMutable:
        head_dims, total = self.head_dims, self.q_embed_dims
        derived = DerivedChannelMutable(
            choice_fn=lambda: int(num_heads.current_choice) * head_dims,
            source_mutables=[num_heads])
        derived.mask_fn = lambda: first_k_mask(total, derived.current_choice)
        return derived

    def _set_q_embed_dims(self, mutable: BaseMutable) -> None:
        self.mutable_attrs['q_embed_dims'] = mutable
        for linear in (self.w_qs, self.w_ks, self.w_vs):
            linear.register_mutable_attr('out_features', mutable)
        self.proj.register_mutable_attr('in_features', mutable)

    @property
    def active_embed_dims(self) -> int:
        """Token width in use."""
        return self._active_count('embed_dims', self.embed_dims)

    @property
    def active_q_embed_dims(self) -> int:
        """q/k/v width in use."""
        return self._active_count('q_embed_dims', self.q_embed_dims)

    @property
    def active_num_heads(self) -> int:
        """Heads in use; checks they agree with the q/k/v width."""
        q_dims = self.active_q_embed_dims
        if q_dims % self.head_dims:
            raise ValueError(f'q/k/v width {q_dims} is not a multiple of '
                             f'head_dims {self.head_dims}')
        heads = q_dims // self.head_dims
        mutable = self.get_mutable_attr('num_heads')
        if mutable is not None and mutable.current_choice != heads:
            raise ValueError(
                f'num_heads is {mutable.current_choice} but the q/k/v width '
                f'is {q_dims} = {heads} heads of {self.head_dims}: register '
                'a q_embed_dims mutable equal to num_heads * head_dims')
        return heads

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if len(self.mutable_attrs):
            self.active_num_heads  # consistency check
        return super().forward(x)

    def to_static_op(self) -> MultiheadAttention:
        """A plain :class:`MultiheadAttention` of the current choice (copied
        weights, same outputs)."""
        static = MultiheadAttention(
            self.active_embed_dims,
            self.active_num_heads,
            head_dims=self.head_dims,
            qkv_bias=self.qkv_bias,
            qk_scale=self.qk_scale,
            attn_drop_rate=self.attn_drop_rate,
            proj_drop_rate=self.proj_drop_rate,
            relative_position=self.relative_position,
            max_relative_position=self.max_relative_position)
        names = ['w_qs', 'w_ks', 'w_vs', 'proj']
        if self.relative_position:
            names += ['rel_pos_embed_k', 'rel_pos_embed_v']
        for name in names:
            setattr(static, name, _static_of(getattr(self, name)))
        static.attn_drop.p = self.attn_drop.p
        static.proj_drop.p = self.proj_drop.p
        static.train(self.training)
        return static
