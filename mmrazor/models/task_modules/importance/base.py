"""The common base of the importance criteria: scores per unit of every
channel group of a channel analysis.

A criterion computes one score per *channel id* of the analysed model and
adds the scores of the ids that belong to one unit (a union-find root of
the analysis). A group's units thereby collect what every layer side of
the group contributes (the producing convs, their norms, the consumers'
input slices, residual partners): the group is pruned together, so it is
scored together.
"""
from typing import Any, Dict, Iterable, Optional, Sequence

import numpy as np
import torch

from ..channel_analysis import ChannelDependency

#: How a group's unit scores are made comparable across groups.
NORMALIZATIONS = ('mean', 'max', 'sum', 'none')

#: How the contributions of a unit's layers (layer sides) combine.
LAYER_REDUCTIONS = ('sum', 'mean', 'normalized_mean')


class RootScores:
    """Per-unit accumulator: a score for every union-find root of a channel
    analysis, and whether anything was added to it.

    Args:
        dependency (ChannelDependency): The analysis.
    """

    def __init__(self, dependency: ChannelDependency) -> None:
        self.root_of = dependency.root_of
        self.values = np.zeros(len(self.root_of), dtype=np.float64)
        self.seen = np.zeros(len(self.root_of), dtype=bool)

    def add(self, ids: np.ndarray, values: np.ndarray) -> None:
        """Add ``values[i]`` to the unit of channel ``ids[i]`` (untraced
        channels, id < 0, are ignored).

        Args:
            ids (np.ndarray): Channel ids (any shape).
            values (np.ndarray): Values of the same shape.
        """
        ids = np.asarray(ids).ravel()
        values = np.asarray(values, dtype=np.float64).ravel()
        if ids.shape != values.shape:
            raise ValueError(f'{ids.size} channel ids but {values.size} '
                             'values')
        traced = ids >= 0
        roots = self.root_of[ids[traced]]
        np.add.at(self.values, roots, values[traced])
        self.seen[roots] = True


class SliceMean:
    """Per-unit average of per-layer scores: every layer (side) of a unit
    contributes one score, and a unit's score is their mean.

    Args:
        dependency (ChannelDependency): The analysis.
        relative (bool): Divide each layer's scores by their mean over the
            units the layer covers first, so that every layer weighs alike
            whatever the scale of its scores.
    """

    def __init__(self, dependency: ChannelDependency,
                 relative: bool) -> None:
        self.relative = relative
        self.total = RootScores(dependency)
        self.count = np.zeros(len(dependency.root_of))

    def add(self, layer: RootScores) -> None:
        """Add one layer's scores (a :class:`RootScores` of that layer
        alone).

        Args:
            layer (RootScores): Its scores.
        """
        values = layer.values[layer.seen]
        if self.relative and values.size and values.mean() > 0:
            values = values / values.mean()
        self.total.values[layer.seen] += values
        self.total.seen |= layer.seen
        self.count[layer.seen] += 1

    def result(self) -> RootScores:
        """The mean per unit of what :meth:`add` got.

        Returns:
            RootScores: The averages.
        """
        touched = self.count > 0
        self.total.values[touched] /= self.count[touched]
        self.count[touched] = 1
        return self.total


class BaseImportance:
    """Importance of the units of channel groups (higher = more important).

    Subclasses implement :meth:`_root_scores`; a criterion that learns from
    data (:class:`TaylorImportance`) also overrides :meth:`reset`. Use:

    >>> criterion = L1Importance()
    >>> criterion.prepare(dependency)      # ChannelAnalyzer().analyze(...)
    >>> scores = criterion.scores()        # {group: score per unit}

    Args:
        normalize (str): How :meth:`scores` rescales the scores of one group
            so that groups can be compared (global pruning):

            * ``'mean'`` (default): divide by the group's mean unit score,
              so 1.0 is an average unit of its group. Raw magnitudes grow
              with the number of layers tied in a group and with their
              fan-in; after this a unit is ranked by how it compares to its
              peers, so no group is emptied only because its weights are
              small or it spans few layers, and a single outlier does not
              rescale the group (as it does with ``'max'``).
            * ``'max'``: divide by the group's largest unit score.
            * ``'sum'``: divide by the group's total (a unit's share; this
              favours pruning wide groups, whose shares are small).
            * ``'none'``: raw scores.

            A group whose scores are all zero stays zero.
    """

    def __init__(self, normalize: str = 'mean') -> None:
        self._check_choice('normalize', normalize, NORMALIZATIONS)
        self.normalize = normalize
        self.dependency: Optional[ChannelDependency] = None

    def _check_choice(self, key: str, value: Any,
                      choices: Sequence[Any]) -> None:
        """Refuse an argument outside its choices, naming both.

        Raises:
            ValueError: ``value`` is not one of ``choices``.
        """
        if value not in choices:
            raise ValueError(f'{type(self).__name__}: {key}={value!r} is '
                             f'not one of {list(choices)}')

    # ---------------------------------------------------------- set-up
    def prepare(self, dependency: ChannelDependency) -> None:
        """Bind the criterion to a channel analysis (and forget any
        statistics gathered for another one).

        Args:
            dependency (ChannelDependency): The analysis of the model.
        """
        self.dependency = dependency
        self.reset()

    def reset(self) -> None:
        """Forget statistics gathered from data (none by default)."""

    def _require(self) -> ChannelDependency:
        if self.dependency is None:
            raise RuntimeError(f'{type(self).__name__}: call prepare('
                               'dependency) first (the pruner does it in '
                               'prepare_from_supernet)')
        return self.dependency

    # ---------------------------------------------------------- scores
    def _root_scores(self, dependency: ChannelDependency) -> RootScores:
        """Raw scores per unit (union-find root) of every channel.

        Args:
            dependency (ChannelDependency): The analysis.

        Returns:
            RootScores: Summed scores and which units got any.
        """
        raise NotImplementedError(f'{type(self).__name__}._root_scores')

    def scores(self,
               groups: Optional[Iterable[str]] = None,
               normalize: Optional[bool] = True) -> Dict[str, np.ndarray]:
        """Score every unit of the groups.

        Args:
            groups (Iterable[str], optional): Group names; defaults to the
                prunable groups of the analysis.
            normalize (bool): Apply the criterion's ``normalize`` mode.
                Defaults to True (False: raw scores).

        Returns:
            dict[str, np.ndarray]: Group name -> float64 score per unit, in
            the order of ``group.units``. A group the criterion cannot
            score (e.g. :class:`BNScaleImportance` on a group without a norm
            layer) is left out.
        """
        dep = self._require()
        names = list(dep.prunable_groups if groups is None else groups)
        unknown = [n for n in names if n not in dep.groups]
        if unknown:
            raise KeyError(f'{type(self).__name__}: unknown channel groups '
                           f'{unknown}')
        roots = self._root_scores(dep)
        result = {}
        for name in names:
            units = np.asarray(dep.groups[name].units, dtype=np.int64)
            if not len(units) or not roots.seen[units].any():
                continue
            values = roots.values[units].copy()
            result[name] = self._normalized(values) if normalize else values
        return result

    def _normalized(self, values: np.ndarray) -> np.ndarray:
        if self.normalize == 'none':
            return values
        scale = {
            'mean': values.mean,
            'max': values.max,
            'sum': values.sum
        }[self.normalize]()
        return values / scale if scale > 0 else values

    def __repr__(self) -> str:
        return f'{type(self).__name__}(normalize={self.normalize!r})'


def sum_per_channel(values: torch.Tensor, dim: int) -> np.ndarray:
    """Sum ``values`` over every dim but ``dim``.

    Args:
        values (torch.Tensor): Element-wise contributions.
        dim (int): The channel dim (negative: from the end).

    Returns:
        np.ndarray: float64, one sum per index of ``dim``.
    """
    values = values.detach()
    if values.dim() == 0:
        return values.double().reshape(1).cpu().numpy()
    dim %= values.dim()
    others = [d for d in range(values.dim()) if d != dim]
    if not others:
        return values.double().cpu().numpy()
    return values.sum(others, dtype=torch.float64).cpu().numpy()
