"""The MMRazor 1.x channel unit: a group's choice as a channel number or a
kept ratio, rounded to a divisor; the leading channels are kept."""
import random
from numbers import Integral, Real
from typing import Any, Dict, List, Optional, Union

import numpy as np
import torch
from mmengine.logging import print_log

from mmrazor.registry import MODELS
from mmrazor.utils.misc import make_divisible
from mmrazor.utils.typing import DumpChosen, chosen_of
from .mutable_channel_unit import MutableChannelUnit

Choice = Union[int, float]
_MODES = ('number', 'ratio')


@MODELS.register_module()
class SequentialMutableChannelUnit(MutableChannelUnit):
    """A channel group whose choice is how many channels to keep, as a
    number (``choice_mode='number'``) or as a kept ratio of
    ``num_channels`` (``'ratio'``); the leading channels are kept
    (``11110000``).

    A choice is turned into a channel count as in MMRazor 1.x: an ``int``
    is a number of channels and a ``float`` a ratio (whatever the mode;
    ``max(1, int(ratio * num_channels))``), then rounded by
    :func:`~mmrazor.utils.misc.make_divisible` with ``divisor``,
    ``min_value`` and ``min_ratio`` (and capped at ``num_channels``).
    :attr:`current_choice` reads back in the unit's mode. A keep-mask over
    the units is accepted as well (e.g. a mask exported earlier).

    The channel mutator builds one per prunable channel group of the
    channel analysis; on its own it is a plain decision.

    Args:
        num_channels (int): Channels of the group.
        choice_mode (str): ``'number'`` or ``'ratio'``. Defaults to
            ``'number'``.
        divisor (int): Kept channel counts are rounded to multiples of it.
            Defaults to 1.
        min_value (int): Smallest count after rounding. Defaults to 1.
        min_ratio (float): Rounding never goes below this fraction of the
            asked count. Defaults to 0.9.
        name (str): The 1.x unit name (``'backbone.conv1_(0, 64)_64'``).
            Defaults to ``'unit'``.
        unit_size (int): Channels per prunable unit of the group (more than
            one where channels are tied in blocks, e.g. conv groups).
            Defaults to 1.
        changes (list[int], optional): The owner's change counter (see
            :class:`MutableChannelUnit`).
        init_cfg (dict, optional): mmengine initialisation config.
    """

    def __init__(self,
                 num_channels: int,
                 choice_mode: str = 'number',
                 divisor: int = 1,
                 min_value: int = 1,
                 min_ratio: float = 0.9,
                 name: str = 'unit',
                 unit_size: int = 1,
                 changes: Optional[List[int]] = None,
                 init_cfg: Optional[Dict] = None) -> None:
        if choice_mode not in _MODES:
            raise ValueError(f'{name}: choice_mode must be one of {_MODES}, '
                             f'got {choice_mode!r}')
        if not isinstance(divisor, Integral) or divisor < 1:
            raise ValueError(f'{name}: divisor must be a positive int, got '
                             f'{divisor!r}')
        if unit_size < 1 or num_channels % unit_size:
            raise ValueError(f'{name}: {num_channels} channels do not split '
                             f'into units of {unit_size}')
        super().__init__(
            name, num_channels // unit_size, changes=changes,
            init_cfg=init_cfg)
        self.choice_mode = choice_mode
        self.divisor = int(divisor)
        self.min_value = min_value
        self.min_ratio = min_ratio
        self.unit_size = unit_size

    # ------------------------------------------------------------ values
    @property
    def num_channels(self) -> int:
        """Channels of the whole group."""
        return self.num_units * self.unit_size

    @property
    def is_num_mode(self) -> bool:
        """Whether choices are channel numbers (else kept ratios)."""
        return self.choice_mode == 'number'

    @property
    def is_mutable(self) -> bool:
        """Units exist for prunable groups only."""
        return True

    @property
    def mutable_prefix(self) -> str:
        """The 1.x prefix of channel mutables."""
        return 'channel'

    @property
    def activated_channels(self) -> int:
        """Kept channels."""
        return int(np.count_nonzero(self._mask)) * self.unit_size

    def _to_mode(self, channels: int) -> Choice:
        return channels if self.is_num_mode else channels / self.num_channels

    @property
    def current_choice(self) -> Choice:
        """Kept channels (number mode) or kept ratio (ratio mode)."""
        return self._to_mode(self.activated_channels)

    @current_choice.setter
    def current_choice(self, choice: Any) -> None:
        choice = chosen_of(choice)
        if isinstance(choice, torch.Tensor) and choice.dim() == 0:
            choice = choice.item()
        if isinstance(choice, (list, tuple, np.ndarray, torch.Tensor)):
            self.set_mask(self.mask_of(choice))  # a keep-mask over units
            return
        self._set(self._mask_for(self._units_of(self.valid_count(choice))))

    @property
    def choices(self) -> List[Choice]:
        """Every distinct choice the rounding allows, ascending (in the
        unit's mode; only the current one once fixed)."""
        if self.is_fixed:
            return [self.current_choice]
        counts = sorted({
            self._units_of(self._rounded(k)) * self.unit_size
            for k in range(1, self.num_channels + 1)
        })
        return [self._to_mode(k) for k in counts]

    @property
    def min_choice(self) -> Choice:
        """The narrowest choice."""
        return self._to_mode(self._units_of(self._rounded(1)) *
                             self.unit_size)

    @property
    def max_choice(self) -> Choice:
        """The widest choice (every channel)."""
        return self._to_mode(self.num_channels)

    def sample_choice(self) -> Choice:
        """A random channel count in ``[1, num_channels]``, rounded, in the
        unit's mode."""
        count = self._rounded(random.randint(1, self.num_channels))
        return self._to_mode(self._units_of(count) * self.unit_size)

    # ------------------------------------------------- choice -> channels
    def valid_count(self, choice: Choice) -> int:
        """The channel count a number or ratio choice stands for (rounded
        by ``divisor``).

        Args:
            choice (int | float): Channels (int) or kept ratio (float).

        Returns:
            int: Kept channels, in ``[1, num_channels]``.

        Raises:
            ValueError: Naming the unit and the value.
        """
        if isinstance(choice, bool) or not isinstance(choice, Real):
            raise ValueError(f'{self.name}: invalid choice {choice!r} (a '
                             'number of channels, a kept ratio or a mask)')
        if isinstance(choice, Integral):
            if not 1 <= choice <= self.num_channels:
                raise ValueError(f'{self.name}: {choice} channels is not in '
                                 f'[1, {self.num_channels}]')
            count = int(choice)
        else:
            if not 0 < choice <= 1:
                raise ValueError(f'{self.name}: ratio {choice!r} is not in '
                                 '(0, 1]')
            # the epsilon keeps k / num_channels -> k exact
            count = max(1, int(self.num_channels * float(choice) + 1e-9))
        rounded = self._rounded(count)
        if rounded != count:
            print_log(f'{self.name}: choice {choice!r} ({count} channels) is '
                      f'rounded to {rounded} channels (divisor '
                      f'{self.divisor})', 'current', 10)
        return rounded

    def _rounded(self, count: int) -> int:
        new = make_divisible(count, self.divisor, self.min_value,
                             self.min_ratio)
        return max(1, min(self.num_channels, new))

    def _units_of(self, channels: int) -> int:
        """Kept units for a channel count (the nearest whole number)."""
        return max(1, min(self.num_units,
                          int(channels / self.unit_size + 0.5)))

    def _mask_for(self, kept_units: int) -> np.ndarray:
        """The keep-mask of ``kept_units`` units: the leading ones."""
        return np.arange(self.num_units) < kept_units

    # ------------------------------------------------------------ export
    def dump_chosen(self) -> DumpChosen:
        """The choice in the unit's mode (``meta``: the mode)."""
        return DumpChosen(
            chosen=self.current_choice,
            meta=dict(choice_mode=self.choice_mode))

    def init_args(self) -> Dict[str, Any]:
        """The arguments that rebuild this unit (1.x ``init_args``)."""
        return dict(
            num_channels=self.num_channels,
            choice_mode=self.choice_mode,
            divisor=self.divisor,
            min_value=self.min_value,
            min_ratio=self.min_ratio)

    def config_template(self,
                        with_init_args: bool = False,
                        with_channels: bool = False) -> Dict[str, Any]:
        """The unit's entry of a 1.x ``channel_unit_cfg['units']``.

        Args:
            with_init_args (bool): Add ``init_args``. Defaults to False.
            with_channels (bool): Accepted for 1.x compatibility; channel
                lists are not written (units come from the channel
                analysis). Defaults to False.

        Returns:
            dict: ``{'choice': ..., 'init_args': {...}}``.
        """
        config: Dict[str, Any] = dict(choice=self.current_choice)
        if with_init_args:
            config['init_args'] = self.init_args()
        return config

    def extra_repr(self) -> str:
        return (f'name={self.name!r}, num_channels={self.num_channels}, '
                f'activated_channels={self.activated_channels}, '
                f'choice_mode={self.choice_mode!r}' +
                (', fixed' if self.is_fixed else ''))
