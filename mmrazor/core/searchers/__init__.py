"""Searchers: evolution and greedy search over trained supernets, on the
machinery of :class:`BaseSearcher`; :class:`~mmrazor.core.loops.SearchLoop`
runs them inside an mmengine run."""
from mmrazor.registry import SEARCHERS
from .base import BaseSearcher, seed_everything, subnet_key
from .evolution_searcher import EvolutionSearcher
from .greedy_searcher import GreedySearcher

__all__ = [
    'BaseSearcher', 'EvolutionSearcher', 'GreedySearcher', 'subnet_key',
    'seed_everything', 'SEARCHERS'
]
