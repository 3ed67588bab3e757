"""The sibling toolboxes (mmpretrain, mmdet, mmseg) seen from mmrazor's
registries: which are usable here, how a type is found in one, and the error
that says how to fix the environment when one is not.

mmdet and mmseg import the compiled operators of full mmcv (``mmcv.ops``).
Without them those toolboxes are skipped when an unscoped name is resolved,
and a name scoped to them (``'mmdet.RetinaNet'``) fails with
:class:`SiblingImportError`.
"""
import functools
import importlib
import importlib.util
from typing import Any, Dict, List, Optional, Tuple

import mmengine.registry as mmengine_registry
from mmengine.registry import Registry

#: Toolboxes searched, in this order, for a type mmrazor and mmengine lack.
SIBLING_SCOPES: Tuple[str, ...] = ('mmpretrain', 'mmdet', 'mmseg')

#: Scopes of the older toolbox generation mapped to their successors.
SCOPE_ALIASES: Dict[str, str] = {'mmcls': 'mmpretrain'}

#: Sibling toolboxes whose models and datasets import compiled ``mmcv.ops``.
MMCV_OPS_SCOPES: Tuple[str, ...] = ('mmdet', 'mmseg')

#: Sibling scopes whose modules failed to import, with the reason.
_broken_scopes: Dict[str, str] = {}


class SiblingImportError(ImportError):
    """A type of a sibling toolbox (mmdet, mmseg) was asked for, but the
    toolbox's modules cannot be imported (typically: no compiled mmcv ops).

    The message names the type and says how to fix the environment.
    """


@functools.lru_cache(maxsize=None)
def mmcv_ops_available() -> bool:
    """Whether full mmcv with compiled operators (``mmcv._ext``) is
    installed, as mmdet and mmseg need.

    Returns:
        bool: False with mmcv-lite (or no mmcv at all).
    """
    try:
        return importlib.util.find_spec('mmcv._ext') is not None
    except (ImportError, ValueError):
        return False


@functools.lru_cache(maxsize=None)
def _installed(scope: str) -> bool:
    """Whether ``scope`` is installed and its registries import."""
    if importlib.util.find_spec(scope) is None:
        return False
    try:
        importlib.import_module(f'{scope}.registry')
    except Exception:  # a toolbox broken beyond its registries
        return False
    return True


def _package(scope: str) -> str:
    return {'mmseg': 'mmsegmentation'}.get(scope, scope)


def _problem(scope: str) -> Optional[str]:
    """Why ``scope`` cannot be used here, or None if it can."""
    if not _installed(scope):
        return 'not installed'
    if scope in MMCV_OPS_SCOPES and not mmcv_ops_available():
        return 'no compiled mmcv ops'
    return _broken_scopes.get(scope)


def usable_scopes() -> List[str]:
    """The sibling scopes that are installed and whose modules import."""
    return [s for s in SIBLING_SCOPES if _problem(s) is None]


def skipped_scopes() -> Dict[str, str]:
    """Installed sibling scopes that are skipped here, with the reason."""
    return {
        s: _problem(s)
        for s in SIBLING_SCOPES
        if _installed(s) and _problem(s) is not None
    }


def sibling_import_error(scope: str, lead: str) -> SiblingImportError:
    """The error for a toolbox that cannot be used: ``lead`` (what failed),
    why, and the commands that fix it.

    Args:
        scope (str): A sibling scope such as ``'mmdet'``.
        lead (str): What failed, e.g. ``"Cannot resolve type 'mmdet.X'"``.

    Returns:
        SiblingImportError: The error to raise.
    """
    package, problem = _package(scope), _problem(scope)
    if problem == 'not installed':
        return SiblingImportError(
            f'{lead}: {package} is not installed. Install it with '
            '`pip install -e ".[det,seg]"` after building full mmcv with '
            '`bash tools/build_mmcv.sh`.')
    if problem is None or problem == 'no compiled mmcv ops' or \
            'mmcv._ext' in problem or 'mmcv.ops' in problem:
        return SiblingImportError(
            f'{lead}: {package} needs the compiled operators of full mmcv '
            '(`mmcv.ops`), and this environment has mmcv without them '
            '(mmcv-lite, the default install). Build and install full mmcv '
            'once with `bash tools/build_mmcv.sh` (about 30 minutes on 2 '
            'cores; later runs reuse the cached wheel), then '
            '`pip install -e ".[det,seg]"`.')
    return SiblingImportError(
        f'{lead}: importing the modules of {package} failed: {problem}. '
        'Install the detection / segmentation extras with '
        '`pip install -e ".[det,seg]"` (and full mmcv with '
        '`bash tools/build_mmcv.sh`).')


def require_sibling(scope: str, user: str) -> None:
    """Fail early and clearly when a sibling toolbox cannot be used.

    Args:
        scope (str): One of :data:`SIBLING_SCOPES`.
        user (str): Who needs it, for the message (``'MMDetArchitecture'``).

    Raises:
        SiblingImportError: The toolbox is not installed, or it needs
            compiled mmcv ops that are missing.
    """
    if _problem(scope) is not None:
        raise sibling_import_error(scope, f'{user} cannot be used')


def toolbox_registry(registry: Registry, scope: str) -> Optional[Registry]:
    """The registry of the same kind as ``registry`` in toolbox ``scope``.

    Args:
        registry (Registry): Any registry of an mmengine registry tree.
        scope (str): A toolbox scope.

    Returns:
        Registry | None: None when the toolbox is not installed or has no
        registry of that kind.
    """
    if scope != 'mmrazor' and not _installed(scope):
        return None
    root = registry._get_root_registry()
    for child in root._children.values():
        if child.scope == scope:
            return child
    return root._search_child(scope)


def get_from_toolbox(registry: Registry, scope: str, name: str,
                     required: bool) -> Any:
    """Look ``name`` up in the registry of ``registry``'s kind of ``scope``.

    The toolbox registers its modules on first use (its registry imports
    its ``locations``). A toolbox that cannot be used here is skipped or,
    when ``required`` (the name was scoped to it), reported.

    Args:
        registry (Registry): The registry asked.
        scope (str): A sibling scope.
        name (str): The unscoped type name.
        required (bool): Raise instead of returning None when the toolbox
            cannot be used.

    Returns:
        The registered object, or None.

    Raises:
        SiblingImportError: ``required`` and the toolbox cannot be used.
    """
    lead = f"Cannot resolve type '{scope}.{name}'"
    if _problem(scope) is not None:
        if required:
            raise sibling_import_error(scope, lead)
        return None
    sibling = toolbox_registry(registry, scope)
    if sibling is None:
        return None
    try:
        return sibling.get(name)
    except ImportError as err:
        if scope not in MMCV_OPS_SCOPES:
            raise
        _broken_scopes[scope] = f'{type(err).__name__}: {err}'
        if required:
            raise sibling_import_error(scope, lead) from err
        return None


def _toolbox_of(registry: Registry, cfg: dict) -> Optional[str]:
    """The sibling toolbox that ``cfg`` builds in: its ``_scope_``, or the
    toolbox of the class its ``type`` resolves to."""
    scope = SCOPE_ALIASES.get(cfg.get('_scope_'), cfg.get('_scope_'))
    if scope is None and isinstance(cfg.get('type'), str):
        obj = registry.get(cfg['type'])
        scope = getattr(obj, '__module__', '').split('.')[0]
    return scope if scope in SIBLING_SCOPES else None


def _only_mmrazor_has(registry: Registry, scope: str, name: str) -> bool:
    """Whether ``name`` (nested in a model of toolbox ``scope``) is unknown
    to that toolbox but registered by mmrazor (as a model, a task util or
    in ``registry``'s kind)."""
    theirs = toolbox_registry(registry, scope)
    if theirs is None or theirs.get(name) is not None:
        return False
    for kind in (registry, mmengine_registry.MODELS,
                 mmengine_registry.TASK_UTILS):
        ours = toolbox_registry(kind, 'mmrazor')
        if ours is not None:
            ours.import_from_location()
            if name in ours.module_dict:
                return True
    return False


def _mark_scopes(registry: Registry, cfg: Any, scope: str) -> Any:
    """A copy of ``cfg`` (built in ``scope``) in which every nested config
    that belongs to another scope says so with ``_scope_``: a scoped type
    (``'mmrazor.X'``, ``'mmpretrain.X'``) or one only mmrazor registers."""
    if isinstance(cfg, (list, tuple)):
        return type(cfg)(_mark_scopes(registry, c, scope) for c in cfg)
    if not isinstance(cfg, dict):
        return cfg
    name, inner = cfg.get('type'), cfg.get('_scope_')
    marked = {}
    if isinstance(name, str) and '.' in name:
        prefix, rest = name.split('.', 1)
        if prefix in SCOPE_ALIASES:  # 'mmcls.X' -> 'mmpretrain.X'
            prefix = SCOPE_ALIASES[prefix]
            marked['type'] = f'{prefix}.{rest}'
        inner = inner or prefix
    elif inner is None and isinstance(name, str) and \
            _only_mmrazor_has(registry, scope, name):
        inner = 'mmrazor'
    inner = SCOPE_ALIASES.get(inner, inner) or scope
    if inner != scope or '_scope_' in cfg:
        marked['_scope_'] = inner
    if inner == 'mmrazor':  # mmrazor's own builds take it from here
        return type(cfg)({**cfg, **marked})
    return type(cfg)({
        **{k: _mark_scopes(registry, v, inner)
           for k, v in cfg.items()},
        **marked
    })


def scope_toolbox_cfg(registry: Registry, cfg: Any) -> Any:
    """Build a sibling toolbox's model in that toolbox's ``_scope_``.

    When ``cfg`` names (or resolves to) a type of a sibling toolbox, the
    returned copy carries that toolbox as ``_scope_``, so that unscoped names
    nested in it are the toolbox's own (a ``FocalLoss`` in an mmdet head is
    mmdet's, not mmpretrain's); nested configs whose type only mmrazor
    registers (a searchable backbone in a detector) get
    ``_scope_='mmrazor'``. Any other ``cfg`` is returned as it is.

    Args:
        registry (Registry): The registry ``cfg`` is built from.
        cfg (Any): The config.

    Returns:
        Any: The config to build.
    """
    if not isinstance(cfg, dict):
        return cfg
    scope = _toolbox_of(registry, cfg)
    if scope is None:
        return cfg
    scoped = _mark_scopes(registry, cfg, scope)
    scoped['_scope_'] = scope
    return scoped
