"""ImportancePruner: keep the most important units of every channel group,
by a ratio per group, down to a global FLOPs / parameter / latency target,
or one step at a time (iterative pruning)."""
import logging
from numbers import Real
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, \
    Union

import numpy as np
import torch
from mmengine.logging import print_log
from torch import nn

from mmrazor.models.task_modules.estimators import channel_costs
from mmrazor.models.task_modules.importance import BaseImportance
from mmrazor.registry import MODELS, TASK_UTILS
from .pruning_costs import (COST_KINDS, measure_latency, pruned_copy,
                            unit_costs)
from .structure_pruning import StructurePruner

ImportanceCfg = Union[str, Dict[str, Any], BaseImportance]



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


def excess(reached: float, limit: float) -> float:
    """How far ``reached`` is above ``limit``, on a square-root scale (<= 0:
    the limit is met).

    FLOPs and parameters of a conv fall with the product of its input and
    output widths, so with every width cut by a fraction ``r`` they are
    about ``(1 - r) ** 2`` of the unpruned model's: their square root falls
    about linearly as units are removed, which is what the interpolating
    search wants.

    Args:
        reached (float): A cost.
        limit (float): Its limit.

    Returns:
        float: ``sqrt(reached / limit) - 1``; for a limit of 0, 0 when the
        cost is 0 too, else infinity.
    """
    if limit > 0:
        return float(np.sqrt(max(reached, 0.0) / limit)) - 1.0
    return 0.0 if reached <= 0 else float('inf')


def smallest_fitting_count(num_steps: int, at_zero: Dict[str, float],
                           at_end: Dict[str, float],
                           evaluate: Callable[[int], Dict[str, float]],
                           fits: Callable[[Dict[str, float]], bool],
                           over: Callable[[Dict[str, float]], float]) -> int:
    """The smallest prefix of a removal order whose costs fit, for costs
    that fall as the prefix grows.

    The bracket ``(lo, hi]`` (``lo`` does not fit, ``hi`` does) is narrowed
    by interpolating ``over`` linearly between its ends (regula falsi), and
    by halving it after two interpolation steps in a row that did not
    halve it: never more than about three times bisection's evaluations,
    usually far fewer (``over`` is nearly linear in the count).

    Args:
        num_steps (int): Length of the removal order.
        at_zero (dict): Costs with nothing removed.
        at_end (dict): Costs with all ``num_steps`` removed (must fit).
        evaluate (Callable): ``evaluate(count) -> costs``.
        fits (Callable): ``fits(costs) -> bool``.
        over (Callable): ``over(costs) -> float``, how far they are above
            the targets (falls with the count; used to interpolate).

    Returns:
        int: The smallest count whose costs fit.
    """
    if fits(at_zero):
        return 0
    f_lo, f_hi = over(at_zero), over(at_end)
    lo, hi = 0, num_steps
    stalls = 0  # interpolation steps in a row that did not halve it
    while hi - lo > 1:
        if stalls < 2 and np.isfinite(f_lo) and f_lo > f_hi:
            guess = lo + (hi - lo) * f_lo / (f_lo - f_hi)
            mid = min(max(int(np.ceil(guess)), lo + 1), hi - 1)
        else:
            mid = (lo + hi) // 2
        width = hi - lo
        reached = evaluate(mid)
        if fits(reached):
            hi, f_hi = mid, over(reached)
        else:
            lo, f_lo = mid, over(reached)
        stalls = stalls + 1 if stalls < 2 and (hi - lo) * 2 > width else 0
    return hi


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
            ``'RandomImportance'``, ``'GroupFisherImportance'``).
            Defaults to L1.
        cost_normalization (str, optional): Rank units for global pruning
            by importance *per cost*: each unit's score is divided by what
            one unit of its group costs, ``'flops'`` or ``'params'`` (the
            saving of removing it, given how far the model is pruned) or
            ``'act'`` (its activation memory) — the normalisation of Group
            Fisher pruning. Defaults to None (scores as they are).
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
                 cost_normalization: Optional[str] = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.importance = build_importance(importance)
        if cost_normalization is not None and \
                cost_normalization not in COST_KINDS:
            raise ValueError(f'ImportancePruner: cost_normalization='
                             f'{cost_normalization!r} is not one of '
                             f'{list(COST_KINDS)} or None')
        self.cost_normalization = cost_normalization
        self._example: Any = None

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
        self._example = inputs if inputs is not None else torch.randn(
            tuple(input_shape or self.input_shape))

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

    def _ranking_scores(self,
                        masks: Dict[str, np.ndarray],
                        scores: Optional[Dict[str, np.ndarray]] = None
                        ) -> Dict[str, np.ndarray]:
        """Normalised scores (read from the criterion unless given),
        divided by the cost of one unit of the group under ``masks`` when
        ``cost_normalization`` is set."""
        if scores is None:
            scores = self._scores_for(None, normalize=True)
        if self.cost_normalization is None:
            return scores
        costs = unit_costs(self._model, self._require(), masks,
                           self.cost_normalization, scores)
        mean_cost = float(np.mean(list(costs.values()))) if costs else 1.0
        return {
            name: values * (mean_cost / costs[name])
            for name, values in scores.items()
        }

    def _chunks(self, name: str, values: np.ndarray,
                mask: np.ndarray) -> List[np.ndarray]:
        """The removal chunks of a group from ``mask`` on, weakest kept
        units first: each goes down to the next count the guard-rails
        allow."""
        unit = self._unit(name)
        kept = np.flatnonzero(mask)
        order = kept[np.argsort(values[kept], kind='stable')]
        count, chunks = len(kept), []
        for smaller in sorted((c for c in unit.choices if c < count),
                              reverse=True):
            chunks.append(order[len(kept) - count:len(kept) - smaller])
            count = smaller
        return chunks

    def _removal_order(self, scores: Dict[str, np.ndarray]
                       ) -> Tuple[Dict[str, np.ndarray], int]:
        """Every group's removal steps from the full group down to its
        smallest allowed count, least important first, as a rank per unit.

        A group's step removes its weakest kept units down to the next
        count the guard-rails allow; steps of all groups are ordered by
        their mean score (ties: group order, then the group's own order).
        Within a group the chunks' means never decrease (weakest first),
        so the global order removes every group's units in the group's
        own order.

        Returns:
            tuple: Group -> the step (0-based, global) at which each unit
            goes (``num_steps`` for units never removed), and
            ``num_steps``.
        """
        prio, gidx, sidx, parts = [], [], [], []
        for index, (name, values) in enumerate(scores.items()):
            unit = self._unit(name)
            if unit.is_fixed:
                continue
            n = len(values)
            smaller = np.array(sorted((c for c in unit.choices if c < n),
                                      reverse=True), dtype=np.int64)
            if not len(smaller):
                continue
            order = np.argsort(values, kind='stable')  # weakest first
            bounds = np.concatenate([[0], n - smaller])  # chunk starts/ends
            sums = np.concatenate([[0.0], np.cumsum(values[order])])
            means = (sums[bounds[1:]] - sums[bounds[:-1]]) / np.diff(bounds)
            prio.append(means)
            gidx.append(np.full(len(means), index))
            sidx.append(np.arange(len(means)))
            parts.append((name, order, bounds))
        if not parts:
            return {}, 0
        prio_all = np.concatenate(prio)
        group_all = np.concatenate(gidx)
        step_all = np.concatenate(sidx)
        sorted_idx = np.lexsort((step_all, group_all, prio_all))
        global_rank = np.empty(len(sorted_idx), dtype=np.int64)
        global_rank[sorted_idx] = np.arange(len(sorted_idx))
        num_steps = len(sorted_idx)
        ranks: Dict[str, np.ndarray] = {}
        offset = 0
        for name, order, bounds in parts:
            chunks = len(bounds) - 1
            rank = np.full(len(order), num_steps, dtype=np.int64)
            positions = np.arange(bounds[-1])
            chunk_of = np.searchsorted(bounds, positions, side='right') - 1
            rank[order[:bounds[-1]]] = global_rank[offset + chunk_of]
            ranks[name] = rank
            offset += chunks
        return ranks, num_steps

    def _masks_after(self, ranks: Dict[str, np.ndarray],
                     count: int) -> Dict[str, np.ndarray]:
        masks = {
            name: np.ones(self._unit(name).num_units, dtype=bool)
            for name in self._groups
        }
        for name, rank in ranks.items():
            masks[name] = rank >= count
        return masks

    def latency_of(self, masks: Optional[Dict[str, np.ndarray]] = None,
                   runs: int = 20) -> float:
        """Measured latency (ms) of the model pruned to ``masks``: a
        physically pruned copy runs the analysis input (the model itself is
        not touched).

        Args:
            masks (dict[str, np.ndarray], optional): Keep-masks per group;
                defaults to the current ones.
            runs (int): Timed runs (median). Defaults to 20.

        Returns:
            float: Milliseconds.
        """
        dep = self._require()
        masks = self._masks if masks is None else masks
        self._hooks.remove()
        try:
            clone = pruned_copy(self._model, dep, masks)
        finally:
            self._hooks.install(dep.layers)
            self._refresh()
        return measure_latency(clone, self._example, runs=runs)

    def prune_to_target(
        self,
        flops: Optional[float] = None,
        params: Optional[float] = None,
        latency: Optional[float] = None,
        latency_fn: Optional[Callable[[Dict[str, np.ndarray]],
                                      float]] = None,
        verbose: bool = True
    ) -> Dict[str, Any]:
        """Prune globally until the costs reach the targets.

        Starting from the unpruned model, the least important units of all
        groups (normalised scores, see the criterion's ``normalize`` and
        ``cost_normalization``) are removed first: one unit at a time, or
        the chunk down to the next count a group's guard-rails allow
        (``round_to``, ``max_ratio``), never below ``min_ratio`` nor to an
        empty group, until the costs are at most the targets. FLOPs and
        parameters come from
        :func:`~mmrazor.models.task_modules.channel_costs`; latency is
        measured on physically pruned copies (:meth:`latency_of`, or your
        ``latency_fn``). The removal order is fixed by the scores, so the
        shortest sufficient prefix of it is found by bisection, with one
        cost evaluation per halving.

        Args:
            flops (float, optional): Target FLOPs as a fraction in (0, 1]
                of the unpruned model's.
            params (float, optional): Target parameters, likewise.
            latency (float, optional): Target latency, likewise (a
                measurement: the timing noise of the machine applies).
            latency_fn (Callable, optional): ``latency_fn(masks) -> ms`` of
                the model pruned to the group keep-masks ``masks``, e.g.
                a prediction from a look-up table or a measurement on the
                target device; defaults to :meth:`latency_of`.
            verbose (bool): Log every step of the search and the result
                (mmengine's logger). Defaults to True.

        Returns:
            dict: ``flops``, ``params`` (reached), ``flops_ratio``,
            ``params_ratio`` (of the unpruned model), ``base_flops``,
            ``base_params``, ``removed_units`` (group -> units removed) and
            ``kept_units`` (group -> units kept); with a latency target also
            ``latency``, ``base_latency`` and ``latency_ratio``.

        Raises:
            ValueError: No target, a target outside (0, 1], or a target
                the guard-rails cannot reach (the message gives the smallest
                reachable cost).
        """
        targets = {
            key: _check_fraction(value, f'prune_to_target: {key}')
            for key, value in (('flops', flops), ('params', params),
                               ('latency', latency)) if value is not None
        }
        if not targets:
            raise ValueError('prune_to_target: give flops, params and/or '
                             'latency (fractions in (0, 1])')
        dep = self._require()
        measure = latency_fn or self.latency_of

        def cost_of(masks: Dict[str, np.ndarray]) -> Dict[str, float]:
            costs: Dict[str, float] = dict(
                channel_costs(self._model, dep, masks))
            if 'latency' in targets:
                costs['latency'] = float(measure(masks))
            return costs

        full = {
            name: np.ones(self._unit(name).num_units, dtype=bool)
            for name in self._groups
        }
        base = cost_of(full)
        limits = {key: frac * base[key] for key, frac in targets.items()}
        ranks, num_steps = self._removal_order(self._ranking_scores(full))

        def cost(count: int) -> Dict[str, float]:
            return cost_of(self._masks_after(ranks, count))

        def fits(reached: Dict[str, float]) -> bool:
            return all(reached[k] <= limits[k] for k in limits)

        smallest = cost(num_steps)
        if not fits(smallest):
            wanted = ', '.join(f'{k}={v:g}' for k, v in targets.items())
            got = ', '.join(f'{k}={smallest[k] / base[k]:.4f}'
                            for k in targets if base[k])
            raise ValueError(f'prune_to_target: {wanted} cannot be reached; '
                             f'the guard-rails allow at least {got} of the '
                             'unpruned model')
        rounds = 0

        def evaluate(count: int) -> Dict[str, float]:
            nonlocal rounds
            reached = cost(count)
            rounds += 1
            if verbose:
                print_log(
                    f'ImportancePruner: search {rounds}: {count} of '
                    f'{num_steps} removal steps -> ' + ', '.join(
                        f'{k} {reached[k] / base[k]:.4f} (target '
                        f'{targets[k]:g})' for k in targets if base[k]),
                    'current')
            return reached

        hi = smallest_fitting_count(
            num_steps, base, smallest, evaluate, fits,
            lambda reached: max(excess(reached[k], limits[k])
                                for k in limits))
        masks = self._masks_after(ranks, hi)
        self._apply(masks)
        report = self._report(masks, base, with_latency='latency' in targets,
                              measure=measure)
        if verbose:
            print_log(
                'ImportancePruner: reached flops {:.4f}, params {:.4f} of '
                'the unpruned model ({} units removed)'.format(
                    report['flops_ratio'], report['params_ratio'],
                    sum(report['removed_units'].values())), 'current')
        return report

    def _report(self,
                masks: Dict[str, np.ndarray],
                base: Dict[str, float],
                with_latency: bool = False,
                measure: Optional[Callable] = None) -> Dict[str, Any]:
        dep = self._require()
        reached: Dict[str, Any] = dict(channel_costs(self._model, dep, masks))
        if with_latency and measure is not None:
            reached['latency'] = float(measure(masks))
        report = dict(reached)
        for key in reached:
            report[f'{key}_ratio'] = reached[key] / base[key] if base.get(
                key) else 1.0
            report[f'base_{key}'] = base.get(key, 0)
        report['removed_units'] = {
            name: int((~mask).sum())
            for name, mask in masks.items() if not mask.all()
        }
        report['kept_units'] = {
            name: int(mask.sum())
            for name, mask in masks.items()
        }
        return report

    def prune_step(self, num_chunks: int = 1) -> List[Tuple[str, int]]:
        """Iterative pruning: remove the globally least important kept
        units from the *current* masks, one group's chunk at a time (a
        chunk is one unit, or the units down to the next count the group's
        guard-rails allow). Scores are read anew (e.g. the statistics a
        data-driven criterion gathered since the last step) and, with
        ``cost_normalization``, divided by the cost of a unit under the
        current masks — the pruning step of Group Fisher pruning.

        Args:
            num_chunks (int): How many chunks to remove. Defaults to 1.

        Returns:
            list[tuple[str, int]]: ``(group, units removed)`` per chunk,
            empty when no group can shrink any more.
        """
        if num_chunks < 1:
            raise ValueError(f'prune_step: num_chunks={num_chunks} < 1')
        masks = {k: v.copy() for k, v in self._masks.items()}
        removed: List[Tuple[str, int]] = []
        # the weights do not change between chunks: score once, re-price
        # the units under the masks of each chunk
        plain = self._scores_for(None, normalize=True)
        for _ in range(num_chunks):
            scores = self._ranking_scores(masks, plain)
            best: Optional[Tuple[float, str, np.ndarray]] = None
            for name, values in scores.items():
                if self._unit(name).is_fixed:
                    continue
                chunks = self._chunks(name, values, masks[name])
                if not chunks:
                    continue
                priority = float(values[chunks[0]].mean())
                if best is None or priority < best[0]:
                    best = (priority, name, chunks[0])
            if best is None:
                break
            _, name, chunk = best
            masks[name][chunk] = False
            removed.append((name, len(chunk)))
        self._apply(masks)
        return removed
