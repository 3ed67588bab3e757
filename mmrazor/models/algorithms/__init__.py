"""algorithms of mmrazor."""
from .base import BaseAlgorithm
from .distill import (AlignMethodDistill, DAFLDataFreeDistillation,
                      DataFreeDistillation, FpnTeacherDistill, GeneralDistill,
                      OverhaulFeatureDistillation, SelfDistill,
                      SingleTeacherDistill)
from .nas import *  # noqa: F401,F403
from .nas import __all__ as _nas_all
from .pruning import AutoSlim, ItePruneAlgorithm, PruneDeploySubModel
from .quantization import MMArchitectureQuant, MMArchitectureQuantDDP  # noqa: F401,E501
from .sub_model import sub_model

__all__ = ['BaseAlgorithm', 'GeneralDistill', 'AlignMethodDistill',
           'SingleTeacherDistill', 'FpnTeacherDistill', 'DataFreeDistillation',
           'DAFLDataFreeDistillation', 'SelfDistill',
           'OverhaulFeatureDistillation', 'AutoSlim',
           'ItePruneAlgorithm', 'PruneDeploySubModel', 'sub_model'
           ] + list(_nas_all)
