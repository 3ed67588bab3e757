"""Knowledge-distillation algorithms."""
from .fpn_teacher_distill import FpnTeacherDistill
from .general_distill import AlignMethodDistill, GeneralDistill
from .single_teacher_distill import SingleTeacherDistill

__all__ = ['GeneralDistill', 'AlignMethodDistill', 'SingleTeacherDistill',
           'FpnTeacherDistill']
