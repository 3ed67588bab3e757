"""Engine: hooks, loops, runners, searchers, optimizers and wrappers.

``optimizer`` and ``searcher`` are the older toolbox's import paths of
``optimizers`` and ``searchers`` (aliases re-exporting the same objects).
"""
from . import optimizer, searcher
from .hooks import (ChannelsLastHook, DistSamplerSeedHook, DropPathProbHook,
                    SearchSubnetHook, add_channels_last_hook)
from .loops import SearchLoop
from .optim_wrappers import CPUAmpOptimWrapper
from .optimizers import build_optimizers
from .runners import (MultiLoaderEpochBasedRunner,
                      MultiLoaderEpochBasedTrainLoop,
                      MultiLoaderIterBasedRunner, MultiLoaderIterBasedTrainLoop)
from .searchers import BaseSearcher, EvolutionSearcher, GreedySearcher
from .utils import (all_gather_objects, broadcast_object_list, get_dist_info,
                    recalibrate_bn, set_lr)
from .wrappers import RazorDistributedDataParallel

__all__ = [
    'RazorDistributedDataParallel', 'CPUAmpOptimWrapper', 'BaseSearcher',
    'EvolutionSearcher', 'GreedySearcher', 'SearchLoop',
    'broadcast_object_list', 'all_gather_objects', 'get_dist_info',
    'recalibrate_bn', 'set_lr', 'build_optimizers', 'DistSamplerSeedHook',
    'DropPathProbHook', 'SearchSubnetHook', 'ChannelsLastHook',
    'add_channels_last_hook', 'MultiLoaderEpochBasedRunner',
    'MultiLoaderIterBasedRunner', 'MultiLoaderEpochBasedTrainLoop',
    'MultiLoaderIterBasedTrainLoop'
]
