"""ImportancePruner: keep the most important units of every channel group,
by a ratio per group or down to a global FLOPs / parameter target."""
import logging
from numbers import Real
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from mmengine.logging import print_log
from torch import nn

from mmrazor.models.task_modules.estimators import channel_costs
from mmrazor.models.task_modules.importance import BaseImportance
from mmrazor.registry import MODELS, TASK_UTILS
from .structure_pruning import StructurePruner

ImportanceCfg = Union[str, Dict[str, Any], BaseImportance]

#: One pruning step: (priority, group index, step index, group, units).
_Step = Tuple[float, int, int, str, np.ndarray]


def _known_criteria() -> List[str]:
    return sorted(name for name, cls in TASK_UTILS.module_dict.items()
                  if isinstance(cls, type) and issubclass(cls, BaseImportance))


def build_importance(cfg: ImportanceCfg) -> BaseImportance:
    """Build an importance criterion.

    Args:
        cfg (str | dict | BaseImportance): A criterion, its registered name
            (``'L1Importance'``) or a config ``dict(type=..., **kwargs)``.

    Returns:
        BaseImportance: The criterion.

    Raises:
        ValueError: The type is not a registered criterion (the message
            names it and the known ones).
    """
    if isinstance(cfg, BaseImportance):
        return cfg
    if isinstance(cfg, str):
        cfg = dict(type=cfg)
    if not isinstance(cfg, dict) or 'type' not in cfg:
        raise TypeError(f'importance must be a criterion, its name or a '
                        f'dict(type=...), got {cfg!r}')
    kind = cfg['type']
    if isinstance(kind, type) and issubclass(kind, BaseImportance):
        kwargs = {k: v for k, v in cfg.items() if k != 'type'}
        return kind(**kwargs)
    known = _known_criteria()
    if kind not in known:
        raise ValueError(f'unknown importance criterion {kind!r}; known: '
                         f'{known}')
    return TASK_UTILS.build(dict(cfg))


def _check_fraction(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or \
            not 0 < value <= 1:
        raise ValueError(f'{what}={value!r} is not a fraction in (0, 1]')
    return float(value)


@MODELS.register_module()
class ImportancePruner(StructurePruner):
    """A :class:`StructurePruner` that keeps the most important units of a
    group instead of the leading ones.

    The criterion (:mod:`~mmrazor.models.task_modules.importance`) scores
    every unit of every prunable group over all the layers of the group;
    the decisions are keep-masks, so :meth:`export_subnet` records the kept
    units (``kept_units``) and :meth:`deploy_subnet` slices exactly them.

    Args:
        importance (str | dict | BaseImportance): The criterion, e.g.
            ``dict(type='L1Importance')`` (also ``'L2Importance'``,
            ``'BNScaleImportance'``, ``'TaylorImportance'``,
            ``'RandomImportance'``). Defaults to L1.
        **kwargs: See :class:`StructurePruner` (guard-rails included).

    Example:
        >>> pruner = ImportancePruner(importance=dict(type='L1Importance'),
        ...                           except_start_keys=['fc'])
        >>> pruner.prepare_from_supernet(model, input_shape=(1, 3, 64, 64))
        >>> report = pruner.prune_to_target(flops=0.5)
        >>> pruner.deploy_subnet(model)
    """

    def __init__(self,
                 importance: ImportanceCfg = dict(type='L1Importance'),
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.importance = build_importance(importance)

    def prepare_from_supernet(self,
                              supernet: nn.Module,
                              input_shape: Optional[Sequence[int]] = None,
                              inputs: Any = None) -> None:
        """Analyse ``supernet`` (see :class:`StructurePruner`) and bind the
        criterion to the analysis (gathered Taylor statistics are
        forgotten).

        Args:
            supernet (nn.Module): The model to prune.
            input_shape (Sequence[int], optional): Dummy input shape.
            inputs (Any): A real input instead.
        """
        super().prepare_from_supernet(supernet, input_shape, inputs)
        self.importance.prepare(self.dependency)

    # ---------------------------------------------------------- scores
    def unit_scores(self,
                    groups: Optional[Sequence[str]] = None,
                    normalize: bool = False) -> Dict[str, np.ndarray]:
        """The criterion's score of every unit.

        Args:
            groups (Sequence[str], optional): Prunable group names;
                defaults to all.
            normalize (bool): Normalised (comparable across groups) instead
                of raw scores. Defaults to False.

        Returns:
            dict[str, np.ndarray]: Group -> score per unit. Groups the
            criterion cannot score are left out.
        """
        names = list(self._groups) if groups is None else list(groups)
        for name in names:
            self._unit(name)  # a clear error for unknown/unprunable ones
        return self.importance.scores(names, normalize=normalize)

    def _scores_for(self, groups: Optional[Sequence[str]],
                    normalize: bool) -> Dict[str, np.ndarray]:
        scores = self.unit_scores(groups, normalize=normalize)
        names = list(self._groups) if groups is None else list(groups)
        missing = [n for n in names if n not in scores]
        if missing and groups is not None:
            raise ValueError(f'{self.importance!r} cannot score the channel '
                             f'groups {missing} (e.g. no norm layer)')
        if missing:
            print_log(f'ImportancePruner: {self.importance!r} cannot score '
                      f'{len(missing)} group(s), left unpruned: '
                      f'{missing[:8]}', 'current', logging.WARNING)
        return scores

    @staticmethod
    def _top_units(scores: np.ndarray, count: int) -> np.ndarray:
        """Keep-mask of the ``count`` best units (the earlier unit wins a
        tie)."""
        order = np.argsort(-scores, kind='stable')
        mask = np.zeros(len(scores), dtype=bool)
        mask[order[:count]] = True
        return mask

    # ---------------------------------------------------------- targets
    def prune_by_ratio(self,
                       ratio: float,
                       groups: Optional[Sequence[str]] = None
                       ) -> Dict[str, int]:
        """Keep the most important ``ratio`` of the units of every group.

        Per group, ``round(ratio * num_units)`` (at least 1) is snapped to
        the nearest count its guard-rails allow, and that many units with
        the highest scores are kept. Groups not named keep their current
        masks.

        Args:
            ratio (float): The *kept* fraction of units, in (0, 1] (as the
                ratios of :meth:`set_subnet` and ``RatioPruner.set_ratio``).
            groups (Sequence[str], optional): Group names; defaults to every
                prunable group the criterion can score.

        Returns:
            dict[str, int]: Group -> kept units, for the groups changed.
        """
        ratio = _check_fraction(ratio, 'prune_by_ratio: ratio')
        self._require()
        scores = self._scores_for(groups, normalize=False)
        masks = self._masks
        kept = {}
        for name, values in scores.items():
            unit = self._unit(name)
            count = unit.snap(max(1, round(ratio * unit.num_units)))
            masks[name] = self._top_units(values, count)
            kept[name] = count
        self._apply(masks)
        return kept

    def _steps(self, scores: Dict[str, np.ndarray]) -> List[_Step]:
        """Every group's removal steps, least important first: from the
        full group down to its smallest allowed count, each step removes
        the weakest kept units down to the next allowed count."""
        steps: List[_Step] = []
        for index, (name, values) in enumerate(scores.items()):
            unit = self._unit(name)
            if unit.is_fixed:
                continue
            order = np.argsort(values, kind='stable')  # weakest first
            n = unit.num_units
            count = n
            for step, smaller in enumerate(
                    sorted((c for c in unit.choices if c < n),
                           reverse=True)):
                chunk = order[n - count:n - smaller]
                steps.append((float(values[chunk].mean()), index, step, name,
                              chunk))
                count = smaller
        # Within a group the chunks' mean scores never decrease (weakest
        # first), so this global order removes every group's units in the
        # group's own order.
        steps.sort(key=lambda s: s[:3])
        return steps

    def _masks_after(self, steps: List[_Step],
                     count: int) -> Dict[str, np.ndarray]:
        masks = {
            name: np.ones(self._unit(name).num_units, dtype=bool)
            for name in self._groups
        }
        for _, _, _, name, chunk in steps[:count]:
            masks[name][chunk] = False
        return masks

    def prune_to_target(self,
                        flops: Optional[float] = None,
                        params: Optional[float] = None) -> Dict[str, Any]:
        """Prune globally until the costs reach the targets.

        Starting from the unpruned model, the least important units of all
        groups (normalised scores, see the criterion's ``normalize``) are
        removed first: one unit at a time, or the chunk down to the next
        count a group's guard-rails allow (``round_to``, ``max_ratio``),
        never below ``min_ratio`` nor to an empty group, until the costs of
        :func:`~mmrazor.models.task_modules.channel_costs` are at most the
        targets. (The removal order is fixed by the scores, so the shortest
        sufficient prefix of it is found by bisection, with one cost
        evaluation per halving.)

        Args:
            flops (float, optional): Target FLOPs as a fraction in (0, 1]
                of the unpruned model's.
            params (float, optional): Target parameters, likewise.

        Returns:
            dict: ``flops``, ``params`` (reached), ``flops_ratio``,
            ``params_ratio`` (of the unpruned model), ``base_flops``,
            ``base_params``, ``removed_units`` (group -> units removed) and
            ``kept_units`` (group -> units kept).

        Raises:
            ValueError: No target, a target outside (0, 1], or a target
                the guard-rails cannot reach (the message gives the smallest
                reachable cost).
        """
        targets = {
            key: _check_fraction(value, f'prune_to_target: {key}')
            for key, value in (('flops', flops), ('params', params))
            if value is not None
        }
        if not targets:
            raise ValueError('prune_to_target: give flops and/or params '
                             '(fractions in (0, 1])')
        dep = self._require()
        base = channel_costs(self._model, dep, {})
        limits = {key: frac * base[key] for key, frac in targets.items()}
        steps = self._steps(self._scores_for(None, normalize=True))

        def cost(count: int) -> Dict[str, int]:
            return channel_costs(self._model, dep,
                                 self._masks_after(steps, count))

        def fits(reached: Dict[str, int]) -> bool:
            return all(reached[k] <= limits[k] for k in limits)

        smallest = cost(len(steps))
        if not fits(smallest):
            wanted = ', '.join(f'{k}={v:g}' for k, v in targets.items())
            got = ', '.join(f'{k}={smallest[k] / base[k]:.4f}'
                            for k in targets if base[k])
            raise ValueError(f'prune_to_target: {wanted} cannot be reached; '
                             f'the guard-rails allow at least {got} of the '
                             'unpruned model')
        lo, hi = 0, len(steps)  # cost(hi) fits; find the smallest such
        while lo < hi:
            mid = (lo + hi) // 2
            if fits(cost(mid)):
                hi = mid
            else:
                lo = mid + 1
        masks = self._masks_after(steps, hi)
        self._apply(masks)
        reached = channel_costs(self._model, dep, masks)
        report: Dict[str, Any] = dict(reached)
        for key in ('flops', 'params'):
            report[f'{key}_ratio'] = reached[key] / base[key] if base[key] \
                else 1.0
            report[f'base_{key}'] = base[key]
        report['removed_units'] = {
            name: int((~mask).sum())
            for name, mask in masks.items() if not mask.all()
        }
        report['kept_units'] = {
            name: int(mask.sum())
            for name, mask in masks.items()
        }
        print_log(
            'ImportancePruner: reached flops {:.4f}, params {:.4f} of the '
            'unpruned model ({} units removed)'.format(
                report['flops_ratio'], report['params_ratio'],
                sum(report['removed_units'].values())), 'current')
        return report
