"""mutators of mmrazor."""
from .base_mutator import BaseMutator
from .channel_mutator import (ChannelMutator, OneShotChannelMutator,
                              SlimmableChannelMutator)
from .diff_mutator import (DartsMutator, DifferentiableMutator,
                           DiffModuleMutator)
from .nas_mutator import NasMutator
from .one_shot_mutator import OneShotModuleMutator, OneShotMutator
from .value_mutator import OneShotValueMutator, ValueMutator

__all__ = [
    'BaseMutator', 'OneShotModuleMutator', 'OneShotMutator',
    'DifferentiableMutator', 'DiffModuleMutator', 'DartsMutator',
    'ChannelMutator', 'OneShotChannelMutator', 'SlimmableChannelMutator',
    'ValueMutator', 'OneShotValueMutator', 'NasMutator'
]
