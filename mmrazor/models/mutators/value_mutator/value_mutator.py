"""Mutators of value mutables (kernel sizes, expand ratios, depths)."""
from mmrazor.models.mutables import MutableValue, OneShotMutableValue
from mmrazor.registry import MODELS
from ..base_mutator import BaseMutator, ChoicesType


@MODELS.register_module()
class ValueMutator(BaseMutator):
    """Collects the value mutables of a supernet and sets their values.

    Example:
        >>> mutator = ValueMutator()
        >>> mutator.prepare_from_supernet(supernet)
        >>> mutator.set_choices(mutator.sample_choices())
    """

    mutable_class = MutableValue

    @property
    def max_choices(self) -> ChoicesType:
        """The largest value of every decision."""
        return {k: max(m[0].choices) for k, m in self.search_groups.items()}

    @property
    def min_choices(self) -> ChoicesType:
        """The smallest value of every decision."""
        return {k: min(m[0].choices) for k, m in self.search_groups.items()}

    def set_max_choices(self) -> None:
        """Set every decision to its largest value."""
        self.set_choices(self.max_choices)

    def set_min_choices(self) -> None:
        """Set every decision to its smallest value."""
        self.set_choices(self.min_choices)


@MODELS.register_module()
class OneShotValueMutator(ValueMutator):
    """A :class:`ValueMutator` for
    :class:`~mmrazor.models.mutables.OneShotMutableValue`."""

    mutable_class = OneShotMutableValue
