"""Registries of mmrazor, children of mmengine's root registries."""
from mmrazor.utils.toolboxes import SiblingImportError, require_sibling
from mmrazor.utils.unknown_types import UnknownTypeError, explain_unknown_types
from .registry import (DATA_SAMPLERS, DATASETS, EVALUATOR, FUNCTIONS, HOOKS,
                       INFERENCERS, LOG_PROCESSORS, LOOPS, METRICS,
                       MODEL_WRAPPERS, MODELS, OPTIM_WRAPPER_CONSTRUCTORS,
                       OPTIM_WRAPPERS, OPTIMIZERS, PARAM_SCHEDULERS, REGISTRIES,
                       RUNNER_CONSTRUCTORS, RUNNERS, SEARCHERS, TASK_UTILS,
                       TRANSFORMS, VISBACKENDS, VISUALIZERS,
                       WEIGHT_INITIALIZERS, RazorRegistry, register_all_modules)

__all__ = [
    'RUNNERS', 'RUNNER_CONSTRUCTORS', 'LOOPS', 'HOOKS', 'LOG_PROCESSORS',
    'OPTIMIZERS', 'OPTIM_WRAPPERS', 'OPTIM_WRAPPER_CONSTRUCTORS',
    'PARAM_SCHEDULERS', 'DATASETS', 'DATA_SAMPLERS', 'TRANSFORMS', 'MODELS',
    'MODEL_WRAPPERS', 'WEIGHT_INITIALIZERS', 'TASK_UTILS', 'METRICS',
    'EVALUATOR', 'VISUALIZERS', 'VISBACKENDS', 'FUNCTIONS', 'INFERENCERS',
    'SEARCHERS', 'REGISTRIES', 'RazorRegistry', 'register_all_modules',
    'UnknownTypeError', 'explain_unknown_types', 'SiblingImportError',
    'require_sibling'
]
