"""The root of every searchable thing: :class:`BaseMutable`."""
from abc import abstractmethod
from typing import Any, Dict, List, Optional

from mmengine.model import BaseModule

from mmrazor.structures.searchable import MutableFixedError, Searchable

__all__ = ['BaseMutable', 'MutableFixedError']


class BaseMutable(BaseModule, Searchable):
    """A decision of the search space.

    A mutable holds a set of choices and a ``current_choice``. Searching sets
    ``current_choice``; :meth:`fix_chosen` makes one choice permanent (and
    drops what the other choices needed), after which the mutable behaves as
    a plain, static part of the model. :meth:`dump_chosen` gives the current
    decision as plain data (what a subnet YAML file stores under
    ``chosen``).

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
            raise TypeError(f'is_fixed must be a bool, got {type(value)}')
        if self._is_fixed and not value:
            raise MutableFixedError(
                f'{self._name()} is fixed; a fixed mutable cannot be made '
                'searchable again')
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
                f'{self.dump_chosen()!r}); fixing it again is not allowed')

    @abstractmethod
    def fix_chosen(self, chosen: Any) -> None:
        """Make ``chosen`` the permanent choice and drop the others.

        Args:
            chosen: One of :attr:`choices`.

        Raises:
            MutableFixedError: The mutable is already fixed.
            ValueError: ``chosen`` is not a valid choice.
        """

    @abstractmethod
    def dump_chosen(self) -> Any:
        """The current decision as plain data (str, number, list or dict),
        as stored under ``chosen`` in a subnet file."""

    def validate_choice(self, choice: Any) -> None:
        """Raise ``ValueError`` naming ``choice`` if it is not valid.

        Args:
            choice: A candidate decision.
        """
        if choice not in self.choices:
            raise ValueError(f'{choice!r} is not a choice of '
                             f'{self._name()}; valid choices: '
                             f'{self.choices!r}')

    def extra_repr(self) -> str:
        fixed = ', fixed' if self.is_fixed else ''
        alias = f'alias={self.alias!r}, ' if self.alias else ''
        return f'{alias}current_choice={self.current_choice!r}{fixed}'
