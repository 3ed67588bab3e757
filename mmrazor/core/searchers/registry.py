"""The searcher registry lives in :mod:`mmrazor.registry`; this name stays
for code that imported it from here."""
from mmrazor.registry import SEARCHERS

__all__ = ['SEARCHERS']
