"""architectures of mmrazor."""
from . import backbones
from .backbones import *  # noqa: F401,F403
from .classifier import BaseArchitecture, MMClsArchitecture
from .detector import MMDetArchitecture
from .generators import BaseGenerator, DAFLGenerator, ZSKTGenerator
from .heads import DartsSubnetClsHead, DynamicLinearClsHead
from .necks import SqueezeMeanPoolingWithDropout
from .searchable_classifier import SearchableImageClassifier
from .dynamic_ops import (DynamicBatchNorm2d, DynamicConv2d, DynamicLinear,
                          DynamicMixin)
from .segmentor import MMSegArchitecture

__all__ = [
    'BaseArchitecture', 'MMClsArchitecture', 'MMDetArchitecture',
    'MMSegArchitecture', 'DynamicConv2d', 'DynamicLinear',
    'DynamicBatchNorm2d', 'DynamicMixin', 'DartsSubnetClsHead',
    'DynamicLinearClsHead', 'SqueezeMeanPoolingWithDropout',
    'SearchableImageClassifier', 'BaseGenerator', 'DAFLGenerator',
    'ZSKTGenerator'
]
__all__ += backbones.__all__
