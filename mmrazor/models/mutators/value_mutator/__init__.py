"""Value mutators: set kernel sizes, expand ratios, depths."""
from .value_mutator import OneShotValueMutator, ValueMutator

__all__ = ['ValueMutator', 'OneShotValueMutator']
