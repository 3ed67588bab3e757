"""The MMRazor 1.x one-shot channel unit: a fixed list of candidate
widths, sampled uniformly (AutoSlim / BigNAS-style supernets)."""
import random
from numbers import Integral
from typing import Any, Dict, List, Sequence, Union

import numpy as np
import torch

from mmrazor.registry import MODELS
from mmrazor.utils.typing import chosen_of
from .sequential_mutable_channel_unit import SequentialMutableChannelUnit

Choice = Union[int, float]


@MODELS.register_module()
class OneShotMutableChannelUnit(SequentialMutableChannelUnit):
    """A :class:`SequentialMutableChannelUnit` restricted to candidate
    widths.

    Candidates are rounded by ``divisor`` when the unit is built (as in
    MMRazor 1.x) and sorted; a choice must be one of the rounded
    candidates or of the candidates as given (mapped to its rounded
    value).

    Args:
        num_channels (int): Channels of the group.
        candidate_choices (Sequence[int | float]): Kept ratios (floats,
            ``choice_mode='ratio'``) or channel numbers (ints,
            ``'number'``). Defaults to ``[0.5, 1.0]``; an empty list means
            the full width only.
        choice_mode (str): ``'ratio'`` or ``'number'``. Defaults to
            ``'ratio'``.
        divisor (int): See :class:`SequentialMutableChannelUnit`.
        min_value (int): See :class:`SequentialMutableChannelUnit`.
        min_ratio (float): See :class:`SequentialMutableChannelUnit`.
        **kwargs: ``name``, ``unit_size``, ``changes``, ``init_cfg``.
    """

    def __init__(self,
                 num_channels: int,
                 candidate_choices: Sequence[Choice] = (0.5, 1.0),
                 choice_mode: str = 'ratio',
                 divisor: int = 1,
                 min_value: int = 1,
                 min_ratio: float = 0.9,
                 **kwargs) -> None:
        super().__init__(num_channels, choice_mode, divisor, min_value,
                         min_ratio, **kwargs)
        raw = list(candidate_choices)
        if not raw:
            raw = [self.num_channels if self.is_num_mode else 1.0]
        want = Integral if self.is_num_mode else float
        for value in raw:
            if isinstance(value, bool) or not isinstance(value, want):
                raise ValueError(
                    f'{self.name}: candidate_choices must be '
                    f'{"ints" if self.is_num_mode else "floats"} in '
                    f'choice_mode={choice_mode!r}, got {value!r}')
        self._raw_to_valid: Dict[Choice, Choice] = {}
        for value in raw:
            kept = self._units_of(self.valid_count(value)) * self.unit_size
            self._raw_to_valid[value] = self._to_mode(kept)
        self.candidate_choices: List[Choice] = sorted(
            set(self._raw_to_valid.values()))

    @property
    def choices(self) -> List[Choice]:
        """The candidates (only the current one once fixed)."""
        if self.is_fixed:
            return [self.current_choice]
        return list(self.candidate_choices)

    @property
    def current_choice(self) -> Choice:
        """Kept channels (number mode) or kept ratio (ratio mode)."""
        return self._to_mode(self.activated_channels)

    @current_choice.setter
    def current_choice(self, choice: Any) -> None:
        choice = chosen_of(choice)
        if isinstance(choice, (list, tuple, np.ndarray, torch.Tensor)) and \
                np.ndim(choice) > 0:
            self.set_mask(self.mask_of(choice))
            return
        valid = self._candidate(choice)
        kept = self._units_of(self.valid_count(valid))
        self._set(self._mask_for(kept))

    def _candidate(self, choice: Any) -> Choice:
        for value in self.candidate_choices:
            if choice == value:
                return value
        if choice in self._raw_to_valid:
            return self._raw_to_valid[choice]
        raise ValueError(f'{self.name}: {choice!r} is not a candidate; '
                         f'candidate_choices: {self.candidate_choices}')

    @property
    def min_choice(self) -> Choice:
        """The narrowest candidate."""
        return self.candidate_choices[0]

    @property
    def max_choice(self) -> Choice:
        """The widest candidate."""
        return self.candidate_choices[-1]

    def sample_choice(self) -> Choice:
        """A candidate, uniformly."""
        return random.choice(self.candidate_choices)

    def init_args(self) -> Dict[str, Any]:
        args = super().init_args()
        args['candidate_choices'] = list(self.candidate_choices)
        return args


__all__: List[str] = ['OneShotMutableChannelUnit']
