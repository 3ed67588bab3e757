"""Knowledge-distillation algorithms."""
from .general_distill import AlignMethodDistill, GeneralDistill

__all__ = ['GeneralDistill', 'AlignMethodDistill']
