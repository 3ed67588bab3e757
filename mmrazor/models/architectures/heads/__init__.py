"""Classification heads of mmrazor's search spaces."""
from .darts_subnet_head import DartsSubnetClsHead

__all__ = ['DartsSubnetClsHead']
