"""Value mutables: searchable scalars."""
from .mutable_value import MutableValue, OneShotMutableValue

__all__ = ['MutableValue', 'OneShotMutableValue']
