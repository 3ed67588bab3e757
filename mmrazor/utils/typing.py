"""Plain data types shared by mutables, subnet files and their users."""
import types
from typing import Any, Dict, Mapping, NamedTuple, Optional

__all__ = ['DumpChosen', 'chosen_of']


class _DumpChosenFields(NamedTuple):
    chosen: Any
    meta: Optional[Dict[str, Any]] = None


_NO_META: Any = object()


class DumpChosen(_DumpChosenFields):
    """What a mutable's ``dump_chosen()`` returns: its decision and, for
    information, what it was chosen from.

    ``export_fix_subnet`` returns ``{key: DumpChosen}``; subnet files store
    ``{key: {'chosen': value}}`` (``meta`` is not written). For code written
    against either shape, a ``DumpChosen`` also reads as that mapping:
    ``d['chosen']`` is ``d.chosen``, and it compares equal to a mapping
    holding the same ``'chosen'`` (and, when the mapping has one, the same
    ``'meta'``). It survives being put in an mmengine ``ConfigDict`` (which
    rebuilds tuples from a generator of their items).

    Args:
        chosen (Any): The decision: a choice name, a number, a mask or a
            list of them; what ``fix_chosen`` accepts.
        meta (dict, optional): Extra information, e.g. ``{'all_choices':
            [...]}``. Defaults to None.
    """

    __slots__ = ()

    def __new__(cls, chosen: Any, meta: Any = _NO_META) -> 'DumpChosen':
        if meta is _NO_META:
            if isinstance(chosen, types.GeneratorType):
                # ``type(t)(item for item in t)``, as ConfigDict does.
                items = list(chosen)
                if len(items) != 2:
                    raise ValueError('DumpChosen is rebuilt from 2 items '
                                     f'(chosen, meta), got {len(items)}')
                chosen, meta = items
            else:
                meta = None
        return super().__new__(cls, chosen, meta)

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            if key not in self._fields:
                raise KeyError(f'DumpChosen has the fields {self._fields}, '
                               f'not {key!r}')
            return getattr(self, key)
        return tuple.__getitem__(self, key)

    def __eq__(self, other: Any) -> bool:
        if isinstance(other, Mapping):
            if 'chosen' not in other or set(other) - {'chosen', 'meta'}:
                return False
            if 'meta' in other and other['meta'] != self.meta:
                return False
            return bool(other['chosen'] == self.chosen)
        return tuple.__eq__(self, other)

    def __ne__(self, other: Any) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    __hash__ = tuple.__hash__

    def __repr__(self) -> str:
        return f'DumpChosen(chosen={self.chosen!r}, meta={self.meta!r})'


def chosen_of(value: Any) -> Any:
    """The decision held by a dumped choice.

    Args:
        value (Any): A :class:`DumpChosen`, a ``{'chosen': ...}`` mapping
            (``'meta'`` may be there too) or a bare choice.

    Returns:
        Any: ``value.chosen``, ``value['chosen']`` or ``value`` itself.
    """
    if isinstance(value, DumpChosen):
        return value.chosen
    if isinstance(value, Mapping) and 'chosen' in value and \
            not set(value) - {'chosen', 'meta'}:
        return value['chosen']
    return value
