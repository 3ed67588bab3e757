"""Classification heads of mmrazor's search spaces."""
from .darts_subnet_head import DartsSubnetClsHead
from .dynamic_linear_head import DynamicLinearClsHead

__all__ = ['DartsSubnetClsHead', 'DynamicLinearClsHead']
