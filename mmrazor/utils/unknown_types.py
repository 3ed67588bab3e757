"""A config that names a type no registry knows fails with
:class:`UnknownTypeError`: the type, the registry searched, the toolboxes
searched or skipped, and the closest registered names."""
import contextlib
import difflib
import re
from typing import Iterator, List, Optional

import mmengine.registry as mmengine_registry
from mmengine.registry import Registry

from .toolboxes import skipped_scopes, toolbox_registry, usable_scopes

#: mmengine's message for a type missing from the registry it was built from.
_MISSING_TYPE = re.compile(r"(?P<type>\S+) is not in the "
                           r'(?P<scope>[\w.]+)::(?P<name>[\w ]+) registry')


class UnknownTypeError(KeyError):
    """A config names a ``type`` that no registry knows.

    The message names the type, the registry that was searched and the
    closest registered names.
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ''


def _registry_named(scope: str, name: str) -> Optional[Registry]:
    """The registry ``scope::name`` of mmengine's registry trees."""
    for root in vars(mmengine_registry).values():
        if isinstance(root, Registry) and root.parent is None and \
                root.name == name:
            return root._search_child(scope) or root
    return None


def known_names(registry: Registry) -> List[str]:
    """Every name a config may give for ``registry``'s kind: mmrazor's own
    bare, those of mmengine and of the usable sibling toolboxes scoped.

    Args:
        registry (Registry): Any registry of an mmengine registry tree.

    Returns:
        list[str]: The names, mmrazor's first.
    """
    names: List[str] = []
    for scope in ['mmrazor', None] + usable_scopes():
        reg = registry._get_root_registry() if scope is None else \
            toolbox_registry(registry, scope)
        if reg is None:
            continue
        try:
            reg.import_from_location()
        except ImportError:
            continue
        prefix = '' if scope == 'mmrazor' else f'{reg.scope}.'
        names += [prefix + n for n in reg.module_dict]
    return names


def near_matches(registry: Registry, type_name: str, n: int = 5) -> List[str]:
    """Registered names close to ``type_name`` (see :func:`known_names`).

    Args:
        registry (Registry): Where the type was looked up.
        type_name (str): The unknown type.
        n (int): How many matches to return. Defaults to 5.

    Returns:
        list[str]: The closest names, best first.
    """
    short = {}
    for name in known_names(registry):  # mmrazor's own win over twins
        short.setdefault(name.split('.')[-1].lower(), name)
    query = type_name.split('.')[-1].lower()
    hits = difflib.get_close_matches(query, list(short), n=n, cutoff=0.6)
    # Substring matches too (``'ShuffleNet'`` -> ``'ShuffleNetV2'``).
    hits += [k for k in short if query and query in k and k not in hits]
    return [short[h] for h in hits[:n]]


def unknown_type_error(err: KeyError) -> Optional[UnknownTypeError]:
    """Turn mmengine's "X is not in the S::N registry" error into an
    :class:`UnknownTypeError` listing near matches.

    Args:
        err (KeyError): The error raised while building from a config.

    Returns:
        UnknownTypeError | None: The clearer error, or None when ``err`` is
        not about an unknown type.
    """
    if isinstance(err, UnknownTypeError):
        return err
    found = _MISSING_TYPE.search(str(err.args[0]) if err.args else '')
    registry = found and _registry_named(found['scope'], found['name'])
    if registry is None:
        return None
    type_name = found['type'].strip('`\'"')
    matches = near_matches(registry, type_name)
    hint = (f' Did you mean: {", ".join(matches)}?'
            if matches else ' No registered name is close to it.')
    skipped = skipped_scopes()
    note = '; skipped ' + ', '.join(skipped) + ': ' + ', '.join(
        sorted(set(skipped.values()))) if skipped else ''
    if 'no compiled mmcv ops' in skipped.values():
        note += ', see `bash tools/build_mmcv.sh`'
    searched = ', '.join(['mmrazor', 'mmengine'] + usable_scopes())
    return UnknownTypeError(
        f"Unknown type '{type_name}' in the {found['scope']}::"
        f"{found['name']} registry (searched {searched}{note}).{hint} "
        'Check the spelling of `type` in your config, or import the module '
        'that registers it via `custom_imports`.')


@contextlib.contextmanager
def explain_unknown_types() -> Iterator[None]:
    """Re-raise mmengine's "X is not in the registry" errors raised inside
    the block as :class:`UnknownTypeError` with near matches.

    Use it around anything that builds from configs lazily, such as
    ``Runner.from_cfg(cfg)`` and ``runner.train()``.
    """
    try:
        yield
    except KeyError as err:
        clear = unknown_type_error(err)
        if clear is None or clear is err:
            raise
        raise clear from err
