"""Searchable scalars: kernel sizes, expand ratios, depths."""
import random
from typing import Any, Dict, List, Optional, Sequence

from mmrazor.registry import MODELS
from ..base_mutable import BaseMutable, DumpChosen, MutableFixedError
from ..derived_mutable import DerivedMethodMixin


@MODELS.register_module()
class MutableValue(DerivedMethodMixin, BaseMutable):
    """A searchable scalar chosen from ``value_list``.

    Arithmetic on it (``value * 4``, ``channels * expand_ratio``, ``value //
    (2, 1)``, ``value + 1``) gives a :class:`DerivedMutable` that follows
    it. Note that ``value // r`` rounds to a multiple of 8 (as in the older
    toolbox); ``value // (r, 1)`` is the plain floor division.

    Args:
        value_list (Sequence): The candidate values: distinct and all of
            one type (e.g. all ints, all floats or all strings).
        default_value (Any, optional): The initial choice. Defaults to the
            first of ``value_list``.
        alias (str, optional): Name shared by mutables that make one
            decision. Defaults to None.
        init_cfg (dict, optional): mmengine initialisation config.

    Raises:
        TypeError: ``value_list`` is not a list or tuple, or mixes types.
        ValueError: ``value_list`` is empty or repeats a value, or
            ``default_value`` is not one of it.

    Example:
        >>> kernel = MutableValue([3, 5, 7], default_value=5)
        >>> padding = kernel // (2, 1)
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
        values = self._check_value_list(value_list)
        self._value_list: List[Any] = values
        if default_value is None:
            default_value = values[0]
        self.validate_choice(default_value)
        self._current_choice = default_value

    @staticmethod
    def _check_value_list(value_list: Sequence[Any]) -> List[Any]:
        if isinstance(value_list, (str, bytes)) or not isinstance(
                value_list, Sequence):
            raise TypeError('value_list must be a list or tuple of values, '
                            f'got {value_list!r}')
        values = list(value_list)
        if not values:
            raise ValueError('value_list must not be empty')
        types = []
        for v in values:
            if type(v) not in types:
                types.append(type(v))
        if len(types) > 1:
            names = ', '.join(t.__name__ for t in types)
            raise TypeError(f'value_list {values!r} mixes types ({names}); '
                            'all values must have one type')
        duplicates = sorted({repr(v) for v in values if values.count(v) > 1})
        if duplicates:
            raise ValueError(f'value_list {values!r} repeats '
                             f'{", ".join(duplicates)}')
        return values

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
            chosen (Any): One of :attr:`choices`, also as a
                :class:`DumpChosen` or ``{'chosen': value}``.

        Raises:
            MutableFixedError: Already fixed (a ``RuntimeError``).
            InvalidChoiceError: ``chosen`` is not a candidate value (a
                ``ValueError`` and an ``AssertionError``).
        """
        self.check_not_fixed()
        chosen = self.unwrap_chosen(chosen)
        self.validate_choice(chosen)
        self._current_choice = chosen
        self._value_list = [chosen]
        self.is_fixed = True

    def dump_chosen(self) -> DumpChosen:
        """The current value.

        Returns:
            DumpChosen: ``chosen`` is the value (what a subnet file
            stores); ``meta['all_choices']`` the candidate values.
        """
        return DumpChosen(
            chosen=self._current_choice,
            meta=dict(all_choices=self.choices))

    @property
    def min_choice(self) -> Any:
        """The smallest candidate value."""
        return min(self._value_list)

    @property
    def max_choice(self) -> Any:
        """The largest candidate value."""
        return max(self._value_list)

    def extra_repr(self) -> str:
        return (f'value_list={self._value_list}, '
                f'current_choice={self._current_choice!r}' +
                self._repr_suffix())


@MODELS.register_module()
class OneShotMutableValue(MutableValue):
    """A :class:`MutableValue` sampled uniformly in one-shot NAS.

    Its candidate values are kept sorted (ascending), and the default
    choice is the largest, as in the older toolbox.

    Args:
        value_list (Sequence): The candidate values (comparable, of one
            type); stored sorted.
        default_value (Any, optional): The initial choice. Defaults to the
            largest value.
        alias (str, optional): Name shared by mutables that make one
            decision. Defaults to None.
        init_cfg (dict, optional): mmengine initialisation config.
    """

    def __init__(self,
                 value_list: Sequence[Any],
                 default_value: Optional[Any] = None,
                 alias: Optional[str] = None,
                 init_cfg: Optional[Dict] = None) -> None:
        values = sorted(self._check_value_list(value_list))
        if default_value is None:
            default_value = values[-1]
        super().__init__(
            values,
            default_value=default_value,
            alias=alias,
            init_cfg=init_cfg)

    def sample_choice(self) -> Any:
        """A uniformly random candidate value (not applied).

        Returns:
            Any: One of :attr:`choices`.
        """
        return random.choice(self._value_list)

    @property
    def min_choice(self) -> Any:
        """The smallest candidate value."""
        return self._value_list[0]

    @property
    def max_choice(self) -> Any:
        """The largest candidate value."""
        return self._value_list[-1]

