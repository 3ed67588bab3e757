"""Pruning algorithms."""
from .autoslim import AutoSlim
from .pruned_model import build_pruner, pruned_model

__all__ = ['AutoSlim', 'pruned_model', 'build_pruner']
