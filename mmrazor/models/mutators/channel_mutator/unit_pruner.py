"""The traced mode of :class:`ChannelMutator`: 1.x channel units on the
groups of the channel analysis, masked and deployed by a
:class:`~mmrazor.models.pruners.StructurePruner`."""
import difflib
import logging
from collections import OrderedDict
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.logging import print_log
from torch import nn

from mmrazor.models.mutables import (L1MutableChannelUnit,
                                     MutableChannelUnit,
                                     SequentialMutableChannelUnit)
from mmrazor.models.pruners.structure_pruning import StructurePruner
from mmrazor.models.task_modules.channel_analysis import (ChannelDependency,
                                                          ChannelGroup)
from mmrazor.registry import MODELS

#: parse_cfg types that trace the model (all use the one channel analysis).
TRACER_TYPES = ('ChannelAnalyzer', 'BackwardTracer', 'FxTracer', 'Config')
#: parse_cfg keys of 1.x that the channel analysis does not need.
_IGNORED_PARSE_KEYS = ('tracer_type', 'loss_calculator', 'tracer_cfg',
                       'global_init_cfg', 'backward_tracer', '_scope_')
#: parse_cfg keys handed to the channel analysis as they are.
_ANALYZER_KEYS = ('excluded', 'manual_groups', 'passthrough_ops', 'max_ops',
                  'timeout')

UnitFactory = Callable[[str, str, ChannelGroup, int], MutableChannelUnit]


def close_matches(name: Any, known: Sequence[str]) -> str:
    """`` (close matches: [...])`` for an error message, or ``''``."""
    near = difflib.get_close_matches(str(name), list(known), n=3,
                                     cutoff=0.6)
    return f' (close matches: {near})' if near else ''


def parse_mode(parse_cfg: Optional[Dict]) -> str:
    """``'auto'``, ``'predefined'`` or ``'traced'`` for a 1.x parse_cfg.

    Args:
        parse_cfg (dict, optional): ``dict(type='Predefined')``, a tracer
            config (``type`` one of :data:`TRACER_TYPES`) or None.

    Returns:
        str: The mode.

    Raises:
        ValueError: An unknown ``type`` (named, with the known ones).
    """
    if parse_cfg is None:
        return 'auto'
    if not isinstance(parse_cfg, dict):
        raise TypeError(f'ChannelMutator: parse_cfg must be a dict, got '
                        f'{parse_cfg!r}')
    kind = str(parse_cfg.get('type', 'ChannelAnalyzer')).split('.')[-1]
    if kind == 'Predefined':
        return 'predefined'
    if kind in TRACER_TYPES:
        return 'traced'
    raise ValueError(f'ChannelMutator: unknown parse_cfg type {kind!r}; '
                     f"known: {['Predefined', *TRACER_TYPES]}")


def analyzer_kwargs(parse_cfg: Optional[Dict]) -> Dict[str, Any]:
    """:class:`StructurePruner` arguments for a 1.x tracer parse_cfg.

    ``demo_input`` may be a shape ``(N, C, H, W)`` or a dict holding
    ``input_shape``; a 1.x demo-input config without a shape uses
    ``(1, 3, 224, 224)``.
    """
    cfg = dict(parse_cfg or {})
    cfg.pop('type', None)
    kwargs: Dict[str, Any] = {}
    demo = cfg.pop('demo_input', cfg.pop('input_shape', None))
    if isinstance(demo, dict):
        demo = demo.get('input_shape')
    if demo is not None:
        if not isinstance(demo, (list, tuple)) or not all(
                isinstance(d, int) for d in demo):
            raise ValueError('ChannelMutator: parse_cfg.demo_input must be an '
                             f'input shape, got {demo!r}')
        kwargs['input_shape'] = tuple(demo)
    for key in _ANALYZER_KEYS:
        if key in cfg:
            kwargs[key] = cfg.pop(key)
    unknown = sorted(set(cfg) - set(_IGNORED_PARSE_KEYS))
    if unknown:
        print_log(f'ChannelMutator: parse_cfg keys {unknown} are ignored (one '
                  'channel analysis serves every tracer type)', 'current',
                  logging.WARNING)
    return kwargs


def resolve_unit_type(kind: Any) -> type:
    """The unit class of a ``channel_unit_cfg['type']`` (name or class)."""
    if isinstance(kind, type):
        cls = kind
    else:
        cls = MODELS.get(str(kind).split('.')[-1])
        if cls is None:
            known = sorted(n for n, c in MODELS.module_dict.items()
                           if isinstance(c, type) and issubclass(
                               c, SequentialMutableChannelUnit))
            raise ValueError(f'ChannelMutator: unknown channel unit type '
                             f'{kind!r}; known: {known}')
    if not (isinstance(cls, type) and issubclass(
            cls, SequentialMutableChannelUnit)):
        raise ValueError(f'ChannelMutator: channel unit type {kind!r} is not '
                         'a SequentialMutableChannelUnit (supported: '
                         'SequentialMutableChannelUnit, L1MutableChannelUnit,'
                         ' OneShotMutableChannelUnit and their subclasses)')
    return cls


def l1_scorer(dep: ChannelDependency,
              group_name: str) -> Callable[[], Optional[np.ndarray]]:
    """The 1.x L1 norm of every unit of a group, from the current weights.

    A channel's norm is the mean ``|w|`` of its output slice in a conv /
    linear layer producing the group's channels; the norms of the units
    are averaged over those layers (a unit of several channels averages
    them).

    Args:
        dep (ChannelDependency): The analysis.
        group_name (str): The group.

    Returns:
        Callable: ``scorer() -> np.ndarray | None``.
    """

    def scorer() -> Optional[np.ndarray]:
        group = dep.groups[group_name]
        units = np.asarray(group.units, dtype=np.int64)
        n = len(units)
        total = np.zeros(n, dtype=np.float64)
        layers = 0
        for src in group.sources:
            rec = dep.layers.get(src)
            if rec is None or not isinstance(
                    rec.module, (nn.modules.conv._ConvNd, nn.Linear)):
                continue
            dims = rec.handler.tensor_dims(rec.module).get('weight')
            dout = dims[1] if dims and dims[1] is not None else 0
            with torch.no_grad():
                weight = rec.module.weight.detach().abs().double()
                norms = weight.transpose(0, dout).flatten(1).mean(1)
            norms = norms.cpu().numpy()
            ids = np.asarray(rec.out_ids).ravel()
            if len(ids) != len(norms):
                continue
            ok = ids >= 0
            roots = dep.root_of[ids[ok]]
            pos = np.minimum(np.searchsorted(units, roots), n - 1)
            hit = units[pos] == roots
            if not hit.any():
                continue
            sums = np.bincount(pos[hit], norms[ok][hit], minlength=n)
            counts = np.bincount(pos[hit], minlength=n)
            total += sums / np.maximum(counts, 1)
            layers += 1
        return total / layers if layers else None

    return scorer


class UnitPruner(StructurePruner):
    """A :class:`StructurePruner` whose decisions are 1.x channel units.

    Args:
        unit_factory (Callable): ``unit_factory(group_name, unit_name,
            group, unit_size)`` builds the unit of a prunable group.
        **kwargs: See :class:`StructurePruner`.
    """

    def __init__(self, unit_factory: UnitFactory, **kwargs) -> None:
        super().__init__(**kwargs)
        self.unit_factory = unit_factory
        self._names_1x: Optional['OrderedDict[str, str]'] = None

    def prepare_from_supernet(self, supernet: nn.Module, *args,
                              **kwargs) -> None:
        self._names_1x = None
        super().prepare_from_supernet(supernet, *args, **kwargs)

    @property
    def names_1x(self) -> 'OrderedDict[str, str]':
        """Group name -> 1.x unit name (all groups)."""
        if self._names_1x is None:
            self._names_1x = self.unit_names_1x()
        return self._names_1x

    def _make_unit(self, name: str,
                   group: ChannelGroup) -> MutableChannelUnit:
        unit = self.unit_factory(name, self.names_1x[name], group,
                                 self._unit_size(group))
        if isinstance(unit, L1MutableChannelUnit):
            unit.bind_scorer(l1_scorer(self.dependency, name))
        return unit


def custom_search_groups(
        units: 'OrderedDict[str, MutableChannelUnit]',
        custom_groups: Optional[Sequence[Sequence[str]]]
) -> 'OrderedDict[str, List[MutableChannelUnit]]':
    """Decisions of the traced mode: one per unit, or one per custom group
    (keyed by its first unit name).

    Args:
        units (OrderedDict): 1.x unit name -> unit.
        custom_groups (Sequence[Sequence[str]], optional): Unit names
            sharing one choice.

    Returns:
        OrderedDict: Decision key -> units.

    Raises:
        KeyError: An unknown unit name (named, with close matches) or a
            unit in two groups.
    """
    grouped: Dict[str, str] = {}
    for members in custom_groups or []:
        members = list(members)
        if not members:
            continue
        for name in members:
            if name not in units:
                raise KeyError(f'ChannelMutator: custom_groups names an '
                               f'unknown unit {name!r}' +
                               close_matches(name, list(units)))
            if name in grouped:
                raise KeyError(f'ChannelMutator: unit {name!r} is in two '
                               'custom_groups')
            grouped[name] = members[0]
    groups: 'OrderedDict[str, List[MutableChannelUnit]]' = OrderedDict()
    for name, unit in units.items():
        groups.setdefault(grouped.get(name, name), []).append(unit)
    return groups


def split_units_cfg(units_cfg: Dict[str, Any], known: Sequence[str],
                    unprunable: Sequence[str]) -> Tuple[Dict, Dict]:
    """Per-unit ``init_args`` and ``choice`` of ``channel_unit_cfg.units``.

    Entries of groups that cannot be pruned are ignored (1.x templates list
    every unit); unknown names are reported with close matches.

    Returns:
        tuple[dict, dict]: Unit name -> init_args, unit name -> choice.
    """
    init_args: Dict[str, Dict] = {}
    choices: Dict[str, Any] = {}
    for name, entry in (units_cfg or {}).items():
        if name not in known:
            if name not in unprunable:
                print_log(f'ChannelMutator: channel_unit_cfg.units entry '
                          f'{name!r} matches no prunable unit, ignored' +
                          close_matches(name, known), 'current',
                          logging.WARNING)
            continue
        if not isinstance(entry, dict):
            raise ValueError(f'ChannelMutator: channel_unit_cfg.units['
                             f'{name!r}] must be a dict with init_args and/or'
                             f' choice, got {entry!r}')
        if 'init_args' in entry:
            init_args[name] = dict(entry['init_args'])
        if 'choice' in entry:
            choices[name] = entry['choice']
    return init_args, choices
