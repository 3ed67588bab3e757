"""Export a calibrated fake-quant model to an int8 ONNX (QDQ) model.

The prepared model (a quantizer's ``prepare`` output, or the ``'tensor'``
graph of :class:`MMArchitectureQuant`) is copied and made exportable:

* every fake-quant (torch's ``FakeQuantize``, the LSQ
  ``LearnableFakeQuantize``, ...) becomes an :class:`ExportFakeQuant` with
  its current scale / zero point; observers left in the graph become
  identities. ONNX ``QuantizeLinear`` takes the full 8-bit ranges only, so a
  narrower range (``[-127, 127]``, 4-bit ``[-8, 7]``) is widened to
  ``[-128, 127]`` / ``[0, 255]`` after clamping its input to the narrow
  range's float limits: the result is the same;
* QAT conv-bn(-relu) modules (eval mode, running statistics) are folded into
  one convolution whose folded weight goes through the weight fake-quant,
  as the fake-quant model computes it; conv / linear modules keep their
  weight fake-quant;
* a ReLU6 / hardtanh after a conv is left as it is: the backend config puts
  no quantizer between them (see :mod:`.backend`), so the ONNX graph is
  ``Conv -> Clip -> QuantizeLinear``, which onnxruntime runs as one
  ``QLinearConv`` when the quantizer's range lies within the clip's (a
  ReLU6 output observed with a zero point at the lowest level).

``torch.onnx.export`` (TorchScript exporter, ``dynamo=False``) turns the
fake-quants into ``QuantizeLinear`` / ``DequantizeLinear`` pairs. The ONNX
graph is then finished as onnxruntime's QDQ format expects: the weights are
stored quantized (int8 initializers read by a ``DequantizeLinear``), and the
bias of each conv / Gemm whose input and weight are dequantized is stored as
int32 with scale ``input_scale * weight_scale`` (so that onnxruntime runs the
node as an integer ``QLinearConv`` / ``QGemm``).

On an x86 CPU without VNNI, CPU runtimes sum pairs of u8 x s8 products in
a saturating int16 (see :mod:`.cpu_int8`): weights with levels beyond
[-64, 63] are then not computed exactly, and the export warns (7-bit
weights are exact there).
"""
import copy
import os
import tempfile
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.ao.nn.intrinsic.qat as nniqat
import torch.ao.nn.qat as nnqat
from mmengine.logging import MMLogger
from torch import nn
from torch.ao.quantization import FakeQuantizeBase
from torch.ao.quantization.observer import ObserverBase
from torch.nn import functional as F

from .cpu_int8 import SATURATION_FREE_WEIGHT_BITS, int8_products_saturate

#: The integer ranges ONNX ``QuantizeLinear`` writes, by signedness.
ONNX_RANGES = {True: (-128, 127), False: (0, 255)}
#: QAT conv-bn modules folded on export, with whether a ReLU follows.
CONV_BN_MODULES = {
    nniqat.ConvBn1d: False,
    nniqat.ConvBn2d: False,
    nniqat.ConvBn3d: False,
    nniqat.ConvBnReLU1d: True,
    nniqat.ConvBnReLU2d: True,
    nniqat.ConvBnReLU3d: True,
}
#: QAT conv / linear modules exported as they compute, with their ReLU flag.
WEIGHT_MODULES = {
    nnqat.Conv1d: False,
    nnqat.Conv2d: False,
    nnqat.Conv3d: False,
    nniqat.ConvReLU1d: True,
    nniqat.ConvReLU2d: True,
    nniqat.ConvReLU3d: True,
    nnqat.Linear: False,
    nniqat.LinearReLU: True,
}


def fake_quant_params(
        fake_quant: FakeQuantizeBase
) -> Tuple[torch.Tensor, torch.Tensor, int, int, Optional[int]]:
    """The quantization parameters a fake-quant applies now.

    Args:
        fake_quant (FakeQuantizeBase): torch's ``FakeQuantize`` (its
            ``scale`` / ``zero_point`` buffers) or a module with
            ``calculate_qparams()`` such as ``LearnableFakeQuantize``.

    Returns:
        tuple: ``(scale, zero_point, quant_min, quant_max, ch_axis)``;
        ``ch_axis`` is None for a per-tensor fake-quant.
    """
    qscheme = fake_quant.qscheme
    per_channel = qscheme in (torch.per_channel_symmetric,
                              torch.per_channel_affine,
                              torch.per_channel_affine_float_qparams)
    if isinstance(fake_quant, torch.ao.quantization.FakeQuantize):
        scale, zero_point = fake_quant.scale, fake_quant.zero_point
    else:
        scale, zero_point = fake_quant.calculate_qparams()
    scale = scale.detach().float().flatten().clone()
    zero_point = zero_point.detach().round().int().flatten().clone()
    if not per_channel:
        if scale.numel() != 1:
            raise ValueError(f'{type(fake_quant).__name__}: a per-tensor '
                             f'fake-quant has {scale.numel()} scales')
        scale, zero_point = scale[0], zero_point[0]
    ch_axis = fake_quant.ch_axis if per_channel else None
    return (scale, zero_point, int(fake_quant.quant_min),
            int(fake_quant.quant_max), ch_axis)


class ExportFakeQuant(nn.Module):
    """A frozen fake-quant that ``torch.onnx.export`` writes as a
    ``QuantizeLinear`` / ``DequantizeLinear`` pair.

    It computes what the fake-quant it replaces computes,
    ``(clamp(round(x / s) + z, quant_min, quant_max) - z) * s``: with a
    range narrower than ONNX's 8-bit one, ``x`` is first clamped to
    ``[(quant_min - z) * s, (quant_max - z) * s]`` (only when
    ``clamp_input``; weights are clamped once, beforehand) and quantized on
    the 8-bit range, which gives the same values.

    Args:
        scale (Tensor): Scale (a scalar, or one per channel).
        zero_point (Tensor): Integer zero point, shaped as ``scale``.
        quant_min (int): Lowest integer level of the original fake-quant.
        quant_max (int): Highest integer level of the original fake-quant.
        ch_axis (int, optional): The channel axis of a per-channel
            fake-quant; None for per-tensor.
        clamp_input (bool): Clamp the input when the range is narrower than
            ONNX's. Defaults to True.
    """

    def __init__(self,
                 scale: torch.Tensor,
                 zero_point: torch.Tensor,
                 quant_min: int,
                 quant_max: int,
                 ch_axis: Optional[int] = None,
                 clamp_input: bool = True) -> None:
        super().__init__()
        signed = quant_min < 0
        onnx_min, onnx_max = ONNX_RANGES[signed]
        if quant_min < onnx_min or quant_max > onnx_max:
            raise ValueError(
                f'ExportFakeQuant: the range [{quant_min}, {quant_max}] does '
                'not fit ONNX QuantizeLinear\'s 8-bit range '
                f'[{onnx_min}, {onnx_max}]')
        if scale.shape != zero_point.shape:
            raise ValueError('ExportFakeQuant: scale and zero_point shapes '
                             f'differ: {tuple(scale.shape)} vs '
                             f'{tuple(zero_point.shape)}')
        if (zero_point < quant_min).any() or (zero_point > quant_max).any():
            raise ValueError(f'ExportFakeQuant: zero_point {zero_point} is '
                             f'outside [{quant_min}, {quant_max}]')
        self.register_buffer('scale', scale.float())
        self.register_buffer('zero_point', zero_point.int())
        self.quant_min, self.quant_max = quant_min, quant_max
        self.onnx_min, self.onnx_max = onnx_min, onnx_max
        self.ch_axis = ch_axis
        self.clamp_input = clamp_input

    @classmethod
    def from_fake_quant(cls,
                        fake_quant: FakeQuantizeBase,
                        clamp_input: bool = True) -> 'ExportFakeQuant':
        """Freeze ``fake_quant``'s current parameters (see
        :func:`fake_quant_params`)."""
        scale, zero_point, quant_min, quant_max, ch_axis = \
            fake_quant_params(fake_quant)
        return cls(scale, zero_point, quant_min, quant_max, ch_axis,
                   clamp_input)

    @property
    def is_narrow(self) -> bool:
        """Whether the range is narrower than ONNX's 8-bit one."""
        return (self.quant_min, self.quant_max) != (self.onnx_min,
                                                    self.onnx_max)

    def _broadcast(self, value: torch.Tensor, ndim: int) -> torch.Tensor:
        if self.ch_axis is None:
            return value
        shape = [1] * ndim
        shape[self.ch_axis] = -1
        return value.reshape(shape)

    def clamp_to_range(self, x: torch.Tensor) -> torch.Tensor:
        """Clamp ``x`` to the float limits of the original range."""
        scale = self._broadcast(self.scale, x.dim())
        zero_point = self._broadcast(self.zero_point.float(), x.dim())
        low = (self.quant_min - zero_point) * scale
        high = (self.quant_max - zero_point) * scale
        return torch.maximum(torch.minimum(x, high), low)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Fake-quantize ``x`` on the ONNX range."""
        if self.clamp_input and self.is_narrow:
            x = self.clamp_to_range(x)
        if self.ch_axis is None:
            return torch.fake_quantize_per_tensor_affine(
                x, self.scale, self.zero_point, self.onnx_min, self.onnx_max)
        return torch.fake_quantize_per_channel_affine(
            x, self.scale, self.zero_point, self.ch_axis, self.onnx_min,
            self.onnx_max)

    def extra_repr(self) -> str:
        return (f'quant_min={self.quant_min}, quant_max={self.quant_max}, '
                f'onnx range=[{self.onnx_min}, {self.onnx_max}], '
                f'ch_axis={self.ch_axis}')


class QuantWeightLayer(nn.Module):
    """A float conv / linear layer whose weight goes through a frozen
    weight fake-quant, optionally followed by a ReLU.

    Args:
        layer (nn.Conv1d | nn.Conv2d | nn.Conv3d | nn.Linear): The layer
            (its weight is already clamped to the fake-quant's range).
        weight_fake_quant (ExportFakeQuant): The weight fake-quant.
        relu (bool): Apply a ReLU to the output.
    """

    def __init__(self, layer: nn.Module, weight_fake_quant: ExportFakeQuant,
                 relu: bool) -> None:
        super().__init__()
        self.layer = layer
        self.weight_fake_quant = weight_fake_quant
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.weight_fake_quant(self.layer.weight)
        if isinstance(self.layer, nn.Linear):
            out = F.linear(x, weight, self.layer.bias)
        else:
            out = self.layer._conv_forward(x, weight, self.layer.bias)
        return F.relu(out) if self.relu else out


def _float_layer(module: nn.Module, weight: torch.Tensor,
                 bias: Optional[torch.Tensor]) -> nn.Module:
    """A plain conv / linear layer with ``module``'s hyper-parameters."""
    if isinstance(module, nn.Linear):
        layer = nn.Linear(module.in_features, module.out_features,
                          bias=bias is not None)
    else:
        conv_cls = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[weight.dim() - 2]
        layer = conv_cls(
            module.in_channels,
            module.out_channels,
            module.kernel_size,
            stride=module.stride,
            padding=module.padding,
            dilation=module.dilation,
            groups=module.groups,
            bias=bias is not None,
            padding_mode=module.padding_mode)
    layer.weight.data = weight.detach().clone()
    if bias is not None:
        layer.bias.data = bias.detach().clone()
    return layer


def bn_fold_factor(module: nn.Module) -> torch.Tensor:
    """``gamma / sqrt(running_var + eps)`` of a QAT conv-bn's BN: the
    per-output-channel factor folding multiplies the conv weight by.

    Args:
        module (nn.Module): A ``ConvBn*d`` / ``ConvBnReLU*d``.

    Returns:
        Tensor: The factor (detached), one per output channel.
    """
    bn = module.bn
    return (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach()


def fold_conv_bn(module: nn.Module,
                 zero_gamma_ok: bool = False
                 ) -> Tuple[torch.Tensor, torch.Tensor]:
    """The weight and bias of a QAT conv-bn module with its BN (running
    statistics) folded in.

    With ``f = gamma / sqrt(running_var + eps)``: ``weight * f`` (per
    output channel) and ``(bias - running_mean) * f + beta``.

    Args:
        module (nn.Module): A ``ConvBn*d`` / ``ConvBnReLU*d`` of
            ``torch.ao.nn.intrinsic.qat``.
        zero_gamma_ok (bool): Accept BN channels with ``gamma = 0`` (their
            folded weights are zero; an export cannot store the float
            weight of such a channel, learned rounding leaves it). Defaults
            to False.

    Returns:
        tuple[Tensor, Tensor]: The folded weight and bias.
    """
    bn = module.bn
    if not bn.track_running_stats or bn.running_var is None:
        raise ValueError(f'{type(module).__name__}: its BN has no running '
                         'statistics to fold')
    factor = bn_fold_factor(module)
    if not zero_gamma_ok and (factor == 0).any():
        raise ValueError(f'{type(module).__name__}: a BN channel has '
                         'gamma = 0; the folded weight cannot be quantized')
    shape = [-1] + [1] * (module.weight.dim() - 1)
    weight = module.weight * factor.reshape(shape)
    bias = module.bias if module.bias is not None else torch.zeros_like(
        bn.running_mean)
    bias = (bias - bn.running_mean) * factor + bn.bias
    return weight.detach(), bias.detach()


def export_weight_layer(module: nn.Module) -> QuantWeightLayer:
    """The exportable form of a QAT conv / linear / conv-bn module.

    Args:
        module (nn.Module): A module of :data:`CONV_BN_MODULES` or
            :data:`WEIGHT_MODULES`, in eval mode.

    Returns:
        QuantWeightLayer: The float layer (BN folded, weight clamped to the
        weight fake-quant's range) with the frozen weight fake-quant.
    """
    cls = type(module)
    if cls in CONV_BN_MODULES:
        weight, bias = fold_conv_bn(module)
        relu = CONV_BN_MODULES[cls]
    elif cls in WEIGHT_MODULES:
        weight, bias = module.weight.detach(), module.bias
        relu = WEIGHT_MODULES[cls]
    else:
        raise TypeError(f'export_onnx: no export rule for {cls.__name__}')
    fake_quant = module.weight_fake_quant
    if not fake_quant.fake_quant_enabled[0]:
        raise ValueError(f'export_onnx: the weight fake-quant of a '
                         f'{cls.__name__} is disabled; enable fake-quant '
                         'before export')
    weight_fake_quant = ExportFakeQuant.from_fake_quant(
        fake_quant, clamp_input=False)
    weight = weight_fake_quant.clamp_to_range(weight)
    return QuantWeightLayer(
        _float_layer(module, weight, bias), weight_fake_quant, relu)


def _input_scale(graph_module: nn.Module, node) -> Optional[torch.Tensor]:
    """The per-tensor scale of the fake-quant feeding ``node``, if any."""
    source = node.args[0] if node.args else None
    if not isinstance(source, torch.fx.Node) or source.op != 'call_module':
        return None
    fake_quant = graph_module.get_submodule(source.target)
    if not isinstance(fake_quant, FakeQuantizeBase):
        return None
    scale, _, _, _, ch_axis = fake_quant_params(fake_quant)
    return scale if ch_axis is None else None


def snap_biases_to_int32(model_or_qmodel: nn.Module) -> int:
    """Round, in place, the bias of every conv / linear whose input is
    fake-quantized to the int32 grid an integer runtime adds it on.

    ``export_onnx`` stores such a bias as int32 with step
    ``input_scale * weight_scale`` (onnxruntime needs it to run the node in
    int8), which shifts it by up to half a step, while the fake-quant model
    adds it in float. Over many layers the shifts move a model's outputs
    (MobileNetV2 on Fashion-MNIST, 3 seeds: top-1 agreement with its
    onnxruntime model 98.6% with float biases, 99.2% with snapped ones; the
    rest is the int8 kernels' own rounding). After this the
    fake-quant model adds the biases the runtime adds. For a conv-bn the
    folded bias ``(bias - mean) * gamma / sqrt(var + eps) + beta`` is
    snapped by moving ``beta``. Call it when the scales are final (after
    calibration or QAT), before evaluating or exporting.

    Args:
        model_or_qmodel (nn.Module): An :class:`MMArchitectureQuant` or a
            prepared model (``fx.GraphModule``).

    Returns:
        int: The number of biases snapped.
    """
    qmodels = getattr(model_or_qmodel, 'qmodels', None)
    graph_module = model_or_qmodel if qmodels is None else next(
        iter(qmodels.values()))
    count = 0
    for node in graph_module.graph.nodes:
        if node.op != 'call_module':
            continue
        module = graph_module.get_submodule(node.target)
        conv_bn = type(module) in CONV_BN_MODULES
        if not conv_bn and (type(module) not in WEIGHT_MODULES
                            or module.bias is None):
            continue
        input_scale = _input_scale(graph_module, node)
        if input_scale is None:
            continue
        bias = fold_conv_bn(module)[1] if conv_bn else module.bias.detach()
        weight_scale = fake_quant_params(module.weight_fake_quant)[0]
        step = int32_bias_step(input_scale.numpy(), weight_scale.numpy(),
                               tuple(bias.shape))
        levels = int32_bias_levels(bias.double().numpy(), step)
        snapped = torch.from_numpy(levels * step.astype(np.float64)).to(
            bias.dtype)
        with torch.no_grad():
            if conv_bn:
                module.bn.bias.add_(snapped - bias)
            else:
                module.bias.copy_(snapped)
        count += 1
    return count


def _replace(root: nn.Module, path: str, module: nn.Module) -> None:
    parent_path, _, name = path.rpartition('.')
    parent = root.get_submodule(parent_path) if parent_path else root
    setattr(parent, name, module)


def make_exportable(qmodel: nn.Module) -> nn.Module:
    """A copy of a calibrated fake-quant model that ``torch.onnx.export``
    writes as a QDQ graph (see the module docstring).

    Args:
        qmodel (nn.Module): The prepared model (fake-quants and QAT
            modules); it is not changed.

    Returns:
        nn.Module: The copy, in eval mode.
    """
    model = copy.deepcopy(qmodel).eval()
    replacements: Dict[str, nn.Module] = {}
    for name, module in model.named_modules():
        if any(name.startswith(done + '.') for done in replacements):
            continue
        if type(module) in CONV_BN_MODULES or type(module) in WEIGHT_MODULES:
            replacements[name] = export_weight_layer(module)
        elif isinstance(module, FakeQuantizeBase):
            replacements[name] = (
                ExportFakeQuant.from_fake_quant(module)
                if module.fake_quant_enabled[0] else nn.Identity())
        elif isinstance(module, ObserverBase):
            replacements[name] = nn.Identity()
        elif hasattr(module, 'weight_fake_quant'):
            raise TypeError(f'export_onnx: module {name!r} '
                            f'({type(module).__name__}) has a weight '
                            'fake-quant but no export rule')
    # a module shared by several paths is replaced once, everywhere
    by_id: Dict[int, nn.Module] = {}
    original = dict(model.named_modules(remove_duplicate=False))
    for name, new in replacements.items():
        by_id.setdefault(id(original[name]), new)
    for name, old in original.items():
        if name and id(old) in by_id:
            _replace(model, name, by_id[id(old)])
    return model


class _TensorForward(nn.Module):
    """Calls a prepared graph with the inputs only (``'tensor'`` mode)."""

    def __init__(self, graph: nn.Module) -> None:
        super().__init__()
        self.graph = graph

    def forward(self, inputs: torch.Tensor):
        return self.graph(inputs)


def _tensor_graph(model_or_qmodel: nn.Module) -> nn.Module:
    qmodels = getattr(model_or_qmodel, 'qmodels', None)
    if qmodels is None:
        return model_or_qmodel
    if 'tensor' not in qmodels:
        raise ValueError(
            'export_onnx: the MMArchitectureQuant has no \'tensor\' graph '
            f'(forward_modes={tuple(qmodels.keys())}); add \'tensor\' to '
            'forward_modes')
    return _TensorForward(qmodels['tensor'])


# ---------------------------------------------------------------- ONNX pass


class _OnnxGraph:
    """Constants and consumers of an ONNX graph, for the QDQ passes."""

    def __init__(self, model) -> None:
        from onnx import numpy_helper
        self.model = model
        self.graph = model.graph
        self.initializers = {i.name: i for i in self.graph.initializer}
        self.constants = {
            name: numpy_helper.to_array(init)
            for name, init in self.initializers.items()
        }
        for node in self.graph.node:
            if node.op_type == 'Constant' and node.attribute:
                attr = node.attribute[0]
                if attr.name == 'value':
                    self.constants[node.output[0]] = numpy_helper.to_array(
                        attr.t)
        self.producers = {
            out: node
            for node in self.graph.node for out in node.output
        }

    def constant(self, name: str) -> Optional[np.ndarray]:
        """The value of ``name`` if it is constant (an initializer, a
        ``Constant`` node, or an ``Identity`` of one), else None."""
        while name not in self.constants:
            producer = self.producers.get(name)
            if producer is None or producer.op_type != 'Identity':
                return None
            name = producer.input[0]
        return self.constants[name]

    def add_initializer(self, array: np.ndarray, name: str) -> str:
        from onnx import numpy_helper
        taken = set(self.initializers) | set(self.producers)
        unique, index = name, 1
        while unique in taken:
            unique, index = f'{name}_{index}', index + 1
        init = numpy_helper.from_array(array, unique)
        self.graph.initializer.append(init)
        self.initializers[unique] = init
        self.constants[unique] = array
        return unique

    def consumers(self, name: str) -> List:
        return [n for n in self.graph.node if name in n.input]

    def remove_unused(self) -> None:
        """Drop initializers and Constant / Identity nodes nothing
        reads."""
        while True:
            used = {i for n in self.graph.node for i in n.input}
            used |= {o.name for o in self.graph.output}
            dead_nodes = [
                n for n in self.graph.node
                if n.op_type in ('Constant', 'Identity')
                and n.output[0] not in used
            ]
            dead_inits = [
                i for i in self.graph.initializer if i.name not in used
            ]
            if not dead_nodes and not dead_inits:
                return
            for node in dead_nodes:
                self.graph.node.remove(node)
            for init in dead_inits:
                self.graph.initializer.remove(init)
                self.initializers.pop(init.name, None)


def _axis_of(node, default: int = 1) -> int:
    for attr in node.attribute:
        if attr.name == 'axis':
            return attr.i
    return default


def _quantize_array(values: np.ndarray, scale: np.ndarray,
                    zero_point: np.ndarray, axis: int) -> np.ndarray:
    """ONNX ``QuantizeLinear`` (round half to even, saturate)."""
    if scale.ndim == 1 and values.ndim > 1:
        shape = [1] * values.ndim
        shape[axis] = -1
        scale = scale.reshape(shape)
        zero_point = zero_point.reshape(shape)
    info = np.iinfo(zero_point.dtype)
    levels = np.rint(values.astype(np.float64) / scale) + zero_point
    return np.clip(levels, info.min, info.max).astype(zero_point.dtype)


def store_weights_quantized(onnx_graph: _OnnxGraph) -> int:
    """Replace each ``QuantizeLinear`` of a constant by its int8 value.

    Returns:
        int: The number of weights stored quantized.
    """
    count = 0
    for node in list(onnx_graph.graph.node):
        if node.op_type != 'QuantizeLinear':
            continue
        values = onnx_graph.constant(node.input[0])
        scale = onnx_graph.constant(node.input[1])
        zero_point = onnx_graph.constant(node.input[2]) \
            if len(node.input) > 2 else np.zeros_like(scale, np.uint8)
        if values is None or scale is None or zero_point is None:
            continue
        quantized = _quantize_array(values, scale, zero_point,
                                    _axis_of(node))
        name = onnx_graph.add_initializer(quantized,
                                          node.input[0] + '_quantized')
        for consumer in onnx_graph.consumers(node.output[0]):
            for i, value in enumerate(consumer.input):
                if value == node.output[0]:
                    consumer.input[i] = name
        onnx_graph.graph.node.remove(node)
        count += 1
    onnx_graph.producers = {
        out: n
        for n in onnx_graph.graph.node for out in n.output
    }
    return count


def int32_bias_step(input_scale: np.ndarray, weight_scale: np.ndarray,
                    shape: Tuple[int, ...]) -> np.ndarray:
    """The step of an int32 bias, ``input_scale * weight_scale`` (float32,
    as ONNX stores it).

    Args:
        input_scale (np.ndarray): The per-tensor scale of the input.
        weight_scale (np.ndarray): The weight's scale, per tensor or per
            output channel.
        shape (tuple[int]): The bias' shape.

    Returns:
        np.ndarray: A 0-d step, or one per channel shaped as the bias.
    """
    step = (np.asarray(input_scale, np.float64).reshape(()) *
            np.asarray(weight_scale, np.float64)).astype(np.float32)
    if step.size > 1:
        return np.broadcast_to(step, shape).copy()
    return step.reshape(())


def int32_bias_levels(bias: np.ndarray, step: np.ndarray) -> np.ndarray:
    """``bias`` rounded to the nearest multiple of ``step`` (half to even),
    as int32 levels."""
    levels = np.rint(np.asarray(bias, np.float64) / step)
    info = np.iinfo(np.int32)
    return np.clip(levels, info.min, info.max).astype(np.int32)


def quantize_biases(onnx_graph: _OnnxGraph) -> int:
    """Store the float bias of each Conv / Gemm whose input and weight are
    dequantized as int32 with scale ``input_scale * weight_scale``.

    Returns:
        int: The number of biases quantized.
    """
    from onnx import helper
    count = 0
    for node in list(onnx_graph.graph.node):
        if node.op_type not in ('Conv', 'Gemm') or len(node.input) < 3:
            continue
        bias = onnx_graph.constant(node.input[2])
        dq_input = onnx_graph.producers.get(node.input[0])
        dq_weight = onnx_graph.producers.get(node.input[1])
        if bias is None or dq_input is None or dq_weight is None or any(
                dq.op_type != 'DequantizeLinear'
                for dq in (dq_input, dq_weight)):
            continue
        input_scale = onnx_graph.constant(dq_input.input[1])
        weight_scale = onnx_graph.constant(dq_weight.input[1])
        if input_scale is None or weight_scale is None or \
                input_scale.size != 1:
            continue
        bias_scale = int32_bias_step(input_scale, weight_scale, bias.shape)
        quantized = int32_bias_levels(bias, bias_scale)
        base = node.input[2]
        q_name = onnx_graph.add_initializer(quantized, base + '_quantized')
        s_name = onnx_graph.add_initializer(bias_scale, base + '_scale')
        z_name = onnx_graph.add_initializer(
            np.zeros(bias_scale.shape, np.int32), base + '_zero_point')
        out_name = base + '_dequantized'
        dq_node = helper.make_node(
            'DequantizeLinear', [q_name, s_name, z_name], [out_name],
            name=base + '_DequantizeLinear', axis=0)
        index = list(onnx_graph.graph.node).index(node)
        onnx_graph.graph.node.insert(index, dq_node)
        node.input[2] = out_name
        count += 1
    return count


def widest_weight_level(model) -> int:
    """The largest ``|level|`` of the int8 weights of an ONNX model (int8
    initializers read by a ``DequantizeLinear``; 0 if none)."""
    from onnx import TensorProto, numpy_helper
    read = {
        node.input[0]
        for node in model.graph.node if node.op_type == 'DequantizeLinear'
    }
    widest = 0
    for init in model.graph.initializer:
        if init.name in read and init.data_type == TensorProto.INT8:
            levels = numpy_helper.to_array(init).astype(np.int32)
            if levels.size:
                widest = max(widest, int(np.abs(levels).max()))
    return widest


def warn_if_saturating(widest_level: int, path: str) -> None:
    """Warn when this CPU's int8 kernels cannot compute weights with
    levels up to ``widest_level`` exactly (:mod:`.cpu_int8`)."""
    limit = 2**(SATURATION_FREE_WEIGHT_BITS - 1)
    if widest_level > limit and int8_products_saturate():
        MMLogger.get_current_instance().warning(
            f'export_onnx: {path} has int8 weights up to level '
            f'{widest_level}; this x86 CPU has no VNNI, so onnxruntime and '
            'OpenVINO sum u8 x s8 product pairs in a saturating int16 here '
            'and the deployed outputs drift from the fake-quant model. For '
            f'an exact int8 model on such CPUs quantize weights to '
            f'{SATURATION_FREE_WEIGHT_BITS} bits (w_qscheme.bit='
            f'{SATURATION_FREE_WEIGHT_BITS}, levels within +-{limit}).')


def _atomic_write(data: bytes, path: str) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        dir=directory, prefix='.' + os.path.basename(path), suffix='.tmp')
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def export_onnx(model_or_qmodel: nn.Module,
                dummy_input: torch.Tensor,
                path: str,
                opset_version: int = 13,
                input_names: Sequence[str] = ('input', ),
                output_names: Sequence[str] = ('output', ),
                dynamic_batch: bool = False,
                quantize_bias: bool = True) -> Dict[str, int]:
    """Export a calibrated fake-quant model to an int8 ONNX (QDQ) file.

    Args:
        model_or_qmodel (nn.Module): An :class:`MMArchitectureQuant` (its
            ``'tensor'`` graph is exported) or a prepared model
            (``fx.GraphModule`` of a quantizer's ``prepare``). Calibrate it
            first; it is not changed (a copy is exported).
        dummy_input (Tensor): An input of the deployed shape.
        path (str): The ``.onnx`` file, written atomically.
        opset_version (int): ONNX opset, at least 13 (per-channel
            ``QuantizeLinear``). Defaults to 13.
        input_names (Sequence[str]): Graph input names.
        output_names (Sequence[str]): Graph output names.
        dynamic_batch (bool): Make the first dimension dynamic.
        quantize_bias (bool): Store conv / Gemm biases as int32 (needed by
            onnxruntime to run them in int8). Defaults to True.

    Returns:
        dict: Counts: ``quantize_linear`` / ``dequantize_linear`` nodes,
        ``quantized_weights`` and ``quantized_biases``.
    """
    import onnx
    if opset_version < 13:
        raise ValueError('export_onnx: opset_version must be >= 13 '
                         '(per-channel QuantizeLinear), got '
                         f'{opset_version}')
    if not isinstance(dummy_input, torch.Tensor):
        raise TypeError('export_onnx: dummy_input must be a Tensor, got '
                        f'{type(dummy_input).__name__}')
    graph = _tensor_graph(model_or_qmodel)
    if not any(
            isinstance(m, FakeQuantizeBase) for m in graph.modules()):
        raise ValueError('export_onnx: the model has no fake-quant; pass '
                         'a prepared (and calibrated) model')
    exportable = make_exportable(graph)
    dynamic_axes = None
    if dynamic_batch:
        dynamic_axes = {
            name: {
                0: 'batch'
            }
            for name in list(input_names) + list(output_names)
        }
    with tempfile.TemporaryDirectory() as tmp_dir:
        raw_path = os.path.join(tmp_dir, 'raw.onnx')
        with torch.no_grad():
            torch.onnx.export(
                exportable, (dummy_input, ),
                raw_path,
                opset_version=opset_version,
                input_names=list(input_names),
                output_names=list(output_names),
                dynamic_axes=dynamic_axes,
                do_constant_folding=True,
                dynamo=False)
        model = onnx.load(raw_path)
    onnx_graph = _OnnxGraph(model)
    counts = dict(quantized_weights=store_weights_quantized(onnx_graph))
    counts['quantized_biases'] = (
        quantize_biases(onnx_graph) if quantize_bias else 0)
    onnx_graph.remove_unused()
    onnx.checker.check_model(model)
    counts['quantize_linear'] = sum(
        n.op_type == 'QuantizeLinear' for n in model.graph.node)
    counts['dequantize_linear'] = sum(
        n.op_type == 'DequantizeLinear' for n in model.graph.node)
    _atomic_write(model.SerializeToString(), path)
    warn_if_saturating(widest_weight_level(model), path)
    return counts


__all__ = [
    'export_onnx', 'make_exportable', 'ExportFakeQuant', 'QuantWeightLayer',
    'fold_conv_bn', 'fake_quant_params', 'widest_weight_level',
    'snap_biases_to_int32'
]
