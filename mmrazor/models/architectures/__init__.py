"""architectures of mmrazor."""
from . import backbones
from .backbones import *  # noqa: F401,F403
from .classifier import BaseArchitecture, MMClsArchitecture
from .dynamic_ops import (DynamicBatchNorm2d, DynamicConv2d, DynamicLinear,
                          DynamicMixin)

__all__ = [
    'BaseArchitecture', 'MMClsArchitecture', 'DynamicConv2d', 'DynamicLinear',
    'DynamicBatchNorm2d', 'DynamicMixin'
]
__all__ += backbones.__all__
