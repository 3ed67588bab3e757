"""Training hooks."""
from .channels_last import ChannelsLastHook, add_channels_last_hook
from .drop_path_prob import DropPathProbHook
from .progressive_shrinking import ProgressiveShrinkingHook
from .pruning_hooks import (BNSparsityHook, PruningStructureHook,
                            ResourceInfoHook)
from .sampler_seed import DistSamplerSeedHook
from .search_subnet import SearchSubnetHook
from .visualization_hook import RazorVisualizationHook

__all__ = [
    'ChannelsLastHook', 'DistSamplerSeedHook', 'DropPathProbHook',
    'SearchSubnetHook', 'add_channels_last_hook', 'PruningStructureHook',
    'ResourceInfoHook', 'BNSparsityHook', 'ProgressiveShrinkingHook',
    'RazorVisualizationHook'
]
