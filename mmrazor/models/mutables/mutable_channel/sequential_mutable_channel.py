"""Channel mutables that keep the first k channels."""
import math
import random
from typing import Dict, List, Optional, Sequence, Union

import torch

from mmrazor.registry import MODELS
from ..base_mutable import DumpChosen, InvalidChoiceError, MutableFixedError
from .base_mutable_channel import MutableChannel, first_k_mask


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


@MODELS.register_module()
class SquentialMutableChannel(MutableChannel):
    """A channel mutable keeping the first ``k`` channels.

    It can be set with an int (a number of channels, ``1 <= k <=
    num_channels``; a float with an integral value above 1, e.g. ``120.``,
    reads as that number) or with a float ratio in ``(0, 1]`` (``k =
    ratio_to_number(ratio)``), whatever the ``choice_mode``. The mode only
    decides what :attr:`current_choice` (and :attr:`choices`,
    :meth:`dump_chosen`) give: the number of active channels
    (``'number'``) or their ratio ``k / num_channels`` (``'ratio'``).

    Args:
        num_channels (int): Channels of the widest layer.
        choice_mode (str): ``'number'`` or ``'ratio'``. Defaults to
            ``'number'``.
        alias (str, optional): Name shared by mutables that make one
            decision. Defaults to None.
        init_cfg (dict, optional): mmengine initialisation config.

    Example:
        >>> m = SquentialMutableChannel(10, choice_mode='ratio')
        >>> m.current_choice = 2
        >>> m.current_choice, m.activated_channels
        (0.2, 2)
    """

    def __init__(self,
                 num_channels: int,
                 choice_mode: str = 'number',
                 alias: Optional[str] = None,
                 init_cfg: Optional[Dict] = None) -> None:
        super().__init__(num_channels, alias=alias, init_cfg=init_cfg)
        if choice_mode not in ('number', 'ratio'):
            raise ValueError("choice_mode must be 'number' or 'ratio', got "
                             f'{choice_mode!r}')
        self.choice_mode = choice_mode
        self._num_active = num_channels

    @property
    def is_num_mode(self) -> bool:
        """Whether choices are channel numbers (not ratios)."""
        return self.choice_mode == 'number'

    def ratio_to_number(self, ratio: float) -> int:
        """The channel count of a width ratio (rounded, at least 1).

        Args:
            ratio (float): In ``(0, 1]``.

        Returns:
            int: ``round(ratio * num_channels)``, at least 1.
        """
        if not 0 < ratio <= 1:
            raise InvalidChoiceError(f'{self._name()}: width ratio '
                                     f'{ratio!r} is not in (0, 1]')
        return max(1, math.floor(ratio * self.num_channels + 0.5 + 1e-9))

    def _to_number(self, choice: Union[int, float]) -> int:
        if _is_int(choice):
            return choice
        if isinstance(choice, float):
            if choice > 1 and choice.is_integer():
                return int(choice)  # a channel count written as a float
            return self.ratio_to_number(choice)
        raise TypeError(f'{self._name()}: a choice must be a number of '
                        f'channels (int) or a ratio (float), got {choice!r}')

    def _to_choice(self, number: int) -> Union[int, float]:
        return number if self.is_num_mode else number / self.num_channels

    def _numbers(self) -> List[int]:
        """The valid channel counts."""
        if self.is_fixed:
            return [self._num_active]
        return list(range(1, self.num_channels + 1))

    @property
    def choices(self) -> List[Union[int, float]]:
        """Every channel count ``1..num_channels`` (ratios in ``'ratio'``
        mode; only the chosen one once fixed)."""
        return [self._to_choice(n) for n in self._numbers()]

    def validate_choice(self, choice: Union[int, float]) -> None:
        number = self._to_number(choice)
        if number not in self._numbers():
            raise InvalidChoiceError(
                f'{self._name()}: {choice!r} ({number} channels) is not a '
                f'valid choice; valid: {self._describe_choices()}')

    def _describe_choices(self) -> str:
        numbers = self._numbers()
        if len(numbers) > 8 and numbers == list(
                range(numbers[0], numbers[-1] + 1)):
            return f'{numbers[0]}..{numbers[-1]} channels'
        return f'{numbers!r} channels'

    @property
    def current_choice(self) -> Union[int, float]:
        """The number of active (leading) channels, or their ratio in
        ``'ratio'`` mode."""
        return self._to_choice(self._num_active)

    @current_choice.setter
    def current_choice(self, choice: Union[int, float]) -> None:
        number = self._to_number(choice)
        if self.is_fixed and number != self._num_active:
            raise MutableFixedError(
                f'{self._name()} is fixed to {self._num_active} channels; '
                f'cannot set it to {choice!r}')
        self.validate_choice(number)
        self._num_active = number

    @property
    def current_mask(self) -> torch.Tensor:
        return first_k_mask(self.num_channels, self._num_active)

    def fix_chosen(self, chosen: Optional[Union[int, float]] = None) -> None:
        """Make a channel count permanent.

        Args:
            chosen (int | float, optional): A count or a ratio (also as a
                :class:`DumpChosen`). Defaults to the current choice.
        """
        self.check_not_fixed()
        chosen = self.unwrap_chosen(chosen)
        if chosen is not None:
            self.current_choice = chosen
        self.is_fixed = True

    def dump_chosen(self) -> DumpChosen:
        """The current choice.

        Returns:
            DumpChosen: ``chosen`` is the number of active channels (their
            ratio in ``'ratio'`` mode); ``meta`` holds ``num_channels``.
        """
        return DumpChosen(
            chosen=self.current_choice,
            meta=dict(num_channels=self.num_channels))


@MODELS.register_module()
class OneShotMutableChannel(SquentialMutableChannel):
    """A sequential channel mutable with a list of candidate widths.

    Args:
        num_channels (int): Channels of the widest layer.
        candidate_choices (Sequence[int | float]): The candidate widths,
            ratios in ``(0, 1]`` when ``candidate_mode='ratio'`` or channel
            counts when ``candidate_mode='number'``. :attr:`choices` holds
            them as channel counts (ascending).
        candidate_mode (str): ``'ratio'`` or ``'number'``. Defaults to
            ``'ratio'``.
        alias (str, optional): Name shared by mutables that make one
            decision. Defaults to None.
        init_cfg (dict, optional): mmengine initialisation config.

    Example:
        >>> m = OneShotMutableChannel(64, [0.25, 0.5, 1.0])
        >>> m.choices
        [16, 32, 64]
        >>> m.current_choice = 0.5; m.current_choice
        32
    """

    def __init__(self,
                 num_channels: int,
                 candidate_choices: Sequence[Union[int, float]],
                 candidate_mode: str = 'ratio',
                 alias: Optional[str] = None,
                 init_cfg: Optional[Dict] = None) -> None:
        super().__init__(num_channels, alias=alias, init_cfg=init_cfg)
        if candidate_mode not in ('ratio', 'number'):
            raise ValueError("candidate_mode must be 'ratio' or 'number', "
                             f'got {candidate_mode!r}')
        candidates = list(candidate_choices)
        if not candidates:
            raise ValueError('candidate_choices must not be empty')
        numbers = []
        for c in candidates:
            if candidate_mode == 'ratio':
                if not isinstance(c, (int, float)) or isinstance(c, bool) \
                        or not 0 < c <= 1:
                    raise ValueError(f'candidate ratio {c!r} is not in '
                                     "(0, 1] (candidate_mode='ratio')")
                numbers.append(self.ratio_to_number(float(c)))
            else:
                if not _is_int(c) or not 1 <= c <= num_channels:
                    raise ValueError(
                        f'candidate number {c!r} is not an int in '
                        f"[1, {num_channels}] (candidate_mode='number')")
                numbers.append(c)
        self.candidate_mode = candidate_mode
        self.candidate_choices = candidates
        self._candidates = sorted(set(numbers))
        self._num_active = self._candidates[-1]

    def _numbers(self) -> List[int]:
        """The candidate channel counts, ascending (the chosen once
        fixed)."""
        if self.is_fixed:
            return [self._num_active]
        return list(self._candidates)

    @property
    def min_choice(self) -> int:
        """The narrowest candidate."""
        return self.choices[0]

    @property
    def max_choice(self) -> int:
        """The widest candidate."""
        return self.choices[-1]

    def sample_choice(self) -> int:
        """A uniformly random candidate channel count (not applied)."""
        return random.choice(self.choices)
