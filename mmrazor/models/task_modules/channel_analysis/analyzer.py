"""Channel groups: which layers' channels must be pruned together."""
import fnmatch
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import (Any, Callable, Dict, Iterator, List, Optional, Sequence,
                    Tuple)

import numpy as np
import torch
from mmengine.logging import print_log
from torch import nn

from mmrazor.registry import TASK_UTILS
from .tracer import (ChannelAnalysisError, ChannelTracer, LayerRecord,
                     ParamRecord, TraceResult)
from .union_find import sorted_unique


@dataclass
class ChannelGroup:
    """Channels of several layers that must be pruned together.

    A group is a list of *units*; a unit is a set of channels that can only
    be kept or removed as a whole (one channel in most layers; a whole conv
    group for grouped convolutions; ``H*W`` features of a linear layer
    after a flatten). The decision for a group is a keep-mask over its
    units.

    Attributes:
        name (str): The first layer (or parameter) creating the channels.
        units (list[int]): Union-find roots of the units, in the order of
            the first source's channels.
        sources (list[str]): Layers/parameters that create these channels
            (conv / linear outputs, directly used parameters).
        layers (list[str]): ``'name:in'`` / ``'name:out'`` for every layer
            side that holds channels of the group.
        blocked_by (list[str]): Why the group cannot be pruned (ops that
            blocked it), empty when it can.
        excluded_by (str, optional): The config entry that excluded it.
    """
    name: str
    units: List[int]
    sources: List[str]
    layers: List[str] = field(default_factory=list)
    blocked_by: List[str] = field(default_factory=list)
    excluded_by: Optional[str] = None

    @property
    def num_units(self) -> int:
        """How many units the group has."""
        return len(self.units)

    @property
    def prunable(self) -> bool:
        """Whether the group can be pruned."""
        return not self.blocked_by and self.excluded_by is None and \
            self.num_units > 1

    def layer_names(self, side: Optional[str] = None) -> List[str]:
        """Layer names of the group (optionally only one side)."""
        names = []
        for item in self.layers:
            name, s = item.rsplit(':', 1)
            if side is None or s == side:
                if name not in names:
                    names.append(name)
        return names


class ChannelDependency:
    """The result of a channel analysis.

    Attributes:
        groups (OrderedDict[str, ChannelGroup]): All groups, prunable or
            not.
        layers (dict[str, LayerRecord]): Layers with channel weights.
        params (dict[str, ParamRecord]): Parameters used directly by ops.
        num_ops (int): Ops traced. ``seconds``: tracing time.
    """

    def __init__(self, trace: TraceResult,
                 groups: 'OrderedDict[str, ChannelGroup]') -> None:
        self.layers: Dict[str, LayerRecord] = trace.layers
        self.params: Dict[str, ParamRecord] = trace.params
        self.groups = groups
        self.num_ops = trace.num_ops
        self.seconds = trace.seconds
        self.op_counts = trace.op_counts
        self.root_of = trace.uf.roots()

    @property
    def prunable_groups(self) -> 'OrderedDict[str, ChannelGroup]':
        """Only the groups that can be pruned."""
        return OrderedDict((k, g) for k, g in self.groups.items()
                           if g.prunable)

    def unit_counts(self, name: str, ids: np.ndarray) -> np.ndarray:
        """How many of ``ids`` (channels of one layer side) fall in each
        unit of group ``name``."""
        group = self.groups[name]
        units = np.asarray(group.units, dtype=np.int64)
        ids = np.asarray(ids).ravel()
        r = self.root_of[ids[ids >= 0]]
        pos = np.searchsorted(units, r)
        pos = np.minimum(pos, max(len(units) - 1, 0))
        hit = units[pos] == r if len(units) else np.zeros(0, bool)
        return np.bincount(pos[hit], minlength=len(units)).astype(np.int64)

    def keep_by_id(self, unit_masks: Dict[str, np.ndarray]) -> np.ndarray:
        """Per channel id: is it kept, given a keep-mask per group.

        Args:
            unit_masks (dict[str, np.ndarray]): Group name -> bool mask over
                its units (groups left out keep everything).

        Returns:
            np.ndarray: Bool array over all channel ids.
        """
        keep_root = np.ones(len(self.root_of), dtype=bool)
        for name, mask in unit_masks.items():
            group = self.groups[name]
            mask = np.asarray(mask, dtype=bool)
            if mask.shape != (group.num_units, ):
                raise ValueError(f'group {name!r}: mask of shape '
                                 f'{mask.shape}, expected '
                                 f'({group.num_units},)')
            keep_root[np.asarray(group.units, dtype=np.int64)] = mask
        return keep_root[self.root_of]

    @staticmethod
    def mask_of(ids: np.ndarray, keep: np.ndarray) -> np.ndarray:
        """Keep-flags of channels with ``ids`` (untraced ones are kept)."""
        ids = np.asarray(ids)
        out = np.ones(ids.shape, dtype=bool)
        traced = ids >= 0
        out[traced] = keep[ids[traced]]
        return out

    def report(self, only_blocked: bool = False) -> str:
        """A human-readable summary of the groups.

        Args:
            only_blocked (bool): List only the groups that cannot be
                pruned. Defaults to False.

        Returns:
            str: One line per group.
        """
        lines = [f'{len(self.groups)} channel groups, '
                 f'{len(self.prunable_groups)} prunable '
                 f'({self.num_ops} ops traced in {self.seconds:.2f}s)']
        for g in self.groups.values():
            if only_blocked and g.prunable:
                continue
            if g.excluded_by:
                state = f'excluded by {g.excluded_by}'
            elif g.blocked_by:
                state = 'blocked by ' + '; '.join(g.blocked_by[:3])
            elif g.num_units <= 1:
                state = 'single unit'
            else:
                state = 'prunable'
            lines.append(f'  {g.name}: {g.num_units} units, '
                         f'{len(g.layer_names())} layers, {state}')
        return '\n'.join(lines)


@contextmanager
def _meta_weights(model: nn.Module) -> Iterator[None]:
    """Swap every parameter and buffer for a ``meta`` copy (restored on
    exit; shared tensors stay shared)."""
    saved = []
    memo: Dict[int, torch.Tensor] = {}
    try:
        for m in model.modules():
            for store in (m._parameters, m._buffers):
                for key, t in list(store.items()):
                    if t is None:
                        continue
                    new = memo.get(id(t))
                    if new is None:
                        meta = t.detach().to('meta')
                        new = nn.Parameter(
                            meta, requires_grad=t.requires_grad) if \
                            isinstance(t, nn.Parameter) else meta
                        memo[id(t)] = new
                    saved.append((store, key, t))
                    store[key] = new
        yield
    finally:
        for store, key, t in reversed(saved):
            store[key] = t


def _to_device(obj: Any, device: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_device(o, device) for o in obj)
    if isinstance(obj, dict):
        return {k: _to_device(v, device) for k, v in obj.items()}
    return obj


def _device_of(model: nn.Module) -> torch.device:
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device('cpu')


def _source_groups(num_src: int, src_of: np.ndarray,
                   roots: np.ndarray) -> np.ndarray:
    """Sources sharing a unit belong to one group: label every source by
    the first source of its group.

    Args:
        num_src (int): Number of sources.
        src_of (np.ndarray): The source of every channel id.
        roots (np.ndarray): The unit (union-find root) of every id.

    Returns:
        np.ndarray: ``label[k]`` = smallest source index in ``k``'s group.
    """
    # Every source is tied to the first source of each unit it holds; the
    # few distinct ties are then joined in a small union-find on sources.
    first_of_root = np.full(len(roots), num_src, dtype=np.int64)
    np.minimum.at(first_of_root, roots, src_of)
    first = first_of_root[roots]
    cross = first != src_of
    parent = list(range(num_src))

    def find(k: int) -> int:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    if cross.any():
        ties = sorted_unique(src_of[cross] * num_src + first[cross])
        for code in ties.tolist():
            a, b = find(code // num_src), find(code % num_src)
            if a != b:
                parent[max(a, b)] = min(a, b)
    return np.array([find(k) for k in range(num_src)], dtype=np.int64)


def _matches(name: str, key: str) -> bool:
    if any(c in key for c in '*?['):
        return fnmatch.fnmatchcase(name, key)
    return name == key or name.startswith(key + '.') or \
        name.startswith(key)


@TASK_UTILS.register_module()
class ChannelAnalyzer:
    """Find the groups of channels a model must prune together.

    Traces one forward pass of the model on a real tensor (see
    :mod:`.tracer`), then groups the channel ids.

    Args:
        input_shape (tuple): Shape of the dummy input. Defaults to
            ``(1, 3, 224, 224)``.
        excluded (Sequence[str]): Layer/parameter names (prefixes or
            glob patterns) whose *output* channels must not be pruned; their
            groups are excluded and the report names the entry.
        manual_groups (Sequence[Sequence[str]]): Layers whose output
            channels must be pruned together (tied position by position),
            in addition to what the tracer finds. All need the same number
            of output channels.
        passthrough_ops (Sequence[str]): Names of functions the tracer
            should treat as element-wise (per channel). Use for custom ops
            that block groups needlessly.
        max_ops (int): Bound of the walk (ops traced). Defaults to 200000.
        timeout (float): Bound of the walk, seconds. Defaults to 600.
        show_progress (bool): Log progress for models with many layers.
            Defaults to True.
        use_meta (bool): Trace on ``meta`` tensors (shapes only, no
            arithmetic: fast, and no memory for activations); a model that
            cannot run on them (data-dependent code) is traced on real
            tensors instead. Meta kernels have a high per-op cost, so this
            only pays for very large inputs. Defaults to False (real
            tensors; convs, linears and norms skip their arithmetic, see
            :meth:`ChannelTracer.trace`).

    Example:
        >>> analyzer = ChannelAnalyzer(input_shape=(1, 3, 64, 64))
        >>> dep = analyzer.analyze(torchvision.models.resnet18())
        >>> print(dep.report())
    """

    def __init__(self,
                 input_shape: Sequence[int] = (1, 3, 224, 224),
                 excluded: Sequence[str] = (),
                 manual_groups: Sequence[Sequence[str]] = (),
                 passthrough_ops: Sequence[str] = (),
                 max_ops: int = 200000,
                 timeout: float = 600.0,
                 show_progress: bool = True,
                 use_meta: bool = False) -> None:
        self.input_shape = tuple(input_shape)
        self.excluded = list(excluded)
        self.manual_groups = [list(g) for g in manual_groups]
        self.passthrough_ops = list(passthrough_ops)
        self.max_ops = max_ops
        self.timeout = timeout
        self.show_progress = show_progress
        self.use_meta = use_meta

    def _progress(self) -> Optional[Callable[[int, int], None]]:
        if not self.show_progress:
            return None
        state = {'next': 0.25}

        def progress(done: int, total: int) -> None:
            if total < 150 or not total:
                return
            if done / total >= state['next']:
                print_log(f'channel analysis: {done}/{total} layers traced',
                          logger='current')
                state['next'] += 0.25

        return progress

    def analyze(self,
                model: nn.Module,
                inputs: Any = None,
                forward_fn: Optional[Callable[[nn.Module, Any], Any]] = None
                ) -> ChannelDependency:
        """Analyse ``model``.

        Args:
            model (nn.Module): The model. Its train/eval mode is restored
                afterwards; the trace runs in eval mode without gradients.
            inputs (Any): The input; defaults to a random tensor of
                ``input_shape`` on the model's device.
            forward_fn (Callable, optional): ``forward_fn(model, inputs)``
                runs the model (e.g. ``lambda m, x: m.forward_dummy(x)``).
                Defaults to ``model(inputs)``.

        Returns:
            ChannelDependency: The groups and layer records.
        """
        if inputs is None:
            try:
                ref = next(model.parameters())
                dtype = ref.dtype
            except StopIteration:
                dtype = torch.float32
            inputs = torch.randn(self.input_shape, dtype=dtype)
        forward_fn = forward_fn or (lambda m, x: m(x))
        trace = None  # the tracer runs the model in eval mode
        if self.use_meta:
            try:
                with _meta_weights(model):
                    trace = self._trace(model, forward_fn,
                                        _to_device(inputs, 'meta'))
            except ChannelAnalysisError as e:
                if e.__cause__ is None:  # bounded walk: do not retry
                    raise
                print_log(
                    'channel analysis: the model does not run on meta '
                    f'tensors ({e}); tracing with real tensors',
                    logger='current')
        if trace is None:
            trace = self._trace(model, forward_fn,
                                _to_device(inputs, _device_of(model)))
        self._apply_manual_groups(trace)
        groups = self._build_groups(trace)
        return ChannelDependency(trace, groups)

    def _trace(self, model, forward_fn, inputs) -> TraceResult:
        tracer = ChannelTracer(
            model,
            max_ops=self.max_ops,
            timeout=self.timeout,
            passthrough_ops=self.passthrough_ops,
            progress=self._progress())
        return tracer.trace(lambda: forward_fn(model, inputs))

    # ----------------------------------------------------------- grouping
    def _out_ids_of(self, trace: TraceResult, name: str) -> np.ndarray:
        if name in trace.layers:
            return trace.layers[name].out_ids
        if name in trace.params:
            return trace.params[name].ids.ravel()
        known = sorted(trace.layers)
        raise KeyError(f'manual_groups: {name!r} is not a traced layer or '
                       f'parameter; traced layers include {known[:8]}...')

    def _apply_manual_groups(self, trace: TraceResult) -> None:
        for group in self.manual_groups:
            if len(group) < 2:
                raise ValueError(f'manual group {group} needs >= 2 layers')
            first = self._out_ids_of(trace, group[0])
            for name in group[1:]:
                ids = self._out_ids_of(trace, name)
                if len(ids) != len(first):
                    raise ValueError(
                        f'manual group {group}: {name!r} has {len(ids)} '
                        f'output channels but {group[0]!r} has '
                        f'{len(first)}')
                trace.uf.union_arrays(first, ids)

    def _build_groups(self, trace: TraceResult
                      ) -> 'OrderedDict[str, ChannelGroup]':
        roots = trace.uf.roots()
        sources = trace.sources
        n, num_src = len(roots), len(sources)
        src_of = np.full(n, -1, dtype=np.int64)
        for k, src in enumerate(sources):
            src_of[src.ids] = k
        if (src_of < 0).any():
            raise ChannelAnalysisError('internal: a channel id without a '
                                       'source')
        group_of_src = _source_groups(num_src, src_of, roots)
        unit_roots = np.flatnonzero(roots == np.arange(n))
        group_of_root = np.full(n, -1, dtype=np.int64)
        group_of_root[unit_roots] = group_of_src[src_of[unit_roots]]
        # units in creation order (a root is the smallest id of its unit)
        order = np.argsort(group_of_root[unit_roots], kind='stable')
        sorted_roots = unit_roots[order]
        sorted_groups = group_of_root[sorted_roots]
        cuts = np.flatnonzero(np.diff(sorted_groups)) + 1
        by_group: Dict[int, List[int]] = {}
        roots_list = sorted_roots.tolist()
        bounds = [0] + cuts.tolist() + [len(roots_list)]
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            if hi > lo:
                by_group[int(sorted_groups[lo])] = roots_list[lo:hi]
        groups: 'OrderedDict[str, ChannelGroup]' = OrderedDict()
        group_by_index: Dict[int, ChannelGroup] = {}
        for k in range(num_src):
            g = int(group_of_src[k])
            if g not in group_by_index:
                group = ChannelGroup(sources[g].name, by_group.get(g, []),
                                     [])
                group_by_index[g] = group
                groups[group.name] = group
            group_by_index[g].sources.append(sources[k].name)

        # Which groups every layer side / parameter / block touches, in
        # one vectorised pass.
        # Layer sides often share one id array (a norm's input and
        # output): each array is looked at once, under all its labels.
        labels_: List[List[Tuple[str, str]]] = []
        chunks: List[np.ndarray] = []
        chunk_of: Dict[int, int] = {}
        items: List[Tuple[str, str, Any]] = []
        for rec in trace.layers.values():
            items.append(('layer', rec.name + ':in', rec.in_ids))
            items.append(('layer', rec.name + ':out', rec.out_ids))
        for prec in trace.params.values():
            items.append(('layer', prec.name + ':param', prec.ids))
        for ids, reason in trace.blocked:
            items.append(('block', reason, ids))
        for kind, text, ids in items:
            index = chunk_of.get(id(ids))
            if index is None:
                index = chunk_of[id(ids)] = len(chunks)
                chunks.append(ids.ravel())
                labels_.append([])
            labels_[index].append((kind, text))
        if chunks:
            owners = np.repeat(np.arange(len(chunks)),
                               [len(c) for c in chunks])
            flat = np.concatenate(chunks)
            valid = flat >= 0
            owners, flat = owners[valid], flat[valid]
            keys = owners * (num_src + 1) + group_of_root[roots[flat]]
            # Most chunks lie in one group: drop runs of equal keys before
            # sorting the rest.
            run_start = np.ones(len(keys), dtype=bool)
            np.not_equal(keys[1:], keys[:-1], out=run_start[1:])
            pairs = sorted_unique(keys[run_start])
            for code in pairs.tolist():
                owner, g = divmod(code, num_src + 1)
                group = group_by_index[g]
                for kind, text in labels_[owner]:
                    if kind == 'layer':
                        group.layers.append(text)
                    elif text not in group.blocked_by and \
                            len(group.blocked_by) < 8:
                        group.blocked_by.append(text)
        for g in groups.values():
            for key in self.excluded:
                if any(_matches(s, key) for s in g.sources):
                    g.excluded_by = f'excluded={key!r}'
                    break
        return groups
