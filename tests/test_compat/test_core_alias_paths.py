"""The older import paths ``mmrazor.core.optimizer`` and
``mmrazor.core.searcher`` re-export the objects of
``mmrazor.core.optimizers`` and ``mmrazor.core.searchers``."""
import importlib

import pytest

ALIASES = [('mmrazor.core.optimizer', 'mmrazor.core.optimizers'),
           ('mmrazor.core.searcher', 'mmrazor.core.searchers')]


@pytest.mark.parametrize('alias,target', ALIASES)
def test_alias_exports_the_same_objects(alias: str, target: str) -> None:
    old = importlib.import_module(alias)
    new = importlib.import_module(target)
    assert sorted(old.__all__) == sorted(new.__all__)
    for name in new.__all__:
        assert getattr(old, name) is getattr(new, name), name


def test_documented_names_and_attribute_access() -> None:
    import mmrazor.core
    from mmrazor.core.optimizer import build_optimizers
    from mmrazor.core.searcher import EvolutionSearcher, GreedySearcher
    assert mmrazor.core.optimizer.build_optimizers is build_optimizers
    assert mmrazor.core.searcher.EvolutionSearcher is EvolutionSearcher
    assert mmrazor.core.GreedySearcher is GreedySearcher
    assert build_optimizers is mmrazor.core.build_optimizers
