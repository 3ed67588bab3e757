"""Multiply-accumulate counts of the ATen operators a model executes.

Every function here takes the positional ``args``, the ``kwargs`` and the
``out`` of one ATen call, as seen by a ``TorchDispatchMode``, and returns the
number of multiply-accumulates (MACs) it performs. Which operators are counted
follows the convention of the published model tables (torchvision, the
OpenMMLab model zoos): convolutions, matrix products (including the ones
inside fused attention kernels) and nothing else. Normalisation, activations,
element-wise arithmetic, pooling and softmax are *deliberately not counted*;
they are reported as "uncounted" so that a user sees what a figure leaves out.

Operators that only move or reinterpret data (views, copies, concatenation,
padding, indexing, tensor creation) do no arithmetic at all: they are neither
counted nor reported.
"""
import math
from typing import Any, Callable, Dict, Sequence

import torch

aten = torch.ops.aten

#: ``(args, kwargs, out) -> MACs``.
CountFn = Callable[[Sequence[Any], Dict[str, Any], Any], int]


def _numel(shape: Sequence[int]) -> int:
    return int(math.prod(int(s) for s in shape))


def _first_tensor(x: Any) -> torch.Tensor:
    """The tensor itself, or the first tensor of a tuple/list output."""
    if isinstance(x, torch.Tensor):
        return x
    if isinstance(x, (tuple, list)):
        for item in x:
            if isinstance(item, torch.Tensor):
                return item
    raise TypeError(f'expected a tensor output, got {type(x).__name__}')


def _arg(args: Sequence[Any], kwargs: Dict[str, Any], index: int,
         name: str, default: Any = None) -> Any:
    if len(args) > index:
        return args[index]
    return kwargs.get(name, default)


def count_convolution(args, kwargs, out) -> int:
    """``aten.convolution`` and friends: ``(input, weight, bias, stride,
    padding, dilation, transposed, ...)``.

    A plain convolution does ``Cin / groups * prod(kernel)`` MACs for every
    output element; a transposed one does ``Cout / groups * prod(kernel)``
    for every input element. Both are ``prod(weight.shape[1:])`` times the
    element count of the "dense" side. The bias is not counted.
    """
    inp, weight = args[0], args[1]
    transposed = bool(_arg(args, kwargs, 6, 'transposed', False))
    per_element = _numel(weight.shape[1:])
    if transposed:
        return _numel(inp.shape) * per_element
    return _numel(_first_tensor(out).shape) * per_element


def count_plain_convolution(args, kwargs, out) -> int:
    """Non-transposed convolutions without a ``transposed`` flag
    (``conv2d``, backend kernels): ``prod(weight.shape[1:])`` per output
    element."""
    return _numel(_first_tensor(out).shape) * _numel(args[1].shape[1:])


def count_mm(args, kwargs, out) -> int:
    """``mm(a, b)``: ``(m, k) @ (k, n)`` is ``m * k * n``."""
    a, b = args[0], args[1]
    return _numel(a.shape) * int(b.shape[-1])


def count_addmm(args, kwargs, out) -> int:
    """``addmm(bias, a, b)`` and ``_addmm_activation``; the bias add is not
    counted."""
    a, b = args[1], args[2]
    return _numel(a.shape) * int(b.shape[-1])


def count_bmm(args, kwargs, out) -> int:
    """``bmm(a, b)``: ``(B, m, k) @ (B, k, n)`` is ``B * m * k * n``."""
    a, b = args[0], args[1]
    return _numel(a.shape) * int(b.shape[-1])


def count_baddbmm(args, kwargs, out) -> int:
    """``baddbmm(bias, a, b)`` and ``addbmm(bias, a, b)``."""
    a, b = args[1], args[2]
    return _numel(a.shape) * int(b.shape[-1])


def count_matmul(args, kwargs, out) -> int:
    """``matmul`` / ``linear`` if a backend dispatches them undecomposed:
    the contraction length times the output element count."""
    a = args[0]
    contraction = int(a.shape[-1])
    return _numel(_first_tensor(out).shape) * contraction


def count_linear(args, kwargs, out) -> int:
    """``linear(input, weight, bias)``: ``in_features`` per output element."""
    weight = args[1]
    return _numel(_first_tensor(out).shape) * int(weight.shape[-1])


def count_mv(args, kwargs, out) -> int:
    """``mv(a, v)``: ``(m, k) @ (k,)`` is ``m * k``."""
    return _numel(args[0].shape)


def count_addmv(args, kwargs, out) -> int:
    """``addmv(bias, a, v)``."""
    return _numel(args[1].shape)


def count_dot(args, kwargs, out) -> int:
    """``dot`` / ``vdot`` of two vectors of length ``n``: ``n``."""
    return _numel(args[0].shape)


def count_addr(args, kwargs, out) -> int:
    """``addr(bias, u, v)``: the outer product has ``m * n`` products."""
    return _numel(args[1].shape) * _numel(args[2].shape)


def _attention_macs(batch: int, len_q: int, len_k: int, dim_qk: int,
                    dim_v: int) -> int:
    """``Q @ K^T`` plus ``softmax(.) @ V`` for ``batch`` (batch x heads)
    independent attentions."""
    return batch * len_q * len_k * (dim_qk + dim_v)


def count_sdpa(args, kwargs, out) -> int:
    """Fused scaled-dot-product attention with ``(..., L, E)`` layout
    (``_scaled_dot_product_{flash,efficient,cudnn}_attention`` and the CPU
    flash kernel)."""
    q, k, v = args[0], args[1], args[2]
    batch = _numel(q.shape[:-2])
    return _attention_macs(batch, int(q.shape[-2]), int(k.shape[-2]),
                           int(q.shape[-1]), int(v.shape[-1]))


def count_sdpa_bshd(args, kwargs, out) -> int:
    """``_flash_attention_forward`` / ``_efficient_attention_forward``,
    whose tensors are laid out ``(B, L, H, E)``."""
    q, k, v = args[0], args[1], args[2]
    batch = int(q.shape[0]) * int(q.shape[2])
    return _attention_macs(batch, int(q.shape[1]), int(k.shape[1]),
                           int(q.shape[-1]), int(v.shape[-1]))


def _mha_macs(q: torch.Tensor, k: torch.Tensor, embed_dim: int) -> int:
    """Input projections, attention and output projection of a multi-head
    attention whose query is ``(..., L, E)`` and key/value ``(..., S, E)``.

    Summed over heads, ``Q @ K^T`` and ``A @ V`` each cost ``L * S * E``.
    """
    batch = _numel(q.shape[:-2]) if q.dim() > 2 else 1
    len_q, len_k = int(q.shape[-2]), int(k.shape[-2])
    e = int(embed_dim)
    in_proj = batch * (len_q + 2 * len_k) * e * e
    attention = _attention_macs(batch, len_q, len_k, e, e)
    out_proj = batch * len_q * e * e
    return in_proj + attention + out_proj


def count_native_mha(args, kwargs, out) -> int:
    """``_native_multi_head_attention``: the fused inference path of
    ``nn.MultiheadAttention`` (used by e.g. torchvision's ViT in eval mode
    without gradients). ``fvcore``-style counters miss it entirely."""
    q, k = args[0], args[1]
    embed_dim = _arg(args, kwargs, 3, 'embed_dim')
    return _mha_macs(q, k, embed_dim)


def count_transformer_encoder_layer(args, kwargs, out) -> int:
    """``_transformer_encoder_layer_fwd``: the fused inference path of
    ``nn.TransformerEncoderLayer`` (attention plus the two FFN linears)."""
    src = args[0]
    embed_dim = int(_arg(args, kwargs, 1, 'embed_dim'))
    ffn_weight_1 = _arg(args, kwargs, 14, 'ffn_weight_1')
    hidden = int(ffn_weight_1.shape[0])
    tokens = _numel(src.shape[:-1])
    return _mha_macs(src, src, embed_dim) + 2 * tokens * embed_dim * hidden


def _packets(*names: str) -> list:
    """The ATen overload packets that exist in this PyTorch, by name."""
    found = []
    for name in names:
        packet = getattr(aten, name, None)
        if packet is not None:
            found.append(packet)
    return found


def count_conv_transpose(args, kwargs, out) -> int:
    """``conv_transpose{1,2,3}d(input, weight, ...)``: ``Cout / groups *
    prod(kernel)`` for every input element."""
    return _numel(args[0].shape) * _numel(args[1].shape[1:])


def _build_counters() -> Dict[Any, CountFn]:
    groups = [
        (('convolution', '_convolution', 'convolution_overrideable'),
         count_convolution),
        (('conv1d', 'conv2d', 'conv3d', 'mkldnn_convolution',
          'cudnn_convolution', 'miopen_convolution', '_slow_conv2d_forward',
          'thnn_conv2d', 'slow_conv3d_forward', 'slow_conv_dilated2d',
          'slow_conv_dilated3d', '_nnpack_spatial_convolution'),
         count_plain_convolution),
        (('conv_transpose1d', 'conv_transpose2d', 'conv_transpose3d'),
         count_conv_transpose),
        (('mm', ), count_mm),
        (('addmm', '_addmm_activation'), count_addmm),
        (('bmm', ), count_bmm),
        (('baddbmm', 'addbmm'), count_baddbmm),
        (('matmul', ), count_matmul),
        (('linear', ), count_linear),
        (('mv', ), count_mv),
        (('addmv', ), count_addmv),
        (('dot', 'vdot'), count_dot),
        (('addr', ), count_addr),
        (('_scaled_dot_product_flash_attention',
          '_scaled_dot_product_flash_attention_for_cpu',
          '_scaled_dot_product_efficient_attention',
          '_scaled_dot_product_cudnn_attention',
          '_scaled_dot_product_fused_attention_overrideable'), count_sdpa),
        (('_flash_attention_forward', '_efficient_attention_forward'),
         count_sdpa_bshd),
        (('_native_multi_head_attention', ), count_native_mha),
        (('_transformer_encoder_layer_fwd', ),
         count_transformer_encoder_layer),
    ]
    table: Dict[Any, CountFn] = {}
    for names, fn in groups:
        for packet in _packets(*names):
            table[packet] = fn
    return table


#: ATen overload packet -> MAC count function.
OP_COUNTERS: Dict[Any, CountFn] = _build_counters()

#: Operators that do no arithmetic (metadata, views, copies, creation,
#: gathering); they are neither counted nor reported as uncounted.
DATA_MOVEMENT_OPS = frozenset(p for p in _packets(
    'view', '_unsafe_view', 'reshape', '_reshape_alias', 'as_strided',
    'as_strided_', 't', 't_', 'transpose', 'transpose_', 'permute',
    'expand', 'expand_as', 'squeeze', 'squeeze_', 'unsqueeze', 'unsqueeze_',
    'select', 'slice', 'narrow', 'split', 'split_with_sizes', '_unsafe_split',
    'unbind', 'chunk', 'alias', 'detach', 'detach_', 'clone', 'contiguous',
    'copy', 'copy_', '_to_copy', 'to', '_copy_from', '_copy_from_and_resize',
    'lift', 'lift_fresh', 'lift_fresh_copy', 'empty', 'empty_like',
    'empty_strided', 'new_empty', 'new_empty_strided', 'new_zeros',
    'new_ones', 'new_full', 'zeros', 'zeros_like', 'ones', 'ones_like', 'full',
    'full_like', 'fill', 'fill_', 'zero_', 'arange', 'cat', 'stack', 'flatten',
    'unflatten', 'repeat', 'constant_pad_nd', 'pad', 'reflection_pad1d',
    'reflection_pad2d', 'replication_pad2d', 'roll', 'flip', 'index',
    'index_select', 'gather', 'embedding', 'masked_fill', 'masked_fill_',
    'where', 'channel_shuffle', 'native_channel_shuffle', 'pixel_shuffle',
    'pixel_unshuffle', 'im2col', 'unfold', 'movedim', 'diagonal', 'tril',
    'triu', 'view_as_real', 'view_as_complex', '_local_scalar_dense', 'item',
    'sym_size', 'sym_stride', 'sym_numel', 'sym_storage_offset', 'set_',
    'resize_', 'resize_as_', 'is_same_size', 'dropout', 'feature_dropout',
    'alpha_dropout', 'split_copy', 'view_copy', 'permute_copy',
    'expand_copy', 'transpose_copy', 'unsqueeze_copy', 'squeeze_copy',
    'slice_copy', 'select_copy', 'detach_copy', 'alias_copy',
    '_reshape_copy', 'scalar_tensor', 'randn', 'rand', 'normal_',
    'uniform_', 'bernoulli_', 'empty_permuted'))
