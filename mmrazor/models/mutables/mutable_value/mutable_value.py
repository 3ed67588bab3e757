"""Searchable scalars: kernel sizes, expand ratios, depths."""
import random
from typing import Any, Dict, List, Optional, Sequence

from mmrazor.registry import MODELS
from ..base_mutable import BaseMutable, MutableFixedError
from ..derived_mutable import DerivedMethodMixin


@MODELS.register_module()
class MutableValue(DerivedMethodMixin, BaseMutable):
    """A searchable scalar chosen from ``value_list``.

    Arithmetic on it (``value * 4``, ``channels * expand_ratio``, ``value //
    2``, ``value + 1``) gives a :class:`DerivedMutable` that follows it.

    Args:
        value_list (Sequence): The candidate values (hashable, distinct,
            e.g. ints or floats).
        default_value (Any, optional): The initial choice. Defaults to the
            first of ``value_list``.
        alias (str, optional): Name shared by mutables that make one
            decision. Defaults to None.
        init_cfg (dict, optional): mmengine initialisation config.

    Example:
        >>> kernel = MutableValue([3, 5, 7], default_value=5)
        >>> padding = kernel // 2
        >>> kernel.current_choice = 7
        >>> padding.current_choice
        3
    """

    def __init__(self,
                 value_list: Sequence[Any],
                 default_value: Optional[Any] = None,
                 alias: Optional[str] = None,
                 init_cfg: Optional[Dict] = None) -> None:
        super().__init__(alias=alias, init_cfg=init_cfg)
        if isinstance(value_list, (str, bytes)) or not isinstance(
                value_list, Sequence):
            raise TypeError('value_list must be a list or tuple of values, '
                            f'got {value_list!r}')
        values = list(value_list)
        if not values:
            raise ValueError('value_list must not be empty')
        duplicates = sorted({repr(v) for v in values if values.count(v) > 1})
        if duplicates:
            raise ValueError(f'value_list {values!r} repeats '
                             f'{", ".join(duplicates)}')
        self._value_list: List[Any] = values
        if default_value is None:
            default_value = values[0]
        self.validate_choice(default_value)
        self._current_choice = default_value

    @property
    def choices(self) -> List[Any]:
        """The candidate values (only the chosen one once fixed)."""
        return list(self._value_list)

    @property
    def current_choice(self) -> Any:
        """The value in use now."""
        return self._current_choice

    @current_choice.setter
    def current_choice(self, choice: Any) -> None:
        if self.is_fixed and choice != self._current_choice:
            raise MutableFixedError(
                f'{self._name()} is fixed to {self._current_choice!r}; '
                f'cannot set it to {choice!r}')
        self.validate_choice(choice)
        self._current_choice = choice

    def fix_chosen(self, chosen: Any) -> None:
        """Make ``chosen`` the only value.

        Args:
            chosen (Any): One of :attr:`choices`.

        Raises:
            MutableFixedError: Already fixed.
            ValueError: ``chosen`` is not a candidate value.
        """
        self.check_not_fixed()
        self.validate_choice(chosen)
        self._current_choice = chosen
        self._value_list = [chosen]
        self.is_fixed = True

    def dump_chosen(self) -> Any:
        """The current value (what a subnet file stores)."""
        return self._current_choice

    @property
    def min_choice(self) -> Any:
        """The smallest candidate value."""
        return min(self._value_list)

    @property
    def max_choice(self) -> Any:
        """The largest candidate value."""
        return max(self._value_list)


@MODELS.register_module()
class OneShotMutableValue(MutableValue):
    """A :class:`MutableValue` sampled uniformly in one-shot NAS.

    Args: see :class:`MutableValue`.
    """

    def sample_choice(self) -> Any:
        """A uniformly random candidate value (not applied).

        Returns:
            Any: One of :attr:`choices`.
        """
        return random.choice(self._value_list)
