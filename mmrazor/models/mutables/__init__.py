"""Mutables: the searchable decisions of a search space."""
from .base_mutable import (BaseMutable, DumpChosen, InvalidChoiceError,
                           MutableFixedError)
from .derived_mutable import DerivedMethodMixin, DerivedMutable
from .mutable_channel import (DerivedChannelMutable, L1MutableChannelUnit,
                              MutableChannel, MutableChannelUnit,
                              OneShotMutableChannel,
                              OneShotMutableChannelUnit,
                              SequentialMutableChannelUnit,
                              SimpleMutableChannel, SquentialMutableChannel,
                              concat_channel_mutables)
from .mutable_module import (DiffChoiceRoute, DifferentiableEdge,
                             DifferentiableOP, DiffMutableModule,
                             DiffMutableOP, GumbelChoiceRoute, GumbelEdge,
                             GumbelOP, MutableEdge, MutableModule, MutableOP,
                             OneShotMutableModule, OneShotMutableOP,
                             OneShotOP, OneShotProbMutableOP)
from .mutable_value import MutableValue, OneShotMutableValue
from .placeholder import Placeholder, fill_placeholders, mark_placeholder

__all__ = [
    'BaseMutable', 'MutableFixedError', 'InvalidChoiceError', 'DumpChosen',
    'DerivedMutable', 'DerivedMethodMixin',
    'MutableValue', 'OneShotMutableValue', 'MutableChannel',
    'SimpleMutableChannel', 'SquentialMutableChannel', 'OneShotMutableChannel',
    'concat_channel_mutables', 'DerivedChannelMutable', 'MutableModule',
    'OneShotMutableModule',
    'OneShotMutableOP', 'OneShotProbMutableOP', 'DiffMutableModule',
    'DiffMutableOP', 'DiffChoiceRoute', 'GumbelChoiceRoute', 'MutableOP',
    'OneShotOP', 'DifferentiableOP', 'GumbelOP', 'MutableEdge',
    'DifferentiableEdge', 'GumbelEdge', 'MutableChannelUnit',
    'SequentialMutableChannelUnit', 'L1MutableChannelUnit',
    'OneShotMutableChannelUnit', 'Placeholder',
    'mark_placeholder', 'fill_placeholders'
]
