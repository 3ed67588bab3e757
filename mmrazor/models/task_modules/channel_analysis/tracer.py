"""Trace which channels of a model are tied together.

The tracer runs the model once on a real tensor. Layers that own channel
weights (convs, linears, norms, or any module with a registered
:class:`~.layer_handlers.LayerHandler`) are recorded as one step each, by
their handler: the standard ones get a temporary forward that skips their
arithmetic (convs and linears return zeros of the right shape, norms a view
of their input) and records the call, custom ones are watched with forward
hooks. Standard activation and dropout modules also get a temporary forward
that records them directly. Every other PyTorch call (``torch.*``,
``Tensor.*`` methods and operators, ``torch.nn.functional.*``) is seen
through a :class:`torch.overrides.TorchFunctionMode`. Only the *public*
names of the called functions are used (``add``, ``cat``, ``view``,
``relu`` ...), never autograd node names, so the analysis does not depend on
one PyTorch version's internals.

Every channel of every traced tensor carries an integer id. A layer that
mixes channels (a conv, a linear) creates fresh ids for its output channels
(a *source*); element-wise ops tie (union) the ids they combine, ``cat``
concatenates them, ``view``/``permute``/``chunk`` move them around, and ops
whose effect on channels is not understood *block* the ids they touch (with
the op's name and the module it ran in, for the report).

Ids are stored per tensor as an int64 array with the tensor's number of
dimensions, of size 1 along the dimensions where the ids do not vary
(``-1`` marks channels that are not traced, e.g. the image's RGB).
"""
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from .layer_handlers import LayerCall, LayerHandler, handler_of
from .structure_attrs import (HEAD_ATTRS, HEAD_WIDTH_ATTRS,
                              StructureAttrHandler, int_attrs, sizes_attr)
from .union_find import UnionFind, sorted_unique

#: Switches ``__torch_function__`` handling off (modes included) while the
#: tracer does its own bookkeeping on tensors, so that ``x.dim()`` or
#: ``x.shape`` inside a rule is not dispatched (and traced) again.
_quiet = getattr(torch._C, 'DisableTorchFunction', None)
if _quiet is None:  # pragma: no cover - very old PyTorch
    from contextlib import nullcontext as _quiet

# --------------------------------------------------------------- op tables
_ELEMENTWISE = frozenset("""
add sub mul div true_divide floor_divide rsub where maximum minimum fmax fmin
addcmul addcdiv lerp copy_ masked_fill masked_fill_ pow atan2 remainder fmod
eq ne lt le gt ge logical_and logical_or logical_xor bitwise_and bitwise_or
__add__ __radd__ __iadd__ __sub__ __rsub__ __isub__ __mul__ __rmul__ __imul__
__truediv__ __rtruediv__ __itruediv__ __div__ __rdiv__ __idiv__ __floordiv__
__rfloordiv__ __pow__ __rpow__ __ipow__ __and__ __or__ __xor__ __eq__ __ne__
__lt__ __le__ __gt__ __ge__ __mod__ __neg__ __pos__ __abs__ __invert__
add_ sub_ mul_ div_ pow_ clamp clamp_ clip clip_ clamp_min clamp_max
clamp_min_ clamp_max_
relu relu_ relu6 sigmoid sigmoid_ hardsigmoid hardswish silu gelu tanh tanh_
elu elu_ leaky_relu leaky_relu_ selu selu_ celu mish softplus softsign
hardshrink softshrink threshold threshold_ logsigmoid tanhshrink hardtanh
hardtanh_ rrelu glu_free
dropout dropout_ dropout1d dropout2d dropout3d alpha_dropout
feature_alpha_dropout
clone contiguous detach detach_ float double half bfloat16 abs abs_ neg neg_
exp exp_ log log_ log1p log2 sqrt sqrt_ rsqrt rsqrt_ square square_ erf
sign reciprocal reciprocal_ sin cos round floor ceil requires_grad_ cpu cuda
nan_to_num logit logical_not isnan isfinite isinf zero_ fill_ bernoulli_
""".split())

#: ops whose first argument is the data; other tensor arguments are only a
#: dtype/device/shape reference.
_FIRST_ONLY = frozenset("""
to type type_as zeros_like ones_like empty_like full_like rand_like
randn_like
""".split())
_CREATION = frozenset("""
new_zeros new_ones new_empty new_full new_tensor
""".split())
_RESHAPE = frozenset("""
view reshape flatten unflatten squeeze squeeze_ unsqueeze unsqueeze_ view_as
reshape_as ravel
""".split())
_EXPAND = frozenset('expand expand_as broadcast_to'.split())
_PERMUTE = frozenset("""
permute transpose transpose_ swapaxes swapdims t movedim moveaxis
""".split())
_CAT = frozenset('cat concat concatenate'.split())
_REDUCE = frozenset("""
mean sum amax amin max min std var prod norm logsumexp argmax argmin all any
nansum nanmean median count_nonzero
""".split())
_DIMWISE = frozenset("""
softmax log_softmax normalize cumsum cumprod flip roll
""".split())
_SPATIAL = frozenset("""
adaptive_avg_pool1d adaptive_avg_pool2d adaptive_avg_pool3d
adaptive_max_pool1d adaptive_max_pool2d adaptive_max_pool3d
adaptive_max_pool1d_with_indices adaptive_max_pool2d_with_indices
adaptive_max_pool3d_with_indices avg_pool1d avg_pool2d avg_pool3d
max_pool1d max_pool2d max_pool3d max_pool1d_with_indices
max_pool2d_with_indices max_pool3d_with_indices lp_pool1d lp_pool2d
interpolate upsample upsample_nearest upsample_bilinear pad
fractional_max_pool2d
""".split())
_SPLIT = frozenset('chunk split tensor_split unbind split_with_sizes'.split())
_SHUFFLE = frozenset('channel_shuffle native_channel_shuffle'.split())
_MATMUL = frozenset('matmul bmm __matmul__'.split())


class ChannelAnalysisError(RuntimeError):
    """The channel analysis could not finish (bounded walk exceeded, or the
    model failed to run)."""


@dataclass
class LayerRecord:
    """A layer with channel weights seen during tracing.

    Attributes:
        name (str): Module path.
        module (nn.Module): The layer.
        handler (LayerHandler): What the toolbox knows of its kind (see
            :mod:`.layer_handlers`); ``kind`` is the handler's name of it.
        in_ids (np.ndarray): Channel ids of the input channels (1-d).
        out_ids (np.ndarray): Channel ids of the output channels (1-d).
        in_dim (int): The channel dimension of the input.
        out_dim (int): The channel dimension of the output.
        calls (int): How often the layer ran in the traced forward.
        masked_stats (bool): Its statistics mix channels (LayerNorm,
            GroupNorm with one group): the masked model must normalise
            over the kept channels only.
        positions (int): Output positions per sample, summed over calls
            (``H*W`` of a conv; tokens of a linear), for FLOPs.
    """
    name: str
    module: nn.Module
    handler: LayerHandler
    in_ids: np.ndarray
    out_ids: np.ndarray
    in_dim: int = 1
    out_dim: int = 1
    calls: int = 1
    masked_stats: bool = False
    positions: int = 0

    @property
    def kind(self) -> str:
        """The layer kind (``'conv'``, ``'linear'``, ``'norm'`` ...)."""
        return self.handler.kind


@dataclass
class ParamRecord:
    """A parameter or buffer used directly by an op (e.g. a layer scale).

    Attributes:
        name (str): ``'module.attr'``.
        owner (nn.Module): The module holding it.
        attr (str): Its attribute name.
        ids (np.ndarray): Channel ids, same rank as the tensor, size 1
            along the dims that do not carry channels.
    """
    name: str
    owner: nn.Module
    attr: str
    ids: np.ndarray


@dataclass
class Source:
    """Channels created by one layer (or parameter): one source of ids."""
    name: str
    ids: np.ndarray
    kind: str = 'layer'


@dataclass
class TraceResult:
    """Everything the tracer found (input of the grouping step)."""
    uf: UnionFind
    layers: Dict[str, LayerRecord]
    params: Dict[str, ParamRecord]
    sources: List[Source]
    blocked: List[Tuple[np.ndarray, str]]
    num_ops: int
    seconds: float
    op_counts: Dict[str, int] = field(default_factory=dict)


def _tensors_in(obj: Any, out: List[torch.Tensor], depth: int = 0
                ) -> List[torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        out.append(obj)
    elif depth < 4 and isinstance(obj, (list, tuple)):
        for item in obj:
            _tensors_in(item, out, depth + 1)
    elif depth < 4 and isinstance(obj, dict):
        for item in obj.values():
            _tensors_in(item, out, depth + 1)
    return out


def _varying(ids: np.ndarray) -> List[int]:
    return [d for d, s in enumerate(ids.shape) if s > 1]


def _compress(ids: np.ndarray) -> np.ndarray:
    """Reduce to size 1 every dim along which the ids are constant."""
    if ids.size == max(ids.shape, default=1):  # ids along one dim at most
        flat = ids.reshape(-1)
        if len(flat) > 1 and flat[0] == flat[-1] and (flat == flat[0]).all():
            return np.ascontiguousarray(flat[:1].reshape((1, ) * ids.ndim))
        return np.ascontiguousarray(ids)
    for d in range(ids.ndim):
        if ids.shape[d] > 1:
            first = ids.take([0], axis=d)
            if np.array_equal(np.broadcast_to(first, ids.shape), ids):
                ids = first
    return np.ascontiguousarray(ids)


def _align(ids: np.ndarray, ndim: int) -> np.ndarray:
    if ids.ndim < ndim:
        return ids.reshape((1, ) * (ndim - ids.ndim) + ids.shape)
    return ids


def _dim_groups(a: Sequence[int], b: Sequence[int]
                ) -> Optional[List[Tuple[List[int], List[int]]]]:
    """Match the dims of two shapes of equal numel into groups of equal
    products (the way ``view`` regroups them)."""
    groups: List[Tuple[List[int], List[int]]] = []
    i = j = 0
    while i < len(a) and j < len(b):
        ins, outs = [i], [j]
        pa, pb = a[i], b[j]
        i += 1
        j += 1
        while pa != pb:
            if pa < pb:
                if i >= len(a):
                    return None
                ins.append(i)
                pa *= a[i]
                i += 1
            else:
                if j >= len(b):
                    return None
                outs.append(j)
                pb *= b[j]
                j += 1
        groups.append((ins, outs))
    if not groups:
        return None
    groups[-1][0].extend(range(i, len(a)))
    groups[-1][1].extend(range(j, len(b)))
    return groups


#: Activation and dropout modules, by exact class, and the function their
#: forward calls on the whole input: each output element follows its input
#: element, so channel ids pass through unchanged. The tracer gives them a
#: forward that runs that function with torch-function dispatch off and
#: records it directly (the generic path dispatches every call through the
#: mode and its rule table).
_PASSTHROUGH_MODULES: Dict[type, Callable] = {
    nn.ReLU: F.relu,
    nn.ReLU6: F.hardtanh,
    nn.LeakyReLU: F.leaky_relu,
    nn.Hardswish: F.hardswish,
    nn.Hardsigmoid: F.hardsigmoid,
    nn.SiLU: F.silu,
    nn.GELU: F.gelu,
    nn.Sigmoid: torch.sigmoid,
    nn.Tanh: torch.tanh,
    nn.Dropout: F.dropout,
}


def _named_modules(model: nn.Module) -> List[Tuple[str, nn.Module]]:
    """``list(model.named_modules())``, without its generator per level
    (same order, each module once under its first name)."""
    found: List[Tuple[str, nn.Module]] = []
    seen = set()
    stack = [('', model)]
    while stack:
        name, module = stack.pop()
        if id(module) in seen:
            continue
        seen.add(id(module))
        found.append((name, module))
        children = module._modules
        if children:
            prefix = name + '.' if name else ''
            stack.extend((prefix + key, child)
                         for key, child in reversed(children.items())
                         if child is not None)
    return found


def _no_handler_hint(module: nn.Module) -> str:
    """For reports of ops blocked inside a module that holds weight
    matrices itself but has no layer handler (a custom layer)."""
    for p in module._parameters.values():
        if p is not None and sum(n > 1 for n in p.shape) >= 2:
            return (f' ({type(module).__name__} holds weights but has no '
                    'layer handler; see register_layer_handler)')
    return ''


class _Mode(TorchFunctionMode):

    def __init__(self, tracer: 'ChannelTracer') -> None:
        super().__init__()
        self.tracer = tracer

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        tracer = self.tracer
        if tracer.depth == 0 and tracer.active:
            tracer.record(func, args, kwargs, out)
        return out


class ChannelTracer:
    """Runs a model once and records how its channels are tied.

    Args:
        model (nn.Module): The model (not modified; hooks are removed
            afterwards).
        max_ops (int): Stop with :class:`ChannelAnalysisError` after this
            many traced ops. Defaults to 200000.
        timeout (float): Stop after this many seconds. Defaults to 600.
        passthrough_ops (Sequence[str]): Extra function names to treat as
            element-wise (the escape hatch for custom ops that act on every
            channel independently).
        progress (Callable, optional): Called as ``progress(done, total)``
            with the number of layers traced so far.
    """

    def __init__(self,
                 model: nn.Module,
                 max_ops: int = 200000,
                 timeout: float = 600.0,
                 passthrough_ops: Sequence[str] = (),
                 progress: Optional[Callable[[int, int], None]] = None
                 ) -> None:
        self.model = model
        self.max_ops = max_ops
        self.timeout = timeout
        self.passthrough_ops = frozenset(passthrough_ops)
        self.progress = progress
        self.uf = UnionFind()
        self.info: Dict[int, Tuple[torch.Tensor, np.ndarray]] = {}
        self.layers: Dict[str, LayerRecord] = {}
        self.params: Dict[str, ParamRecord] = {}
        self.sources: List[Source] = []
        self.blocked: List[Tuple[np.ndarray, str]] = []
        self.depth = 0
        self.active = False
        self.num_ops = 0
        self.op_counts: Dict[str, int] = {}
        self._leaf_name: Optional[str] = None
        self._pending: Optional[Tuple[nn.Module, Any]] = None
        self._start = 0.0
        self._param_index: Dict[int, Tuple[str, nn.Module, str]] = {}
        #: modules whose channel split was recorded: name -> pieces
        self._split_pieces: Dict[str, int] = {}
        #: the tensor inputs of the last call of modules with a
        #: ``num_heads``-like attribute, by path (a width merged from the
        #: input's shape is checked against them)
        self._inputs_of: Dict[str, List[torch.Tensor]] = {}
        #: ``id(module) -> (path, handler, reason)``; for modules that are
        #: not layers the reason is a hint for reports ('' or a note that
        #: the module holds weights but has no handler)
        self._modules: Dict[int, Tuple[str, Optional[LayerHandler],
                                       str]] = {}

    # ------------------------------------------------------------ helpers
    def _running(self) -> Tuple[str, str]:
        """The path of the module running now and a hint for reports
        (found from the Python stack, so it costs nothing until an op is
        blocked)."""
        if self._leaf_name is not None:
            return self._leaf_name, ''
        frame = sys._getframe(2)
        while frame is not None:
            obj = frame.f_locals.get('self')
            if obj is not None and id(obj) in self._modules:
                name, _, hint = self._modules[id(obj)]
                return name or '<model>', hint
            frame = frame.f_back
        return '<model>', ''

    def _running_module(self) -> Tuple[str, Optional[nn.Module]]:
        """The path and object of the innermost module of the model that
        is running now (None outside the model's modules)."""
        frame = sys._getframe(2)
        while frame is not None:
            obj = frame.f_locals.get('self')
            if obj is not None and id(obj) in self._modules:
                return self._modules[id(obj)][0], obj
            frame = frame.f_back
        return '', None

    def _forward_locals(self) -> List[torch.Tensor]:
        """The tensors among the local variables of the forward of the
        innermost module of the model running now."""
        frame = sys._getframe(2)
        while frame is not None:
            obj = frame.f_locals.get('self')
            if obj is not None and id(obj) in self._modules:
                return [
                    v for v in frame.f_locals.values()
                    if isinstance(v, torch.Tensor)
                ]
            frame = frame.f_back
        return []

    def where(self) -> str:
        """The module path running now (for reports)."""
        return self._running()[0]

    def _where_from(self, tb: Any) -> str:
        """The innermost module of the model in a traceback."""
        found = '<model>'
        while tb is not None:
            obj = tb.tb_frame.f_locals.get('self')
            if obj is not None and id(obj) in self._modules:
                found = self._modules[id(obj)][0] or '<model>'
            tb = tb.tb_next
        return found

    def block(self, ids: np.ndarray, reason: str) -> None:
        """Mark ``ids`` as not prunable because of ``reason`` (the module
        running now is added to the reason)."""
        ids = np.asarray(ids).ravel()
        ids = ids[ids >= 0]
        if len(ids):
            if self.active:
                name, hint = self._running()
                reason = f'{reason} in {name}{hint}'
            self.blocked.append((sorted_unique(ids), reason))

    @staticmethod
    def _reason(name: str) -> str:
        return f'`{name}`'

    def ids_of(self, t: torch.Tensor) -> np.ndarray:
        """The channel ids of a tensor (created lazily for parameters)."""
        entry = self.info.get(id(t))
        if entry is not None and entry[0] is t:
            return entry[1]
        owner = self._param_index.get(id(t))
        if owner is not None:
            return self._param_ids(t, *owner)
        return np.full((1, ) * t.dim(), -1, dtype=np.int64)

    def set_ids(self, t: torch.Tensor, ids: np.ndarray,
                check: bool = True) -> None:
        """Attach channel ids to a tensor.

        Args:
            t (torch.Tensor): The tensor.
            ids (np.ndarray): Its ids (see the module doc).
            check (bool): Check them against its shape. Pass False only
                for an int64 array of the tensor's rank that fits.
                Defaults to True.
        """
        if not check:
            self.info[id(t)] = (t, ids)
            return
        if not isinstance(ids, np.ndarray) or ids.dtype != np.int64:
            ids = np.asarray(ids, dtype=np.int64)
        shape = t.shape
        if ids.ndim != len(shape):
            ids = _align(ids, len(shape))
        if ids.ndim != len(shape) or any(
                s != n and s != 1 for s, n in zip(ids.shape, shape)):
            raise ChannelAnalysisError(
                f'internal: ids of shape {ids.shape} do not fit a tensor '
                f'of shape {tuple(shape)} in {self.where()}')
        self.info[id(t)] = (t, ids)

    def _param_ids(self, t: torch.Tensor, name: str, owner: nn.Module,
                   attr: str) -> np.ndarray:
        if name in self.params:
            return self.params[name].ids
        big = [d for d, s in enumerate(t.shape) if s > 1]
        if len(big) != 1:
            ids = np.full((1, ) * t.dim(), -1, dtype=np.int64)
            self.info[id(t)] = (t, ids)
            return ids
        shape = [1] * t.dim()
        shape[big[0]] = t.shape[big[0]]
        ids = self.uf.add(t.shape[big[0]]).reshape(shape)
        self.params[name] = ParamRecord(name, owner, attr, ids)
        self.sources.append(Source(name, ids.ravel(), kind='param'))
        self.info[id(t)] = (t, ids)
        return ids

    def _pair(self, sa, a, sb, b, reason) -> None:
        """Tie two operands of an element-wise op."""
        if a.shape == b.shape:
            # ids vary only along dims of full size, equal in both
            if a is b:
                return
            if a.min() >= 0 and b.min() >= 0:  # the usual case
                self.uf.link(a.ravel(), b.ravel())
                return
            ea, eb = a, b
        else:
            for d in set(_varying(a)) | set(_varying(b)):
                if sa[d] != sb[d]:
                    return  # broadcast along a channel dim: no tie
            ea, eb = np.broadcast_arrays(a, b)
        self.uf.union_arrays(ea, eb)
        lone = (ea >= 0) != (eb >= 0)
        if lone.any():
            self.block(np.where(ea >= 0, ea, eb)[lone],
                       reason + ' (mixes traced and untraced channels)')

    def channel_ids(self, ids: np.ndarray, dim: int, size: int,
                    reason: str) -> np.ndarray:
        """1-d ids along ``dim`` of a layer's input (others must not vary;
        channels spread over several dims are blocked).

        Args:
            ids (np.ndarray): Ids of the input.
            dim (int): Its channel dim (negative: from the end).
            size (int): The number of channels the layer expects.
            reason (str): How reports name the layer.

        Returns:
            np.ndarray: ``size`` ids (``-1``: untraced).
        """
        dim = dim % ids.ndim
        if ids.shape[dim] == size and ids.size == size:
            return ids.reshape(-1)  # the usual case: ids along ``dim`` only
        vary = _varying(ids)
        if any(d != dim for d in vary):
            self.block(ids, reason + ' (channels spread over several dims)')
            return np.full(size, -1, dtype=np.int64)
        if ids.shape[dim] == size:
            return ids.reshape(-1).copy()
        value = int(ids.reshape(-1)[0])
        if value >= 0 and size > 1:
            self.block(ids, reason + ' (one channel broadcast to many)')
            value = -1
        return np.full(size, value, dtype=np.int64)

    def union_rows(self, ids: np.ndarray, rows: int,
                   reason: str) -> np.ndarray:
        """Tie channels within each of ``rows`` equal parts (conv groups).

        Args:
            ids (np.ndarray): 1-d ids.
            rows (int): Number of parts.
            reason (str): How reports name the layer.

        Returns:
            np.ndarray: One id per part (``-1`` where a part holds untraced
            channels).
        """
        table = ids.reshape(rows, -1)
        if table.shape[1] == 1:  # depthwise: one channel per part
            return table[:, 0]
        traced = table >= 0
        mixed = traced.any(1) & ~traced.all(1)
        if mixed.any():
            self.block(table[mixed], reason + ' (mixes traced and '
                       'untraced channels)')
        reps = np.where(traced.all(1), table[:, 0], -1)
        self.uf.union_along(
            np.concatenate([reps[:, None], table[:, 1:]], axis=1), axis=1)
        return reps

    # ------------------------------------------------------------- layers
    def new_channels(self, name: str, size: int) -> np.ndarray:
        """Fresh ids for channels a layer creates (a source).

        Args:
            name (str): The layer (the source's name).
            size (int): How many channels.

        Returns:
            np.ndarray: ``size`` new ids.
        """
        ids = self.uf.add(size)
        self.sources.append(Source(name, ids))
        return ids

    def add_layer(self, name: str, module: nn.Module, handler: LayerHandler,
                  in_ids: np.ndarray, out_ids: np.ndarray, in_dim: int,
                  out_dim: int, masked_stats: bool = False) -> LayerRecord:
        """Record a layer at its first call (see :class:`LayerRecord`).

        Returns:
            LayerRecord: The new record.
        """
        rec = LayerRecord(name, module, handler, in_ids, out_ids, in_dim,
                          out_dim, masked_stats=masked_stats)
        self.layers[name] = rec
        return rec

    def repeat_call(self, rec: LayerRecord, in1d: np.ndarray,
                    reason: str) -> None:
        """A layer called again (shared weights): tie its inputs.

        Args:
            rec (LayerRecord): The layer.
            in1d (np.ndarray): Ids of the input channels of this call.
            reason (str): How reports name the layer.
        """
        rec.calls += 1
        self.uf.union_arrays(rec.in_ids, in1d)
        lone = (rec.in_ids >= 0) != (in1d >= 0)
        if lone.any():
            self.block(np.where(rec.in_ids >= 0, rec.in_ids, in1d)[lone],
                       reason + ' (shared layer sees untraced channels)')

    def _inputs_hook(self, name: str) -> Callable:
        """A forward pre-hook remembering the tensor inputs of a module
        (see ``_inputs_of``)."""

        def hook(module: nn.Module, args: tuple, kwargs: dict) -> None:
            if self.active:
                self._inputs_of[name] = _tensors_in((args, kwargs), [])
            return None

        return hook

    def _pre_hook(self, module: nn.Module, args: tuple) -> None:
        if not self.active:
            return None
        if self.depth == 0:
            self._pending = (module, args[0] if args else None)
        self.depth += 1
        return None

    def _post_hook(self, module: nn.Module, args: tuple,
                   output: Any) -> None:
        if not self.active:
            return None
        self.depth -= 1
        if self.depth == 0 and self._pending is not None:
            pmod, x = self._pending
            self._pending = None
            name, handler, reason = self._modules[id(pmod)]
            with _quiet():
                self._run_leaf(name, pmod, handler, reason, x, output)
        return None

    def _run_leaf(self, name: str, module: nn.Module,
                  handler: LayerHandler, reason: str, x: Any,
                  out: Any) -> None:
        """Record a layer call (call with torch-function dispatch off).

        Args:
            name (str): Module path (kept for reports while the rule runs).
            module (nn.Module): The layer.
            handler (LayerHandler): Its handler.
            reason (str): How reports name it.
            x (Any): Its input.
            out (Any): Its output.
        """
        n = self.num_ops = self.num_ops + 1
        if n > self.max_ops or not n & 255:
            self._check_bounds(name, 'layer ')
        if self.progress is not None:
            self.progress(len(self.layers) + 1, self._num_leaves)
        self._leaf_name = name
        try:
            if not isinstance(x, torch.Tensor) or not isinstance(
                    out, torch.Tensor):
                for t in _tensors_in(x, []):
                    self.block(self.ids_of(t), reason + ' (non-tensor I/O)')
                return
            rec = self.layers.get(name)
            handler.trace(
                self, LayerCall(name, module, x, self.ids_of(x), out,
                                reason), rec)
            rec = self.layers.get(name)
            if rec is not None:
                rec.positions += handler.positions(rec, x, out)
        finally:
            self._leaf_name = None

    # ---------------------------------------------------------------- ops
    def _tick(self, what: str, kind: str = '') -> None:
        """Count one traced step; stop a walk that runs too long.

        Args:
            what (str): The op or layer name (for the error).
            kind (str): Prefix of ``what`` in the error, e.g. ``'layer '``.
        """
        self.num_ops += 1
        if self.num_ops > self.max_ops or not self.num_ops & 255:
            self._check_bounds(what, kind)

    def _count_op(self, name: str) -> None:
        """Count one traced call of the function ``name`` (a step of the
        walk, and an entry of ``op_counts``)."""
        self._tick(name)
        self.op_counts[name] = self.op_counts.get(name, 0) + 1

    def _check_bounds(self, what: str, kind: str) -> None:
        """Raise if the walk ran past ``max_ops`` or ``timeout``."""
        if self.num_ops > self.max_ops:
            raise ChannelAnalysisError(
                f'channel analysis stopped after {self.max_ops} ops (at '
                f'{kind}{what} in {self.where()}); raise `max_ops` or '
                'analyse a sub-module')
        if time.perf_counter() - self._start > self.timeout:
            raise ChannelAnalysisError(
                f'channel analysis stopped after {self.timeout:.0f}s (at '
                f'{kind}{what} in {self.where()}); raise `timeout`')

    def record(self, func: Callable, args: tuple, kwargs: dict,
               out: Any) -> None:
        """Apply the rule of one PyTorch call."""
        name = getattr(func, '__name__', None) or str(func)
        if name == '__get__':
            return
        if isinstance(out, torch.Tensor):
            outs = [out]
        elif name == '__setitem__':
            self._tick(name)
            for t in _tensors_in((args, kwargs), []):
                self.block(self.ids_of(t), self._reason(name))
            return
        else:
            outs = _tensors_in(out, [])
            if not outs:  # sizes, flags, numbers
                return
        inputs = []
        for arg in args:
            if isinstance(arg, torch.Tensor):
                inputs.append(arg)
            elif isinstance(arg, (list, tuple, dict)):
                _tensors_in(arg, inputs, 1)
        if kwargs:
            for arg in kwargs.values():
                if isinstance(arg, (torch.Tensor, list, tuple, dict)):
                    _tensors_in(arg, inputs, 1)
        if not inputs and name not in _CREATION:
            return
        self._count_op(name)
        reason = self._reason(name)
        try:
            handled = self._apply(name, args, kwargs, inputs, outs, out,
                                  reason)
        except ChannelAnalysisError:
            raise
        except Exception:  # a rule did not fit this call: be safe
            handled = False
        if not handled:
            for t in inputs:
                ids = self.ids_of(t)
                if (ids >= 0).any():
                    self.block(ids, reason)

    def _apply(self, name, args, kwargs, inputs, outs, out,
               reason) -> bool:
        if name in _CREATION:
            return True
        if name in _ELEMENTWISE or name in self.passthrough_ops:
            if len(inputs) == 2:
                self._assign_params(inputs, outs[0])
            return self._elementwise(inputs, outs, reason)
        if name == 'repeat':
            return self._repeat(args, inputs[0], outs[0])
        if name in _MATMUL and len(inputs) == 2:
            return self._matmul(list(args[:2]), outs[0], None)
        if name == 'scaled_dot_product_attention':
            mask = args[3] if len(args) > 3 else kwargs.get('attn_mask')
            return self._matmul(list(args[:3]), outs[0], mask)
        if name in _FIRST_ONLY:
            x = inputs[0]
            if tuple(outs[0].shape) == tuple(x.shape):
                self.set_ids(outs[0], self.ids_of(x))
            return True
        if name in _RESHAPE:
            return self._reshape(inputs[0], outs[0], reason,
                                 self._inferred_dim(name, args, outs[0]))
        if name in _EXPAND:
            x = inputs[0]
            self.set_ids(outs[0], _align(self.ids_of(x), outs[0].dim()))
            return True
        if name in _PERMUTE:
            return self._permute(name, args, kwargs, inputs[0], outs[0])
        if name in _CAT:
            return self._cat(args, kwargs, outs[0], reason)
        if name == 'stack':
            return self._stack(args, kwargs, outs[0], reason)
        if name in ('max', 'min') and len(inputs) > 1 and (
                len(args) > 1 and isinstance(args[1], torch.Tensor)):
            return self._elementwise(inputs, outs, reason)
        if name in _REDUCE:
            return self._reduce(args, kwargs, inputs[0], outs, reason)
        if name in _DIMWISE:
            return self._dimwise(name, args, kwargs, inputs[0], outs,
                                 reason)
        if name in _SPATIAL:
            return self._spatial(name, args, kwargs, inputs[0], outs,
                                 reason)
        if name in _SPLIT:
            return self._split(name, args, kwargs, inputs[0], outs, reason)
        if name in _SHUFFLE:
            return self._shuffle(args, kwargs, inputs[0], outs[0], reason)
        if name == '__getitem__':
            return self._getitem(args, inputs[0], outs[0], reason)
        return False

    def _elementwise(self, inputs, outs, reason) -> bool:
        out = outs[0]
        oshape = out.shape
        if len(inputs) == 1 and inputs[0].shape == oshape:
            # the common case (an activation): ids pass through unchanged
            ids = self.ids_of(inputs[0])
            for o in outs:
                if o.shape == oshape:
                    self.info[id(o)] = (o, ids)
            return True
        if len(inputs) == 2:
            ia, ib = self.ids_of(inputs[0]), self.ids_of(inputs[1])
            if ia.shape == ib.shape and ia.ndim == len(oshape) and (
                    ia is ib or (ia.min() >= 0 and ib.min() >= 0)):
                # e.g. a residual add or an excitation: both fully traced
                # and tied channel by channel; the first stands for both
                if ia is not ib:
                    self.uf.link(ia.reshape(-1), ib.reshape(-1))
                for o in outs:
                    if o.shape == oshape:
                        self.info[id(o)] = (o, ia)
                return True
        nd = out.dim()
        oshape = tuple(oshape)
        items = []
        for t in inputs:
            if t.dim() > nd:
                return False
            shape = (1, ) * (nd - t.dim()) + tuple(t.shape)
            items.append((shape, _align(self.ids_of(t), nd)))
        for i in range(len(items)):
            for j in range(i + 1, len(items)):
                self._pair(*items[i], *items[j], reason)
        full = [ids for shape, ids in items if shape == oshape]
        pool = full if full else [ids for _, ids in items]
        first = pool[0]
        if all(ids.shape == first.shape for ids in pool) and (
                len(pool) == 1 or first.min() >= 0):
            # e.g. a residual add: the operands are tied, and where the
            # first is traced its ids stand for all of them
            for o in outs:
                if o.shape == oshape:
                    self.info[id(o)] = (o, first)
            return True
        result = None
        for ids in pool:
            if result is None:
                result = ids
            else:
                a, b = np.broadcast_arrays(result, ids)
                result = np.where(a >= 0, a, b)
        result = np.asarray(result) if len(pool) == 1 else _compress(
            np.asarray(result))
        for o in outs:
            if tuple(o.shape) == oshape:
                self.set_ids(o, result)
        return True

    @staticmethod
    def _inferred_dim(name: str, args: tuple, out: torch.Tensor
                      ) -> Optional[int]:
        """The output dim a ``view``/``reshape`` call asked to infer
        (``-1``), if any: that factor follows the width."""
        if name not in ('view', 'reshape'):
            return None
        shape = args[1:]
        if len(shape) == 1 and isinstance(shape[0], (list, tuple)):
            shape = shape[0]
        shape = list(shape)
        if len(shape) != out.dim():
            return None
        for d, v in enumerate(shape):
            if isinstance(v, int) and v == -1:
                return d
        return None

    def _reshape(self, x, out, reason,
                 inferred: Optional[int] = None) -> bool:
        ids = self.ids_of(x)
        ishape, oshape = tuple(x.shape), tuple(out.shape)
        vary = _varying(ids)
        if not vary:
            self.set_ids(out, np.full((1, ) * out.dim(),
                                      int(ids.reshape(-1)[0])
                                      if ids.size else -1))
            return True
        big_in = [d for d, n in enumerate(ishape) if n > 1]
        big_out = [d for d, n in enumerate(oshape) if n > 1]
        if len(big_in) == 1 and len(big_out) == 1 and \
                ishape[big_in[0]] == oshape[big_out[0]]:
            # one non-trivial dim moved (``flatten(1)`` of a pooled
            # vector, ``view(b, c, 1, 1)``): its ids move with it
            flat = ids.reshape(-1)
            shape = [1] * len(oshape)
            shape[big_out[0]] = len(flat)
            self.set_ids(out, flat.reshape(shape))
            return True
        groups = _dim_groups(ishape, oshape)
        if groups is None:
            return False
        full = np.broadcast_to(ids, ishape).reshape(oshape)
        for ins, outs_ in groups:
            if not any(d in vary for d in ins):
                continue
            big_in = [d for d in ins if ishape[d] > 1]
            big_out = [d for d in outs_ if oshape[d] > 1]
            if len(big_out) <= 1:
                if len(big_in) > 1 and big_out and self._baked_width(
                        out, big_out[0], inferred):
                    width = oshape[big_out[0]]
                    why = (f' (merges the heads into a fixed width {width},'
                           ' neither -1 nor a head attribute; heads cannot '
                           'be pruned)')
                    self.block(ids, reason + why)
                    # the width is usually the input's (``x.shape``): the
                    # module's input channels cannot be pruned either
                    for t in self._forward_locals() + self._inputs_of.get(
                            self._running_module()[0], []):
                        tids = self.ids_of(t)
                        if any(t.shape[d] == width for d in _varying(tids)):
                            self.block(tids, reason + why)
                continue  # a merge (flatten) or a plain copy
            if len(big_in) != 1:
                return False  # many dims to many dims: not understood
            # One channel dim split into several: all factors but one are
            # structure (groups / heads) and the positions are tied across
            # them. The factor that follows the width is the one the call
            # asked to infer (-1), else the last one (``view(b, groups,
            # c // groups, h, w)``, ``view(b, n, heads, c // heads)``).
            # Attention heads: the factor counting the module's heads is
            # the free one (whole heads are pruned, and the head attributes
            # rewritten at deployment).
            free = inferred if inferred in big_out else big_out[-1]
            heads = self._heads_dim(oshape, big_out)
            if heads is not None:
                free = heads[0]
            fixed = [d for d in big_out if d != free]
            moved = np.moveaxis(full, fixed + [free], list(
                range(full.ndim - len(big_out), full.ndim)))
            lead = int(np.prod([oshape[d] for d in fixed]))
            table = moved.reshape(-1, lead, oshape[free])
            self.uf.union_along(table, axis=1)
            if heads is not None:
                self._heads_record(heads[1], heads[2], table[0, 0],
                                   oshape[big_out[-1]])
        self.set_ids(out, _compress(full))
        return True

    def _permute(self, name, args, kwargs, x, out) -> bool:
        ids = self.ids_of(x)
        nd = x.dim()
        rest = list(args[1:])
        if name == 'permute':
            dims = rest[0] if len(rest) == 1 and isinstance(
                rest[0], (list, tuple)) else rest
            dims = dims or kwargs.get('dims')
            new = np.transpose(ids, [d % nd for d in dims])
        elif name == 't':
            new = ids.T if nd == 2 else ids
        elif name in ('movedim', 'moveaxis'):
            src = rest[0] if rest else kwargs.get('source')
            dst = rest[1] if len(rest) > 1 else kwargs.get('destination')
            new = np.moveaxis(ids, src, dst)
        else:
            d0 = rest[0] if rest else kwargs.get('dim0')
            d1 = rest[1] if len(rest) > 1 else kwargs.get('dim1')
            new = np.swapaxes(ids, d0, d1)
        self.set_ids(out, new)
        return True

    @staticmethod
    def _dim_arg(args, kwargs, pos, default=None, key='dim'):
        if len(args) > pos:
            return args[pos]
        return kwargs.get(key, default)

    def _assign_params(self, inputs: List[torch.Tensor],
                       out: torch.Tensor) -> None:
        """Give a parameter with several non-trivial dims used in a binary
        element-wise op (a position embedding ``(1, N, C)`` added to
        tokens) channel ids along the one dim where the other operand
        carries channels, so that it is sliced with them.

        Args:
            inputs (list[Tensor]): The two operands.
            out (Tensor): The op's output.
        """
        nd = out.dim()
        for i, t in enumerate(inputs):
            owner = self._param_index.get(id(t))
            if owner is None or owner[0] in self.params or \
                    id(t) in self.info or t.dim() > nd or \
                    sum(s > 1 for s in t.shape) < 2:
                continue
            other = inputs[1 - i]
            oids = _align(self.ids_of(other), nd)
            vary = _varying(oids)
            if len(vary) != 1 or oids.min() < 0:
                continue
            d = vary[0] - (nd - t.dim())
            if d < 0 or t.shape[d] != oids.shape[vary[0]]:
                continue
            shape = [1] * t.dim()
            shape[d] = t.shape[d]
            ids = self.uf.add(t.shape[d]).reshape(shape)
            name, module, attr = owner
            self.params[name] = ParamRecord(name, module, attr, ids)
            self.sources.append(Source(name, ids.ravel(), kind='param'))
            self.info[id(t)] = (t, ids)

    def _matmul(self, operands: List[Any], out: torch.Tensor,
                mask: Any) -> bool:
        """Batched matrix products whose channels run along the batch dims
        (attention heads: ``q @ k.transpose(-2, -1)``, ``attn @ v``,
        ``scaled_dot_product_attention``): every batch slice (head) is
        kept or pruned as a whole, so all channels of one slice of every
        operand are tied, and the output carries one id per slice. Every
        operand must be traced; a product that mixes channels along its
        matrix dims only (a functional linear layer), or with an untraced
        matrix, is not understood.

        Args:
            operands (list): The tensors multiplied (2, or q, k, v).
            out (Tensor): The result.
            mask (Any): An attention mask (must not follow the heads).

        Returns:
            bool: Whether the rule applied.
        """
        nd = out.dim()
        if nd < 3 or not all(isinstance(t, torch.Tensor) and t.dim() >= 2
                             for t in operands):
            return False
        batch = list(out.shape[:nd - 2])
        aligned = [_align(self.ids_of(t), nd) for t in operands]
        vary = [
            d for d in range(nd - 2) if any(i.shape[d] > 1 for i in aligned)
        ]
        if not vary:
            return False
        if isinstance(mask, torch.Tensor):
            mids = self.ids_of(mask)
            mshape = (1, ) * (nd - mask.dim()) + tuple(mask.shape)
            if mids.max() >= 0 or any(mshape[d] > 1 for d in vary):
                return False  # the mask would need slicing with the heads
        reps = []
        for t, ids in zip(operands, aligned):
            if ids.min() < 0:
                return False  # e.g. a spatial transform by a fixed matrix
            full = np.broadcast_to(ids, batch + list(ids.shape[nd - 2:]))
            table = full.reshape(int(np.prod(batch)), -1)
            self.uf.union_along(table, axis=1)
            reps.append(table[:, 0])
        for r in reps[1:]:
            self.uf.union_arrays(reps[0], r)
        self.set_ids(out, _compress(reps[0].reshape(batch + [1, 1])))
        return True

    def _repeat(self, args: tuple, x: torch.Tensor,
                out: torch.Tensor) -> bool:
        """``x.repeat(*sizes)`` along dims without channels (e.g. the
        batch): the ids pass through."""
        sizes = args[1:]
        if len(sizes) == 1 and isinstance(sizes[0], (list, tuple)):
            sizes = sizes[0]
        ids = _align(self.ids_of(x), out.dim())
        if len(sizes) != out.dim() or any(
                int(n) > 1 and ids.shape[d] > 1 for d, n in enumerate(sizes)):
            return False
        self.set_ids(out, ids)
        return True

    def _structure_dims(self, ids: np.ndarray, dims: Sequence[int]) -> bool:
        """Tie the channels along ``dims`` when the ids vary along another
        dim too: ``dims`` then count copies of the channels (q/k/v,
        kernel paths, tied groups), so an op reducing, normalising or
        splitting over them leaves their size unchanged once every copy
        of a channel is pruned with the others.

        Args:
            ids (np.ndarray): Ids of the operand.
            dims (Sequence[int]): The dims the op acts over.

        Returns:
            bool: True when the channels were tied (the op is harmless).
        """
        vary = _varying(ids)
        acts = [d for d in dims if d in vary]
        if not acts or not [d for d in vary if d not in dims]:
            return False
        for d in acts:
            self.uf.union_along(ids, axis=d)
        return True

    def _cat(self, args, kwargs, out, reason) -> bool:
        tensors = args[0] if args else kwargs.get('tensors')
        dim = self._dim_arg(args, kwargs, 1, 0) % out.dim()
        if self._split_pieces:
            self._interleave_outputs(list(tensors), dim)
        return self._join(list(tensors), dim, out, reason, stack=False)

    def _interleave_outputs(self, tensors: List[torch.Tensor],
                            dim: int) -> None:
        """In a module whose input split was recorded (a mixed-kernel
        conv), the concat of the pieces' outputs is tied like the split,
        so that pruning never removes every output of one piece's conv."""
        name, _ = self._running_module()
        if self._split_pieces.get(name) != len(tensors):
            return
        pieces = []
        for t in tensors:
            ids = self.ids_of(t)
            if _varying(ids) != [dim] or ids.min() < 0:
                return
            pieces.append(ids.reshape(-1))
        self._interleave(np.concatenate(pieces), [len(p) for p in pieces])

    def _stack(self, args, kwargs, out, reason) -> bool:
        tensors = args[0] if args else kwargs.get('tensors')
        dim = self._dim_arg(args, kwargs, 1, 0) % out.dim()
        return self._join(list(tensors), dim, out, reason, stack=True)

    def _join(self, tensors, dim, out, reason, stack) -> bool:
        nd = out.dim()
        if not stack:
            # the usual case: each part's ids vary along ``dim`` only
            pieces = []
            for t in tensors:
                ids = self.ids_of(t)
                if ids.ndim != nd or ids.size != ids.shape[dim]:
                    break
                pieces.append(ids)
            else:
                if all(ids.shape[dim] == t.shape[dim]
                       for ids, t in zip(pieces, tensors)):
                    self.set_ids(out, _compress(np.concatenate(pieces, dim)))
                    return True
        parts = []
        for t in tensors:
            ids = self.ids_of(t)
            shape = list(t.shape)
            if stack:
                ids = np.expand_dims(ids, dim)
                shape.insert(dim, 1)
            if ids.ndim != nd:
                return False
            parts.append((shape, ids))
        # Tie operands along the other dims (same channel in every part),
        # e.g. a concat along a spatial dim.
        if any(i.shape[dim] > 1 and set(_varying(i)) - {dim}
               for _, i in parts):
            return False
        others = [(s, i) for s, i in parts if i.shape[dim] == 1]
        if not any(_varying(i) for _, i in others):
            others = []
        for k in range(1, len(others)):
            s0, i0 = others[0]
            sk, ik = others[k]
            s0 = list(s0)
            sk = list(sk)
            s0[dim] = sk[dim] = 1
            self._pair(s0, i0, sk, ik, reason)
        if others and len(others) == len(parts) and all(
                i.shape == others[0][1].shape and i.min() >= 0
                for _, i in others):
            # e.g. a class token joined to the patch tokens: the parts are
            # tied channel by channel, the first stands for all
            self.set_ids(out, others[0][1])
            return True
        common = [1] * nd
        for _, ids in parts:
            for d in range(nd):
                if d != dim:
                    common[d] = max(common[d], ids.shape[d])
        pieces = []
        for shape, ids in parts:
            target = list(common)
            target[dim] = shape[dim]
            pieces.append(np.broadcast_to(ids, target))
        self.set_ids(out, _compress(np.concatenate(pieces, axis=dim)))
        return True

    def _reduce(self, args, kwargs, x, outs, reason) -> bool:
        ids = self.ids_of(x)
        nd = x.dim()
        dim = self._dim_arg(args, kwargs, 1, None)
        if isinstance(dim, torch.Tensor):
            return False
        keepdim = bool(self._dim_arg(args, kwargs, 2, False, 'keepdim'))
        if dim is None or (isinstance(dim, (list, tuple)) and not dim):
            dims = list(range(nd))
        elif isinstance(dim, (list, tuple)):
            dims = [d % nd for d in dim]
        else:
            dims = [dim % nd]
        if any(ids.shape[d] > 1 for d in dims):
            if not self._structure_dims(ids, dims):
                self.block(ids, reason + ' (reduces over channels)')
            new = ids
            for d in sorted(dims, reverse=True):
                new = np.take(new, [0], axis=d)
                if not keepdim:
                    new = np.squeeze(new, axis=d)
        elif keepdim:
            new = ids
        else:
            new = ids.reshape([n for d, n in enumerate(ids.shape)
                               if d not in dims])
        for o in outs:
            if o.dim() == new.ndim:
                self.set_ids(o, new)
        return True

    def _dimwise(self, name, args, kwargs, x, outs, reason) -> bool:
        ids = self.ids_of(x)
        if name == 'roll':
            dim = self._dim_arg(args, kwargs, 2, None, 'dims')
        elif name == 'flip':
            dim = self._dim_arg(args, kwargs, 1, None, 'dims')
        elif name == 'normalize':
            dim = self._dim_arg(args, kwargs, 2, 1)
        else:
            dim = self._dim_arg(args, kwargs, 1, None)
        dims = list(range(x.dim())) if dim is None else (
            list(dim) if isinstance(dim, (list, tuple)) else [dim])
        dims = [d % x.dim() for d in dims]
        if any(d in _varying(ids) for d in dims) and \
                not self._structure_dims(ids, dims):
            self.block(ids, reason + ' (acts across channels)')
        if tuple(outs[0].shape) == tuple(x.shape):
            self.set_ids(outs[0], ids)
        return True

    def _spatial(self, name, args, kwargs, x, outs, reason) -> bool:
        ids = self.ids_of(x)
        if name == 'pad':
            pad = self._dim_arg(args, kwargs, 1, (), 'pad')
            if len(pad) > 2 * max(x.dim() - 2, 0):
                return False
        if any(d >= 2 for d in _varying(ids)) or x.dim() < 2:
            return False
        for o in outs:
            if o.dim() == x.dim() and o.shape[:2] == x.shape[:2]:
                self.set_ids(o, ids)
        return True

    def _split(self, name, args, kwargs, x, outs, reason) -> bool:
        ids = self.ids_of(x)
        if name == 'unbind':
            dim = self._dim_arg(args, kwargs, 1, 0)
        else:
            dim = self._dim_arg(args, kwargs, 2, 0)
        dim %= x.dim()
        size = x.shape[dim]
        if dim not in _varying(ids):
            for o in outs:
                new = ids if o.dim() == x.dim() else np.squeeze(ids, dim)
                self.set_ids(o, new)
            return True
        n = len(outs)
        if name == 'unbind':
            equal = n == size
        else:
            equal = all(o.shape[dim] == size // n for o in outs) and \
                size % n == 0 and all(o.dim() == x.dim() for o in outs)
        # chunk(n) follows the width it is given; split(int) / sections /
        # unbind hard-code channel positions.
        follows_width = name in ('chunk', 'tensor_split') and isinstance(
            self._dim_arg(args, kwargs, 1, None, 'chunks'), int)
        table = np.moveaxis(ids, dim, -1)
        if n > 1 and not (equal and follows_width) and not (
                equal and [d for d in _varying(ids) if d != dim]) and \
                not self._recorded_split(args, kwargs, ids, dim, outs):
            # (equal parts of a dim that holds copies of the channels,
            # e.g. ``qkv.unbind(0)``, are tied below and keep their size)
            self.block(ids, reason + ' (splits channels at fixed '
                       'positions)')
        if equal:
            parts = table.reshape(table.shape[:-1] + (n, size // n))
            self.uf.union_along(parts, axis=-2)
        start = 0
        for o in outs:
            step = o.shape[dim] if o.dim() == x.dim() else 1
            piece = np.moveaxis(table[..., start:start + step], -1, dim)
            start += step
            if o.dim() != x.dim():
                piece = np.squeeze(piece, dim)
            self.set_ids(o, piece)
        return True

    def _recorded_split(self, args, kwargs, ids: np.ndarray, dim: int,
                        outs: List[torch.Tensor]) -> bool:
        """A split at fixed sizes that the module running it stores in an
        attribute (``MixedConv2d.splits``; ``SelectiveKernel.in_channels``
        for ``split(in_channels // num_paths)``): the attribute is
        recorded (:class:`StructureAttrHandler`) and rewritten to the kept
        sizes at deployment, and the pieces are tied position by position
        (the first ones again for the longer pieces) so that no piece
        loses all its channels.

        Returns:
            bool: Whether the split was recorded.
        """
        name, module = self._running_module()
        if module is None or not name or name in self.layers and not \
                isinstance(self.layers[name].handler, StructureAttrHandler):
            return False
        vary = _varying(ids)
        if vary != [dim]:
            return False
        sizes = [o.shape[dim] for o in outs]
        in1d = ids.reshape(-1)
        if sizes_attr(module, sizes):
            handler = StructureAttrHandler(
                pieces=[(sum(sizes[:k]), sum(sizes[:k + 1]))
                        for k in range(len(sizes))],
                pieces_attr=sizes_attr(module, sizes))
        else:
            split = self._dim_arg(args, kwargs, 1, None, 'split_size_or_'
                                  'sections')
            attrs = int_attrs(module, ('in_channels', 'channels',
                                       'num_channels'), len(in1d))
            if not isinstance(split, int) or len(set(sizes)) != 1 or \
                    not attrs:
                return False
            handler = StructureAttrHandler({a: 1 for a in attrs})
        if in1d.min() < 0:
            return False
        self._interleave(in1d, sizes)
        rec = self.layers.get(name)
        if rec is None:
            # (the output side is left untraced: the module's output
            # channels are not the split ones)
            self.add_layer(name, module, handler, in1d,
                           np.full(len(in1d), -1, dtype=np.int64), 1, 1)
            self._split_pieces[name] = len(sizes)
        else:
            self.repeat_call(rec, in1d, self._reason('split'))
        return True

    def _interleave(self, in1d: np.ndarray, sizes: Sequence[int]) -> None:
        """Tie channel ``j`` of every piece of ``in1d`` (cut in ``sizes``)
        to channel ``j % min(sizes)`` of the first piece."""
        m = min(sizes)
        first = in1d[:m]
        start = 0
        for size in sizes:
            piece = in1d[start:start + size]
            self.uf.union_arrays(first[np.arange(size) % m], piece)
            start += size

    def _heads_dim(self, oshape: Sequence[int], big_out: List[int]
                   ) -> Optional[Tuple[int, str, nn.Module]]:
        """The output dim of a head-splitting ``view`` that counts the
        heads of the running module (its ``num_heads``-like attribute): the
        last non-innermost factor that matches it.

        Returns:
            tuple | None: ``(dim, module path, module)``.
        """
        name, module = self._running_module()
        if module is None or not name:
            return None
        for attr in HEAD_ATTRS:
            value = module.__dict__.get(attr)
            if isinstance(value, int) and value > 1:
                # (the last match: ``(3, heads, head_dim)`` with 3 heads)
                dims = [d for d in big_out[:-1] if oshape[d] == value]
                if dims:
                    return dims[-1], name, module
        return None

    def _heads_record(self, name: str, module: nn.Module,
                      head_ids: np.ndarray, head_size: int) -> None:
        """Record the head attributes of an attention module (one unit per
        head; see :class:`StructureAttrHandler`)."""
        if head_ids.min() < 0:
            return
        rec = self.layers.get(name)
        if rec is None:
            h = len(head_ids)
            scaled = {a: 1 for a in int_attrs(module, HEAD_ATTRS, h)}
            scaled.update({
                a: head_size
                for a in int_attrs(module, HEAD_WIDTH_ATTRS, h * head_size)
            })
            ids = np.ascontiguousarray(head_ids)
            self.add_layer(name, module, StructureAttrHandler(scaled), ids,
                           np.full(h, -1, dtype=np.int64), -1, -1)
        elif len(rec.in_ids) == len(head_ids):
            self.uf.union_arrays(rec.in_ids, head_ids)

    def _baked_width(self, out: torch.Tensor, dim: int,
                     inferred: Optional[int]) -> bool:
        """Whether a ``view`` merging the heads back (in a module with a
        head record) hard-codes the width: neither inferred (``-1``) nor an
        attribute the head record rewrites."""
        if inferred == dim:
            return False
        name, module = self._running_module()
        rec = self.layers.get(name) if module is not None else None
        if rec is None or not isinstance(rec.handler, StructureAttrHandler) \
                or not set(rec.handler.scaled) & set(HEAD_ATTRS):
            return False
        width = out.shape[dim]
        return not any(module.__dict__.get(a) == width and per > 1
                       for a, per in rec.handler.scaled.items())

    def _shuffle(self, args, kwargs, x, out, reason) -> bool:
        groups = self._dim_arg(args, kwargs, 1, None, 'groups')
        ids = self.ids_of(x)
        c = x.shape[1]
        if 1 not in _varying(ids):
            self.set_ids(out, ids)
            return True
        ch = self.channel_ids(ids, 1, c, reason)
        table = ch.reshape(groups, c // groups)
        self.uf.union_along(table, axis=0)
        shape = [1] * x.dim()
        shape[1] = c
        self.set_ids(out, table.T.reshape(shape))
        return True

    def _getitem(self, args, x, out, reason) -> bool:
        ids = self.ids_of(x)
        index = args[1] if len(args) > 1 else None
        if not isinstance(index, tuple):
            index = (index, )
        if any(isinstance(i, (torch.Tensor, list, np.ndarray))
               or (i is not None and not isinstance(i, (int, slice))
                   and i is not Ellipsis) for i in index):
            return False
        real = sum(1 for i in index if i is not None and i is not Ellipsis)
        expanded: List[Any] = []
        for i in index:
            if i is Ellipsis:
                expanded.extend([slice(None)] * (x.dim() - real))
            else:
                expanded.append(i)
        np_index: List[Any] = []
        d = 0
        positional = False
        for i in expanded:
            if i is None:
                np_index.append(None)
                continue
            if d >= x.dim():
                return False
            varying = ids.shape[d] > 1
            if isinstance(i, int):
                positional |= varying
                np_index.append(i if varying else 0)
            else:
                if varying and range(x.shape[d])[i] != range(x.shape[d]):
                    positional = True
                np_index.append(i if varying else slice(None))
            d += 1
        if positional:
            self.block(ids, reason + ' (selects channels by position)')
        new = ids[tuple(np_index)]
        if new.ndim != out.dim():
            return False
        self.set_ids(out, new)
        return True

    # ---------------------------------------------------------------- run
    def _index_params(self, name: str, module: nn.Module) -> None:
        """Remember the owner of each parameter/buffer of ``module`` (for
        ops that use one directly)."""
        for store in (module._parameters, module._buffers):
            for pname, p in store.items():
                if p is not None:
                    full = f'{name}.{pname}' if name else pname
                    self._param_index[id(p)] = (full, module, pname)

    def _recording_forward(self, name: str, module: nn.Module,
                           handler: LayerHandler,
                           reason: str) -> Optional[Callable]:
        """A forward for a standard layer that returns a tensor of the
        right shape without the layer's arithmetic (the analysis needs
        shapes, not values; see :meth:`LayerHandler.shape_only`) and
        records the layer itself, so the layer needs no hooks."""
        make_output = handler.shape_only(module)
        if make_output is None:
            return None

        def forward(x, *args, **kwargs):
            with _quiet():
                out = make_output(x, *args, **kwargs)
                if self.active and self.depth == 0:
                    self._run_leaf(name, module, handler, reason, x, out)
            return out

        return forward

    def _passthrough_forward(self, module: nn.Module,
                             func: Callable) -> Callable:
        """A forward for an activation / dropout module (see
        ``_PASSTHROUGH_MODULES``): runs the module's own forward and gives
        the output the input's channel ids."""
        real = type(module).forward
        op_name = func.__name__
        info = self.info

        def forward(x):
            with _quiet():
                out = real(module, x)
                if self.active and self.depth == 0:
                    if isinstance(x, torch.Tensor) and isinstance(
                            out, torch.Tensor) and out.shape == x.shape:
                        self._count_op(op_name)
                        info[id(out)] = (out, self.ids_of(x))
                    else:  # not the plain tensor case: the general rule
                        self.record(func, (x, ), {}, out)
            return out

        return forward

    def trace(self, run: Callable[[], Any],
              skip_arithmetic: bool = True) -> TraceResult:
        """Run ``run()`` (which calls the model) under the tracer, in eval
        mode (train/eval flags are restored afterwards).

        Args:
            run (Callable): Runs one forward pass and returns the output.
            skip_arithmetic (bool): Let convs and linears return zeros of
                the right shape and standard norm layers a view of their
                input, instead of computing (they are analysed from their
                attributes). Defaults to True.

        Returns:
            TraceResult: Layers, parameters, sources, blocked ids.
        """
        leaves = 0
        faked = []
        hooked = []
        training = []  # eval mode for the trace, without a recursive .eval()
        for name, module in _named_modules(self.model):
            if module.training:
                module.training = False
                training.append(module)
            handler = handler_of(module)
            if handler is None:
                self._modules[id(module)] = (name, None,
                                             _no_handler_hint(module))
                func = _PASSTHROUGH_MODULES.get(type(module))
                if func is not None and 'forward' not in module.__dict__:
                    module.__dict__['forward'] = self._passthrough_forward(
                        module, func)
                    faked.append(module)
            else:
                leaves += 1
                reason = self._reason(type(module).__name__)
                self._modules[id(module)] = (name, handler, reason)
                fake = self._recording_forward(name, module, handler,
                                               reason) \
                    if skip_arithmetic and 'forward' not in module.__dict__ \
                    else None
                if fake is not None:
                    # straight into the instance dict: nn.Module.__setattr__
                    # is slow and the attribute is removed again below
                    module.__dict__['forward'] = fake
                    faked.append(module)
                    continue  # its parameters are not seen by any op
                hooked.append(module)
            if module._parameters or module._buffers:
                self._index_params(name, module)
        handles = []
        for name, module in _named_modules(self.model):
            if handler_of(module) is None and any(
                    isinstance(module.__dict__.get(a), int)
                    for a in HEAD_ATTRS):
                handles.append(
                    module.register_forward_pre_hook(
                        self._inputs_hook(name), with_kwargs=True))
        for module in hooked:
            handles.append(module.register_forward_pre_hook(self._pre_hook))
            handles.append(module.register_forward_hook(self._post_hook))
        self._num_leaves = leaves
        self._start = time.perf_counter()
        self.active = True
        try:
            with torch.no_grad(), _Mode(self):
                output = run()
            self.active = False
            for t in _tensors_in(output, []):
                self.block(self.ids_of(t), 'model output')
        except ChannelAnalysisError:
            raise
        except Exception as e:
            raise ChannelAnalysisError(
                f'the model failed while being traced, in '
                f'{self._where_from(e.__traceback__)}: '
                f'{type(e).__name__}: {e}') from e
        finally:
            self.active = False
            for h in handles:
                h.remove()
            for module in faked:
                module.__dict__.pop('forward', None)
            for module in training:
                module.training = True
            self.info.clear()
        return TraceResult(self.uf, self.layers, self.params, self.sources,
                           self.blocked, self.num_ops,
                           time.perf_counter() - self._start,
                           dict(self.op_counts))
