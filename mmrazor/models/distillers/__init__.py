"""distillers of mmrazor."""
from .base import BaseDistiller
from .self_distiller import SelfDistiller
from .single_teacher import SingleTeacherDistiller

__all__ = ['BaseDistiller', 'SingleTeacherDistiller', 'SelfDistiller']
