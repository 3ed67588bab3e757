"""Mutators of channel mutables."""
import random
from collections import OrderedDict
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from torch import nn

from mmrazor.models.mutables import MutableChannel, OneShotMutableChannel
from mmrazor.registry import MODELS
from mmrazor.utils.typing import chosen_of
from ..base_mutator import BaseMutator, ChoicesType


@MODELS.register_module()
class ChannelMutator(BaseMutator):
    """Collects the channel decisions of a model and sets their widths.

    It works in one of two modes:

    * **predefined**: the supernet holds channel mutables (dynamic ops of a
      search space, e.g. for AutoSlim / BigNAS). A decision is a group of
      tied channels: the channel mutables sharing an alias, or a single
      un-aliased mutable keyed by its module path. Its choice is a channel
      count (sequential mutables keep the first channels) or, for
      :class:`~mmrazor.models.mutables.SimpleMutableChannel`, a mask.
    * **traced** (MMRazor 1.x pruning): any plain model. The channel
      analysis finds the groups of tied channels; each prunable group gets
      a channel unit of ``channel_unit_cfg`` (e.g.
      :class:`~mmrazor.models.mutables.L1MutableChannelUnit`) named as in
      1.x (``'backbone.conv1_(0, 64)_64'``). The model is masked by a
      :class:`~mmrazor.models.pruners.StructurePruner` (:attr:`pruner`),
      which also deploys the pruned model (:meth:`deploy_subnet`).

    Args:
        channel_unit_cfg (dict | type, optional): 1.x unit config
            ``dict(type='SequentialMutableChannelUnit', default_args=dict(
            choice_mode='ratio', divisor=1, ...), units={name:
            dict(init_args=dict(...), choice=...)})`` or a unit class.
            Defaults to ``SequentialMutableChannelUnit`` (number mode).
        parse_cfg (dict, optional): How to find the decisions:
            ``dict(type='Predefined')`` (the supernet's channel mutables)
            or ``dict(type='ChannelAnalyzer', demo_input=(1, 3, 224, 224),
            tracer_type='BackwardTracer' | 'FxTracer')`` (traced; any
            tracer type uses the one channel analysis, which also takes
            ``excluded``, ``manual_groups``, ``passthrough_ops``,
            ``max_ops``, ``timeout``). Defaults to None: predefined when the
            supernet holds channel mutables, else traced (a subclass traces
            only when given ``channel_unit_cfg``).
        custom_groups (list[list[str]], optional): Traced mode: unit names
            that share one choice.
        placeholder_mapping (dict, optional): Predefined mode: see
            :class:`BaseMutator`.
        init_cfg (dict, optional): mmengine initialisation config.

    Example:
        >>> mutator = ChannelMutator(
        ...     channel_unit_cfg=dict(type='L1MutableChannelUnit',
        ...                           default_args=dict(choice_mode='ratio')),
        ...     parse_cfg=dict(type='ChannelAnalyzer',
        ...                    demo_input=(1, 3, 224, 224)))
        >>> mutator.prepare_from_supernet(model)
        >>> mutator.set_choices({'backbone.layer1.0.conv1_(0, 64)_64': 0.5})
        >>> mutator.deploy_subnet(model)     # physically pruned
    """

    mutable_class = MutableChannel
    #: The unit of the traced mode when ``channel_unit_cfg`` names none.
    default_unit_type = 'SequentialMutableChannelUnit'

    def __init__(self,
                 channel_unit_cfg: Optional[Union[Dict, type]] = None,
                 parse_cfg: Optional[Dict] = None,
                 custom_groups: Optional[Sequence[Sequence[str]]] = None,
                 placeholder_mapping: Optional[Dict[str, Dict]] = None,
                 init_cfg: Optional[Dict] = None) -> None:
        super().__init__(
            placeholder_mapping=placeholder_mapping, init_cfg=init_cfg)
        from .unit_pruner import parse_mode
        self.parse_mode = parse_mode(parse_cfg)
        self.parse_cfg = dict(parse_cfg) if parse_cfg else None
        if channel_unit_cfg is not None and not isinstance(
                channel_unit_cfg, (dict, type)):
            raise TypeError('ChannelMutator: channel_unit_cfg must be a dict '
                            f'or a unit class, got {channel_unit_cfg!r}')
        self.channel_unit_cfg = channel_unit_cfg
        self.custom_groups = [list(g) for g in custom_groups or []]
        # Not a sub-module: the pruner masks the model, owning nothing.
        self.__dict__['_pruner'] = None

    def __class_getitem__(cls, unit_type: Any) -> type:
        """``ChannelMutator[SequentialMutableChannelUnit]`` (the 1.x generic
        spelling) is the class itself; the unit type comes from
        ``channel_unit_cfg``."""
        return cls

    # ------------------------------------------------------------- modes
    @property
    def pruner(self) -> Any:
        """Traced mode: the :class:`StructurePruner` masking the model
        (``estimate_subnet``, ``export_subnet``, ``report``); else None."""
        return self.__dict__.get('_pruner')

    @property
    def is_traced(self) -> bool:
        """Whether the decisions are 1.x channel units of the analysis."""
        return self.pruner is not None

    def _may_trace(self) -> bool:
        return self.channel_unit_cfg is not None or type(
            self) is ChannelMutator

    def prepare_from_supernet(self, supernet: nn.Module) -> None:
        """Find the decisions of ``supernet`` (see the modes above).

        Args:
            supernet (nn.Module): The model (a plain model or an
                architecture wrapper in traced mode).
        """
        old = self.__dict__.get('_pruner')
        if old is not None:  # a masked model would trace differently
            old.remove_masks()
        self.__dict__['_pruner'] = None
        if self.parse_mode != 'traced':
            super().prepare_from_supernet(supernet)
            if self.parse_mode == 'predefined' or self._groups or \
                    not self._may_trace():
                return
        self._prepare_traced(supernet)

    def _unit_cfg(self) -> Tuple[type, Dict[str, Any], Dict[str, Any]]:
        from .unit_pruner import resolve_unit_type
        cfg = self.channel_unit_cfg
        if cfg is None or isinstance(cfg, type):
            return resolve_unit_type(cfg or self.default_unit_type), {}, {}
        unknown = sorted(set(cfg) - {'type', 'default_args', 'units',
                                     '_scope_'})
        if unknown:
            raise ValueError(f'ChannelMutator: channel_unit_cfg keys '
                             f'{unknown} are not supported (supported: '
                             "type, default_args, units)")
        cls = resolve_unit_type(cfg.get('type', self.default_unit_type))
        return cls, dict(cfg.get('default_args') or {}), dict(
            cfg.get('units') or {})

    def _prepare_traced(self, supernet: nn.Module) -> None:
        from .unit_pruner import (UnitPruner, analyzer_kwargs,
                                  custom_search_groups, split_units_cfg)
        cls, default_args, units_cfg = self._unit_cfg()
        per_unit: Dict[str, Dict] = {}

        def factory(group_name, unit_name, group, unit_size):
            args = dict(default_args)
            args.update(per_unit.get(unit_name, {}))
            args.pop('num_channels', None)
            try:
                return cls(group.num_units * unit_size, name=unit_name,
                           unit_size=unit_size, changes=pruner._changes,
                           **args)
            except TypeError as e:
                raise TypeError(f'ChannelMutator: {cls.__name__} of unit '
                                f'{unit_name!r}: {e}') from e

        kwargs = analyzer_kwargs(self.parse_cfg)
        input_shape = kwargs.pop('input_shape', None)
        pruner = UnitPruner(factory, except_start_keys=(), **kwargs)
        # Names are known after the analysis; per-unit args are read then.
        pruner.prepare_from_supernet(supernet, input_shape)
        names = dict(pruner.names_1x)
        prunable = [names[g] for g in pruner.dependency.prunable_groups]
        others = [n for g, n in names.items() if n not in prunable]
        init_args, choices = split_units_cfg(units_cfg, prunable, others)
        per_unit.update(init_args)
        if per_unit:  # rebuild the units with their own arguments
            pruner.prepare_from_supernet(supernet, input_shape)
        self.__dict__['_pruner'] = pruner
        self.__dict__['_prepared_supernet'] = supernet
        self._names = OrderedDict(
            (names[g], g) for g in pruner.dependency.prunable_groups)
        self._groups = custom_search_groups(
            OrderedDict((n, pruner.units[g]) for n, g in self._names.items()),
            self.custom_groups)
        self._prepared = True
        if choices:
            self.set_choices(choices)

    # ------------------------------------------------------------- units
    @property
    def units(self) -> List[Any]:
        """The decisions' mutables: the channel units (traced mode) or the
        first mutable of every decision (predefined mode)."""
        if self.is_traced:
            return [u for members in self.search_groups.values()
                    for u in members]
        return [members[0] for members in self.search_groups.values()]

    @property
    def mutable_units(self) -> List[Any]:
        """The units that can be pruned (all of :attr:`units`)."""
        return self.units

    def _unit_named(self, name: str) -> Any:
        for unit in self.units:
            if getattr(unit, 'name', None) == name:
                return unit
        raise KeyError(f'ChannelMutator: unknown unit {name!r}' +
                       _close(name, [u.name for u in self.units]))

    @property
    def choice_template(self) -> Dict[str, Any]:
        """Unit name -> current choice, for every mutable unit (the
        template of ``target_pruning_ratio`` / ``fix_subnet``)."""
        if not self.is_traced:
            return dict(self.current_choices)
        return {u.name: u.current_choice for u in self.mutable_units}

    def config_template(self,
                        only_mutable_units: bool = False,
                        with_unit_init_args: bool = False,
                        with_channels: bool = False) -> Dict[str, Any]:
        """A config that rebuilds this mutator with the current choices.

        Args:
            only_mutable_units (bool): Accepted for 1.x compatibility
                (every unit here can be pruned). Defaults to False.
            with_unit_init_args (bool): Write each unit's ``init_args``.
                Defaults to False.
            with_channels (bool): Accepted for 1.x compatibility; channel
                lists are not written (the analysis finds them).
                Defaults to False.

        Returns:
            dict: ``dict(type, channel_unit_cfg=dict(type, default_args,
            units), parse_cfg)``.
        """
        self._check_traced('config_template')
        cls, default_args, _ = self._unit_cfg()
        units = {
            u.name: u.config_template(with_unit_init_args, with_channels)
            for u in self.mutable_units
        }
        return dict(
            type=type(self).__name__,
            channel_unit_cfg=dict(
                type=cls.__name__, default_args=default_args, units=units),
            parse_cfg=dict(self.parse_cfg or dict(type='ChannelAnalyzer')))

    def _check_traced(self, what: str) -> None:
        self._check_prepared()
        if not self.is_traced:
            raise RuntimeError(f'ChannelMutator.{what} needs the traced mode '
                               '(parse_cfg=dict(type="ChannelAnalyzer"))')

    # ----------------------------------------------------------- choices
    @property
    def channel_groups(self) -> Dict[str, List[Any]]:
        """Decision key -> the tied channel mutables (or units)."""
        return dict(self.search_groups)

    def num_channels_of(self, key: str) -> int:
        """The full width of decision ``key``."""
        return self.search_groups[key][0].num_channels

    @property
    def max_choices(self) -> ChoicesType:
        """The widest choice of every decision."""
        return {
            key: members[0].max_choice if self.is_traced else max(
                members[0].choices)
            for key, members in self.search_groups.items()
        }

    @property
    def min_choices(self) -> ChoicesType:
        """The narrowest choice of every decision."""
        return {
            key: members[0].min_choice if self.is_traced else min(
                members[0].choices)
            for key, members in self.search_groups.items()
        }

    def set_max_choices(self) -> None:
        """Set every decision to its widest choice."""
        self.set_choices(self.max_choices)

    def set_min_choices(self) -> None:
        """Set every decision to its narrowest choice."""
        self.set_choices(self.min_choices)

    def set_choices(self, choices: Dict, strict: bool = True) -> None:
        """Apply choices (see :class:`BaseMutator`).

        In traced mode keys are unit names (or custom group keys, or the
        1.x integer index of a decision); decisions left out keep their
        choice, and an unknown key raises naming it with close matches.

        Args:
            choices (dict): Decision key -> choice.
            strict (bool): Predefined mode: raise on decisions left out.
                Defaults to True.
        """
        if not self.is_traced:
            super().set_choices(choices, strict=strict)
            return
        from mmrazor.structures import SubnetError
        groups = self.search_groups
        keys = list(groups)
        for key, choice in dict(choices).items():
            if isinstance(key, int) and not isinstance(key, bool) and \
                    0 <= key < len(keys):
                key = keys[key]
            if key not in groups:
                raise SubnetError(f'unknown channel unit {key!r}' +
                                  _close(key, keys))
            for unit in groups[key]:
                try:
                    unit.current_choice = chosen_of(choice)
                except (ValueError, TypeError) as e:
                    raise SubnetError(f'channel unit {key!r}: invalid choice '
                                      f'{choice!r} ({e})') from e

    def fix_channel_mutables(self) -> None:
        """Make every decision's current choice permanent."""
        for members in self.search_groups.values():
            for mutable in members:
                if mutable.is_fixed:
                    continue
                if self.is_traced:  # keep the current mask as it is
                    mutable.fix_chosen()
                else:
                    mutable.fix_chosen(mutable.dump_chosen())

    # ------------------------------------------------------------ deploy
    def deploy_subnet(self, supernet: nn.Module,
                      subnet_dict: Optional[Union[str, Path, Dict]] = None
                      ) -> nn.Module:
        """Fix ``supernet`` to a subnet.

        Predefined mode: see :meth:`BaseMutator.deploy_subnet`. Traced
        mode: set ``subnet_dict`` (unit name -> choice; default: the
        current choices) and prune ``supernet`` physically (a model of the
        same classes with smaller weights, equal to the masked model in
        eval mode; prepared again if it is another model).

        Args:
            supernet (nn.Module): The model.
            subnet_dict (str | Path | dict, optional): The subnet or its
                file.

        Returns:
            nn.Module: ``supernet``, pruned in place.
        """
        if not self._prepared and self.parse_mode != 'predefined':
            self.prepare_from_supernet(supernet)
        if not self.is_traced:
            if subnet_dict is None:
                subnet_dict = self.dump_subnet()
            return super().deploy_subnet(supernet, subnet_dict)
        if supernet is not self.__dict__.get('_prepared_supernet'):
            self.prepare_from_supernet(supernet)
        if subnet_dict is not None:
            self.load_subnet(subnet_dict)
        return self.pruner.deploy_subnet(supernet)

    def load_subnet(self, subnet: Union[str, Path, Dict]) -> None:
        """Set the choices stored in a subnet dict or file (traced mode:
        unit name -> choice, or a 1.x ``config_template``)."""
        if not self.is_traced:
            super().load_subnet(subnet)
            return
        from mmrazor.structures import load_subnet
        if isinstance(subnet, dict) and all(
                not isinstance(v, dict) for v in subnet.values()):
            self.set_choices(subnet)
        else:
            self.set_choices(load_subnet(subnet))


def _close(name: Any, known: Sequence[str]) -> str:
    from .unit_pruner import close_matches
    return close_matches(name, known)


@MODELS.register_module()
class OneShotChannelMutator(ChannelMutator):
    """A :class:`ChannelMutator` for
    :class:`~mmrazor.models.mutables.OneShotMutableChannel` (candidate
    widths sampled uniformly, e.g. in BigNAS/OFA-style training)."""

    mutable_class = OneShotMutableChannel
    default_unit_type = 'OneShotMutableChannelUnit'


@MODELS.register_module()
class SlimmableChannelMutator(ChannelMutator):
    """Switches a slimmable network between a fixed list of widths.

    Args:
        channel_cfgs (Sequence[dict | str], optional): The subnets, each a
            ``{key: {'chosen': width}}`` dict (as dumped by a channel
            mutator) or a path to such a YAML file. Every config must set
            every decision. Defaults to None (give them to
            :meth:`set_channel_cfgs` later).
        init_cfg (dict, optional): mmengine initialisation config.

    Example:
        >>> mutator = SlimmableChannelMutator([narrow_cfg, wide_cfg])
        >>> mutator.prepare_from_supernet(supernet)
        >>> mutator.switch_subnet(1)   # the wide network
    """

    def __init__(self,
                 channel_cfgs: Optional[Sequence[Union[Dict, str]]] = None,
                 init_cfg: Optional[Dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self._raw_cfgs = list(channel_cfgs or [])
        self.channel_cfgs: List[ChoicesType] = []

    def prepare_from_supernet(self, supernet) -> None:
        super().prepare_from_supernet(supernet)
        self.set_channel_cfgs(self._raw_cfgs)

    def set_channel_cfgs(self, channel_cfgs: Sequence[Union[Dict, str, Path]]
                         ) -> None:
        """Replace the list of subnets (each validated now).

        Args:
            channel_cfgs (Sequence[dict | str]): Subnet dicts or files
                (YAML / JSON).
        """
        from mmrazor.structures import SubnetError, load_subnet
        cfgs = []
        saved = self.current_choices
        for i, cfg in enumerate(channel_cfgs):
            choices = load_subnet(cfg)
            try:
                self.set_choices(choices)
            except SubnetError as e:
                raise SubnetError(f'channel_cfgs[{i}]: {e}') from e
            cfgs.append(choices)
        self.set_choices(saved)
        self._raw_cfgs = list(channel_cfgs)
        self.channel_cfgs = cfgs

    @property
    def num_subnets(self) -> int:
        """How many subnets the network switches between."""
        return len(self.channel_cfgs)

    def switch_subnet(self, index: int) -> None:
        """Use subnet ``index`` of :attr:`channel_cfgs`.

        Args:
            index (int): In ``[0, num_subnets)``.
        """
        if not 0 <= index < self.num_subnets:
            raise IndexError(f'subnet index {index} is not in '
                             f'[0, {self.num_subnets})')
        self.set_choices(self.channel_cfgs[index])

    def sample_choices(self) -> ChoicesType:
        """The choices of a random subnet of :attr:`channel_cfgs`."""
        if not self.channel_cfgs:
            raise RuntimeError('SlimmableChannelMutator has no channel_cfgs')
        return dict(random.choice(self.channel_cfgs))

    @property
    def max_choices(self) -> ChoicesType:
        """The widest of :attr:`channel_cfgs` (most active channels)."""
        return dict(max(self.channel_cfgs, key=self._total_width))

    @property
    def min_choices(self) -> ChoicesType:
        """The narrowest of :attr:`channel_cfgs`."""
        return dict(min(self.channel_cfgs, key=self._total_width))

    @staticmethod
    def _total_width(cfg: ChoicesType) -> Any:
        return sum(
            sum(v) if isinstance(v, list) else int(v) for v in cfg.values())
