"""NAS algorithms."""
from .darts import Darts
from .spos import SPOS

__all__ = ['SPOS', 'Darts']
