"""Optimizer builders."""
from .builder import build_optimizers

__all__ = ['build_optimizers']
