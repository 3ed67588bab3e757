"""A tiny search space with a known optimum, for searcher tests.

Eight decisions with choices 0..3. FLOPs of a subnet are the sum of its
choices times 10; its score rewards large choices at even positions and
small ones at odd positions, so under a FLOPs budget the optimum is known.
"""
import copy
import random
from typing import Dict

from torch import nn

NUM_DECISIONS = 8
CHOICES = (0, 1, 2, 3)


class ToyMutator:
    """Implements the mutator interface the searcher relies on."""

    def __init__(self):
        self.current: Dict[str, int] = {
            f'd{i}': 0
            for i in range(NUM_DECISIONS)
        }

    def sample_subnet(self, searching: bool = False) -> Dict[str, int]:
        return {k: random.choice(CHOICES) for k in self.current}

    def mutation(self, subnet, prob=0.1):
        return {
            k: random.choice(CHOICES) if random.random() < prob else v
            for k, v in subnet.items()
        }

    def crossover(self, a, b):
        return {k: a[k] if random.random() < 0.5 else b[k] for k in a}

    def set_subnet(self, subnet):
        self.current = copy.deepcopy(subnet)

    def dump_subnet(self):
        return {k: {'chosen': v} for k, v in self.current.items()}


def toy_score(subnet: Dict[str, int]) -> float:
    return float(
        sum(v if int(k[1:]) % 2 == 0 else -v for k, v in subnet.items()))


class ToyAlgorithm(nn.Module):

    def __init__(self):
        super().__init__()
        self.mutator = ToyMutator()

    def get_subnet_flops(self) -> float:
        return 10.0 * sum(self.mutator.current.values())


def toy_test_fn(algorithm, dataloader):
    return {'accuracy_top-1': toy_score(algorithm.mutator.current)}
