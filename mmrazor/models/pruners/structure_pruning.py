"""StructurePruner: channel pruning on top of the channel analysis."""
import fnmatch
import math
from collections import OrderedDict
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, \
    Union

import numpy as np
import torch
from torch import nn

from mmrazor.models.task_modules.channel_analysis import (ChannelAnalyzer,
                                                          ChannelDependency,
                                                          ChannelGroup)
from mmrazor.models.mutables import MutableChannelUnit
from mmrazor.models.mutators import ChannelMutator
from mmrazor.models.task_modules.estimators import channel_costs
from mmrazor.registry import MODELS
from mmrazor.structures import SubnetError
from .switchable_bn import SwitchableBatchNorm2d
from .utils import MaskHooks, slice_model

SubnetValue = Union[int, float, Sequence[bool], np.ndarray, torch.Tensor,
                    Dict[str, Any]]

_GUARD_KEYS = ('min_ratio', 'max_ratio', 'round_to')


def _key_matches(name: str, key: str) -> bool:
    if any(c in key for c in '*?['):
        return fnmatch.fnmatchcase(name, key)
    return name == key or name.startswith(key + '.')


@MODELS.register_module()
class StructurePruner(ChannelMutator):
    """Channel pruning of any model: finds the tied channels automatically
    and keeps one channel decision per group.

    While searching, the model is *masked*: hooks zero the pruned channels
    at the inputs and outputs of every layer (and LayerNorms normalise over
    the kept channels only), so it computes exactly what the pruned model
    will. :meth:`deploy_subnet` then removes the pruned channels physically;
    the result is a plain ``nn.Module`` of the same classes with smaller
    weights, equal (in eval mode) to the masked model.

    A decision is the number of kept *units* of a group (see
    :class:`~mmrazor.models.task_modules.ChannelGroup`; usually a unit is
    one channel), kept from the first unit on.

    Args:
        except_start_keys (Sequence[str]): Layers whose output channels are
            never pruned (name prefixes or glob patterns), e.g. the
            classifier. Defaults to ``['head.fc']``.
        input_shape (Sequence[int]): Dummy input for the analysis when
            :meth:`prepare_from_supernet` is not given one. Defaults to
            ``(1, 3, 224, 224)``.
        min_ratio (float): Smallest kept fraction of every group (a
            guard-rail that sampling and :meth:`set_subnet` respect).
            Defaults to 0 (at least one unit).
        max_ratio (float): Largest kept fraction. Defaults to 1.
        round_to (int): Kept channel counts are multiples of it (for real
            speed on hardware), unless the whole group is kept. Defaults
            to 1.
        group_cfgs (dict, optional): Per-group overrides
            ``{name_or_pattern: dict(min_ratio=, max_ratio=, round_to=)}``
            matched (exactly, as a ``prefix.`` or as a glob pattern)
            against the group name and its source layers.
        manual_groups (Sequence[Sequence[str]]): Layers whose output
            channels must be pruned together (escape hatch, see
            :class:`ChannelAnalyzer`).
        excluded (Sequence[str]): More layers whose output channels are
            never pruned.
        passthrough_ops (Sequence[str]): Function names the analysis treats
            as element-wise.
        max_ops (int): Bound of the analysis walk. Defaults to 200000.
        timeout (float): Bound of the analysis, seconds. Defaults to 600.
        init_cfg (dict, optional): Initialisation config.

    Example:
        >>> pruner = StructurePruner(except_start_keys=['fc'])
        >>> pruner.prepare_from_supernet(model, input_shape=(1, 3, 64, 64))
        >>> pruner.set_subnet(pruner.sample_subnet())
        >>> cfg = pruner.export_subnet()
        >>> pruner.deploy_subnet(model, cfg)   # model is now smaller
    """

    def __init__(self,
                 except_start_keys: Sequence[str] = ('head.fc', ),
                 input_shape: Sequence[int] = (1, 3, 224, 224),
                 min_ratio: float = 0.0,
                 max_ratio: float = 1.0,
                 round_to: int = 1,
                 group_cfgs: Optional[Dict[str, Dict[str, Any]]] = None,
                 manual_groups: Sequence[Sequence[str]] = (),
                 excluded: Sequence[str] = (),
                 passthrough_ops: Sequence[str] = (),
                 max_ops: int = 200000,
                 timeout: float = 600.0,
                 init_cfg: Optional[Dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self._check_guard(dict(min_ratio=min_ratio, max_ratio=max_ratio,
                               round_to=round_to), 'StructurePruner')
        self.except_start_keys = list(except_start_keys or [])
        self.input_shape = tuple(input_shape)
        self.min_ratio = min_ratio
        self.max_ratio = max_ratio
        self.round_to = round_to
        self.group_cfgs = dict(group_cfgs or {})
        for key, cfg in self.group_cfgs.items():
            self._check_guard(cfg, f'group_cfgs[{key!r}]')
        self.manual_groups = [list(g) for g in manual_groups]
        self.excluded = list(excluded)
        self.passthrough_ops = list(passthrough_ops)
        self.max_ops = max_ops
        self.timeout = timeout
        self.dependency: Optional[ChannelDependency] = None
        self._hooks = MaskHooks()
        # Moves whenever a unit's mask changes (see MutableChannelUnit).
        self._changes = [0]
        self._hooks.follow(self._changes, self._refresh)
        self._deployed = False
        # Not a sub-module: the pruner must not own the model's weights.
        object.__setattr__(self, '_model', None)
        object.__setattr__(self, '_supernet', None)

    # ------------------------------------------------------------ checks
    @staticmethod
    def _check_guard(cfg: Dict[str, Any], where: str) -> None:
        unknown = set(cfg) - set(_GUARD_KEYS)
        if unknown:
            raise KeyError(f'{where}: unknown keys {sorted(unknown)}; '
                           f'accepted: {list(_GUARD_KEYS)}')
        lo = cfg.get('min_ratio', 0.0)
        hi = cfg.get('max_ratio', 1.0)
        if not 0 <= lo <= hi <= 1 or hi <= 0:
            raise ValueError(f'{where}: need 0 <= min_ratio <= max_ratio '
                             f'<= 1 and max_ratio > 0, got {lo}, {hi}')
        r = cfg.get('round_to', 1)
        if not isinstance(r, int) or r < 1:
            raise ValueError(f'{where}: round_to must be a positive int, '
                             f'got {r!r}')

    def _require(self) -> ChannelDependency:
        if self.dependency is None:
            raise RuntimeError('StructurePruner: call prepare_from_supernet '
                               'first')
        if self._deployed:
            raise RuntimeError('StructurePruner: the model was deployed '
                               '(physically pruned); prepare it again to '
                               'prune further')
        return self.dependency

    # ----------------------------------------------------------- prepare
    @staticmethod
    def _resolve(supernet: nn.Module
                 ) -> Tuple[nn.Module, Callable[[nn.Module, Any], Any]]:
        """The module whose layers are named, and how to run it."""
        if hasattr(supernet, 'forward_dummy') and isinstance(
                getattr(supernet, 'model', None), nn.Module):
            return supernet.model, lambda m, x: supernet.forward_dummy(x)
        if hasattr(supernet, 'forward_dummy'):
            return supernet, lambda m, x: supernet.forward_dummy(x)
        return supernet, lambda m, x: m(x)

    def prepare_from_supernet(self,
                              supernet: nn.Module,
                              input_shape: Optional[Sequence[int]] = None,
                              inputs: Any = None) -> None:
        """Analyse ``supernet`` and make it a masked model.

        Args:
            supernet (nn.Module): An architecture wrapper with
                ``forward_dummy`` (layer names are then relative to its
                ``model``) or a plain ``nn.Module``.
            input_shape (Sequence[int], optional): Dummy input shape;
                defaults to the pruner's ``input_shape``.
            inputs (Any): A real input instead (overrides ``input_shape``).
        """
        self._hooks.remove()
        model, forward_fn = self._resolve(supernet)
        analyzer = ChannelAnalyzer(
            input_shape=tuple(input_shape or self.input_shape),
            excluded=self.except_start_keys + self.excluded,
            manual_groups=self.manual_groups,
            passthrough_ops=self.passthrough_ops,
            max_ops=self.max_ops,
            timeout=self.timeout)
        # masks of another pruner on the same model (or on the model it
        # was copied from) must not change what the analysis sees
        with MaskHooks.suspended():
            self.dependency = analyzer.analyze(model, inputs, forward_fn)
        object.__setattr__(self, '_model', model)
        object.__setattr__(self, '_supernet', supernet)
        self._deployed = False
        # One decision per prunable group: the group as a channel mutable.
        self._groups = OrderedDict(
            (name, [self._make_unit(name, group)])
            for name, group in self.dependency.prunable_groups.items())
        self._prepared = True
        self._hooks.install(self.dependency.layers)
        self._refresh()

    def _make_unit(self, name: str,
                   group: ChannelGroup) -> MutableChannelUnit:
        """The decision of the prunable group ``name`` (a hook: subclasses
        build other :class:`MutableChannelUnit` kinds; a unit must share
        ``self._changes`` so the model is re-masked when it changes)."""
        return MutableChannelUnit(name, group.num_units,
                                  self._valid_choices(group),
                                  changes=self._changes)

    def unit_names_1x(self) -> 'OrderedDict[str, str]':
        """The MMRazor 1.x name of every channel group (prunable or not):
        ``'{first source}_({start}, {end})_{channels}'``, e.g.
        ``'backbone.conv1_(0, 64)_64'``, where ``start``/``end`` bound the
        group's channels among the outputs of its first source layer (or
        parameter) and ``channels`` counts them.

        Returns:
            OrderedDict[str, str]: Group name -> 1.x unit name.
        """
        dep = self.dependency
        if dep is None:
            raise RuntimeError('StructurePruner: call prepare_from_supernet '
                               'first')
        names: 'OrderedDict[str, str]' = OrderedDict()
        for name, group in dep.groups.items():
            src = group.sources[0] if group.sources else name
            if src in dep.layers:
                ids = np.asarray(dep.layers[src].out_ids).ravel()
            elif src in dep.params:
                ids = np.asarray(dep.params[src].ids).ravel()
            else:
                ids = np.zeros(0, dtype=np.int64)
            inside = np.zeros(len(ids), dtype=bool)
            traced = ids >= 0
            inside[traced] = np.isin(dep.root_of[ids[traced]],
                                     np.asarray(group.units, dtype=np.int64))
            pos = np.flatnonzero(inside)
            start, end = (int(pos[0]), int(pos[-1]) + 1) if len(pos) else (0,
                                                                           0)
            names[name] = f'{src}_({start}, {end})_{len(pos)}'
        return names

    @property
    def units(self) -> 'OrderedDict[str, MutableChannelUnit]':
        """The channel mutable of every prunable group, by group name."""
        self._require()
        return OrderedDict((k, v[0]) for k, v in self._groups.items())

    @property
    def _masks(self) -> Dict[str, np.ndarray]:
        """Group name -> keep-mask over its units (prunable groups)."""
        return {k: v[0]._mask for k, v in self._groups.items()}

    @property
    def channel_spaces(self) -> Dict[str, torch.Tensor]:
        """The older view of the decisions: group name (the 0.x
        ``space_id``) -> its current keep-mask over the group's channels,
        a float tensor of shape ``(1, C, 1, 1)`` (1 = kept)."""
        spaces = {}
        groups = self.channel_groups
        for name, unit in self.units.items():
            keep = np.repeat(unit.current_mask,
                             self._unit_size(groups[name]))
            spaces[name] = torch.from_numpy(keep.astype(np.float32)).view(
                1, -1, 1, 1)
        return spaces

    @property
    def channel_groups(self) -> 'OrderedDict[str, ChannelGroup]':
        """The prunable groups (one channel decision each)."""
        return self._require().prunable_groups

    def report(self) -> str:
        """The analysis report (groups, and what blocked the others)."""
        return self._require().report()

    # ------------------------------------------------------- guard-rails
    def _guard_of(self, group: ChannelGroup) -> Dict[str, Any]:
        cfg = dict(min_ratio=self.min_ratio, max_ratio=self.max_ratio,
                   round_to=self.round_to)
        names = [group.name] + list(group.sources)
        for key, override in self.group_cfgs.items():
            if any(_key_matches(n, key) for n in names):
                cfg.update(override)
        return cfg

    def _unit_size(self, group: ChannelGroup) -> int:
        dep = self.dependency
        for src in group.sources:
            rec = dep.layers.get(src)
            if rec is not None:
                counts = dep.unit_counts(group.name, rec.out_ids)
                counts = counts[counts > 0]
                if len(counts):
                    return int(counts.min())
        return 1

    def _valid_choices(self, group: ChannelGroup) -> List[int]:
        """Unit counts allowed by the guard-rails (ascending)."""
        cfg = self._guard_of(group)
        n = group.num_units
        lo = max(1, math.ceil(cfg['min_ratio'] * n - 1e-9))
        hi = max(lo, min(n, math.floor(cfg['max_ratio'] * n + 1e-9)))
        size = self._unit_size(group)
        step = cfg['round_to'] // math.gcd(cfg['round_to'], size)
        choices = [k for k in range(lo, hi + 1) if k % step == 0]
        if hi == n and n not in choices:
            choices.append(n)
        if not choices:  # the rails cannot all hold: nearest multiple
            choices = [min(n, max(step, round(hi / step) * step))]
        return choices

    def choices_of(self, name: str) -> List[int]:
        """The allowed unit counts of group ``name``."""
        return self._unit(name).choices

    def _unit(self, name: str) -> MutableChannelUnit:
        """The channel mutable of group ``name`` (a clear error if the group
        is unknown or cannot be pruned)."""
        self._require()
        if name not in self._groups:
            raise SubnetError(self._unknown_group(name))
        return self._groups[name][0]

    def _unknown_group(self, name: str) -> str:
        dep = self.dependency
        if name in dep.groups:
            g = dep.groups[name]
            why = g.excluded_by or '; '.join(g.blocked_by) or 'one unit'
            return f'channel group {name!r} cannot be pruned ({why})'
        return (f'unknown channel group {name!r}; prunable groups: '
                f'{list(self._groups)[:10]}...')

    # ------------------------------------------------------------ subnets
    def _snap(self, name: str, k: int) -> int:
        return self._unit(name).snap(k)

    def _mask_from(self, name: str, value: SubnetValue) -> np.ndarray:
        try:
            return self._unit(name).mask_of(value)
        except ValueError as err:
            raise SubnetError(str(err)) from err

    def sample_subnet(self) -> Dict[str, int]:
        """A random width (in units) for every prunable group.

        Returns:
            dict[str, int]: Group name -> kept units.
        """
        self._require()
        return self.sample_choices()

    def set_subnet(self, subnet: Dict[str, SubnetValue]) -> None:
        """Apply a subnet to the masked model.

        Args:
            subnet (dict): Either group name -> kept units (int), kept
                ratio (float), keep-mask over the units or
                ``{'chosen': ...}``; or a channel config as
                :meth:`export_subnet` writes it (layer name ->
                ``{in_channels, out_channels, ...}``). Groups left out keep
                all channels.
        """
        self._require()
        if self._is_channel_cfg(subnet):
            masks = self._masks_from_channel_cfg(subnet)
        else:
            masks = {
                name: self._mask_from(name, value)
                for name, value in subnet.items()
            }
        self._apply(masks)

    def _apply(self, masks: Dict[str, np.ndarray]) -> None:
        """Set the units' masks (checked already by :meth:`_mask_from`;
        groups left out are not pruned) and mask the model accordingly."""
        for name, members in self._groups.items():
            if name in masks:
                members[0].set_mask(masks[name])
            else:
                members[0].keep_all()
        self._refresh()

    def set_choices(self, choices: Dict, strict: bool = True) -> None:
        """Set the decisions (see :class:`BaseMutator`) and mask the
        model accordingly."""
        super().set_choices(choices, strict=strict)
        self._refresh()

    @staticmethod
    def _is_channel_cfg(subnet: Dict) -> bool:
        return bool(subnet) and all(
            isinstance(v, dict) and ('out_channels' in v or 'in_channels' in
                                     v) for v in subnet.values())

    def _masks_from_channel_cfg(self, cfg: Dict[str, Dict]
                                ) -> Dict[str, np.ndarray]:
        dep = self.dependency
        for key in cfg:
            if key not in dep.layers:
                raise SubnetError(f'channel config: {key!r} is not a layer '
                                  'of the model with channel weights')
        masks = {}
        for name in self._groups:
            group = dep.groups[name]
            # unit counts consistent with every entry (the widest when the
            # config leaves it ambiguous)
            widths = None
            for src in group.sources:
                entry = cfg.get(src)
                if entry is None or 'out_channels' not in entry or \
                        src not in dep.layers:
                    continue
                if 'kept_units' in entry:
                    mask = np.zeros(group.num_units, dtype=bool)
                    mask[list(entry['kept_units'])] = True
                    masks[name] = self._mask_from(name, mask)
                    widths = None
                    break
                rec = dep.layers[src]
                counts = dep.unit_counts(name, rec.out_ids)
                # channels of other groups are kept in this layer
                total = int(entry['out_channels']) - int(
                    len(rec.out_ids) - counts.sum())
                hits = set((np.flatnonzero(np.cumsum(counts) == total) +
                            1).tolist())
                widths = hits if widths is None else widths & hits
                if not widths:
                    raise SubnetError(
                        f'channel config: {src}.out_channels='
                        f'{entry["out_channels"]} does not match a width '
                        f'of its channel group {name!r}')
            if widths:
                masks[name] = self._mask_from(
                    name, np.arange(group.num_units) < max(widths))
        # Every entry must agree with the widths the groups give.
        layer_masks = self._layer_masks(masks)  # groups left out: whole
        for key, entry in cfg.items():
            in_keep, out_keep = layer_masks[key]
            for attr, keep in (('in_channels', in_keep), ('out_channels',
                                                          out_keep)):
                if attr in entry and int(entry[attr]) != int(keep.sum()):
                    raise SubnetError(
                        f'channel config: {key}.{attr}={entry[attr]} but '
                        f'its channel group gives {int(keep.sum())}')
        return masks

    def _layer_masks(self, masks: Optional[Dict[str, np.ndarray]] = None
                     ) -> Dict[str, Tuple[np.ndarray, np.ndarray]]:
        """Layer name -> ``(in_keep, out_keep)`` for the group masks
        ``masks`` (default: the units' current masks)."""
        dep = self.dependency
        keep = dep.keep_by_id(self._masks if masks is None else masks)
        return {
            name: (dep.mask_of(rec.in_ids, keep),
                   dep.mask_of(rec.out_ids, keep))
            for name, rec in dep.layers.items()
        }

    def _refresh(self) -> None:
        self._hooks.set_masks(self._layer_masks())

    def export_subnet(self) -> Dict[str, Dict[str, Any]]:
        """The current subnet as a channel config.

        Returns:
            dict: Layer name -> ``{in_channels, out_channels,
            raw_in_channels, raw_out_channels}`` (the format of published
            AutoSlim channel configs). A group whose kept units are not the
            leading ones also records ``kept_units`` on its first layer.
        """
        dep = self._require()
        cfg: Dict[str, Dict[str, Any]] = OrderedDict()
        for name, (in_keep, out_keep) in self._layer_masks().items():
            cfg[name] = dict(
                in_channels=int(in_keep.sum()),
                out_channels=int(out_keep.sum()),
                raw_in_channels=len(in_keep),
                raw_out_channels=len(out_keep))
        for name, mask in self._masks.items():
            k = int(mask.sum())
            if not mask[:k].all():
                src = next((s for s in dep.groups[name].sources
                            if s in dep.layers), None)
                if src is None:
                    raise RuntimeError(f'group {name!r}: a non-leading mask '
                                       'cannot be exported')
                cfg[src]['kept_units'] = np.flatnonzero(mask).tolist()
        return cfg

    def current_subnet(self) -> Dict[str, int]:
        """Group name -> kept units."""
        self._require()
        return {n: int(m.sum()) for n, m in self._masks.items()}

    def estimate_subnet(self) -> Dict[str, int]:
        """FLOPs and parameters of the current subnet, from the estimator's
        channel costs (:func:`~mmrazor.models.task_modules.channel_costs`:
        no copy of the model, no forward pass).

        FLOPs are multiply-accumulates of convs and linear layers at the
        analysis input shape, per sample (the convention of
        :class:`~mmrazor.models.task_modules.ResourceEstimator`); params
        count every parameter of the model as the deployed model will hold
        it.

        Returns:
            dict: ``{'flops': int, 'params': int}``.
        """
        return channel_costs(self._model, self._require(), self._masks)

    def set_max_channel(self) -> None:
        """The widest subnet the guard-rails allow."""
        self.set_max_choices()

    def set_min_channel(self) -> None:
        """The narrowest subnet the guard-rails allow."""
        self.set_min_choices()

    def get_max_channel_bins(self, max_channel_bins: int
                             ) -> Dict[str, torch.Tensor]:
        """Every group at full width, in bins (for greedy search).

        Args:
            max_channel_bins (int): Bins per group.

        Returns:
            dict[str, Tensor]: Group name -> ``ones(max_channel_bins)``.
        """
        self._require()
        return {
            name: torch.ones(max_channel_bins)
            for name in self._groups
        }

    def set_channel_bins(self, channel_bins_dict: Dict[str, Any],
                         max_channel_bins: int) -> None:
        """Set widths from bins: a group keeps ``bins / max_channel_bins``
        of its units (snapped to what the guard-rails allow).

        Args:
            channel_bins_dict (dict): Group name -> kept bins (an int or a
                0/1 tensor/list whose sum is the number of bins).
            max_channel_bins (int): Bins per group.
        """
        self._require()
        subnet = {}
        for name, bins in channel_bins_dict.items():
            self._unit(name)
            kept = float(bins.sum()) if hasattr(bins, 'sum') else (
                float(sum(bins)) if isinstance(bins, (list, tuple)) else
                float(bins))
            n = self.dependency.groups[name].num_units
            k = max(1, int(math.ceil(kept / max_channel_bins * n - 1e-9)))
            subnet[name] = self._snap(name, k)
        self.set_subnet(subnet)

    # -------------------------------------------------- switchable subnets
    def switch_subnet(self, channel_cfg: Dict[str, Any],
                      subnet_ind: Optional[int] = None) -> None:
        """Use ``channel_cfg``; with ``subnet_ind`` also switch every
        :class:`SwitchableBatchNorm2d` to BN number ``subnet_ind``.

        Args:
            channel_cfg (dict): A subnet (see :meth:`set_subnet`).
            subnet_ind (int, optional): Index of the BN set.
        """
        self.set_subnet(channel_cfg)
        if subnet_ind is not None:
            for m in self._model.modules():
                if isinstance(m, SwitchableBatchNorm2d):
                    if not 0 <= subnet_ind < m.num_bns:
                        raise IndexError(
                            f'subnet_ind {subnet_ind} is not in '
                            f'[0, {m.num_bns})')
                    m.index = subnet_ind

    def convert_switchable_bn(self, module: nn.Module,
                              num_bns: int) -> nn.Module:
        """Replace every ``nn.BatchNorm2d`` of ``module`` by a
        :class:`SwitchableBatchNorm2d` with ``num_bns`` copies (in place).

        If ``module`` is (inside) the prepared model, the analysis is run
        again so the pruner follows the new layers.

        Args:
            module (nn.Module): The model.
            num_bns (int): BN sets (one per subnet).

        Returns:
            nn.Module: ``module``.
        """
        for name, child in list(module.named_modules()):
            for cname, sub in list(child.named_children()):
                if type(sub) is nn.BatchNorm2d:
                    setattr(child, cname,
                            SwitchableBatchNorm2d.convert_from(sub, num_bns))
        if self.dependency is not None and not self._deployed and any(
                m is module for m in self._supernet.modules()):
            masks = self.current_subnet()
            self.prepare_from_supernet(self._supernet)
            self.set_subnet({k: v for k, v in masks.items()
                             if k in self._groups})
        return module

    # ------------------------------------------------------------- deploy
    def deploy_subnet(self, supernet: nn.Module,
                      channel_cfg: Optional[Dict[str, Any]] = None
                      ) -> nn.Module:
        """Physically prune ``supernet`` to ``channel_cfg`` (in place).

        The model keeps its classes (no mmrazor module is left in it;
        :class:`SwitchableBatchNorm2d` becomes the BN in use) with smaller
        weights, biases and BN statistics; in eval mode it computes what the
        masked model computed.

        Args:
            supernet (nn.Module): The model (or architecture wrapper); it is
                analysed first if this pruner was prepared on another one.
            channel_cfg (dict, optional): A subnet (see :meth:`set_subnet`);
                defaults to the current one.

        Returns:
            nn.Module: ``supernet``, pruned.
        """
        if self._supernet is not supernet or self._deployed:
            self.prepare_from_supernet(supernet)
        if channel_cfg is not None:
            self.set_subnet(channel_cfg)
        dep = self._require()
        self._hooks.remove()
        slice_model(self._model, dep, self._masks)
        self._deployed = True
        return supernet

    def remove_masks(self) -> None:
        """Remove the masking hooks (the model runs at full width)."""
        self._hooks.remove()
