"""Channel groups: which layers' channels must be pruned together."""
import fnmatch
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, \
    Union

import numpy as np
import torch
from mmengine.logging import print_log
from torch import nn

from mmrazor.registry import TASK_UTILS
from .tracer import (ChannelAnalysisError, ChannelTracer, LayerRecord,
                     ParamRecord, TraceResult)


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
        self.group_of_root: Dict[int, str] = {}
        for group in groups.values():
            for r in group.units:
                self.group_of_root[r] = group.name

    @property
    def prunable_groups(self) -> 'OrderedDict[str, ChannelGroup]':
        """Only the groups that can be pruned."""
        return OrderedDict((k, g) for k, g in self.groups.items()
                           if g.prunable)

    def unit_counts(self, name: str, ids: np.ndarray) -> np.ndarray:
        """How many of ``ids`` (channels of one layer side) fall in each
        unit of group ``name``."""
        group = self.groups[name]
        pos = {r: i for i, r in enumerate(group.units)}
        counts = np.zeros(group.num_units, dtype=np.int64)
        for i in ids.tolist():
            if i >= 0:
                k = pos.get(int(self.root_of[i]))
                if k is not None:
                    counts[k] += 1
        return counts

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
                 show_progress: bool = True) -> None:
        self.input_shape = tuple(input_shape)
        self.excluded = list(excluded)
        self.manual_groups = [list(g) for g in manual_groups]
        self.passthrough_ops = list(passthrough_ops)
        self.max_ops = max_ops
        self.timeout = timeout
        self.show_progress = show_progress

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
                device, dtype = ref.device, ref.dtype
            except StopIteration:
                device, dtype = torch.device('cpu'), torch.float32
            inputs = torch.randn(self.input_shape, device=device,
                                 dtype=dtype)
        forward_fn = forward_fn or (lambda m, x: m(x))
        tracer = ChannelTracer(
            model,
            max_ops=self.max_ops,
            timeout=self.timeout,
            passthrough_ops=self.passthrough_ops,
            progress=self._progress())
        training = model.training
        model.eval()
        try:
            trace = tracer.trace(lambda: forward_fn(model, inputs))
        finally:
            model.train(training)
        self._apply_manual_groups(trace)
        groups = self._build_groups(trace)
        return ChannelDependency(trace, groups)

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
        # Sources sharing a unit belong to one group.
        parent = list(range(len(sources)))

        def find(x: int) -> int:
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        owner: Dict[int, int] = {}
        for k, src in enumerate(sources):
            for r in np.unique(roots[src.ids]).tolist():
                if r in owner:
                    a, b = find(owner[r]), find(k)
                    if a != b:
                        parent[max(a, b)] = min(a, b)
                else:
                    owner[r] = k
        members: 'OrderedDict[int, List[int]]' = OrderedDict()
        for k in range(len(sources)):
            members.setdefault(find(k), []).append(k)
        groups: 'OrderedDict[str, ChannelGroup]' = OrderedDict()
        group_of_root: Dict[int, ChannelGroup] = {}
        for ks in members.values():
            units: List[int] = []
            seen = set()
            for k in ks:
                for r in roots[sources[k].ids].tolist():
                    if r not in seen:
                        seen.add(r)
                        units.append(r)
            name = sources[ks[0]].name
            group = ChannelGroup(name, units, [sources[k].name for k in ks])
            groups[name] = group
            for r in units:
                group_of_root[r] = group
        # Layers holding channels of each group.
        for rec in trace.layers.values():
            for side, ids in (('in', rec.in_ids), ('out', rec.out_ids)):
                touched = set()
                for r in np.unique(roots[ids[ids >= 0]]).tolist():
                    g = group_of_root.get(r)
                    if g is not None and g.name not in touched:
                        touched.add(g.name)
                        g.layers.append(f'{rec.name}:{side}')
        for prec in trace.params.values():
            for r in np.unique(roots[prec.ids.ravel()]).tolist():
                g = group_of_root.get(r)
                if g is not None and f'{prec.name}:param' not in g.layers:
                    g.layers.append(f'{prec.name}:param')
        # Blocked ids and user exclusions.
        for i, reason in trace.blocked.items():
            g = group_of_root.get(int(roots[i]))
            if g is not None and reason not in g.blocked_by:
                g.blocked_by.append(reason)
        for g in groups.values():
            for key in self.excluded:
                if any(_matches(s, key) for s in g.sources):
                    g.excluded_by = f'excluded={key!r}'
                    break
        return groups
