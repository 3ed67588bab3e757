"""Knowledge-distillation algorithms."""
from .datafree_distillation import (DAFLDataFreeDistillation,
                                    DataFreeDistillation)
from .fpn_teacher_distill import FpnTeacherDistill
from .general_distill import AlignMethodDistill, GeneralDistill
from .overhaul_feature_distillation import OverhaulFeatureDistillation
from .self_distill import SelfDistill
from .single_teacher_distill import SingleTeacherDistill

__all__ = ['GeneralDistill', 'AlignMethodDistill', 'SingleTeacherDistill',
           'FpnTeacherDistill', 'DataFreeDistillation',
           'DAFLDataFreeDistillation', 'SelfDistill',
           'OverhaulFeatureDistillation']
