"""Mutables: the searchable decisions of a search space."""
from .base_mutable import BaseMutable, MutableFixedError
from .derived_mutable import DerivedMethodMixin, DerivedMutable

__all__ = [
    'BaseMutable', 'MutableFixedError', 'DerivedMutable', 'DerivedMethodMixin'
]
