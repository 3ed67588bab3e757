"""distillers of mmrazor."""
from .base import BaseDistiller
from .configurable_distiller import ConfigurableDistiller
from .connectors import BaseConnector, ConvModuleConnector
from .self_distiller import SelfDistiller
from .single_teacher import SingleTeacherDistiller

__all__ = [
    'BaseDistiller', 'SingleTeacherDistiller', 'SelfDistiller',
    'ConfigurableDistiller', 'BaseConnector', 'ConvModuleConnector'
]
