"""Iterative pruning during training (MMRazor 1.x ``ItePruneAlgorithm``)
and the deployed sub-model of a pruning structure."""
import logging
import math
from numbers import Real
from typing import Any, Dict, List, Optional, Union

import torch
from mmengine.logging import print_log
from torch import nn

from mmrazor.models.mutators import ChannelMutator
from mmrazor.registry import MODELS
from ..base import BaseAlgorithm

Choices = Dict[str, Union[int, float]]

_DEFAULT_MUTATOR = dict(
    type='ChannelMutator',
    channel_unit_cfg=dict(type='SequentialMutableChannelUnit'))


def _build_mutator(cfg: Union[Dict, ChannelMutator]) -> ChannelMutator:
    mutator = cfg if isinstance(cfg, nn.Module) else MODELS.build(dict(cfg))
    if not isinstance(mutator, ChannelMutator):
        raise TypeError('mutator_cfg must build a ChannelMutator, got '
                        f'{type(mutator).__name__}')
    return mutator


def check_targets(mutator: ChannelMutator, targets: Dict[str, Any],
                  what: str) -> Choices:
    """Check the unit names and values of a pruning target.

    A name of a channel group that cannot be pruned is accepted when its
    value keeps every channel (1.0, or all channels in number mode) and
    dropped; any other unknown name raises.

    Args:
        mutator (ChannelMutator): A prepared mutator in traced mode.
        targets (dict): Unit name -> choice.
        what (str): The argument's name, for messages.

    Returns:
        dict: The targets of the prunable units.

    Raises:
        KeyError: An unknown unit (named, with close matches) or a
            non-full choice for a group that cannot be pruned.
        ValueError: A value that is not a number.
    """
    from mmrazor.models.mutators.channel_mutator.unit_pruner import \
        close_matches
    units = {u.name: u for u in mutator.mutable_units}
    names = mutator.pruner.names_1x
    unprunable = {n for g, n in names.items() if n not in units}
    checked: Choices = {}
    for name, value in dict(targets).items():
        if isinstance(value, bool) or not isinstance(value, Real):
            raise ValueError(f'{what}[{name!r}] must be a ratio or a channel '
                             f'number, got {value!r}')
        if name in units:
            checked[name] = value
            continue
        if name in unprunable:
            channels = int(str(name).rsplit('_', 1)[-1])
            if value in (1.0, channels):
                continue
            raise KeyError(f'{what}[{name!r}]: this channel group cannot be '
                           f'pruned (see mutator.pruner.report()), only '
                           f'1.0 is allowed, got {value!r}')
        raise KeyError(f'{what}: unknown channel unit {name!r}' +
                       close_matches(name, list(units)))
    return checked


@MODELS.register_module()
class ItePruneAlgorithm(BaseAlgorithm):
    """Prune the architecture step by step while it trains, toward
    ``target_pruning_ratio`` (MMRazor 1.x).

    The mutator (a traced :class:`ChannelMutator`) masks the architecture;
    every ``step_freq`` training iterations, ``prune_times`` times, the
    units' choices move from the unpruned width toward the targets
    (linearly, or geometrically with ``linear_schedule=False``), the last
    step reaching them. With ``L1MutableChannelUnit`` each step keeps the
    channels of largest L1 norm of the current weights. Deploy the result
    with :meth:`deploy_subnet` or, from :meth:`export_subnet`, with
    ``PruneDeploySubModel``.

    Args:
        architecture (dict | nn.Module): The model to prune.
        mutator_cfg (dict | ChannelMutator): The mutator. Defaults to a
            ``ChannelMutator`` of ``SequentialMutableChannelUnit``.
        data_preprocessor (dict | nn.Module, optional): See
            :class:`BaseAlgorithm`.
        target_pruning_ratio (dict, optional): Unit name -> target choice
            (a kept ratio or a channel number, in the units' choice mode).
            Units left out are not pruned. Defaults to None (no pruning).
        step_freq (int): Training iterations between pruning steps.
            Defaults to 1.
        prune_times (int): Pruning steps to reach the targets. Defaults
            to 1.
        init_cfg (dict, optional): Initialisation config.
        linear_schedule (bool): Move the choices linearly (else
            geometrically) toward the targets. Defaults to True.
    """

    def __init__(self,
                 architecture: Union[Dict, nn.Module],
                 mutator_cfg: Union[Dict, ChannelMutator] = _DEFAULT_MUTATOR,
                 data_preprocessor: Optional[Union[Dict, nn.Module]] = None,
                 target_pruning_ratio: Optional[Dict[str, Any]] = None,
                 step_freq: int = 1,
                 prune_times: int = 1,
                 init_cfg: Optional[Dict] = None,
                 linear_schedule: bool = True) -> None:
        super().__init__(architecture, data_preprocessor, init_cfg)
        for key, value in (('step_freq', step_freq), ('prune_times',
                                                      prune_times)):
            if isinstance(value, bool) or not isinstance(value, int) or \
                    value < 1:
                raise ValueError(f'ItePruneAlgorithm: {key} must be a '
                                 f'positive int, got {value!r}')
        self.mutator = _build_mutator(mutator_cfg)
        self.mutator.prepare_from_supernet(self.architecture)
        if not self.mutator.is_traced:
            raise ValueError('ItePruneAlgorithm needs a traced ChannelMutator'
                             ' (the architecture holds channel mutables)')
        self.step_freq = step_freq
        self.prune_times = prune_times
        self.linear_schedule = linear_schedule
        self.target_pruning_ratio = check_targets(
            self.mutator, target_pruning_ratio or {}, 'target_pruning_ratio')
        self._start: Choices = {
            name: self.mutator._unit_named(name).max_choice
            for name in self.target_pruning_ratio
        }
        self._iter = 0

    # --------------------------------------------------------- schedule
    def is_prune_time(self, iteration: int) -> bool:
        """Whether the pruning step runs at ``iteration``."""
        return iteration % self.step_freq == 0 and \
            iteration // self.step_freq < self.prune_times

    def choices_at(self, iteration: int) -> Choices:
        """The units' choices of the pruning step at ``iteration``.

        Args:
            iteration (int): A pruning iteration (see :meth:`is_prune_time`).

        Returns:
            dict: Unit name -> choice (the targets at the last step).
        """
        step = min(iteration // self.step_freq + 1, self.prune_times)
        frac = step / self.prune_times
        choices: Choices = {}
        for name, target in self.target_pruning_ratio.items():
            start = self._start[name]
            if self.linear_schedule:
                value = start + (target - start) * frac
            else:
                value = start * (target / start)**frac
            if isinstance(target, int) and isinstance(start, int):
                value = int(round(value))
            choices[name] = target if step == self.prune_times else value
        return choices

    def prune_step(self, iteration: int) -> None:
        """Set the choices of the pruning step at ``iteration``."""
        self.mutator.set_choices(self.choices_at(iteration))
        print_log(
            f'ItePruneAlgorithm: pruning step '
            f'{iteration // self.step_freq + 1}/{self.prune_times} at '
            f'iteration {iteration}', 'current', logging.INFO)

    def forward(self,
                inputs: torch.Tensor,
                data_samples: Optional[List[Any]] = None,
                mode: str = 'tensor') -> Any:
        """See :class:`BaseAlgorithm`; a training forward (``mode='loss'``
        in train mode) first runs the pruning step when it is due."""
        if mode == 'loss' and self.training:
            if self.is_prune_time(self._iter):
                self.prune_step(self._iter)
            self._iter += 1
        return super().forward(inputs, data_samples, mode)

    # ----------------------------------------------------------- export
    def export_subnet(self) -> Choices:
        """The pruning structure: unit name -> current choice (the
        ``fix_subnet`` of a deploy config)."""
        return dict(self.mutator.choice_template)

    def deploy_subnet(self) -> nn.Module:
        """Prune the architecture physically (in place) to the current
        choices and return it; the algorithm cannot prune further."""
        return self.mutator.deploy_subnet(self.architecture)


def round_up_to_divisor(mutator: ChannelMutator, divisor: int) -> None:
    """Keep a multiple of ``divisor`` channels in every unit (rounded up,
    at most the unit's channels).

    Args:
        mutator (ChannelMutator): A prepared mutator in traced mode.
        divisor (int): The multiple.
    """
    if isinstance(divisor, bool) or not isinstance(divisor, int) or \
            divisor < 1:
        raise ValueError(f'divisor must be a positive int, got {divisor!r}')
    for unit in mutator.mutable_units:
        kept = unit.activated_channels
        wanted = min(unit.num_channels, math.ceil(kept / divisor) * divisor)
        if wanted != kept:
            unit.current_choice = int(wanted)


@MODELS.register_module()
def PruneDeploySubModel(architecture: Union[Dict, nn.Module],
                        fix_subnet: Union[str, Dict[str, Any]],
                        divisor: int = 1,
                        parse_cfg: Optional[Dict] = None,
                        **kwargs) -> nn.Module:
    """The deployed (physically pruned) architecture of a pruning
    structure: every unit keeps its leading channels, so a checkpoint of
    the pruned model loads into it.

    Args:
        architecture (dict | nn.Module): The unpruned model or its config.
        fix_subnet (str | dict): Unit name -> choice (kept ratio or channel
            number), or a JSON / YAML file of it.
        divisor (int): Kept channel counts are rounded up to multiples of
            it (at most the unit's channels). Defaults to 1.
        parse_cfg (dict, optional): The mutator's parse_cfg. Defaults to
            the channel analysis at ``(1, 3, 224, 224)``.
        **kwargs: 1.x arguments without effect here (e.g.
            ``data_preprocessor``) are accepted and ignored.

    Returns:
        nn.Module: The pruned architecture.
    """
    if kwargs:
        print_log(f'PruneDeploySubModel: arguments {sorted(kwargs)} are '
                  'ignored', 'current', logging.WARNING)
    if isinstance(architecture, dict):
        architecture = MODELS.build(architecture)
    if isinstance(fix_subnet, str):
        from mmrazor.structures import load_subnet
        fix_subnet = load_subnet(fix_subnet, view='flat')
    mutator = ChannelMutator(
        channel_unit_cfg=dict(
            type='SequentialMutableChannelUnit',
            default_args=dict(choice_mode='ratio')),
        parse_cfg=parse_cfg or dict(type='ChannelAnalyzer'))
    mutator.prepare_from_supernet(architecture)
    mutator.set_choices(check_targets(mutator, fix_subnet, 'fix_subnet'))
    if divisor != 1:
        round_up_to_divisor(mutator, divisor)
    return mutator.deploy_subnet(architecture)
