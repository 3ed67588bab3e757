"""Subnets as plain data: export, validate, load.

A subnet is ``{key: {'chosen': value}}`` where ``key`` is a mutable's
alias (mutables sharing it are one decision) or, for a mutable without
alias, its module path in the model (``backbone.layers.0.0``).
:func:`export_fix_subnet` gives ``{key: DumpChosen(chosen, meta)}``, which
reads (and compares) as that mapping. Reading and writing subnet files,
and the other shapes a subnet comes in, belong to :mod:`.subnet_file`.
"""
import copy
import difflib
from collections import OrderedDict
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import torch.nn as nn

from mmrazor.utils.typing import DumpChosen, chosen_of
from ..searchable import MutableFixedError, Searchable, is_decision
from .subnet_file import SubnetError, load_subnet, to_plain

SubnetType = Dict[str, DumpChosen]


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
        key = _key_of(path, module, prefix)
        if key is not None and is_decision(module):
            groups.setdefault(key, []).append(module)
    return groups


def _key_of(path: str, module: nn.Module, prefix: str) -> Optional[str]:
    """The subnet key of a searchable module: its alias, or its path with
    ``prefix`` stripped (None outside ``prefix`` or when not searchable)."""
    if not isinstance(module, Searchable):
        return None
    if module.alias:
        return module.alias
    if prefix and not path.startswith(prefix):
        return None
    return path[len(prefix):]


def collect_derived(model: nn.Module,
                    prefix: str = '') -> 'OrderedDict[str, Searchable]':
    """The derived mutables of ``model`` by key (alias, or module path).

    Args:
        model (nn.Module): The supernet.
        prefix (str): Stripped from module paths.

    Returns:
        OrderedDict[str, Searchable]: key -> the first derived mutable of
        that key, in module order.
    """
    found: 'OrderedDict[str, Searchable]' = OrderedDict()
    for path, module in model.named_modules():
        key = _key_of(path, module, prefix)
        if key is not None and module.derived:
            found.setdefault(key, module)
    return found


def _dumped(key: str, mutable: Searchable) -> DumpChosen:
    """``mutable.dump_chosen()`` as a :class:`DumpChosen` of plain data."""
    try:
        dumped = mutable.dump_chosen()
    except ValueError as e:
        raise SubnetError(f'mutable {key!r} has no current choice; set one '
                          f'(e.g. with a mutator) first ({e})') from e
    if isinstance(dumped, DumpChosen):
        chosen, meta = dumped.chosen, dumped.meta
    else:
        chosen, meta = dumped, None
    if chosen is None:
        raise SubnetError(f'mutable {key!r} has no current choice; set one '
                          '(e.g. with a mutator) first')
    return DumpChosen(chosen=to_plain(chosen), meta=meta)


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
    Mutables already fixed to the same choice are left as they are. Keys
    of derived mutables (which :func:`export_fix_subnet` writes) are
    accepted and ignored: derived mutables follow their sources.

    Args:
        model (nn.Module): The supernet (e.g. an ``ImageClassifier`` with a
            searchable backbone).
        subnet (str | Path | dict): A subnet (any view of
            :mod:`.subnet_file`, values also as ``DumpChosen``) or a YAML /
            JSON file of it.
        prefix (str): Stripped from module paths before matching keys.
    """
    chosen = load_subnet(subnet)
    groups = collect_mutables(model, prefix)
    derived = collect_derived(model, prefix)

    unknown = [k for k in chosen if k not in groups and k not in derived]
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
        for mutable in groups.get(key, ()):
            if mutable.is_fixed:
                normalize = getattr(mutable, 'normalize_choice', None)
                norm = normalize(value) if callable(normalize) else value
                if to_plain(chosen_of(mutable.dump_chosen())) != \
                        to_plain(norm):
                    raise SubnetError(
                        f'subnet key {key!r}: the mutable is already fixed '
                        f'to {chosen_of(mutable.dump_chosen())!r}, cannot '
                        f'load {value!r}')
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

    Every decision (a mutable, or the mutables sharing an alias) gives
    ``key: DumpChosen(chosen, meta)``. As in the older toolbox, a derived
    mutable whose source has no alias also gives an entry: under the
    derived mutable's key, its (first such) source's dump.
    :func:`load_fix_subnet` ignores these entries.

    Args:
        model (nn.Module): The supernet, with its current choices set (it
            is not modified).
        slice_weight (bool): Also return a copy of the model holding only
            the chosen ops (and channels), as plain modules with the same
            outputs. Defaults to False.
        prefix (str): Stripped from module paths in the keys.

    Returns:
        tuple[dict, nn.Module | None]: ``{key: DumpChosen}`` (each reads
        as ``{'chosen': value}``) and the static model (None unless
        ``slice_weight``).

    Raises:
        SubnetError: A mutable has no current choice, or mutables sharing
            a key disagree.
    """
    subnet: SubnetType = OrderedDict()
    for key, members in collect_mutables(model, prefix).items():
        dumps = [_dumped(key, m) for m in members]
        values = [d.chosen for d in dumps]
        if any(v != values[0] for v in values[1:]):
            raise SubnetError(f'mutables sharing key {key!r} disagree: '
                              f'{values}')
        subnet[key] = dumps[0]
    for key, mutable in collect_derived(model, prefix).items():
        if key in subnet:
            continue
        sources = getattr(mutable, 'ordered_source_mutables', None)
        if sources is None:
            sources = list(getattr(mutable, 'source_mutables', ()))
        for source in sources:
            if not getattr(source, 'alias', None):
                subnet[key] = _dumped(key, source)
                break
    if not slice_weight:
        return subnet, None

    static = copy.deepcopy(model)
    groups = collect_mutables(static, prefix)
    for key, members in groups.items():
        value = subnet[key].chosen
        for mutable in members:
            if mutable.is_fixed:
                continue
            try:
                mutable.fix_chosen(value)
            except (ValueError, MutableFixedError) as e:
                raise SubnetError(f'cannot fix {key!r} to {value!r}: '
                                  f'{e}') from e
    _to_static(static)
    return subnet, static
