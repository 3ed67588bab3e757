"""The registry of searchers (``searcher=dict(type=...)`` in configs).

mmengine has no root registry of this kind, so it is a root of its own.
"""
from mmengine.registry import Registry

SEARCHERS = Registry(
    'searcher', scope='mmrazor', locations=['mmrazor.core.searchers'])
