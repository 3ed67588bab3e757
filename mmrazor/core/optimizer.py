"""``mmrazor.core.optimizer``: the import path of the older toolbox, an
alias of :mod:`mmrazor.core.optimizers` (the same objects, not copies)."""
from .optimizers import SeparateOptimWrapperConstructor, build_optimizers

__all__ = ['build_optimizers', 'SeparateOptimWrapperConstructor']
