"""Optimizer builders."""
from .builder import build_optimizers
from .separate_constructor import SeparateOptimWrapperConstructor

__all__ = ['build_optimizers', 'SeparateOptimWrapperConstructor']
