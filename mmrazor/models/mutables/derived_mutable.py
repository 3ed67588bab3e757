"""Mutables whose value is computed from other mutables.

``mutable * 4``, ``mutable // 2``, ``expand_ratio * channels`` and friends
give a :class:`DerivedMutable`: it follows its sources automatically, is not
itself searched (mutators skip it, subnet files do not store it) and is fixed
exactly when all its sources are.
"""
import copy
import itertools
import types
from typing import Any, Callable, Iterable, List, Optional, Union

import torch

from mmrazor.utils import make_divisible
from .base_mutable import BaseMutable, MutableFixedError

Number = Union[int, float]


def _value_of(x: Any) -> Any:
    return x.current_choice if isinstance(x, BaseMutable) else x


def _copy_function(fn: types.FunctionType, memo: dict) -> Any:
    """Deep-copy a closure: its captured values (e.g. source mutables) are
    deep-copied with ``memo``, so the copy follows the copied sources."""
    if not fn.__closure__:
        return fn
    cells = tuple(
        types.CellType(_deepcopy_value(c.cell_contents, memo))
        for c in fn.__closure__)
    new = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__,
                             fn.__defaults__, cells)
    new.__kwdefaults__ = fn.__kwdefaults__
    new.__dict__.update(fn.__dict__)
    return new


def _deepcopy_value(value: Any, memo: dict) -> Any:
    if isinstance(value, types.FunctionType):
        if id(value) not in memo:
            memo[id(value)] = _copy_function(value, memo)
        return memo[id(value)]
    return copy.deepcopy(value, memo)


def _sources_of(*xs: Any) -> List[BaseMutable]:
    """The searched mutables behind ``xs`` (derived ones are unfolded)."""
    found: List[BaseMutable] = []
    for x in xs:
        if isinstance(x, DerivedMutable):
            candidates = x.source_mutables
        elif isinstance(x, BaseMutable):
            candidates = [x]
        else:
            candidates = []
        for m in candidates:
            if all(m is not f for f in found):
                found.append(m)
    return found


class DerivedMethodMixin:
    """Arithmetic that turns a mutable into a :class:`DerivedMutable`.

    Mixed into value and channel mutables (and into :class:`DerivedMutable`
    itself, so derivations chain). Channel mutables override
    :meth:`_derived_mask_fn` to give derived masks.
    """

    def _derived_mask_fn(self, choice_fn: Callable[[], int]
                         ) -> Optional[Callable[[], torch.Tensor]]:
        """A mask function for a derivation, or None if not a channel."""
        return None

    def _derive(self, choice_fn: Callable[[], Any], *others: Any
                ) -> 'DerivedMutable':
        return DerivedMutable(
            choice_fn=choice_fn,
            mask_fn=self._derived_mask_fn(choice_fn),
            source_mutables=_sources_of(self, *others))

    def derive_same_mutable(self) -> 'DerivedMutable':
        """A derived mutable equal to this one."""
        return self._derive(lambda: _value_of(self))

    def derive_expand_mutable(self, expand: Union[Number, BaseMutable]
                              ) -> 'DerivedMutable':
        """``self * expand``, rounded down to an int for integer values.

        Args:
            expand (int | float | BaseMutable): The factor (may itself be
                searched, e.g. an expand ratio).
        """

        def choice_fn() -> Any:
            value = _value_of(self) * _value_of(expand)
            return int(value) if isinstance(_value_of(self), int) else value

        return self._derive(choice_fn, expand)

    def derive_divide_mutable(self,
                              ratio: Union[Number, BaseMutable],
                              divisor: int = 1) -> 'DerivedMutable':
        """``make_divisible(self / ratio, divisor)``.

        Args:
            ratio (int | float | BaseMutable): The divisor of the value.
            divisor (int): Round the result to a multiple of it. With 1 the
                result is ``self // ratio``. Defaults to 1.
        """

        def choice_fn() -> int:
            raw = _value_of(self) / _value_of(ratio)
            if divisor == 1:
                return int(_value_of(self) // _value_of(ratio))
            return make_divisible(raw, divisor)

        return self._derive(choice_fn, ratio)

    def __mul__(self, other: Union[Number, BaseMutable]) -> 'DerivedMutable':
        if isinstance(other, (int, float, BaseMutable)):
            return self.derive_expand_mutable(other)
        return NotImplemented

    def __rmul__(self, other: Number) -> 'DerivedMutable':
        return self.__mul__(other)

    def __floordiv__(self, other: Union[Number, BaseMutable, tuple]
                     ) -> 'DerivedMutable':
        if isinstance(other, tuple):
            ratio, divisor = other
            return self.derive_divide_mutable(ratio, divisor)
        if isinstance(other, (int, float, BaseMutable)):
            return self.derive_divide_mutable(other)
        return NotImplemented

    def __add__(self, other: Union[Number, BaseMutable]) -> 'DerivedMutable':
        if isinstance(other, (int, float, BaseMutable)):
            return self._derive(lambda: _value_of(self) + _value_of(other),
                                other)
        return NotImplemented

    def __radd__(self, other: Number) -> 'DerivedMutable':
        return self.__add__(other)

    def __sub__(self, other: Union[Number, BaseMutable]) -> 'DerivedMutable':
        if isinstance(other, (int, float, BaseMutable)):
            return self._derive(lambda: _value_of(self) - _value_of(other),
                                other)
        return NotImplemented


class DerivedMutable(DerivedMethodMixin, BaseMutable):
    """A value (and, for channels, a mask) computed from source mutables.

    Args:
        choice_fn (Callable[[], Any]): Computes the current value from the
            sources' current choices.
        mask_fn (Callable[[], Tensor], optional): Computes the current
            channel mask (for derived channel mutables).
        source_mutables (Iterable[BaseMutable]): The searched mutables the
            value depends on. They are referenced, not registered as
            submodules.
        alias (str, optional): A name for display.
    """

    derived = True

    def __init__(self,
                 choice_fn: Callable[[], Any],
                 mask_fn: Optional[Callable[[], torch.Tensor]] = None,
                 source_mutables: Iterable[BaseMutable] = (),
                 alias: Optional[str] = None) -> None:
        super().__init__(alias=alias)
        self.choice_fn = choice_fn
        self.mask_fn = mask_fn
        # A plain list: sources stay owned by the modules that define them.
        self.__dict__['_sources'] = list(source_mutables)

    @property
    def source_mutables(self) -> List[BaseMutable]:
        """The searched mutables this value follows."""
        return list(self.__dict__['_sources'])

    @property
    def current_choice(self) -> Any:
        return self.choice_fn()

    @current_choice.setter
    def current_choice(self, choice: Any) -> None:
        raise MutableFixedError(
            'a DerivedMutable follows its source mutables; set their '
            'choices instead')

    @property
    def current_mask(self) -> torch.Tensor:
        """The current channel mask (derived channel mutables only)."""
        if self.mask_fn is None:
            raise AttributeError('this DerivedMutable carries no mask')
        return self.mask_fn()

    @property
    def choices(self) -> List[Any]:
        """Every value the sources can produce (sources restored after)."""
        sources = [s for s in self.source_mutables if not s.is_fixed]
        saved = [s.current_choice for s in sources]
        values: List[Any] = []
        try:
            for combo in itertools.product(*(s.choices for s in sources)):
                for s, c in zip(sources, combo):
                    s.current_choice = c
                value = self.choice_fn()
                if value not in values:
                    values.append(value)
        finally:
            for s, c in zip(sources, saved):
                s.current_choice = c
        return values

    @property
    def is_fixed(self) -> bool:
        return all(s.is_fixed for s in self.source_mutables)

    @is_fixed.setter
    def is_fixed(self, value: bool) -> None:
        raise MutableFixedError(
            'a DerivedMutable is fixed when its sources are')

    def fix_chosen(self, chosen: Any) -> None:
        """Check ``chosen`` equals the derived value (nothing to drop).

        Args:
            chosen: The expected value.
        """
        if chosen != self.current_choice:
            raise ValueError(f'DerivedMutable value is '
                             f'{self.current_choice!r}, cannot fix it to '
                             f'{chosen!r}; fix its sources instead')

    def dump_chosen(self) -> Any:
        return self.current_choice

    def __deepcopy__(self, memo: dict) -> 'DerivedMutable':
        # ``copy.deepcopy`` keeps functions as they are, so the value and
        # mask functions of a copied supernet would still read the ORIGINAL
        # sources. Rebuild the closures around the copied sources instead.
        new = type(self).__new__(type(self))
        memo[id(self)] = new
        for key, value in self.__dict__.items():
            new.__dict__[key] = _deepcopy_value(value, memo)
        return new
