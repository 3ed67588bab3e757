"""Registries of mmrazor, children of mmengine's root registries."""
from .registry import (DATA_SAMPLERS, DATASETS, EVALUATOR, FUNCTIONS, HOOKS,
                       INFERENCERS, LOG_PROCESSORS, LOOPS, METRICS,
                       MODEL_WRAPPERS, MODELS, OPTIM_WRAPPER_CONSTRUCTORS,
                       OPTIM_WRAPPERS, OPTIMIZERS, PARAM_SCHEDULERS,
                       RUNNER_CONSTRUCTORS, RUNNERS, SCOPE_ALIASES, SEARCHERS,
                       SIBLING_SCOPES, TASK_UTILS, TRANSFORMS, VISBACKENDS,
                       VISUALIZERS, WEIGHT_INITIALIZERS, RazorRegistry,
                       register_all_modules,
                       MMCV_OPS_SCOPES, SiblingImportError,
                       explain_unknown_types, mmcv_ops_available,
                       require_sibling,
                       UnknownTypeError, near_matches, unknown_type_error,
                       with_clear_errors)

__all__ = [
    'RUNNERS', 'RUNNER_CONSTRUCTORS', 'LOOPS', 'HOOKS', 'LOG_PROCESSORS',
    'OPTIMIZERS', 'OPTIM_WRAPPERS', 'OPTIM_WRAPPER_CONSTRUCTORS',
    'PARAM_SCHEDULERS', 'DATASETS', 'DATA_SAMPLERS', 'TRANSFORMS', 'MODELS',
    'MODEL_WRAPPERS', 'WEIGHT_INITIALIZERS', 'TASK_UTILS', 'METRICS',
    'EVALUATOR', 'VISUALIZERS', 'VISBACKENDS', 'FUNCTIONS', 'INFERENCERS', 'SEARCHERS',
    'RazorRegistry', 'UnknownTypeError', 'near_matches', 'unknown_type_error',
    'with_clear_errors', 'explain_unknown_types', 'SIBLING_SCOPES', 'SCOPE_ALIASES',
    'MMCV_OPS_SCOPES', 'SiblingImportError', 'mmcv_ops_available',
    'require_sibling', 'register_all_modules'
]
