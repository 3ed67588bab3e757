"""The root of every searchable thing: :class:`BaseMutable`."""
from abc import abstractmethod
from typing import Any, Dict, List, Optional

from mmengine.model import BaseModule

from mmrazor.structures.searchable import (InvalidChoiceError,
                                           MutableFixedError, Searchable)
from mmrazor.utils.typing import DumpChosen, chosen_of

__all__ = [
    'BaseMutable', 'MutableFixedError', 'InvalidChoiceError', 'DumpChosen'
]


class BaseMutable(BaseModule, Searchable):
    """A decision of the search space.

    A mutable holds a set of choices and a ``current_choice``. Searching sets
    ``current_choice``; :meth:`fix_chosen` makes one choice permanent (and
    drops what the other choices needed), after which the mutable behaves as
    a plain, static part of the model. :meth:`dump_chosen` gives the current
    decision as a :class:`DumpChosen` (``chosen``: what a subnet YAML file
    stores under ``chosen`` and what :meth:`fix_chosen` accepts; ``meta``:
    extra information).

    Errors: fixing a fixed mutable (or setting :attr:`is_fixed` again)
    raises :class:`MutableFixedError` (a ``RuntimeError`` and an
    ``AttributeError``); an invalid choice raises
    :class:`InvalidChoiceError` (a ``ValueError`` and an
    ``AssertionError``).

    Mutables that share an ``alias`` are one decision: mutators group them
    and set them together, and subnet files use the alias as the key.

    Args:
        alias (str, optional): Name shared by mutables that make one
            decision. Defaults to None.
        init_cfg (dict, optional): mmengine initialisation config.
    """

    def __init__(self,
                 alias: Optional[str] = None,
                 init_cfg: Optional[Dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.alias = alias
        self._is_fixed = False

    @property
    @abstractmethod
    def current_choice(self) -> Any:
        """The choice in use now."""

    @current_choice.setter
    @abstractmethod
    def current_choice(self, choice: Any) -> None:
        """Select ``choice``; raises if it is not one of the choices."""

    @property
    @abstractmethod
    def choices(self) -> List[Any]:
        """All choices of this mutable (just the chosen one once fixed)."""

    @property
    def num_choices(self) -> int:
        """How many choices there are."""
        return len(self.choices)

    @property
    def is_fixed(self) -> bool:
        """Whether :meth:`fix_chosen` was called."""
        return self._is_fixed

    @is_fixed.setter
    def is_fixed(self, value: bool) -> None:
        if not isinstance(value, bool):
            raise TypeError(f'is_fixed must be a bool, got {value!r} '
                            f'({type(value).__name__})')
        if self._is_fixed:
            raise MutableFixedError(
                f'{self._name()} is already fixed; is_fixed cannot be set '
                f'again (to {value!r})')
        self._is_fixed = value

    def _name(self) -> str:
        kind = type(self).__name__
        return f'{kind}(alias={self.alias!r})' if self.alias else kind

    def check_not_fixed(self) -> None:
        """Raise :class:`MutableFixedError` if this mutable is fixed.

        Subclasses call it at the start of :meth:`fix_chosen`.
        """
        if self._is_fixed:
            raise MutableFixedError(
                f'{self._name()} is already fixed (chosen: '
                f'{chosen_of(self.dump_chosen())!r}); fixing it again is '
                'not allowed')

    @staticmethod
    def unwrap_chosen(chosen: Any) -> Any:
        """The bare choice of what :meth:`fix_chosen` was given.

        Args:
            chosen: A choice, a :class:`DumpChosen` or ``{'chosen': ...}``
                (as :meth:`dump_chosen` and subnet files give it).

        Returns:
            Any: The choice itself.
        """
        return chosen_of(chosen)

    @abstractmethod
    def fix_chosen(self, chosen: Any) -> None:
        """Make ``chosen`` the permanent choice and drop the others.

        Args:
            chosen: One of :attr:`choices` (also as a :class:`DumpChosen`
                or ``{'chosen': ...}``).

        Raises:
            MutableFixedError: The mutable is already fixed.
            InvalidChoiceError: ``chosen`` is not a valid choice.
        """

    @abstractmethod
    def dump_chosen(self) -> DumpChosen:
        """The current decision.

        Returns:
            DumpChosen: ``chosen`` is plain data (str, number or a list of
            them), as stored under ``chosen`` in a subnet file; ``meta``
            holds extra information or None.
        """

    def validate_choice(self, choice: Any) -> None:
        """Raise :class:`InvalidChoiceError` naming ``choice`` if it is not
        valid.

        Args:
            choice: A candidate decision.
        """
        if choice not in self.choices:
            raise InvalidChoiceError(f'{choice!r} is not a choice of '
                                     f'{self._name()}; valid choices: '
                                     f'{self.choices!r}')

    def _repr_suffix(self) -> str:
        """``, alias=..`` and ``, fixed`` where they apply."""
        alias = f', alias={self.alias!r}' if self.alias else ''
        return alias + (', fixed' if self.is_fixed else '')

    def extra_repr(self) -> str:
        return f'current_choice={self.current_choice!r}' + \
            self._repr_suffix()
