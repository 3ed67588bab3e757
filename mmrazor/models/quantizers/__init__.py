"""Quantization: 1.x schemes, observers and fake-quants on torch.ao."""
from .cpu_int8 import (SATURATION_FREE_WEIGHT_BITS, cpu_flags,
                       int8_products_saturate)
from .fake_quants import LearnableFakeQuantize, lsq_grad_factor
from .export import ExportFakeQuant, export_onnx, snap_biases_to_int32
from .bias_correction import correct_biases
from .adaround import learn_rounding
from .observers import LSQObserver, LSQPerChannelObserver, PercentileObserver
from .qconfig import (QConfigHandler, fake_quant_factory,
                      is_per_channel_observer, observer_factory)
from .native_quantizer import (AcademicQuantizer, NativeQuantizer,
                               OpenVINOQuantizer, TensorRTQuantizer)
from .qscheme import QSchemeHandler, quant_range
from .tracer import CustomTracer

__all__ = [
    'QSchemeHandler', 'quant_range', 'QConfigHandler', 'observer_factory',
    'fake_quant_factory', 'is_per_channel_observer', 'LSQObserver',
    'LSQPerChannelObserver', 'PercentileObserver', 'LearnableFakeQuantize',
    'lsq_grad_factor', 'CustomTracer', 'NativeQuantizer',
    'OpenVINOQuantizer', 'TensorRTQuantizer', 'AcademicQuantizer',
    'export_onnx', 'ExportFakeQuant', 'int8_products_saturate', 'cpu_flags',
    'SATURATION_FREE_WEIGHT_BITS', 'snap_biases_to_int32', 'correct_biases',
    'learn_rounding'
]
