"""Pruning algorithms."""
from .autoslim import AutoSlim

__all__ = ['AutoSlim']
