"""``mmrazor.core.searcher``: the import path of the older toolbox, an
alias of :mod:`mmrazor.core.searchers` (the same objects, not copies)."""
from .searchers import (SEARCHERS, BaseSearcher, EvolutionSearcher,
                        GreedySearcher, seed_everything, subnet_key)

__all__ = [
    'BaseSearcher', 'EvolutionSearcher', 'GreedySearcher', 'subnet_key',
    'seed_everything', 'SEARCHERS'
]
