"""Channel mutators: set the widths of channel mutables."""
from .channel_mutator import (ChannelMutator, OneShotChannelMutator,
                              SlimmableChannelMutator)

__all__ = ['ChannelMutator', 'OneShotChannelMutator',
           'SlimmableChannelMutator']
