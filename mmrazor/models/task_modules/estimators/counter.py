"""Dispatcher-level counting of what a forward pass really executes.

:class:`OpCounter` is a ``TorchDispatchMode``: it sees every ATen operator
after PyTorch's composite operators are decomposed (``F.linear`` on a 3-d
input, ``einsum``, ``matmul``), and the fused kernels that replace whole
modules at inference time (``_native_multi_head_attention``, the fused
scaled-dot-product attention kernels), so matrix products in attention are not
missed the way module-hook counters miss them.

Module attribution comes from forward (pre-)hooks installed by
:func:`track_modules`: every counted operator is added to each module that is
running when it executes, which gives a per-module breakdown.
"""
import contextlib
from collections import Counter, defaultdict
from typing import (Any, Callable, Dict, Iterator, List, Optional, Set,
                    Tuple)

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.weak import WeakIdKeyDictionary

from .op_counters import DATA_MOVEMENT_OPS, OP_COUNTERS


def op_name(func: Any) -> str:
    """``'aten.add'`` for ``aten.add.Tensor`` (overloads merged)."""
    packet = func.overloadpacket
    namespace = getattr(packet, '_qualified_op_name', '').split('::')[0]
    return f'{namespace or "aten"}.{packet.__name__}'


class CountBucket:
    """Multiply-accumulates and uncounted operator calls of one region.

    Attributes:
        macs (int): Counted multiply-accumulates.
        uncounted (Counter): Operator name -> number of calls that ran but
            were not counted.
    """

    __slots__ = ('macs', 'uncounted')

    def __init__(self) -> None:
        self.macs = 0
        self.uncounted: Counter = Counter()

    def add(self, other: 'CountBucket', times: int = 1) -> None:
        """Add ``times`` copies of ``other`` to this bucket."""
        self.macs += other.macs * times
        for name, calls in other.uncounted.items():
            self.uncounted[name] += calls * times

    def copy(self) -> 'CountBucket':
        """A copy of this bucket."""
        new = CountBucket()
        new.add(self)
        return new

    def __repr__(self) -> str:
        return (f'CountBucket(macs={self.macs}, '
                f'uncounted={dict(self.uncounted)})')


class OpCounter(TorchDispatchMode):
    """Count multiply-accumulates of every ATen operator that runs.

    Operators of :data:`OP_COUNTERS` add their MACs; operators of
    :data:`DATA_MOVEMENT_OPS` are ignored; every other operator is recorded
    as uncounted (name and number of calls). Operators whose tensor
    operands are all *weight-only* (see :meth:`is_weight_only`) are
    ignored too: they transform weights, not the input, and are no
    inference cost (an exported model stores their result).

    Ops are attributed to the innermost module running (the last name on
    :attr:`stack`, maintained by :func:`track_modules`); sum a module's
    descendants by name for its inclusive cost. While :attr:`unit` is set (the name of a
    separately measured part, e.g. a module mutable of a supernet), ops go
    to that unit's bucket and not to the module breakdown or the total.

    Attributes:
        total (CountBucket): Everything outside units.
        by_module (dict): Module name -> :class:`CountBucket` of the ops
            that ran directly in it, not in a sub-module (outside units).
        units (dict): Unit name -> :class:`CountBucket`.
        stack (list): Names of the modules running now, outermost first.
        unit (str, optional): The unit running now.
    """

    def __init__(self) -> None:
        super().__init__()
        self.total = CountBucket()
        self.by_module: Dict[str, CountBucket] = defaultdict(CountBucket)
        self.units: Dict[str, CountBucket] = defaultdict(CountBucket)
        self.stack: List[str] = []
        self.unit: Optional[str] = None
        # tensors computed from parameters / constants only
        self._weight_only: WeakIdKeyDictionary = WeakIdKeyDictionary()

    def is_weight_only(self, value: Any) -> bool:
        """Whether ``value`` is a tensor derived from weights only: a
        parameter, or the output of an operator (seen by this counter)
        whose tensor operands were all weight-only, or that had none (a
        tensor created from constants).

        Args:
            value: Anything (non-tensors are not weight-only).

        Returns:
            bool: True for a weight-only tensor.
        """
        if not isinstance(value, torch.Tensor):
            return False
        if isinstance(value, nn.Parameter) or value in self._weight_only:
            return True
        base = value._base
        return base is not None and (isinstance(base, nn.Parameter)
                                     or base in self._weight_only)

    def _track_weight_only(self, args: Tuple, kwargs: Dict,
                           out: Any) -> bool:
        """Mark the outputs of a call weight-only when its operands are;
        returns whether they are."""
        operands = [
            v for v in tree_flatten((args, kwargs))[0]
            if isinstance(v, torch.Tensor)
        ]
        weight_only = all(self.is_weight_only(v) for v in operands)
        for value in tree_flatten(out)[0]:
            if not isinstance(value, torch.Tensor):
                continue
            if weight_only:
                self._weight_only[value] = True
            else:  # e.g. an in-place op writing the input into a weight
                self._weight_only.pop(value, None)
        return weight_only

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if self._track_weight_only(args, kwargs, out):
            return out  # a computation on weights alone
        packet = func.overloadpacket
        count_fn = OP_COUNTERS.get(packet)
        if count_fn is not None:
            try:
                macs = int(count_fn(args, kwargs, out))
            except Exception:  # e.g. nested tensors: report, never break
                self._record(0, op_name(func) + ' (not countable)')
            else:
                self._record(macs, None)
        elif packet not in DATA_MOVEMENT_OPS:
            self._record(0, op_name(func))
        return out

    def _record(self, macs: int, uncounted: Optional[str]) -> None:
        if self.unit is not None:
            buckets = [self.units[self.unit]]
        else:
            inner = self.stack[-1] if self.stack else ''
            buckets = [self.total, self.by_module[inner]]
        for bucket in buckets:
            if uncounted is None:
                bucket.macs += macs
            else:
                bucket.uncounted[uncounted] += 1


#: ``(name, module, args, kwargs) -> None`` called before a module runs.
PreCallback = Callable[[str, nn.Module, Tuple, Dict], None]
#: ``(name, module, output) -> None`` called after a module ran.
PostCallback = Callable[[str, nn.Module, Any], None]


@contextlib.contextmanager
def track_modules(model: nn.Module,
                  counter: OpCounter,
                  prefix: str = '',
                  skip: Optional[Set[int]] = None,
                  on_enter: Optional[PreCallback] = None,
                  on_exit: Optional[PostCallback] = None) -> Iterator[None]:
    """Keep ``counter.stack`` equal to the names of the running modules.

    Args:
        model (nn.Module): Every sub-module gets a pre- and a post-hook.
        counter (OpCounter): Its ``stack`` is maintained.
        prefix (str): Prepended to the module names. Defaults to ''.
        skip (set[int], optional): ``id`` of modules whose sub-modules get
            no hooks (their own hooks are still installed).
        on_enter (callable, optional): Called as ``(name, module, args,
            kwargs)`` before each module runs, after its name is pushed.
        on_exit (callable, optional): Called as ``(name, module, output)``
            after each module ran, before its name is popped.
    """
    handles = []
    skip = skip or set()

    def make_hooks(name: str):

        def pre_hook(module, args, kwargs):
            counter.stack.append(name)
            if on_enter is not None:
                on_enter(name, module, args, kwargs)

        def post_hook(module, args, kwargs, output):
            if on_exit is not None:
                on_exit(name, module, output)
            if counter.stack and counter.stack[-1] == name:
                counter.stack.pop()

        return pre_hook, post_hook

    visited: Set[int] = set()

    def visit(module: nn.Module, name: str) -> None:
        if id(module) in visited:  # a shared module keeps its first name
            return
        visited.add(id(module))
        pre, post = make_hooks(name)
        handles.append(
            module.register_forward_pre_hook(pre, with_kwargs=True))
        handles.append(
            module.register_forward_hook(
                post, with_kwargs=True, always_call=True))
        if id(module) in skip:
            return
        for child_name, child in module.named_children():
            visit(child, f'{name}.{child_name}' if name else child_name)

    try:
        visit(model, prefix)
        yield
    finally:
        for handle in handles:
            handle.remove()


def tensor_spec(value: Any) -> Any:
    """Replace every tensor in a nested structure by its
    ``(shape, dtype, device)`` so that it can be rebuilt (and hashed).

    Args:
        value: A tensor, or a tuple/list/dict holding tensors and others.

    Returns:
        The same structure with :class:`TensorSpec` in place of tensors.
    """
    if isinstance(value, torch.Tensor):
        return TensorSpec(tuple(value.shape), value.dtype, value.device)
    if isinstance(value, tuple):
        return tuple(tensor_spec(v) for v in value)
    if isinstance(value, list):
        return [tensor_spec(v) for v in value]
    if isinstance(value, dict):
        return {k: tensor_spec(v) for k, v in value.items()}
    return value


class TensorSpec:
    """Shape, dtype and device of a tensor that can be rebuilt at random.

    Args:
        shape (tuple[int]): Tensor shape.
        dtype (torch.dtype): Tensor dtype.
        device (torch.device): Tensor device.
    """

    __slots__ = ('shape', 'dtype', 'device')

    def __init__(self, shape: Tuple[int, ...], dtype: torch.dtype,
                 device: torch.device) -> None:
        self.shape = tuple(int(s) for s in shape)
        self.dtype = dtype
        self.device = device

    def build(self) -> torch.Tensor:
        """A random tensor (zeros for integer/bool dtypes) of this spec."""
        if self.dtype.is_floating_point or self.dtype.is_complex:
            return torch.randn(self.shape, dtype=self.dtype,
                               device=self.device)
        return torch.zeros(self.shape, dtype=self.dtype, device=self.device)

    def _key(self) -> Tuple:
        return (self.shape, str(self.dtype), str(self.device))

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, TensorSpec) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f'Tensor{list(self.shape)}'


def build_from_spec(spec: Any) -> Any:
    """Inverse of :func:`tensor_spec`, with random tensors."""
    if isinstance(spec, TensorSpec):
        return spec.build()
    if isinstance(spec, tuple):
        return tuple(build_from_spec(v) for v in spec)
    if isinstance(spec, list):
        return [build_from_spec(v) for v in spec]
    if isinstance(spec, dict):
        return {k: build_from_spec(v) for k, v in spec.items()}
    return spec


def spec_key(spec: Any) -> Any:
    """A hashable key of a spec made by :func:`tensor_spec`."""
    if isinstance(spec, TensorSpec):
        return ('tensor', ) + spec._key()
    if isinstance(spec, (tuple, list)):
        return (type(spec).__name__, ) + tuple(spec_key(v) for v in spec)
    if isinstance(spec, dict):
        return ('dict', ) + tuple(
            (k, spec_key(v)) for k, v in sorted(spec.items(), key=str))
    try:
        hash(spec)
        return spec
    except TypeError:
        return repr(spec)


def count_call(fn: Callable[..., Any], *args,
               **kwargs) -> Tuple[CountBucket, Any]:
    """Run ``fn(*args, **kwargs)`` under an :class:`OpCounter`.

    Args:
        fn (callable): What to run (a module, or a function).

    Returns:
        tuple: The :class:`CountBucket` of everything that ran, and the
        output of ``fn``.
    """
    counter = OpCounter()
    with torch.no_grad(), counter:
        out = fn(*args, **kwargs)
    return counter.total, out
