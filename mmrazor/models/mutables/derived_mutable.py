"""Mutables whose value is computed from other mutables.

``mutable * 4``, ``mutable // 8``, ``expand_ratio * channels`` and friends
give a :class:`DerivedMutable`: it follows its sources automatically, is not
itself searched (mutators skip it, subnet files do not need it) and is fixed
exactly when all its sources are.
"""
import copy
import functools
import itertools
import types
from typing import (AbstractSet, Any, Callable, Iterable, List, Optional,
                    Set, Union)

import numpy as np
import torch

from mmrazor.utils import make_divisible
from .base_mutable import BaseMutable, DumpChosen, MutableFixedError

Number = Union[int, float]

#: The divisor ``mutable // ratio`` rounds to (as in the older toolbox).
DEFAULT_DIVISOR = 8


def _value_of(x: Any) -> Any:
    return x.current_choice if isinstance(x, BaseMutable) else x


def _divide(value: Number, ratio: Number, divisor: int) -> int:
    """``make_divisible(value / ratio, divisor)`` (plain ``value // ratio``
    when ``divisor`` is 1)."""
    if divisor == 1:
        return int(value // ratio)
    return make_divisible(value / ratio, divisor)


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


def _add_source(found: List[BaseMutable], mutable: BaseMutable) -> None:
    if all(mutable is not f for f in found):
        found.append(mutable)


def _sources_of(*xs: Any) -> List[BaseMutable]:
    """The searched mutables behind ``xs`` (derived ones are unfolded), in
    order of appearance."""
    found: List[BaseMutable] = []
    for x in xs:
        if isinstance(x, DerivedMutable):
            for m in x.ordered_source_mutables:
                _add_source(found, m)
        elif isinstance(x, BaseMutable):
            _add_source(found, x)
    return found


def trace_source_mutables(*fns: Optional[Callable]) -> List[BaseMutable]:
    """The source mutables a value or mask function reads, found in what it
    captures.

    Closure variables of functions, the instance of bound methods, the
    function and arguments of ``functools.partial`` and the attributes of
    other callables are searched, through dicts (keys and values), lists,
    tuples and sets; a derived mutable found there contributes its sources.

    Args:
        *fns (Callable, optional): The functions (None is skipped).

    Returns:
        list[BaseMutable]: The source mutables, in order of discovery.
    """
    found: List[BaseMutable] = []
    seen: Set[int] = set()

    def visit(obj: Any) -> None:
        if id(obj) in seen or isinstance(obj, (str, bytes, torch.Tensor,
                                               np.ndarray, type)):
            return
        seen.add(id(obj))
        if isinstance(obj, BaseMutable):
            if isinstance(obj, DerivedMutable):
                for m in obj.ordered_source_mutables:
                    _add_source(found, m)
            else:
                _add_source(found, obj)
        elif isinstance(obj, dict):
            for key, value in obj.items():
                visit(key)
                visit(value)
        elif isinstance(obj, (list, tuple, set, frozenset)):
            for item in obj:
                visit(item)
        elif isinstance(obj, types.FunctionType):
            for cell in obj.__closure__ or ():
                try:
                    visit(cell.cell_contents)
                except ValueError:  # an empty cell
                    pass
        elif isinstance(obj, types.MethodType):
            visit(obj.__self__)
            visit(obj.__func__)
        elif isinstance(obj, functools.partial):
            visit(obj.func)
            visit(obj.args)
            visit(obj.keywords)
        elif callable(obj) and hasattr(obj, '__dict__'):
            visit(vars(obj))

    for fn in fns:
        if fn is not None:
            visit(fn)
    return found


def _concat_choice_fn(mutables: Iterable[Any]) -> Callable[[], int]:
    """The value function of a concatenation: the sum of the choices.

    Args:
        mutables (Iterable): Channel mutables (with ``current_mask``).

    Returns:
        Callable[[], int]: Reads the current sum.
    """
    mutables = list(mutables)

    def fn() -> int:
        return sum(int(m.current_choice) for m in mutables)

    return fn


def _concat_mask_fn(mutables: Iterable[Any]) -> Callable[[], torch.Tensor]:
    """The mask function of a concatenation: the masks one after another.

    Args:
        mutables (Iterable): Channel mutables (with ``current_mask``).

    Returns:
        Callable[[], Tensor]: Reads the current concatenated mask.
    """
    mutables = list(mutables)

    def fn() -> torch.Tensor:
        # numpy, not torch.cat: mask bookkeeping issues no torch ops, so
        # op-level counters (FLOPs estimators) see only the model.
        return torch.from_numpy(
            np.concatenate([m.current_mask.numpy() for m in mutables]))

    return fn


class DerivedMethodMixin:
    """Arithmetic that turns a mutable into a :class:`DerivedMutable`.

    Mixed into value and channel mutables (and into :class:`DerivedMutable`
    itself, so derivations chain). Channel mutables override
    :meth:`_derived_mask_fn` and the derivations to give derived masks.

    * ``m * k`` / ``k * m``: :meth:`derive_expand_mutable`;
    * ``m // r``: :meth:`derive_divide_mutable` with the default divisor
      8, i.e. ``make_divisible(m / r, 8)``; ``m // (r, d)`` rounds to a
      multiple of ``d`` instead (``d=1``: plain ``m // r``);
    * ``m + k``, ``m - k``: value-only derivations.
    """

    #: Whether the value is a number of channels carrying a mask.
    _is_channel_mutable = False

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
        """A derived mutable equal to this one.

        Returns:
            DerivedMutable: Follows ``self``.
        """
        return self._derive(lambda: _value_of(self))

    def derive_expand_mutable(self, expand_ratio: Union[Number, BaseMutable]
                              ) -> 'DerivedMutable':
        """``self * expand_ratio``, rounded down to an int for integer
        values.

        Args:
            expand_ratio (int | float | BaseMutable): The factor (may
                itself be searched, e.g. an expand ratio).

        Returns:
            DerivedMutable: Follows ``self`` (and ``expand_ratio``).
        """

        def choice_fn() -> Any:
            value = _value_of(self) * _value_of(expand_ratio)
            return int(value) if isinstance(_value_of(self), int) else value

        return self._derive(choice_fn, expand_ratio)

    def derive_divide_mutable(self,
                              ratio: Union[Number, BaseMutable],
                              divisor: int = DEFAULT_DIVISOR
                              ) -> 'DerivedMutable':
        """``make_divisible(self / ratio, divisor)``.

        Args:
            ratio (int | float | BaseMutable): The divisor of the value.
            divisor (int): Round the result to a multiple of it (see
                :func:`mmrazor.utils.make_divisible`); with 1 the result is
                ``self // ratio``. Defaults to 8.

        Returns:
            DerivedMutable: Follows ``self`` (and ``ratio``).
        """
        _check_divisor(divisor)

        def choice_fn() -> int:
            return _divide(_value_of(self), _value_of(ratio), divisor)

        return self._derive(choice_fn, ratio)

    @staticmethod
    def derive_concat_mutable(mutables: Iterable[Any]) -> 'DerivedMutable':
        """The channels of several layers concatenated (``torch.cat``).

        Args:
            mutables (Iterable): Channel mutables (or derived mutables with
                masks), in concatenation order.

        Returns:
            DerivedMutable: Its value is the sum of the choices, its mask
            the concatenation of the masks.

        Raises:
            RuntimeError: One of ``mutables`` carries no channel mask.
        """
        from .mutable_channel import concat_channel_mutables
        try:
            return concat_channel_mutables(list(mutables))
        except TypeError as e:
            raise RuntimeError(f'derive_concat_mutable: {e}') from e

    def _refuse(self, op: str, other: Any) -> None:
        raise TypeError(f'unsupported operand for {op}: '
                        f'{type(self).__name__} and '
                        f'{type(other).__name__} ({other!r})')

    def __mul__(self, other: Union[Number, BaseMutable]) -> 'DerivedMutable':
        if getattr(other, '_is_channel_mutable', False) and \
                not self._is_channel_mutable:
            return NotImplemented  # the channel mutable derives the mask
        if isinstance(other, bool):
            self._refuse('*', other)
        if isinstance(other, (int, float, BaseMutable)):
            return self.derive_expand_mutable(other)
        return NotImplemented

    def __rmul__(self, other: Number) -> 'DerivedMutable':
        return self.__mul__(other)

    def __floordiv__(self, other: Union[Number, BaseMutable, tuple]
                     ) -> 'DerivedMutable':
        if isinstance(other, tuple):
            if len(other) != 2:
                raise ValueError('mutable // (ratio, divisor) needs two '
                                 f'numbers, got {other!r}')
            ratio, divisor = other
            return self.derive_divide_mutable(ratio, divisor)
        if isinstance(other, bool):
            self._refuse('//', other)
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


def _check_divisor(divisor: Any) -> None:
    if not isinstance(divisor, int) or isinstance(divisor,
                                                  bool) or divisor < 1:
        raise ValueError(f'divisor must be a positive int, got {divisor!r}')


class DerivedMutable(DerivedMethodMixin, BaseMutable):
    """A value (and, for channels, a mask) computed from source mutables.

    A derived mutable has no search space of its own: its
    ``current_choice`` (and ``current_mask``) cannot be set, it is fixed
    exactly when all its sources are, :attr:`num_choices` is 1, and
    :meth:`fix_chosen` only checks the value.

    Args:
        choice_fn (Callable[[], Any]): Computes the current value from the
            sources' current choices.
        mask_fn (Callable[[], Tensor], optional): Computes the current
            channel mask (for derived channel mutables). Defaults to None.
        source_mutables (Iterable[BaseMutable], optional): The searched
            mutables the value depends on (not derived ones). They are
            referenced, not registered as submodules. Defaults to None:
            they are traced in what ``choice_fn`` and ``mask_fn`` capture
            (see :func:`trace_source_mutables`).
        alias (str, optional): A name for display.
        init_cfg (dict, optional): mmengine initialisation config.

    Raises:
        RuntimeError: ``source_mutables`` is None and no source mutable is
            found in the functions.
        ValueError: A given source mutable is a derived mutable (or not a
            mutable).

    Example:
        >>> width = SquentialMutableChannel(num_channels=3)
        >>> double = width * 2
        >>> double.source_mutables == {width}
        True
        >>> width.current_choice = 2
        >>> double.current_choice
        4
    """

    derived = True

    def __init__(self,
                 choice_fn: Callable[[], Any],
                 mask_fn: Optional[Callable[[], torch.Tensor]] = None,
                 source_mutables: Optional[Iterable[BaseMutable]] = None,
                 alias: Optional[str] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(alias=alias, init_cfg=init_cfg)
        self.choice_fn = choice_fn
        self.mask_fn = mask_fn
        if source_mutables is None:
            sources = trace_source_mutables(choice_fn, mask_fn)
            if not sources:
                raise RuntimeError(
                    'DerivedMutable: no source mutable found in what '
                    'choice_fn / mask_fn capture; pass source_mutables')
        else:
            sources = []
            for m in source_mutables:
                if not self.is_source_mutable(m):
                    raise ValueError(
                        'DerivedMutable: every source mutable must be a '
                        'searched (not derived) mutable, got '
                        f'{type(m).__name__}')
                _add_source(sources, m)
        # A plain list: sources stay owned by the modules that define them.
        self.__dict__['_sources'] = sources

    @staticmethod
    def is_source_mutable(mutable: Any) -> bool:
        """Whether ``mutable`` can be a source: a mutable not derived from
        others.

        Args:
            mutable (Any): Any object.

        Returns:
            bool: True for a non-derived :class:`BaseMutable`.
        """
        return isinstance(mutable, BaseMutable) and not isinstance(
            mutable, DerivedMutable)

    @property
    def source_mutables(self) -> AbstractSet[BaseMutable]:
        """The searched mutables this value follows: a set (it compares
        equal to ``{m1, m2}``) that iterates in a stable order (as first
        found)."""
        return dict.fromkeys(self.__dict__['_sources']).keys()

    @property
    def ordered_source_mutables(self) -> List[BaseMutable]:
        """:attr:`source_mutables` in a stable order (as first found)."""
        return list(self.__dict__['_sources'])

    @property
    def current_choice(self) -> Any:
        return self.choice_fn()

    @current_choice.setter
    def current_choice(self, choice: Any) -> None:
        raise MutableFixedError(
            f'the choice of a DerivedMutable follows its source mutables; '
            f'cannot set it to {choice!r} (set the sources instead)')

    @property
    def current_mask(self) -> torch.Tensor:
        """The current channel mask (derived channel mutables only).

        Raises:
            RuntimeError: This derived mutable carries no mask (a value
                derivation).
        """
        if self.mask_fn is None:
            raise RuntimeError(
                'this DerivedMutable carries no channel mask (it derives a '
                'value, not channels)')
        return self.mask_fn()

    @current_mask.setter
    def current_mask(self, mask: torch.Tensor) -> None:
        raise RuntimeError(
            'the mask of a DerivedMutable follows its source mutables and '
            'cannot be set')

    @property
    def choices(self) -> List[Any]:
        """Every value the sources can produce (sources restored after)."""
        sources = [s for s in self.ordered_source_mutables if not s.is_fixed]
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
    def num_choices(self) -> int:
        """Always 1: a derived mutable has no search space of its own."""
        return 1

    @property
    def is_fixed(self) -> bool:
        """Whether all source mutables are fixed."""
        return all(s.is_fixed for s in self.ordered_source_mutables)

    @is_fixed.setter
    def is_fixed(self, value: bool) -> None:
        raise MutableFixedError(
            'a DerivedMutable is fixed when its sources are; is_fixed '
            f'cannot be set (to {value!r})')

    def fix_chosen(self, chosen: Any) -> None:
        """Check that ``chosen`` is the derived value (there is nothing to
        fix: fix the sources instead).

        Args:
            chosen: The expected value (also as a :class:`DumpChosen`).

        Raises:
            ValueError: ``chosen`` differs from the current value.
        """
        chosen = self.unwrap_chosen(chosen)
        if chosen != self.current_choice:
            raise ValueError(f'DerivedMutable value is '
                             f'{self.current_choice!r}, cannot fix it to '
                             f'{chosen!r}; fix its sources instead')

    def dump_chosen(self) -> DumpChosen:
        """The current value.

        Returns:
            DumpChosen: ``chosen`` is the value, ``meta`` None.
        """
        return DumpChosen(chosen=self.current_choice, meta=None)

    def extra_repr(self) -> str:
        return f'current_choice={self.current_choice!r}, ' \
            f'num_sources={len(self.__dict__["_sources"])}' + \
            self._repr_suffix()

    def __deepcopy__(self, memo: dict) -> 'DerivedMutable':
        # ``copy.deepcopy`` keeps functions as they are, so the value and
        # mask functions of a copied supernet would still read the ORIGINAL
        # sources. Rebuild the closures around the copied sources instead.
        new = type(self).__new__(type(self))
        memo[id(self)] = new
        for key, value in self.__dict__.items():
            new.__dict__[key] = _deepcopy_value(value, memo)
        return new
