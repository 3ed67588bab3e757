"""Backend configs: which ops a quantizer quantizes, in which dtypes.

A torch.ao ``BackendConfig`` lists op patterns (conv, conv-bn-relu, linear,
add, pooling, ...) and, for each, the dtypes its kernels take. FX prepare
inserts fake-quants only around ops whose pattern lists the qconfig's
dtypes; any other op stays float. :func:`backend_config_for` starts from
torch's native (fbgemm / x86) patterns and lists the ``global_qconfig``'s
dtypes for every static int8 pattern, so that a signed-activation scheme
(TensorRT) or a 4-bit one is quantized where an unsigned 8-bit one would be.

torch's patterns treat a conv followed by ReLU as one quantized op (one
quantizer, after the ReLU) but a conv followed by ReLU6 as two: the conv
output is quantized, clamped to [0, 6] and quantized again (ReLU6 shares
the conv output's quantizer). Deployed, the clamp then runs in float between
two quantize / dequantize pairs. :func:`backend_config_for` adds patterns
for conv(-bn) followed by ``nn.ReLU6`` / ``nn.Hardtanh`` / ``F.relu6`` /
``F.hardtanh``, observed like conv-bn-ReLU: no quantizer between the conv
and the clamp, one after the clamp (it sees the clamped range, e.g.
[0, 6]), so that onnxruntime folds the ONNX ``Clip`` into that quantizer and
runs the conv in int8.
"""
import copy
from typing import Any, Iterator, List, Optional, Set

import torch
import torch.ao.nn.intrinsic as nni
import torch.ao.nn.intrinsic.qat as nniqat
import torch.ao.nn.qat as nnqat
# torch 2.14's native config needs its utils submodule imported first
import torch.ao.quantization.backend_config.utils  # noqa: F401
from torch.ao.quantization.backend_config import (BackendConfig,
                                                   DTypeWithConstraints,
                                                   ObservationType,
                                                   get_native_backend_config)
from torch import nn
from torch.nn import functional as F

#: Convolutions a clamping activation can follow without a quantizer in
#: between: float, fused and QAT modules, and the functional forms.
CONV_OPS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nni.ConvBn1d, nni.ConvBn2d,
            nni.ConvBn3d, nnqat.Conv1d, nnqat.Conv2d, nnqat.Conv3d,
            nniqat.ConvBn1d, nniqat.ConvBn2d, nniqat.ConvBn3d, F.conv1d,
            F.conv2d, F.conv3d)
#: Clamping activations quantized together with the conv before them (FX
#: traces ``F.hardtanh(x, 0., 6.)``'s bounds as keyword arguments, so the
#: two-node pattern matches whatever the bounds).
CLAMP_ACTIVATIONS = (nn.ReLU6, nn.Hardtanh, F.relu6, F.hardtanh)


#: Ops whose output falls between the levels of their input's grid (an
#: average of levels, an interpolation). torch's native config quantizes
#: their output with the input's own quantizer; then an average of 2 or 4
#: levels lands exactly half-way between two levels whenever the sum is
#: odd, and runtimes round those ties differently (ONNX QuantizeLinear and
#: torch: half to even; OpenVINO: half up), so a fake-quant model and its
#: OpenVINO deployment disagree on many values at once (MobileNetV2 on
#: 28 x 28 images: 12% of the pooled features). With
#: ``averaging_own_quantizer``, :func:`backend_config_for` gives their
#: outputs a quantizer of their own, whose scale is no simple ratio of the
#: input's (not the default: on that MobileNetV2 it costs LSQ QAT 0.35
#: points at int8 and 1.45 at 4-bit weights).
AVERAGING_OPS = (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d,
                 nn.AdaptiveAvgPool3d, nn.AvgPool1d, nn.AvgPool2d,
                 nn.AvgPool3d, F.adaptive_avg_pool1d, F.adaptive_avg_pool2d,
                 F.adaptive_avg_pool3d, F.avg_pool1d, F.avg_pool2d,
                 F.avg_pool3d, F.interpolate, torch.mean, 'mean')


def _dtype_of(value: Any) -> Optional[torch.dtype]:
    if isinstance(value, DTypeWithConstraints):
        return value.dtype
    return value


def _has_fixed_qparams(dtype_config: dict) -> bool:
    value = dtype_config.get('input_dtype')
    return (isinstance(value, DTypeWithConstraints)
            and value.scale_exact_match is not None)


def _is_static_int8(dtype_config: dict) -> bool:
    return (_dtype_of(dtype_config.get('input_dtype')) == torch.quint8
            and not dtype_config.get('is_dynamic', False))


def backend_config_for(activation_dtype: torch.dtype,
                       weight_dtype: torch.dtype,
                       name: str = 'mmrazor',
                       averaging_own_quantizer: bool = False
                       ) -> BackendConfig:
    """torch's native patterns with the given static dtypes.

    Args:
        activation_dtype (torch.dtype): Dtype of quantized activations
            (``torch.quint8`` or ``torch.qint8``).
        weight_dtype (torch.dtype): Dtype of quantized weights.
        name (str): Name of the backend config.
        averaging_own_quantizer (bool): Give the outputs of
            :data:`AVERAGING_OPS` a quantizer of their own instead of their
            input's. Defaults to False.

    Returns:
        BackendConfig: One dtype config per pattern, for the patterns torch
        quantizes statically; fixed-qparams ops (sigmoid, tanh, softmax,
        hardsigmoid) keep torch's ``quint8`` constraints, so they are
        quantized only by a qconfig that fixes their scale; plus the
        conv-ReLU6 patterns of :func:`conv_clamp_pattern_configs`.
    """
    native = get_native_backend_config().to_dict()
    configs = []
    for pattern_cfg in native['configs']:
        dtype_configs = []
        for dtype_cfg in pattern_cfg.get('dtype_configs', []):
            if not _is_static_int8(dtype_cfg):
                continue
            if _has_fixed_qparams(dtype_cfg):
                dtype_configs.append(dtype_cfg)
                continue
            new_cfg = dict(
                input_dtype=activation_dtype, output_dtype=activation_dtype)
            if _dtype_of(dtype_cfg.get('weight_dtype')) is not None:
                new_cfg['weight_dtype'] = weight_dtype
            if dtype_cfg.get('bias_dtype') is not None:
                new_cfg['bias_dtype'] = dtype_cfg['bias_dtype']
            dtype_configs.append(new_cfg)
        if dtype_configs:
            pattern_cfg = copy.copy(pattern_cfg)
            pattern_cfg['dtype_configs'] = dtype_configs
            if averaging_own_quantizer and (
                    any(pattern_cfg.get('pattern') is op
                        for op in AVERAGING_OPS)
                    or pattern_cfg.get('pattern') == 'mean'):
                pattern_cfg['observation_type'] = (
                    ObservationType.OUTPUT_USE_DIFFERENT_OBSERVER_AS_INPUT)
            configs.append(pattern_cfg)
    configs += conv_clamp_pattern_configs(activation_dtype, weight_dtype)
    return BackendConfig.from_dict(dict(name=name, configs=configs))


def conv_clamp_pattern_configs(activation_dtype: torch.dtype,
                               weight_dtype: torch.dtype) -> List[dict]:
    """Pattern configs for a conv followed by ReLU6 / hardtanh.

    Each ``(conv, clamp)`` pair of :data:`CONV_OPS` x
    :data:`CLAMP_ACTIVATIONS` is observed as one op: the conv's input (and
    weight) are quantized, its output is not, the clamp's output gets the
    pattern's output quantizer (``OUTPUT_USE_DIFFERENT_OBSERVER_AS_INPUT``,
    as torch's functional conv + ReLU pattern). FX matches longer patterns
    first, so these win over the single conv and ReLU6 patterns; a conv
    whose output has other users than the clamp is not matched.

    Args:
        activation_dtype (torch.dtype): Dtype of quantized activations.
        weight_dtype (torch.dtype): Dtype of quantized weights.

    Returns:
        list[dict]: ``BackendPatternConfig`` dicts.
    """
    dtype_config = dict(
        input_dtype=activation_dtype,
        output_dtype=activation_dtype,
        weight_dtype=weight_dtype,
        bias_dtype=torch.float)
    return [
        dict(
            pattern=(conv, clamp),
            observation_type=ObservationType.
            OUTPUT_USE_DIFFERENT_OBSERVER_AS_INPUT,
            dtype_configs=[dtype_config]) for conv in CONV_OPS
        for clamp in CLAMP_ACTIVATIONS
    ]


def _flatten(pattern: Any) -> Iterator[Any]:
    if isinstance(pattern, tuple):
        for item in pattern:
            yield from _flatten(item)
    else:
        yield pattern


def supported_ops(backend_config: BackendConfig) -> Set[Any]:
    """Every op (module class, function or method name) that appears in a
    pattern of ``backend_config``.

    Args:
        backend_config (BackendConfig): The backend config.

    Returns:
        set: Module classes, functions and method names. Ops whose patterns
        need fixed quantization parameters (sigmoid, tanh, softmax,
        hardsigmoid) are left out: the 1.x qconfigs never fix them.
    """
    ops: Set[Any] = set()
    for pattern_cfg in backend_config.configs:
        if all(
                _has_fixed_qparams(d.to_dict())
                for d in pattern_cfg.dtype_configs):
            continue  # quantized only with a fixed-qparams qconfig
        pattern = (pattern_cfg.pattern if pattern_cfg.pattern is not None
                   else pattern_cfg._pattern_complex_format)
        ops.update(_flatten(pattern))
        for module in (pattern_cfg.root_module, pattern_cfg.qat_module,
                       pattern_cfg.reference_quantized_module,
                       pattern_cfg.fused_module):
            if module is not None:
                ops.add(module)
    return ops
