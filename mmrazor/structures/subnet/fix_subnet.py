"""Subnets as plain data: export, validate, load.

A subnet is ``{key: {'chosen': value}}`` where ``key`` is a mutable's
alias (mutables sharing it are one decision) or, for a mutable without
alias, its module path in the model (``backbone.layers.0.0``). Reading and
writing subnet files, and the other shapes a subnet comes in, belong to
:mod:`.subnet_file`.
"""
import copy
import difflib
from collections import OrderedDict
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import torch.nn as nn

from ..searchable import MutableFixedError, Searchable, is_decision
from .subnet_file import SubnetError, load_subnet, to_plain

SubnetType = Dict[str, Dict[str, Any]]


def collect_mutables(
        model: nn.Module,
        prefix: str = '') -> 'OrderedDict[str, List[Searchable]]':
    """Group the searchable mutables of ``model`` by subnet key.

    Derived mutables are skipped (they follow their sources).

    Args:
        model (nn.Module): The supernet.
        prefix (str): Stripped from module paths (e.g. ``'architecture.'``
            when the subnet was written for the wrapped model).

    Returns:
        OrderedDict[str, list[Searchable]]: key (alias or module path) ->
        the mutables of that decision, in module order.
    """
    groups: 'OrderedDict[str, List[Searchable]]' = OrderedDict()
    for path, module in model.named_modules():
        if not is_decision(module):
            continue
        if module.alias:
            key = module.alias
        else:
            if prefix and not path.startswith(prefix):
                continue
            key = path[len(prefix):]
        groups.setdefault(key, []).append(module)
    return groups


def _near(key: str, options: List[str]) -> str:
    close = difflib.get_close_matches(key, options, n=3)
    return f' (did you mean {", ".join(map(repr, close))}?)' if close else ''


def _check_choice(key: str, mutable: Searchable, value: Any) -> Any:
    """Validate ``value`` for ``mutable``; returns the normalized value."""
    normalize = getattr(mutable, 'normalize_choice', None)
    if callable(normalize):
        value = normalize(value)
    try:
        mutable.validate_choice(value)
    except (ValueError, TypeError) as e:
        raise SubnetError(f'subnet key {key!r}: invalid choice {value!r} '
                          f'({e})') from e
    return value


def load_fix_subnet(model: nn.Module,
                    subnet: Union[str, Path, Dict],
                    prefix: str = '') -> None:
    """Fix every mutable of ``model`` to the choice stored in ``subnet``.

    Everything is validated before anything is fixed: an unknown key, a
    mutable the subnet does not mention and an invalid choice each raise
    :class:`SubnetError` naming them, and leave the model unchanged.
    Mutables already fixed to the same choice are left as they are.

    Args:
        model (nn.Module): The supernet (e.g. an ``ImageClassifier`` with a
            searchable backbone).
        subnet (str | Path | dict): A subnet (any view of
            :mod:`.subnet_file`) or a YAML / JSON file of it.
        prefix (str): Stripped from module paths before matching keys.
    """
    chosen = load_subnet(subnet)
    groups = collect_mutables(model, prefix)

    unknown = [k for k in chosen if k not in groups]
    if unknown:
        hints = ''.join(f'\n  {k!r}{_near(k, list(groups))}'
                        for k in unknown)
        raise SubnetError(f'unknown subnet key(s), no such mutable in '
                          f'{type(model).__name__}:{hints}')
    missing = [
        k for k, members in groups.items()
        if k not in chosen and not all(m.is_fixed for m in members)
    ]
    if missing:
        raise SubnetError(f'subnet is missing key(s) for the mutable(s): '
                          f'{missing}')

    plan: List[Tuple[str, Searchable, Any]] = []
    for key, value in chosen.items():
        for mutable in groups[key]:
            if mutable.is_fixed:
                normalize = getattr(mutable, 'normalize_choice', None)
                norm = normalize(value) if callable(normalize) else value
                if to_plain(mutable.dump_chosen()) != to_plain(norm):
                    raise SubnetError(
                        f'subnet key {key!r}: the mutable is already fixed '
                        f'to {mutable.dump_chosen()!r}, cannot load '
                        f'{value!r}')
                continue
            plan.append((key, mutable, _check_choice(key, mutable, value)))
    for key, mutable, value in plan:
        if not mutable.is_fixed:  # may share a module with an earlier key
            mutable.fix_chosen(value)


def _to_static(module: nn.Module) -> None:
    """Replace, bottom-up, every child offering ``to_static_op`` by the
    static module it returns."""
    for name, child in list(module.named_children()):
        _to_static(child)
        convert = getattr(child, 'to_static_op', None)
        if not callable(convert):
            continue
        if isinstance(child, Searchable) and not child.is_fixed:
            continue
        static = convert()
        if static is not child:
            setattr(module, name, static)


def export_fix_subnet(model: nn.Module,
                      slice_weight: bool = False,
                      prefix: str = ''
                      ) -> Tuple[SubnetType, Optional[nn.Module]]:
    """The current choice of every mutable, and optionally a static model.

    Args:
        model (nn.Module): The supernet, with its current choices set (it
            is not modified).
        slice_weight (bool): Also return a copy of the model holding only
            the chosen ops (and channels), as plain modules with the same
            outputs. Defaults to False.
        prefix (str): Stripped from module paths in the keys.

    Returns:
        tuple[dict, nn.Module | None]: ``{key: {'chosen': value}}`` and the
        static model (None unless ``slice_weight``).
    """
    subnet: SubnetType = OrderedDict()
    for key, members in collect_mutables(model, prefix).items():
        values = [to_plain(m.dump_chosen()) for m in members]
        if any(v != values[0] for v in values[1:]):
            raise SubnetError(f'mutables sharing key {key!r} disagree: '
                              f'{values}')
        if values[0] is None:
            raise SubnetError(f'mutable {key!r} has no current choice; '
                              'set one (e.g. with a mutator) first')
        subnet[key] = {'chosen': values[0]}
    if not slice_weight:
        return subnet, None

    static = copy.deepcopy(model)
    groups = collect_mutables(static, prefix)
    for key, value in subnet.items():
        for mutable in groups[key]:
            if mutable.is_fixed:
                continue
            try:
                mutable.fix_chosen(value['chosen'])
            except (ValueError, MutableFixedError) as e:
                raise SubnetError(f'cannot fix {key!r} to '
                                  f"{value['chosen']!r}: {e}") from e
    _to_static(static)
    return subnet, static
