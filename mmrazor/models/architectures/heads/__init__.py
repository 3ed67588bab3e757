"""Classification heads of mmrazor's search spaces."""
from .darts_subnet_head import DartsSubnetClsHead
from .deit_cls_head import DeiTClsHead
from .dynamic_linear_head import DynamicLinearClsHead

__all__ = ['DartsSubnetClsHead', 'DynamicLinearClsHead', 'DeiTClsHead']
