"""The MMRazor 1.x L1-norm channel unit: keeps the channels whose producing
weights have the largest L1 norm (Li et al., 2017)."""
from typing import Callable, List, Optional

import numpy as np

from mmrazor.registry import MODELS
from .sequential_mutable_channel_unit import SequentialMutableChannelUnit

#: Returns one score per unit of the group (None when it cannot score).
UnitScorer = Callable[[], Optional[np.ndarray]]


@MODELS.register_module()
class L1MutableChannelUnit(SequentialMutableChannelUnit):
    """A :class:`SequentialMutableChannelUnit` that keeps the channels of
    largest L1 norm instead of the leading ones.

    As in MMRazor 1.x, a channel's norm is the mean ``|w|`` of its output
    slice in every conv / linear layer producing the group's channels,
    averaged over those layers; the mask is recomputed from the current
    weights every time the choice is set. The channel mutator binds the
    scorer (:meth:`bind_scorer`); without one (or when no conv / linear
    layer produces the channels) the leading channels are kept.

    Args:
        num_channels (int): Channels of the group.
        choice_mode (str): ``'number'`` or ``'ratio'``. Defaults to
            ``'number'``.
        divisor (int): See :class:`SequentialMutableChannelUnit`.
        min_value (int): See :class:`SequentialMutableChannelUnit`.
        min_ratio (float): See :class:`SequentialMutableChannelUnit`.
        **kwargs: ``name``, ``unit_size``, ``changes``, ``init_cfg``.
    """

    def __init__(self,
                 num_channels: int,
                 choice_mode: str = 'number',
                 divisor: int = 1,
                 min_value: int = 1,
                 min_ratio: float = 0.9,
                 **kwargs) -> None:
        super().__init__(num_channels, choice_mode, divisor, min_value,
                         min_ratio, **kwargs)
        self._scorer: Optional[UnitScorer] = None

    def bind_scorer(self, scorer: Optional[UnitScorer]) -> None:
        """Use ``scorer()`` (one L1 norm per unit) to rank the units.

        Args:
            scorer (Callable, optional): Returns an array of ``num_units``
                scores, or None when the group cannot be scored.
        """
        self._scorer = scorer

    def unit_scores(self) -> Optional[np.ndarray]:
        """The L1 norm of every unit (None without a scorer)."""
        if self._scorer is None:
            return None
        scores = self._scorer()
        if scores is not None and len(scores) != self.num_units:
            raise ValueError(f'{self.name}: the scorer gave {len(scores)} '
                             f'scores for {self.num_units} units')
        return scores

    def _mask_for(self, kept_units: int) -> np.ndarray:
        scores = self.unit_scores()
        if scores is None:
            return super()._mask_for(kept_units)
        order = np.argsort(-np.asarray(scores, dtype=np.float64),
                           kind='stable')  # the earlier unit wins a tie
        mask = np.zeros(self.num_units, dtype=bool)
        mask[order[:kept_units]] = True
        return mask


__all__: List[str] = ['L1MutableChannelUnit']
