"""Registries of mmrazor: one child of each mmengine root, scope 'mmrazor',
declared with the package whose modules register into it (``locations``).

Configs written for the OpenMMLab toolboxes work unchanged (the rules live
in :mod:`mmrazor.utils.toolboxes`): a type that mmrazor and mmengine lack is
looked up in mmpretrain, mmdet and mmseg, so one config holds ``type='SPOS'``
and ``type='ImageClassifier'`` side by side; ``mmcls.`` reads as
``mmpretrain.``; a toolbox's model builds in that toolbox's ``_scope_``
(nested names only mmrazor registers get ``_scope_='mmrazor'``); an unknown
type fails with :class:`~mmrazor.utils.unknown_types.UnknownTypeError`
naming the type, the registry and the closest names.
"""
import datetime
import functools
import warnings
from typing import Any

import mmengine.registry as root
from mmengine.registry import DefaultScope, Registry

from mmrazor.utils.toolboxes import (SCOPE_ALIASES, SIBLING_SCOPES,
                                     get_from_toolbox, scope_toolbox_cfg)
from mmrazor.utils.unknown_types import explain_unknown_types


class RazorRegistry(Registry):
    """An mmengine :class:`Registry` that also resolves the types of the
    sibling toolboxes (scoped, or unscoped after its own and mmengine's)."""

    def get(self, key: str) -> Any:
        scope, name = self.split_scope_key(key)
        scope = SCOPE_ALIASES.get(scope, scope)
        if scope in SIBLING_SCOPES:
            return get_from_toolbox(self, scope, name, required=True)
        obj = super().get(key)
        if obj is None and scope is None:
            for sibling in SIBLING_SCOPES:
                obj = get_from_toolbox(self, sibling, name, required=False)
                if obj is not None:
                    break
        return obj


def _child(name: str, parent: Registry, location: str) -> RazorRegistry:
    """A child of mmengine's root ``parent`` that builds toolbox models in
    their ``_scope_`` and explains unknown types."""

    @functools.wraps(parent.build_func)
    def build(cfg: Any, registry: Registry, *args, **kwargs) -> Any:
        with explain_unknown_types():
            return parent.build_func(
                scope_toolbox_cfg(registry, cfg), registry, *args, **kwargs)

    return RazorRegistry(name, parent=parent, scope='mmrazor',
                         locations=[location], build_func=build)


RUNNERS = _child('runner', root.RUNNERS, 'mmrazor.core')
RUNNER_CONSTRUCTORS = _child('runner constructor', root.RUNNER_CONSTRUCTORS,
                             'mmrazor.core')
LOOPS = _child('loop', root.LOOPS, 'mmrazor.core')
HOOKS = _child('hook', root.HOOKS, 'mmrazor.core')
LOG_PROCESSORS = _child('log_processor', root.LOG_PROCESSORS, 'mmrazor.core')
OPTIMIZERS = _child('optimizer', root.OPTIMIZERS, 'mmrazor.core')
OPTIM_WRAPPERS = _child('optim_wrapper', root.OPTIM_WRAPPERS, 'mmrazor.core')
OPTIM_WRAPPER_CONSTRUCTORS = _child('optimizer wrapper constructor',
                                    root.OPTIM_WRAPPER_CONSTRUCTORS,
                                    'mmrazor.core')
PARAM_SCHEDULERS = _child('parameter scheduler', root.PARAM_SCHEDULERS,
                          'mmrazor.core')
DATASETS = _child('dataset', root.DATASETS, 'mmrazor.datasets')
DATA_SAMPLERS = _child('data sampler', root.DATA_SAMPLERS, 'mmrazor.datasets')
TRANSFORMS = _child('transform', root.TRANSFORMS, 'mmrazor.datasets')
MODELS = _child('model', root.MODELS, 'mmrazor.models')
MODEL_WRAPPERS = _child('model_wrapper', root.MODEL_WRAPPERS, 'mmrazor.core')
WEIGHT_INITIALIZERS = _child('weight initializer', root.WEIGHT_INITIALIZERS,
                             'mmrazor.models')
TASK_UTILS = _child('task util', root.TASK_UTILS,
                    'mmrazor.models.task_modules')
METRICS = _child('metric', root.METRICS, 'mmrazor.core')
EVALUATOR = _child('evaluator', root.EVALUATOR, 'mmrazor.core')
VISUALIZERS = _child('visualizer', root.VISUALIZERS, 'mmrazor.core')
VISBACKENDS = _child('vis_backend', root.VISBACKENDS, 'mmrazor.core')
FUNCTIONS = _child('function', root.FUNCTIONS, 'mmrazor.core')
INFERENCERS = _child('inferencer', root.INFERENCERS, 'mmrazor.apis')
#: Searchers (``searcher=dict(type=...)``): mmengine has no root of this kind.
SEARCHERS = Registry('searcher', scope='mmrazor',
                     locations=['mmrazor.core.searchers'])

REGISTRIES = (RUNNERS, RUNNER_CONSTRUCTORS, LOOPS, HOOKS, LOG_PROCESSORS,
              OPTIMIZERS, OPTIM_WRAPPERS, OPTIM_WRAPPER_CONSTRUCTORS,
              PARAM_SCHEDULERS, DATASETS, DATA_SAMPLERS, TRANSFORMS, MODELS,
              MODEL_WRAPPERS, WEIGHT_INITIALIZERS, TASK_UTILS, METRICS,
              EVALUATOR, VISUALIZERS, VISBACKENDS, FUNCTIONS, INFERENCERS,
              SEARCHERS)


def register_all_modules(init_default_scope: bool = True) -> None:
    """Import every mmrazor module that registers something (the
    ``locations`` of every registry above).

    Args:
        init_default_scope (bool): Also make ``'mmrazor'`` the current default
            scope, so that configs resolve mmrazor types first. Defaults to
            True.
    """
    for registry in REGISTRIES:
        registry.import_from_location()
    current = DefaultScope.get_current_instance()
    if not init_default_scope or getattr(current, 'scope_name',
                                         None) == 'mmrazor':
        return
    name = 'mmrazor'
    if current is not None:
        warnings.warn(f'The current default scope "{current.scope_name}" is '
                      'not "mmrazor"; `register_all_modules` sets a new one.')
        name += datetime.datetime.now().strftime('-%Y%m%d-%H%M%S-%f')
    DefaultScope.get_instance(name, scope_name='mmrazor')
