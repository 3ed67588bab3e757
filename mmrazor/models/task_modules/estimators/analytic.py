"""Channel-dependent costs of dynamic ops, computed from active channels.

A dynamic op (``DynamicConv2d``, ``DynamicLinear``, ``DynamicBatchNorm2d``)
is built at its largest size and computes with the active slice of its
weights. Its multiply-accumulates and parameters for the current choice are
a closed-form function of the active channel counts (exposed by the op as
``active_*`` properties) and of the output size of a call, which does not
change with the channel choice. The estimator records the output shape of
every call once and evaluates these functions for each subnet.

A dynamic *container* (``DynamicSequential``: a searchable depth) has no
cost of its own but decides which of its children belong to the subnet:
children it drops do not run and are not part of the exported model, so
their parameters must not be counted either. Which children it drops now is
likewise read from its ``active_*`` attributes (see
:func:`register_inactive_children`).
"""
import math
from typing import (Callable, Dict, List, Optional, Sequence, Set, Tuple,
                    Type)

from torch import nn

#: ``(module, output_shape) -> MACs`` and ``module -> params``.
MacsFn = Callable[[nn.Module, Sequence[int]], int]
ParamsFn = Callable[[nn.Module], int]

#: ``module -> names of its sub-modules outside the current subnet``.
InactiveFn = Callable[[nn.Module], List[str]]

_ANALYTIC: Dict[Type[nn.Module], Tuple[MacsFn, ParamsFn]] = {}
_INACTIVE: Dict[Type[nn.Module], InactiveFn] = {}
#: containers dropping trailing children that keep their input's shape
_TRAILING: Set[Type[nn.Module]] = set()


def _numel(shape: Sequence[int]) -> int:
    return int(math.prod(int(s) for s in shape))


def register_analytic_cost(cls: Type[nn.Module], macs_fn: MacsFn,
                           params_fn: ParamsFn) -> None:
    """Declare how to compute the cost of a dynamic op class.

    Args:
        cls (type): The dynamic op class (subclasses match too).
        macs_fn (callable): ``(module, output_shape) -> MACs`` of one call
            whose output had ``output_shape`` (for the current choice).
        params_fn (callable): ``module -> number of active parameters``.
    """
    _ANALYTIC[cls] = (macs_fn, params_fn)


def analytic_cost_of(module: nn.Module
                     ) -> Optional[Tuple[MacsFn, ParamsFn]]:
    """The analytic cost functions of ``module``, or None.

    Only dynamic ops that have at least one mutable attribute qualify: one
    without mutables is a plain layer and is counted like one.
    """
    attrs = getattr(module, 'mutable_attrs', None)
    if attrs is None or not len(attrs):
        return None
    if not _BUILTIN_REGISTERED:
        _register_builtin()
    for cls in type(module).__mro__:
        if cls in _ANALYTIC:
            return _ANALYTIC[cls]
    return None


def register_inactive_children(cls: Type[nn.Module],
                               inactive_fn: InactiveFn,
                               trailing: bool = False) -> None:
    """Declare which children a dynamic container class drops from the
    current subnet (e.g. the blocks beyond a searched depth).

    Args:
        cls (type): The dynamic container class (subclasses match too).
        inactive_fn (callable): ``module -> [name, ...]``: the names
            (relative to ``module``, as in ``module.named_modules()``;
            usually children) of the sub-modules that neither run nor
            belong to the exported model for the current choice.
        trailing (bool): Whether the container runs its children one after
            the other and drops only the last ones, with its mutables at
            their largest choices keeping them all (a searched depth). The
            estimator then traces it once at the largest depth and takes
            the dropped children out of that trace, when each child it can
            drop gives an output of its input's shape. Defaults to False.
    """
    _INACTIVE[cls] = inactive_fn
    if trailing:
        _TRAILING.add(cls)
    else:
        _TRAILING.discard(cls)


def drops_trailing_children(module: nn.Module) -> bool:
    """Whether ``module`` is a container registered with
    ``trailing=True`` (see :func:`register_inactive_children`)."""
    if inactive_children_of(module) is None:
        return False
    for cls in type(module).__mro__:
        if cls in _INACTIVE:
            return cls in _TRAILING
    return False


def inactive_children_of(module: nn.Module) -> Optional[InactiveFn]:
    """How to find the children ``module`` drops from the subnet, or None.

    Only dynamic ops that have at least one mutable attribute and no
    analytic cost (containers) qualify. A container class that was not
    registered with :func:`register_inactive_children` is read through its
    ``to_static_op()``, which must reuse the sub-modules it keeps (as
    ``DynamicSequential`` does): the largest sub-modules holding none of
    them are dropped.
    """
    attrs = getattr(module, 'mutable_attrs', None)
    if attrs is None or not len(attrs) or \
            analytic_cost_of(module) is not None:
        return None
    if not _BUILTIN_REGISTERED:
        _register_builtin()
    for cls in type(module).__mro__:
        if cls in _INACTIVE:
            return _INACTIVE[cls]
    if callable(getattr(module, 'to_static_op', None)):
        return _dropped_by_export
    return None


def _dropped_by_export(module: nn.Module) -> List[str]:
    try:
        static = module.to_static_op()
    except NotImplementedError:
        return []
    kept = {id(m) for m in static.modules()}

    def visit(sub: nn.Module, path: str) -> Tuple[bool, List[str]]:
        # whether ``sub`` or a module under it is kept, and the largest
        # sub-modules under it holding nothing kept
        holds_kept = id(sub) in kept
        dropped: List[str] = []
        for name, child in sub.named_children():
            child_path = f'{path}.{name}' if path else name
            child_holds, child_dropped = visit(child, child_path)
            if child_holds:
                holds_kept = True
                dropped.extend(child_dropped)
            else:
                dropped.append(child_path)
        return holds_kept, dropped

    return visit(module, '')[1]


def _sequential_inactive(module: nn.Module) -> List[str]:
    # the blocks (in order) beyond the active depth
    dropped = {id(block) for block in list(module)[module.active_depth:]}
    return [name for name, child in module.named_children()
            if id(child) in dropped]


def _conv_macs(module: nn.Module, out_shape: Sequence[int]) -> int:
    # out_shape is (N, C, H, W) or (C, H, W); spatial size does not depend
    # on channels, and the padding follows the kernel size.
    spatial = _numel(out_shape[-2:])
    batch = _numel(out_shape[:-3])
    kh, kw = module.active_kernel_size
    per_pixel = (module.active_out_channels * module.active_in_channels //
                 module.active_groups * kh * kw)
    return batch * spatial * per_pixel


def _conv_params(module: nn.Module) -> int:
    kh, kw = module.active_kernel_size
    out_c = module.active_out_channels
    weights = out_c * module.active_in_channels // module.active_groups * \
        kh * kw
    return weights + (out_c if module.bias is not None else 0)


def _linear_macs(module: nn.Module, out_shape: Sequence[int]) -> int:
    tokens = _numel(out_shape[:-1])
    return tokens * module.active_in_features * module.active_out_features


def _linear_params(module: nn.Module) -> int:
    out_f = module.active_out_features
    return out_f * module.active_in_features + (
        out_f if module.bias is not None else 0)


def _norm_macs(module: nn.Module, out_shape: Sequence[int]) -> int:
    return 0  # normalisation is not counted (see op_counters)


def _norm_params(module: nn.Module) -> int:
    return 2 * module.active_num_features if module.affine else 0


def _shortcut_macs(module: nn.Module, out_shape: Sequence[int]) -> int:
    # the 1x1 conv runs (and exists in the export) only while the active
    # widths differ; its output is the shortcut's output
    return _conv_macs(module.conv, out_shape) if module.with_conv else 0


def _shortcut_params(module: nn.Module) -> int:
    return _conv_params(module.conv) if module.with_conv else 0


_BUILTIN_REGISTERED = False


def _register_builtin() -> None:
    """Register mmrazor's dynamic ops (lazily, at first use, so that
    importing the estimator never imports the architectures)."""
    global _BUILTIN_REGISTERED
    from mmrazor.models.architectures.dynamic_ops import (
        DynamicBatchNorm2d, DynamicConv2d, DynamicLinear, DynamicSequential,
        DynamicShortcutLayer)
    for cls, macs_fn, params_fn in (
        (DynamicConv2d, _conv_macs, _conv_params),
        (DynamicLinear, _linear_macs, _linear_params),
        (DynamicBatchNorm2d, _norm_macs, _norm_params),
        # a leaf: its conv is not in the subnet while the widths agree,
        # and its static form holds a converted copy of the conv
        (DynamicShortcutLayer, _shortcut_macs, _shortcut_params),
    ):
        _ANALYTIC.setdefault(cls, (macs_fn, params_fn))
    if DynamicSequential not in _INACTIVE:
        _INACTIVE[DynamicSequential] = _sequential_inactive
        _TRAILING.add(DynamicSequential)
    _register_transformer_ops()
    _BUILTIN_REGISTERED = True


def _layernorm_params(module: nn.Module) -> int:
    width = module.active_num_features
    return (width if module.weight is not None else 0) + \
        (width if module.bias is not None else 0)


def _token_embed_params(module: nn.Module) -> int:
    # class token + position embedding of (num_patches + 1) tokens
    return (module.num_patches + 2) * module.active_embed_dims


def _rel_pos_params(module: nn.Module) -> int:
    rows = 2 * module.max_relative_position + 2
    return 2 * rows * module.active_head_dims


def _keeps_all_children(module: nn.Module) -> List[str]:
    return []


def _attention_macs(module: nn.Module, out_shape: Sequence[int]) -> int:
    # out_shape is (..., N, E): q/k/v and output projections, then per
    # head q k^T and a v (plus q R_k^T and a R_v with relative positions),
    # each N * N * head_dims: N^2 * (q/k/v width) per sample
    tokens = _numel(out_shape[:-1])
    samples = _numel(out_shape[:-2])
    length = int(out_shape[-2])
    embed = module.active_embed_dims
    q_dims = module.active_q_embed_dims
    projections = 4 * tokens * embed * q_dims
    products = (4 if module.relative_position else 2) * samples * \
        length * length * q_dims
    return projections + products


def _attention_params(module: nn.Module) -> int:
    params = sum(
        _linear_params(linear)
        for linear in (module.w_qs, module.w_ks, module.w_vs, module.proj))
    if module.relative_position:
        params += _rel_pos_params(module.rel_pos_embed_k) + \
            _rel_pos_params(module.rel_pos_embed_v)
    return params


def _register_transformer_ops() -> None:
    """The dynamic transformer ops (AutoFormer): leaves without MACs of
    their own (norms, embeddings), the attention as one leaf (its
    activation-by-activation products follow the searched heads, so its
    whole cost is computed here rather than in the static part) and
    containers that keep all their children."""
    from mmrazor.models.architectures.dynamic_ops import (
        DynamicClsTokenPosEmbed, DynamicLayerNorm, DynamicMultiheadAttention,
        DynamicPatchEmbed, DynamicRelativePosition2D)
    for cls, params_fn in (
        (DynamicLayerNorm, _layernorm_params),
        (DynamicClsTokenPosEmbed, _token_embed_params),
        (DynamicRelativePosition2D, _rel_pos_params),
    ):
        _ANALYTIC.setdefault(cls, (_norm_macs, params_fn))
    _ANALYTIC.setdefault(DynamicMultiheadAttention,
                         (_attention_macs, _attention_params))
    _INACTIVE.setdefault(DynamicPatchEmbed, _keeps_all_children)
