"""Engine: hooks, loops, runners, searchers and model wrappers."""
from .optim_wrappers import CPUAmpOptimWrapper
from .wrappers import RazorDistributedDataParallel

__all__ = ['RazorDistributedDataParallel', 'CPUAmpOptimWrapper']
