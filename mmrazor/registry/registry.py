"""Registries of mmrazor.

Every registry here is a child of mmengine's root registry of the same kind,
with scope ``'mmrazor'``. Two things make configs written for the OpenMMLab
toolboxes work unchanged:

* A type that is not registered in mmrazor (or in mmengine) is looked up in
  the registries of the sibling toolboxes (mmpretrain, mmdet, mmseg), so one
  config can hold ``type='SPOS'`` and ``type='ImageClassifier'`` side by side.
* The scope ``mmcls`` of the older toolbox generation is an alias of
  ``mmpretrain``, its maintained successor (``type='mmcls.ImageClassifier'``).
* While an object of a sibling toolbox is being constructed (a RetinaNet of
  mmdet building its head, loss and anchor generator), unscoped names nested
  in it are looked up in that toolbox before mmengine's root and the other
  siblings, as that toolbox's own default scope would: ``FocalLoss`` inside
  an mmdet head is mmdet's, not mmpretrain's.
* mmdet and mmseg import the compiled operators of full mmcv (``mmcv.ops``).
  Without them, those toolboxes are skipped when resolving unscoped names,
  and a name scoped to them (``'mmdet.RetinaNet'``) fails with
  :class:`SiblingImportError`, which says how to build full mmcv.

An unknown type fails with :class:`UnknownTypeError`, which names the type,
the registry, and the closest registered names.
"""
import contextlib
import datetime
import difflib
import functools
import itertools
import importlib
import importlib.util
import re
import sys
import warnings
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from mmengine.registry import DATA_SAMPLERS as MMENGINE_DATA_SAMPLERS
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import EVALUATOR as MMENGINE_EVALUATOR
from mmengine.registry import FUNCTIONS as MMENGINE_FUNCTIONS
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import INFERENCERS as MMENGINE_INFERENCERS
from mmengine.registry import LOG_PROCESSORS as MMENGINE_LOG_PROCESSORS
from mmengine.registry import LOOPS as MMENGINE_LOOPS
from mmengine.registry import METRICS as MMENGINE_METRICS
from mmengine.registry import MODEL_WRAPPERS as MMENGINE_MODEL_WRAPPERS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import \
    OPTIM_WRAPPER_CONSTRUCTORS as MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.registry import OPTIM_WRAPPERS as MMENGINE_OPTIM_WRAPPERS
from mmengine.registry import OPTIMIZERS as MMENGINE_OPTIMIZERS
from mmengine.registry import PARAM_SCHEDULERS as MMENGINE_PARAM_SCHEDULERS
from mmengine.registry import \
    RUNNER_CONSTRUCTORS as MMENGINE_RUNNER_CONSTRUCTORS
from mmengine.registry import RUNNERS as MMENGINE_RUNNERS
from mmengine.registry import TASK_UTILS as MMENGINE_TASK_UTILS
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import VISBACKENDS as MMENGINE_VISBACKENDS
from mmengine.registry import VISUALIZERS as MMENGINE_VISUALIZERS
from mmengine.registry import \
    WEIGHT_INITIALIZERS as MMENGINE_WEIGHT_INITIALIZERS
from mmengine.registry import DefaultScope, Registry

#: Toolboxes whose registries are searched when a type is not found in
#: mmrazor or mmengine, in this order of preference.
SIBLING_SCOPES: Tuple[str, ...] = ('mmpretrain', 'mmdet', 'mmseg')

#: Scopes of the older toolbox generation mapped to their successors.
SCOPE_ALIASES: Dict[str, str] = {'mmcls': 'mmpretrain'}

_MMENGINE_MISSING_TYPE = re.compile(
    r"(?P<type>\S+) is not in the (?P<scope>[\w.]+)::(?P<name>[\w ]+) "
    r'registry')

#: Sibling toolboxes whose models and datasets import compiled ``mmcv.ops``.
MMCV_OPS_SCOPES: Tuple[str, ...] = ('mmdet', 'mmseg')

_unimportable_scopes: set = set()
#: Sibling scopes whose modules failed to import, with the reason.
_broken_scopes: Dict[str, str] = {}
_scope_ids = itertools.count()


class UnknownTypeError(KeyError):
    """A config names a ``type`` that no registry knows.

    The message names the type, the registry that was searched and the
    closest registered names.
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ''


def _import_sibling_registry(scope: str) -> bool:
    """Import ``<scope>.registry`` so that its registries join the tree.

    Args:
        scope (str): A toolbox scope such as ``'mmpretrain'``.

    Returns:
        bool: Whether the toolbox's registries are available.
    """
    if scope in _unimportable_scopes:
        return False
    if importlib.util.find_spec(scope) is None:
        _unimportable_scopes.add(scope)
        return False
    try:
        importlib.import_module(f'{scope}.registry')
    except Exception:  # a toolbox broken beyond its registries
        _unimportable_scopes.add(scope)
        return False
    return True


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


class SiblingImportError(ImportError):
    """A type of a sibling toolbox (mmdet, mmseg) was asked for, but the
    toolbox's modules cannot be imported (typically: no compiled mmcv ops).

    The message names the type and says how to fix the environment.
    """


def _sibling_import_message(scope: str, lead: str,
                            cause: Optional[str] = None) -> str:
    """``lead`` (what failed), why, and the commands that fix it."""
    package = {'mmseg': 'mmsegmentation'}.get(scope, scope)
    if cause is None or 'mmcv._ext' in cause or 'mmcv.ops' in cause:
        why = (f'{package} needs the compiled operators of full mmcv '
               '(`mmcv.ops`), and this environment has mmcv without them '
               '(mmcv-lite, the default install)')
        fix = ('Build and install full mmcv once with '
               '`bash tools/build_mmcv.sh` (about 30 minutes on 2 cores; '
               'later runs reuse the cached wheel), then '
               '`pip install -e ".[det,seg]"`.')
    else:
        why = f'importing the modules of {package} failed: {cause}'
        fix = ('Install the detection / segmentation extras with '
               '`pip install -e ".[det,seg]"` (and full mmcv with '
               '`bash tools/build_mmcv.sh`).')
    return f'{lead}: {why}. {fix}'


def require_sibling(scope: str, user: str) -> None:
    """Fail early and clearly when a sibling toolbox cannot be used.

    Args:
        scope (str): ``'mmdet'`` or ``'mmseg'`` (any of
            :data:`SIBLING_SCOPES`).
        user (str): Who needs it, for the message (e.g.
            ``'MMDetArchitecture'``).

    Raises:
        SiblingImportError: The toolbox is not installed, or it needs
            compiled mmcv ops that are missing.
    """
    package = {'mmseg': 'mmsegmentation'}.get(scope, scope)
    if importlib.util.find_spec(scope) is None:
        raise SiblingImportError(
            f'{user} needs {package}, which is not installed. Install it '
            'with `pip install -e ".[det,seg]"` after building full mmcv '
            'with `bash tools/build_mmcv.sh`.')
    if scope in MMCV_OPS_SCOPES and not mmcv_ops_available():
        raise SiblingImportError(
            _sibling_import_message(scope, f'{user} cannot be used'))
    if scope in _broken_scopes:
        raise SiblingImportError(
            _sibling_import_message(scope, f'{user} cannot be used',
                                    _broken_scopes[scope]))


def _constructing_toolbox(max_depth: int = 256) -> Optional[str]:
    """The toolbox of the innermost object whose ``__init__`` is running.

    Walks the call stack outwards to the nearest ``__init__`` of an object
    of mmrazor or of a sibling toolbox. A class may name the toolbox its
    nested configs belong to with a ``preferred_scope`` attribute (the
    mmrazor wrappers of detectors and segmentors do).

    Returns:
        str | None: ``'mmrazor'``, a sibling scope, or None.
    """
    frame = sys._getframe(1)
    for _ in range(max_depth):
        if frame is None:
            return None
        if frame.f_code.co_name == '__init__':
            obj = frame.f_locals.get('self')
            if obj is not None:
                preferred = getattr(type(obj), 'preferred_scope', None)
                if preferred in SIBLING_SCOPES:
                    return preferred
                top = type(obj).__module__.split('.')[0]
                if top == 'mmrazor' or top in SIBLING_SCOPES:
                    return top
        frame = frame.f_back
    return None


class RazorRegistry(Registry):
    """An mmengine :class:`Registry` that resolves sibling toolboxes' types.

    Lookup order for an unscoped name: this registry; while an object of a
    sibling toolbox is being constructed, that toolbox (with mmengine's
    root as its parent); then mmengine; then the registries of the same
    kind in :data:`SIBLING_SCOPES` (mmdet and mmseg only when compiled mmcv
    ops are installed). A scoped name (``'mmpretrain.ResNet'``) is looked
    up in that scope only; ``mmcls.`` is read as ``mmpretrain.``.
    """

    def _sibling(self, scope: str) -> Optional[Registry]:
        if not _import_sibling_registry(scope):
            return None
        root = self._get_root_registry()
        sibling = root._children.get(scope)
        if sibling is None or sibling.name != self.name:
            # Registries of one kind share their name across toolboxes.
            sibling = self._find_named_child(root, scope)
        return sibling

    def _find_named_child(self, root: Registry,
                          scope: str) -> Optional[Registry]:
        for child in root._children.values():
            if child.scope == scope and child.name == self.name:
                return child
        return None

    def _sibling_get(self, scope: str, real_key: str,
                     required: bool) -> Any:
        """Look ``real_key`` up in the sibling toolbox ``scope``.

        The sibling registers its modules on first use (its registry
        imports its ``locations``). For mmdet / mmseg without compiled mmcv
        ops, or when that import fails, the scope is skipped, or, if
        ``required`` (the name was scoped to it), :class:`SiblingImportError`
        is raised.
        """
        lead = f"Cannot resolve type '{scope}.{real_key}'"
        if scope in MMCV_OPS_SCOPES and not mmcv_ops_available():
            if required:
                raise SiblingImportError(_sibling_import_message(scope, lead))
            return None
        if scope in _broken_scopes:
            if required:
                raise SiblingImportError(
                    _sibling_import_message(scope, lead,
                                            _broken_scopes[scope]))
            return None
        sibling = self._sibling(scope)
        if sibling is None:
            return None
        try:
            return sibling.get(real_key)
        except ImportError as err:
            if scope not in MMCV_OPS_SCOPES:
                raise
            _broken_scopes[scope] = f'{type(err).__name__}: {err}'
            if required:
                raise SiblingImportError(
                    _sibling_import_message(scope, lead,
                                            _broken_scopes[scope])) from err
            return None

    def get(self, key: str) -> Any:
        """Get the registered class or function of ``key``.

        Args:
            key (str): A name, optionally prefixed by a scope
                (``'mmpretrain.ImageClassifier'``).

        Returns:
            The registered object, or None if no registry holds ``key``.

        Raises:
            SiblingImportError: ``key`` is scoped to mmdet / mmseg, whose
                modules cannot be imported here.
        """
        scope, real_key = self.split_scope_key(key)
        if scope in SCOPE_ALIASES:
            scope = SCOPE_ALIASES[scope]
            key = f'{scope}.{real_key}'
        if scope is not None and scope != self.scope:
            if scope in SIBLING_SCOPES:
                return self._sibling_get(scope, real_key, required=True)
            sibling = self._sibling(scope)
            if sibling is not None:
                return sibling.get(real_key)
        if scope is None:
            preferred = _constructing_toolbox()
            if preferred in SIBLING_SCOPES:
                self.import_from_location()
                if real_key in self._module_dict:
                    return self._module_dict[real_key]
                obj = self._sibling_get(preferred, real_key, required=False)
                if obj is not None:
                    return obj
        obj = super().get(key)
        if obj is None and scope in (None, self.scope):
            for sibling_scope in SIBLING_SCOPES:
                obj = self._sibling_get(sibling_scope, real_key,
                                        required=False)
                if obj is not None:
                    break
        return obj

    def known_names(self) -> List[str]:
        """All names this registry can resolve, scoped where not its own.

        Returns:
            list[str]: Names of this registry, its parents and siblings.
        """
        self.import_from_location()
        names = list(self.module_dict)
        parent = self.parent
        while parent is not None:
            names += [f'{parent.scope}.{n}' for n in parent.module_dict]
            parent = parent.parent
        for sibling_scope in _usable_sibling_scopes():
            sibling = self._sibling(sibling_scope)
            if sibling is None:
                continue
            try:
                sibling.import_from_location()
            except ImportError as err:
                _broken_scopes[sibling_scope] = \
                    f'{type(err).__name__}: {err}'
                continue
            names += [f'{sibling_scope}.{n}' for n in sibling.module_dict]
        return names


def _usable_sibling_scopes() -> List[str]:
    """Sibling scopes that are installed and whose modules can import."""
    return [
        s for s in SIBLING_SCOPES
        if _import_sibling_registry(s) and s not in _broken_scopes and (
            s not in MMCV_OPS_SCOPES or mmcv_ops_available())
    ]


def near_matches(registry_name: str, type_name: str, n: int = 5) -> List[str]:
    """Registered names close to ``type_name`` in the mmrazor registry of
    ``registry_name`` (and everything it resolves).

    Args:
        registry_name (str): Registry name, e.g. ``'model'``.
        type_name (str): The unknown type.
        n (int): How many matches to return. Defaults to 5.

    Returns:
        list[str]: The closest names, best first.
    """
    registry = _REGISTRIES_BY_NAME.get(registry_name)
    if registry is None:
        return []
    names = registry.known_names()
    short: Dict[str, str] = {}
    for name in names:  # own names first: they win over siblings' twins
        short.setdefault(name.split('.')[-1].lower(), name)
    query = type_name.split('.')[-1].lower()
    hits = difflib.get_close_matches(query, list(short), n=n, cutoff=0.6)
    # Prefer substring matches too (``'ShuffleNet'`` → ``'ShuffleNetV2'``).
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
    text = str(err.args[0]) if err.args else ''
    found = _MMENGINE_MISSING_TYPE.search(text)
    if found is None:
        return None
    type_name = found.group('type').strip('`\'"')
    registry = f"{found.group('scope')}::{found.group('name')}"
    matches = near_matches(found.group('name'), type_name)
    hint = (f' Did you mean: {", ".join(matches)}?'
            if matches else ' No registered name is close to it.')
    searched = ['mmrazor', 'mmengine'] + _usable_sibling_scopes()
    skipped = [
        s for s in MMCV_OPS_SCOPES
        if _import_sibling_registry(s) and s not in searched
    ]
    if not skipped:
        note = ''
    elif not mmcv_ops_available():
        note = (f'; skipped {", ".join(skipped)}: no compiled mmcv ops, '
                'see `bash tools/build_mmcv.sh`')
    else:
        note = '; skipped ' + ', '.join(
            f'{s} ({_broken_scopes.get(s, "not importable")})'
            for s in skipped)
    return UnknownTypeError(
        f"Unknown type '{type_name}' in the {registry} registry (searched "
        f"{', '.join(searched)}{note}).{hint} "
        'Check the spelling of `type` in your config, or import the module '
        'that registers it via `custom_imports`.')


def with_clear_errors(build_func: Callable) -> Callable:
    """Wrap a registry build function so that unknown types are explained.

    Args:
        build_func (Callable): mmengine's build function of the parent
            registry (``build_from_cfg``, ``build_model_from_cfg``, ...).

    Returns:
        Callable: The same function raising :class:`UnknownTypeError`.
    """

    @functools.wraps(build_func)
    def build(cfg: Any, *args, **kwargs) -> Any:
        # Without a default scope, types nested inside a sibling toolbox's
        # type (an mmrazor backbone in an mmpretrain ImageClassifier) would
        # be looked up in the sibling's registry only; building from an
        # mmrazor registry makes 'mmrazor' the default scope meanwhile.
        with explain_unknown_types(), _mmrazor_scope_if_unset():
            return build_func(cfg, *args, **kwargs)

    return build


@contextlib.contextmanager
def _mmrazor_scope_if_unset() -> Iterator[None]:
    """Make ``'mmrazor'`` the default scope for the block if none is set.

    Unlike ``DefaultScope.overwrite_default_scope``, which restores every
    scope known before the block, only the temporary scope is removed:
    scopes created inside (a Runner's own) stay current.
    """
    if DefaultScope.get_current_instance() is not None:
        yield
        return
    name = f'mmrazor-build-{next(_scope_ids)}'
    DefaultScope.get_instance(name, scope_name='mmrazor')
    try:
        yield
    finally:
        DefaultScope._instance_dict.pop(name, None)


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


def _child(name: str, parent: Registry, location: str) -> RazorRegistry:
    return RazorRegistry(
        name,
        parent=parent,
        scope='mmrazor',
        locations=[location],
        build_func=with_clear_errors(parent.build_func))


# manage all kinds of runners like `EpochBasedRunner` and `IterBasedRunner`
RUNNERS = _child('runner', MMENGINE_RUNNERS, 'mmrazor.core')
RUNNER_CONSTRUCTORS = _child('runner constructor',
                             MMENGINE_RUNNER_CONSTRUCTORS, 'mmrazor.core')
LOOPS = _child('loop', MMENGINE_LOOPS, 'mmrazor.core')
HOOKS = _child('hook', MMENGINE_HOOKS, 'mmrazor.core')
LOG_PROCESSORS = _child('log_processor', MMENGINE_LOG_PROCESSORS,
                        'mmrazor.core')
OPTIMIZERS = _child('optimizer', MMENGINE_OPTIMIZERS, 'mmrazor.core')
OPTIM_WRAPPERS = _child('optim_wrapper', MMENGINE_OPTIM_WRAPPERS,
                        'mmrazor.core')
OPTIM_WRAPPER_CONSTRUCTORS = _child('optimizer wrapper constructor',
                                    MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS,
                                    'mmrazor.core')
PARAM_SCHEDULERS = _child('parameter scheduler', MMENGINE_PARAM_SCHEDULERS,
                          'mmrazor.core')
DATASETS = _child('dataset', MMENGINE_DATASETS, 'mmrazor.datasets')
DATA_SAMPLERS = _child('data sampler', MMENGINE_DATA_SAMPLERS,
                       'mmrazor.datasets')
TRANSFORMS = _child('transform', MMENGINE_TRANSFORMS, 'mmrazor.datasets')
MODELS = _child('model', MMENGINE_MODELS, 'mmrazor.models')
MODEL_WRAPPERS = _child('model_wrapper', MMENGINE_MODEL_WRAPPERS,
                        'mmrazor.core')
WEIGHT_INITIALIZERS = _child('weight initializer',
                             MMENGINE_WEIGHT_INITIALIZERS, 'mmrazor.models')
TASK_UTILS = _child('task util', MMENGINE_TASK_UTILS,
                    'mmrazor.models.task_modules')
METRICS = _child('metric', MMENGINE_METRICS, 'mmrazor.core')
EVALUATOR = _child('evaluator', MMENGINE_EVALUATOR, 'mmrazor.core')
VISUALIZERS = _child('visualizer', MMENGINE_VISUALIZERS, 'mmrazor.core')
VISBACKENDS = _child('vis_backend', MMENGINE_VISBACKENDS, 'mmrazor.core')
FUNCTIONS = _child('function', MMENGINE_FUNCTIONS, 'mmrazor.core')
INFERENCERS = _child('inferencer', MMENGINE_INFERENCERS, 'mmrazor.apis')
#: Searchers (``searcher=dict(type=...)``): mmengine has no root of this kind.
SEARCHERS = Registry(
    'searcher', scope='mmrazor', locations=['mmrazor.core.searchers'])

_REGISTRIES_BY_NAME: Dict[str, RazorRegistry] = {
    r.name: r
    for r in (RUNNERS, RUNNER_CONSTRUCTORS, LOOPS, HOOKS, LOG_PROCESSORS,
              OPTIMIZERS, OPTIM_WRAPPERS, OPTIM_WRAPPER_CONSTRUCTORS,
              PARAM_SCHEDULERS, DATASETS, DATA_SAMPLERS, TRANSFORMS, MODELS,
              MODEL_WRAPPERS, WEIGHT_INITIALIZERS, TASK_UTILS, METRICS,
              EVALUATOR, VISUALIZERS, VISBACKENDS, FUNCTIONS, INFERENCERS,
              SEARCHERS)
}


def register_all_modules(init_default_scope: bool = True) -> None:
    """Import every mmrazor module that registers something: the
    ``locations`` of every mmrazor registry.

    Args:
        init_default_scope (bool): Also make ``'mmrazor'`` the current default
            scope, so that nested configs resolve mmrazor types first.
            Defaults to True.
    """
    for registry in _REGISTRIES_BY_NAME.values():
        registry.import_from_location()
    if not init_default_scope:
        return
    current = DefaultScope.get_current_instance()
    if current is None:
        DefaultScope.get_instance('mmrazor', scope_name='mmrazor')
    elif current.scope_name != 'mmrazor':
        warnings.warn(f'The current default scope "{current.scope_name}" is '
                      'not "mmrazor"; `register_all_modules` sets a new one.')
        stamp = datetime.datetime.now().strftime('%Y%m%d-%H%M%S-%f')
        DefaultScope.get_instance(f'mmrazor-{stamp}', scope_name='mmrazor')
