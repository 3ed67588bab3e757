"""NasMutator's searcher interface: what ``EvolutionSearcher`` asks of a
mutator (``sample_subnet``, ``set_subnet``, ``mutation``, ``crossover``)."""
import random

import pytest
import torch.nn as nn

from mmrazor.models.mutables import OneShotMutableValue
from mmrazor.models.mutators import NasMutator


class ValueSpace(nn.Module):
    """Three searchable values, one of them list-valued like a resolution."""

    def __init__(self) -> None:
        super().__init__()
        self.depth = OneShotMutableValue(value_list=[1, 2, 3], alias='depth')
        self.ratio = OneShotMutableValue(value_list=[2, 4], alias='ratio')
        self.size = OneShotMutableValue(
            value_list=[[24, 24], [28, 28]], alias='size')


def prepared() -> NasMutator:
    mutator = NasMutator()
    mutator.prepare_from_supernet(ValueSpace())
    return mutator


def test_sample_and_set_subnet():
    mutator = prepared()
    random.seed(0)
    subnet = mutator.sample_subnet(searching=True)
    assert set(subnet) == {'depth', 'ratio', 'size'}
    mutator.set_subnet(subnet)
    assert mutator.current_choices == subnet
    # subnet files store {key: {'chosen': choice}}
    mutator.set_subnet({k: dict(chosen=v)
                        for k, v in mutator.max_choices.items()})
    assert mutator.current_choices == mutator.max_choices


def test_mutation_and_crossover():
    mutator = prepared()
    low, high = mutator.min_choices, mutator.max_choices
    assert mutator.mutation(low, prob=0.0) == low
    random.seed(0)
    mutated = [mutator.mutation(low, prob=1.0) for _ in range(20)]
    assert any(m != low for m in mutated)
    for child in mutated:
        mutator.set_subnet(child)  # every child is a valid subnet
    children = [mutator.crossover(low, high) for _ in range(20)]
    for child in children:
        assert all(child[k] in (low[k], high[k]) for k in low)
    assert any(c not in (low, high) for c in children)
    with pytest.raises(KeyError, match='differ'):
        mutator.crossover(low, {'depth': 1})
