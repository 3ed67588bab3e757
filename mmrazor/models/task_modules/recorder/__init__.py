"""Recorders: record intermediate data of a forward pass (MMRazor 1.x)."""
from .base_recorder import BaseRecorder
from .function_recorders import (FunctionInputsRecorder,
                                 FunctionOutputsRecorder,
                                 MethodInputsRecorder, MethodOutputsRecorder)
from .module_recorders import ModuleInputsRecorder, ModuleOutputsRecorder
from .parameter_recorder import ParameterRecorder
from .recorder_manager import RecorderManager

__all__ = [
    'BaseRecorder', 'ModuleOutputsRecorder', 'ModuleInputsRecorder',
    'FunctionOutputsRecorder', 'FunctionInputsRecorder',
    'MethodOutputsRecorder', 'MethodInputsRecorder', 'ParameterRecorder',
    'RecorderManager'
]
