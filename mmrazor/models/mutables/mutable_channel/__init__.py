"""Channel mutables: searchable channel counts with masks."""
from .base_mutable_channel import (ChannelDerivationMixin,
                                   DerivedChannelMutable, MutableChannel,
                                   concat_channel_mutables, first_k_mask)
from .l1_mutable_channel_unit import L1MutableChannelUnit
from .mutable_channel_unit import MutableChannelUnit
from .one_shot_mutable_channel_unit import OneShotMutableChannelUnit
from .sequential_mutable_channel import (OneShotMutableChannel,
                                         SquentialMutableChannel)
from .sequential_mutable_channel_unit import SequentialMutableChannelUnit
from .simple_mutable_channel import SimpleMutableChannel

__all__ = [
    'MutableChannel', 'SimpleMutableChannel', 'SquentialMutableChannel',
    'OneShotMutableChannel', 'concat_channel_mutables', 'first_k_mask',
    'ChannelDerivationMixin', 'DerivedChannelMutable', 'MutableChannelUnit',
    'SequentialMutableChannelUnit', 'L1MutableChannelUnit',
    'OneShotMutableChannelUnit'
]
