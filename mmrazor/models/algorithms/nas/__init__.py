"""NAS algorithms."""
from .autoformer import Autoformer
from .bignas import BigNAS
from .darts import Darts
from .detnas import DetNAS
from .spos import SPOS

__all__ = ['SPOS', 'Darts', 'DetNAS', 'BigNAS', 'Autoformer']
