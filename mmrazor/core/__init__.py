"""Engine: hooks, loops, runners, searchers and model wrappers."""
from .wrappers import RazorDistributedDataParallel

__all__ = ['RazorDistributedDataParallel']
