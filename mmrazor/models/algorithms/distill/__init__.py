"""Knowledge-distillation algorithms."""
from .general_distill import AlignMethodDistill, GeneralDistill
from .single_teacher_distill import SingleTeacherDistill

__all__ = ['GeneralDistill', 'AlignMethodDistill', 'SingleTeacherDistill']
