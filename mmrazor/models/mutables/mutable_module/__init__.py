"""Module mutables: decisions between candidate sub-modules."""
from .diff_mutable_module import (DiffChoiceRoute, DiffMutableModule,
                                  DiffMutableOP, GumbelChoiceRoute)
from .legacy import (DifferentiableEdge, DifferentiableOP, GumbelEdge,
                     GumbelOP, MutableEdge, MutableOP, OneShotOP)
from .mutable_module import MutableModule, build_candidates
from .one_shot_mutable_module import (OneShotMutableModule, OneShotMutableOP,
                                      OneShotProbMutableOP)

__all__ = [
    'MutableModule', 'build_candidates', 'OneShotMutableModule',
    'OneShotMutableOP', 'OneShotProbMutableOP', 'DiffMutableModule',
    'DiffMutableOP', 'DiffChoiceRoute', 'GumbelChoiceRoute', 'MutableOP',
    'OneShotOP', 'DifferentiableOP', 'GumbelOP', 'MutableEdge',
    'DifferentiableEdge', 'GumbelEdge'
]
