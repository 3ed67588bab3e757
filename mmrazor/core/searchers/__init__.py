"""Searchers: evolution and greedy search over trained supernets."""
from .evolution_searcher import EvolutionSearcher, subnet_key
from .registry import SEARCHERS

__all__ = ['EvolutionSearcher', 'subnet_key', 'SEARCHERS']
