"""Searchers: evolution and greedy search over trained supernets."""
from .evolution_searcher import EvolutionSearcher, subnet_key
from .greedy_searcher import GreedySearcher
from .registry import SEARCHERS

__all__ = ['EvolutionSearcher', 'GreedySearcher', 'subnet_key', 'SEARCHERS']
