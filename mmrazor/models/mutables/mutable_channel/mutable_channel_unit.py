"""One group of tied channels, found by the channel analysis, as a
decision: how many of its units (and which) to keep."""
import random
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np
import torch

from mmrazor.registry import MODELS
from mmrazor.utils.typing import DumpChosen
from ..base_mutable import BaseMutable, MutableFixedError

UnitChoice = Union[int, float, Sequence[bool], np.ndarray, torch.Tensor,
                   Dict[str, Any]]


@MODELS.register_module()
class MutableChannelUnit(BaseMutable):
    """The channels that must be pruned together (a group of the channel
    analysis: every layer tied to them by residual additions, concatenation
    or shared weights), as one searchable decision.

    The decision is a keep-mask over the group's *units* (usually a unit is
    one channel; it is a whole block where channels are tied in blocks,
    e.g. the groups of a grouped conv). ``current_choice`` is the number of
    kept units; :attr:`choices` are the counts the pruner's guard-rails
    allow (``min_ratio``, ``max_ratio``, ``round_to``).

    A choice may be given as a unit count (the leading units are kept), a
    kept ratio in (0, 1] (snapped to the nearest allowed count), a keep-mask
    over the units, or ``{'chosen': any of those}``.

    Args:
        name (str): The group's name (also its key in subnet files).
        num_units (int): Units of the full group.
        choices (Sequence[int]): Allowed kept-unit counts. Defaults to every
            count from 1 to ``num_units``.
        alias (str, optional): Decision key; defaults to ``name``.
        changes (list[int], optional): A counter shared by the units of one
            pruner and incremented whenever a mask changes, so the pruner
            re-masks its model before the next forward however the choice
            was set. Defaults to a counter of its own.
        init_cfg (dict, optional): mmengine initialisation config.
    """

    def __init__(self,
                 name: str,
                 num_units: int,
                 choices: Optional[Sequence[int]] = None,
                 alias: Optional[str] = None,
                 changes: Optional[List[int]] = None,
                 init_cfg: Optional[Dict] = None) -> None:
        super().__init__(alias=alias or name, init_cfg=init_cfg)
        self.changes = [0] if changes is None else changes
        if num_units < 1:
            raise ValueError(f'{name}: a unit needs at least one channel '
                             f'unit, got {num_units}')
        self.name = name
        self.num_units = num_units
        self._choices = sorted(set(choices or range(1, num_units + 1)))
        bad = [c for c in self._choices if not 1 <= c <= num_units]
        if bad:
            raise ValueError(f'{name}: choices {bad} not in [1, {num_units}]')
        self._mask = np.ones(num_units, dtype=bool)

    # ----------------------------------------------------------- values
    @property
    def num_channels(self) -> int:
        """Units of the full group (the width a channel mutator reads)."""
        return self.num_units

    @property
    def choices(self) -> List[int]:
        """Allowed kept-unit counts, ascending (only the chosen once
        fixed)."""
        return [self.current_choice] if self.is_fixed else list(self._choices)

    @property
    def current_mask(self) -> np.ndarray:
        """A copy of the keep-mask over the units."""
        return self._mask.copy()

    @property
    def current_choice(self) -> int:
        """The number of kept units."""
        return int(np.count_nonzero(self._mask))

    @current_choice.setter
    def current_choice(self, choice: UnitChoice) -> None:
        self.set_mask(self.mask_of(choice))

    def set_mask(self, mask: np.ndarray) -> None:
        """Keep the units marked True (checked by :meth:`mask_of`)."""
        self._set(self.mask_of(mask))

    def keep_all(self) -> None:
        """Keep every unit: the group unpruned, as before any choice
        (allowed whatever the guard-rails say)."""
        self._set(np.ones(self.num_units, dtype=bool))

    def _set(self, mask: np.ndarray) -> None:
        if self.is_fixed and not np.array_equal(mask, self._mask):
            raise MutableFixedError(f'{self._name()} is fixed; its mask '
                                    'cannot change')
        if not np.array_equal(mask, self._mask):
            self._mask = mask
            self.changes[0] += 1

    def snap(self, count: int) -> int:
        """The allowed count nearest to ``count`` (the larger on a tie)."""
        return min(self._choices, key=lambda c: (abs(c - count), -c))

    def mask_of(self, choice: Union[UnitChoice, DumpChosen]) -> np.ndarray:
        """The keep-mask a choice stands for.

        Args:
            choice: A count, a ratio, a keep-mask or ``{'chosen': ...}``.

        Returns:
            np.ndarray: Bool flags over the units.

        Raises:
            ValueError: The choice is malformed or breaks the guard-rails
                (the message names the group and the valid counts).
        """
        n, name = self.num_units, self.name
        if isinstance(choice, DumpChosen):
            choice = choice.chosen
        if isinstance(choice, dict):
            if 'chosen' not in choice:
                raise ValueError(f'{name}: expected {{chosen: ...}}, got '
                                 f'{choice!r}')
            choice = choice['chosen']
        if isinstance(choice, torch.Tensor):
            choice = choice.detach().cpu().numpy()
        if isinstance(choice, (list, tuple, np.ndarray)):
            mask = np.asarray(choice, dtype=bool)
            if mask.shape != (n, ):
                raise ValueError(f'{name}: a mask needs {n} flags, got '
                                 f'shape {mask.shape}')
        elif isinstance(choice, bool) or not isinstance(
                choice, (int, float, np.integer, np.floating)):
            raise ValueError(f'{name}: invalid choice {choice!r} (an int, a '
                             'ratio or a keep-mask)')
        elif isinstance(choice, (float, np.floating)):
            if not 0 < choice <= 1:
                raise ValueError(f'{name}: ratio {choice!r} not in (0, 1]')
            mask = np.arange(n) < self.snap(max(1, round(choice * n)))
        elif not 1 <= choice <= n:
            raise ValueError(f'{name}: {choice} units is not in [1, {n}]')
        else:
            mask = np.arange(n) < int(choice)
        k = int(mask.sum())
        if k not in self._choices:
            ch = self._choices
            raise ValueError(
                f'{name}: {k} of {n} units breaks its guard-rails; valid: '
                f'{ch if len(ch) <= 12 else f"{ch[:6]}...{ch[-3:]}"}')
        return mask

    def sample_choice(self) -> int:
        """A random allowed count (the leading units are kept)."""
        return random.choice(self._choices)

    # ------------------------------------------------------------ fixing
    def fix_chosen(self, chosen: Optional[UnitChoice] = None) -> None:
        """Make a choice permanent.

        Args:
            chosen: Any form of choice; defaults to the current mask.
        """
        self.check_not_fixed()
        if chosen is not None:
            self.current_choice = self.unwrap_chosen(chosen)
        self.is_fixed = True

    def dump_chosen(self) -> DumpChosen:
        """The decision: the kept-unit count when the leading units are
        kept, else the mask as a list of bools (``meta``: the choices)."""
        k = self.current_choice
        chosen = k if self._mask[:k].all() else self._mask.tolist()
        return DumpChosen(chosen=chosen, meta=dict(all_choices=self.choices))

    def extra_repr(self) -> str:
        return (f'name={self.name!r}, kept={self.current_choice}/'
                f'{self.num_units}' + (', fixed' if self.is_fixed else ''))
