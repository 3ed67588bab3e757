"""NAS algorithms."""
from .darts import Darts
from .detnas import DetNAS
from .spos import SPOS

__all__ = ['SPOS', 'Darts', 'DetNAS']
