"""Engine: hooks, loops, runners, searchers and model wrappers."""
from .optim_wrappers import CPUAmpOptimWrapper
from .searchers import EvolutionSearcher
from .utils import (all_gather_objects, broadcast_object_list, get_dist_info,
                    recalibrate_bn)
from .wrappers import RazorDistributedDataParallel

__all__ = [
    'RazorDistributedDataParallel', 'CPUAmpOptimWrapper', 'EvolutionSearcher',
    'broadcast_object_list', 'all_gather_objects', 'get_dist_info',
    'recalibrate_bn'
]
