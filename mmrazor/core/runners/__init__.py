"""Runners and loops."""
from .multi_loader import (MultiLoaderEpochBasedRunner,
                           MultiLoaderEpochBasedTrainLoop,
                           MultiLoaderIterBasedRunner,
                           MultiLoaderIterBasedTrainLoop)

__all__ = [
    'MultiLoaderEpochBasedRunner', 'MultiLoaderIterBasedRunner',
    'MultiLoaderEpochBasedTrainLoop', 'MultiLoaderIterBasedTrainLoop'
]
