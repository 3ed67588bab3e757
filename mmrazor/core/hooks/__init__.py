"""Training hooks."""
from .drop_path_prob import DropPathProbHook
from .sampler_seed import DistSamplerSeedHook
from .search_subnet import SearchSubnetHook

__all__ = ['DistSamplerSeedHook', 'DropPathProbHook', 'SearchSubnetHook']
