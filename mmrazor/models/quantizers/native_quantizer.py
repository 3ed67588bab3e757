"""1.x quantizers on torch.ao's FX graph mode.

``prepare(model)`` traces the model with the quantizer's tracer, fuses
conv-bn(-relu) / linear-relu, and inserts the ``global_qconfig``'s
fake-quants: one on each quantized activation, one (``weight_fake_quant``)
in each quantized conv / linear module. Fusion and module swaps are the QAT
ones (``ConvBn2d`` keeps its BN; in eval mode its output is the conv with
the BN folded into the fake-quantized weight), so the same prepared model
serves post-training calibration and quantization-aware training.
"""
import operator
from contextlib import contextmanager
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import torch
import torch.ao.nn.intrinsic as nni
import torch.ao.nn.intrinsic.qat as nniqat
from mmengine.logging import MMLogger
from torch import fx, nn
from torch.ao.nn.intrinsic.qat.modules.conv_fused import _ConvBnNd
from torch.ao.quantization import FakeQuantizeBase, QConfigMapping
from torch.ao.quantization.backend_config import BackendConfig
from torch.ao.quantization.fx.prepare import prepare as fx_prepare
from torch.ao.quantization.observer import ObserverBase
from torch.ao.quantization.quantize_fx import (  # noqa: E501
    _attach_meta_to_node_if_not_exist, _fuse_fx)
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.conv import _ConvNd

from mmrazor.registry import MODELS, TASK_UTILS
from .backend import backend_config_for, supported_ops
from .qconfig import QConfigHandler
from .tracer import CustomTracer, _resolve_class

#: Graph nodes that compute no tensor values worth quantizing.
SHAPE_OPS = (operator.getitem, getattr, 'size', 'dim', 'shape', len)
#: Suffix of the fake-quant / observer modules inserted by ``prepare``.
POST_PROCESS_SUFFIX = '_post_process'


#: Fused conv modules that end in an activation.
CONV_WITH_ACTIVATION = (nni.ConvReLU1d, nni.ConvReLU2d, nni.ConvReLU3d,
                        nni.ConvBnReLU1d, nni.ConvBnReLU2d, nni.ConvBnReLU3d,
                        nniqat.ConvReLU1d, nniqat.ConvReLU2d,
                        nniqat.ConvReLU3d, nniqat.ConvBnReLU1d,
                        nniqat.ConvBnReLU2d, nniqat.ConvBnReLU3d)


def _is_add(node: fx.Node) -> bool:
    """Whether ``node`` adds two tensors (``a + b``, ``torch.add``,
    ``a.add(b)``)."""
    if node.op == 'call_function':
        return node.target in (operator.add, torch.add)
    return node.op == 'call_method' and node.target == 'add'


def is_quant_module(module: nn.Module) -> bool:
    """Whether ``module`` is a fake-quant or an observer."""
    return isinstance(module, (FakeQuantizeBase, ObserverBase))


def activation_quant_nodes(prepared: fx.GraphModule) -> List[fx.Node]:
    """The graph nodes that call an activation fake-quant / observer (a
    direct child of ``prepared``, as ``prepare`` inserts them)."""
    return [
        node for node in prepared.graph.nodes
        if node.op == 'call_module' and '.' not in node.target
        and is_quant_module(prepared.get_submodule(node.target))
    ]


def bypass_quant_node(prepared: fx.GraphModule, node: fx.Node) -> None:
    """Remove the fake-quant call ``node``: its users read its input
    instead, and its module is deleted (call ``prepared.recompile()``
    after the last one)."""
    node.replace_all_uses_with(node.args[0])
    prepared.graph.erase_node(node)
    delattr(prepared, node.target)


def use_exact_conv_bn_where_gamma_is_zero(model: nn.Module) -> List[str]:
    """Switch the fused QAT conv-bn modules with a zero BN weight to torch's
    exact (two-convolution) training path.

    torch's default QAT conv-bn path computes ``conv(x, W * g / std) /
    (g / std)``, which is 0 / 0 = NaN for a channel whose BN weight ``g``
    is 0 (e.g. ResNets built with ``zero_init_residual``); the exact path
    (Krishnamoorthi 2018, torch's
    ``_enable_slow_path_for_better_numerical_stability``) never divides by
    ``g``. Eval-mode outputs are the same on both paths.

    Args:
        model (nn.Module): A prepared model.

    Returns:
        list[str]: The names of the modules switched.
    """
    switched = []
    for name, module in model.named_modules():
        if isinstance(module, _ConvBnNd) and bool(
                (module.bn.weight == 0).any()):
            module._enable_slow_path_for_better_numerical_stability = True
            switched.append(name)
    return switched


def conv_bn_pairs(
    graph_module: fx.GraphModule
) -> List[Tuple[nn.Module, nn.Module, List[nn.Module]]]:
    """The conv-BN module pairs of a traced graph (what the fuser fuses).

    Args:
        graph_module (fx.GraphModule): The traced model.

    Returns:
        list[tuple]: ``(conv, bn, after)`` for each BN module called on the
        output of a conv module; ``after``: the modules called on the BN's
        output (an activation fused with them among them).
    """
    pairs = []
    for node in graph_module.graph.nodes:
        if node.op != 'call_module' or not node.args:
            continue
        source = node.args[0]
        if not isinstance(source, fx.Node) or source.op != 'call_module':
            continue
        bn = graph_module.get_submodule(node.target)
        conv = graph_module.get_submodule(source.target)
        if isinstance(bn, _BatchNorm) and isinstance(conv, _ConvNd):
            after = [
                graph_module.get_submodule(user.target)
                for user in node.users if user.op == 'call_module'
            ]
            pairs.append((conv, bn, after))
    return pairs


@contextmanager
def modules_in_bn_mode(
    pairs: Sequence[Tuple[nn.Module, nn.Module, List[nn.Module]]]
) -> Iterator[None]:
    """Put each conv, and each module after its BN, in the mode (train /
    eval) of that BN for a while.

    torch's fuser refuses a conv, BN (and activation) in different modes,
    which is how a model that freezes its BN statistics keeps them while
    training (mmcv's ``norm_eval=True``, mmdet's frozen stages: the BN in
    eval mode, the conv in train mode). The fused QAT module takes the
    conv's and BN's tensors whatever their modes.

    Args:
        pairs (Sequence[tuple]): ``(conv, bn, after)``, see
            :func:`conv_bn_pairs`.
    """
    modules = {
        id(m): m
        for conv, _, after in pairs for m in (conv, *after)
    }
    modes = [(m, m.training) for m in modules.values()]
    try:
        for conv, bn, after in pairs:
            for module in (conv, *after):
                module.training = bn.training
        yield
    finally:
        for module, training in modes:
            module.training = training


def freeze_fused_bn_statistics(model: nn.Module,
                               frozen_bns: Sequence[nn.Module]) -> List[str]:
    """Freeze the statistics of the fused QAT conv-bn modules made from one
    of ``frozen_bns`` (``freeze_bn_stats``: their BN normalises with its
    running statistics and does not update them, in train mode too), as
    the float model does with those BNs.

    Args:
        model (nn.Module): A prepared model.
        frozen_bns (Sequence[nn.Module]): BN modules of the float model
            whose statistics are frozen.

    Returns:
        list[str]: The names of the modules frozen.
    """
    frozen_stats = {
        id(bn.running_mean)
        for bn in frozen_bns if bn.running_mean is not None
    }
    frozen = []
    for name, module in model.named_modules():
        if isinstance(module, _ConvBnNd) and id(
                module.bn.running_mean) in frozen_stats:
            module.freeze_bn_stats()
            frozen.append(name)
    return frozen


def remove_quantizers_before_fused_adds(
        prepared: fx.GraphModule) -> List[str]:
    """Remove the quantizer between a convolution and the addition it
    feeds.

    OpenVINO's CPU plugin runs ``conv -> quantize -> add`` (a residual
    block whose last conv has no activation) as one int8 convolution
    that adds the other branch in its output stage, and it does not
    round the convolution's output to its quantizer's levels first: the
    deployed model adds the conv output unrounded. Measured (OpenVINO
    2026.4, CPU): with the quantizer in the file, OpenVINO's
    MobileNetV2 agreed with the file's arithmetic on 99.3% of the
    Fashion-MNIST test images (every one of 10 residual adds fused);
    without it, on 100%, and on tiny models with every kind of add
    (conv + conv, conv + block input, either order) to within a
    single-level flip per ~10^5 outputs. So here the fake-quant model
    adds the conv output in float too, and the add's output quantizer
    is the one that rounds. A conv (or conv-bn) counts when its output
    goes only to that quantizer and the quantizer's output only to an
    addition; convs followed by an activation keep theirs.

    Args:
        prepared (fx.GraphModule): The prepared model, changed in place.

    Returns:
        list[str]: The fake-quants removed.
    """
    removed = []
    for node in activation_quant_nodes(prepared):
        source = node.args[0]
        if not (isinstance(source, fx.Node) and
                source.op == 'call_module' and len(source.users) == 1):
            continue
        module = prepared.get_submodule(source.target)
        if not isinstance(module, _ConvNd) or isinstance(
                module, CONV_WITH_ACTIVATION):
            continue
        if len(node.users) != 1 or not _is_add(next(iter(node.users))):
            continue
        removed.append(node.target)
        bypass_quant_node(prepared, node)
    if removed:
        prepared.recompile()
    return removed


@MODELS.register_module()
class NativeQuantizer(nn.Module):
    """Quantizer for torch's native (fbgemm / x86) int8 backend.

    Args:
        global_qconfig (dict): The 1.x ``global_qconfig`` (see
            :class:`QConfigHandler`).
        no_observer_modules (Sequence[str | type], optional): Module classes
            (or their import paths) whose inputs and outputs are left
            float.
        tracer (dict): The tracer config. Defaults to
            ``dict(type='mmrazor.CustomTracer')``.
        extra_redundant_fakequants (dict, optional):
            ``dict(extra_module_prefixes=(...), extra_fakequant_names=(...))``:
            activation fake-quants to remove after prepare - those that
            observe the output of a module whose path starts with one of
            ``extra_module_prefixes``, and those named in
            ``extra_fakequant_names`` (the names ``prepare`` gives,
            ``<observed node>_post_process``).
        is_qat (bool, optional): Accepted for 1.x configs; the prepared
            model is the same for PTQ and QAT (see the module docstring).

    Attributes:
        qconfig (QConfigHandler): The parsed ``global_qconfig``.
        backend_config (BackendConfig): Patterns and dtypes quantized.
        unsupported_ops (list[str]): Names of the graph nodes of the latest
            :meth:`prepare` that stay float because the backend has no
            quantized kernel for them.
    """
    #: Backend name used in messages.
    backend = 'native'

    def __init__(self,
                 global_qconfig: Dict,
                 no_observer_modules: Optional[Sequence[Any]] = None,
                 tracer: Union[Dict, CustomTracer] = dict(
                     type='mmrazor.CustomTracer'),
                 extra_redundant_fakequants: Optional[Dict] = None,
                 is_qat: Optional[bool] = None) -> None:
        super().__init__()
        self.qconfig = QConfigHandler(global_qconfig)
        self.check_qconfig(self.qconfig)
        self.no_observer_modules = [
            _resolve_class(c) for c in (no_observer_modules or [])
        ]
        self.tracer = (
            tracer if isinstance(tracer, fx.Tracer) else
            TASK_UTILS.build(tracer))
        self.extra_redundant_fakequants = self._check_redundant(
            extra_redundant_fakequants)
        self.is_qat = is_qat
        self.backend_config = self.build_backend_config()
        self.unsupported_ops: List[str] = []

    def build_backend_config(self) -> BackendConfig:
        """torch's native patterns with the ``global_qconfig``'s dtypes
        (see :func:`backend_config_for`)."""
        return backend_config_for(
            self.qconfig.a_qscheme.torch_dtype,
            self.qconfig.w_qscheme.torch_dtype, name=self.backend)

    @staticmethod
    def _check_redundant(cfg: Optional[Dict]) -> Dict[str, tuple]:
        cfg = dict(cfg or {})
        unknown = sorted(
            set(cfg) - {'extra_module_prefixes', 'extra_fakequant_names'})
        if unknown:
            raise KeyError('extra_redundant_fakequants has unknown key(s) '
                           f'{unknown}; the keys are extra_module_prefixes, '
                           'extra_fakequant_names')
        return dict(
            extra_module_prefixes=tuple(cfg.get('extra_module_prefixes', ())),
            extra_fakequant_names=tuple(cfg.get('extra_fakequant_names', ())))

    def check_qconfig(self, qconfig: QConfigHandler) -> None:
        """Raise if the backend cannot run ``qconfig``'s schemes.

        torch's kernels take 8-bit (or narrower) ranges; subclasses add the
        constraints of their runtime.
        """
        for prefix in ('w', 'a'):
            qscheme = getattr(qconfig, f'{prefix}_qscheme')
            if qscheme.bit > 8:
                raise ValueError(
                    f'{type(self).__name__}: {prefix}_qscheme bit='
                    f'{qscheme.bit} is not supported; FX fake-quant '
                    'preparation takes 1 to 8 bits')

    def qconfig_mapping(self) -> QConfigMapping:
        """The ``QConfigMapping``: ``global_qconfig`` everywhere, none on
        ``no_observer_modules``."""
        mapping = QConfigMapping().set_global(self.qconfig.convert())
        for cls in self.no_observer_modules:
            mapping.set_object_type(cls, None)
        return mapping

    def example_inputs(self, model: nn.Module) -> tuple:
        """Example inputs for ``prepare`` (only used for shape-free
        checks)."""
        return (torch.zeros(1), )

    def prepare(self,
                model: nn.Module,
                concrete_args: Optional[Dict[str, Any]] = None
                ) -> fx.GraphModule:
        """Trace ``model`` and insert fake-quants.

        Args:
            model (nn.Module): The float model. Its modules and parameters
                are shared with the returned graph module, not copied.
            concrete_args (dict, optional): Arguments fixed while tracing,
                e.g. ``{'mode': 'tensor'}``.

        Returns:
            fx.GraphModule: The prepared model. Its fake-quant / observer
            submodules are named ``<observed node>_post_process``.
        """
        graph = self.tracer.trace(model, concrete_args)
        graph_module = fx.GraphModule(model, graph,
                                      type(model).__name__)
        _attach_meta_to_node_if_not_exist(graph_module)
        pairs = conv_bn_pairs(graph_module)
        # a BN in eval mode in a model in train mode has frozen statistics
        frozen_bns = [
            bn for _, bn, _ in pairs if model.training and not bn.training
        ]
        with modules_in_bn_mode(pairs):
            graph_module = _fuse_fx(
                graph_module, True, backend_config=self.backend_config)
        self.unsupported_ops = self.find_unsupported_ops(graph_module)
        prepared = fx_prepare(
            graph_module,
            self.qconfig_mapping(),
            True,
            self.tracer.node_name_to_scope,
            example_inputs=self.example_inputs(model),
            backend_config=self.backend_config)
        self.rename_post_processes(prepared)
        self.remove_redundant_fakequants(prepared)
        self.match_runtime_fusions(prepared)
        use_exact_conv_bn_where_gamma_is_zero(prepared)
        freeze_fused_bn_statistics(prepared, frozen_bns)
        if self.unsupported_ops:
            MMLogger.get_current_instance().warning(
                f'{type(self).__name__} ({self.backend} backend): these ops '
                'have no quantized kernel and stay float: '
                f'{self.unsupported_ops}')
        return prepared

    def find_unsupported_ops(self, graph_module: fx.GraphModule) -> List[str]:
        """Names of the compute nodes no backend pattern covers.

        Args:
            graph_module (fx.GraphModule): The traced, fused model.

        Returns:
            list[str]: Node names (leaf method / function calls of the
            tracer and shape queries are not counted).
        """
        supported = supported_ops(self.backend_config)
        leaf_functions = getattr(self.tracer, 'leaf_functions', set())
        unsupported = []
        for node in graph_module.graph.nodes:
            if node.op == 'call_module':
                op = type(graph_module.get_submodule(node.target))
            elif node.op in ('call_function', 'call_method'):
                op = node.target
            else:
                continue
            leaf = isinstance(getattr(op, '__self__', None),
                              nn.Module) or op in leaf_functions
            if op in SHAPE_OPS or leaf:
                continue  # a shape query, or a leaf method / function
            if op in self.no_observer_modules or op is torch._assert or (
                    node.users and all(user.target is torch._assert
                                       for user in node.users)):
                continue  # the check of a traced-away argument (``mode``)
            try:
                known = op in supported
            except TypeError:  # unhashable target
                known = False
            if not known:
                unsupported.append(node.name)
        return unsupported

    @staticmethod
    def rename_post_processes(prepared: fx.GraphModule) -> None:
        """Name each fake-quant / observer after the node it observes.

        torch numbers them in insertion order; named after their input they
        are the same in every trace of the same code (the forward modes of
        :class:`MMArchitectureQuant` share them by name).
        """
        taken = set(dict(prepared.named_children()))
        for node in activation_quant_nodes(prepared):
            module = prepared.get_submodule(node.target)
            base = node.args[0].name + POST_PROCESS_SUFFIX
            name, index = base, 1
            while name in taken and name != node.target:
                name, index = f'{base}_{index}', index + 1
            if name == node.target:
                continue
            taken.discard(node.target)
            delattr(prepared, node.target)
            prepared.add_module(name, module)
            taken.add(name)
            node.target = name
        prepared.recompile()

    def match_runtime_fusions(self, prepared: fx.GraphModule) -> List[str]:
        """Remove the fake-quants that the backend's runtime skips when it
        fuses ops, so that the fake-quant model computes what the deployed
        one does. Nothing for torch's native backend (onnxruntime runs
        every quantize / dequantize pair of the file).

        Args:
            prepared (fx.GraphModule): The prepared model, changed in place.

        Returns:
            list[str]: The fake-quants removed.
        """
        return []

    def remove_redundant_fakequants(self, prepared: fx.GraphModule) -> None:
        """Remove the fake-quants named by ``extra_redundant_fakequants``."""
        prefixes = self.extra_redundant_fakequants['extra_module_prefixes']
        names = self.extra_redundant_fakequants['extra_fakequant_names']
        if not prefixes and not names:
            return
        for node in activation_quant_nodes(prepared):
            source = node.args[0]
            by_prefix = (
                source.op == 'call_module'
                and str(source.target).startswith(prefixes) and prefixes)
            if node.target in names or by_prefix:
                bypass_quant_node(prepared, node)
        prepared.recompile()


@MODELS.register_module()
class AcademicQuantizer(NativeQuantizer):
    """Quantizer for fake-quant experiments: any scheme of 1 to 8 bits
    (e.g. 4-bit weights, 8-bit activations), signed or unsigned,
    symmetric or affine, per-tensor or per-channel. Nothing is deployed.

    Args: see :class:`NativeQuantizer`.
    """
    backend = 'academic'


def _require(quantizer: str, key: str, value: Any, wanted: Any,
             why: str) -> None:
    if value != wanted:
        raise ValueError(f'{quantizer}: {key}={value!r} is not supported, '
                         f'it must be {wanted!r} ({why})')


@MODELS.register_module()
class OpenVINOQuantizer(NativeQuantizer):
    """Quantizer for OpenVINO (CPU): int8 weights per channel, symmetric
    (``qint8``, zero point 0); 8-bit activations, signed or unsigned, as the
    config says.

    Args:
        *args: See :class:`NativeQuantizer`.
        match_openvino (bool): Round as OpenVINO's CPU plugin does, so that
            the fake-quant model agrees with OpenVINO exactly: a conv that
            feeds an addition has its output added unrounded (no quantizer
            between them, see :func:`remove_quantizers_before_fused_adds`),
            and averaging ops get a quantizer of their own (no ties, which
            OpenVINO rounds up, see :data:`~.backend.AVERAGING_OPS`). Costs:
            onnxruntime runs those convs in float (it needs a quantized
            conv output for ``QLinearConv``), and the extra quantizers cost
            LSQ QAT accuracy on MobileNetV2. Defaults to False.
        **kwargs: See :class:`NativeQuantizer`.
    """
    backend = 'openvino'

    def __init__(self, *args, match_openvino: bool = False, **kwargs) -> None:
        if not isinstance(match_openvino, bool):
            raise TypeError('OpenVINOQuantizer: match_openvino must be a '
                            f'bool, got {match_openvino!r}')
        # (read by build_backend_config, which NativeQuantizer calls)
        self.match_openvino = match_openvino
        super().__init__(*args, **kwargs)

    def build_backend_config(self) -> BackendConfig:
        """As :class:`NativeQuantizer`'s; with ``match_openvino`` the
        averaging ops get a quantizer of their own."""
        return backend_config_for(
            self.qconfig.a_qscheme.torch_dtype,
            self.qconfig.w_qscheme.torch_dtype, name=self.backend,
            averaging_own_quantizer=self.match_openvino)

    def match_runtime_fusions(self, prepared: fx.GraphModule) -> List[str]:
        """With ``match_openvino``, see
        :func:`remove_quantizers_before_fused_adds`.

        Args:
            prepared (fx.GraphModule): The prepared model, changed in place.

        Returns:
            list[str]: The fake-quants removed.
        """
        if not self.match_openvino:
            return []
        return remove_quantizers_before_fused_adds(prepared)

    def check_qconfig(self, qconfig: QConfigHandler) -> None:
        name = type(self).__name__
        w, a = qconfig.w_qscheme, qconfig.a_qscheme
        why = 'OpenVINO runs per-channel symmetric int8 weights'
        _require(name, 'w_qscheme.qdtype', w.qdtype, 'qint8', why)
        _require(name, 'w_qscheme.bit', w.bit, 8, why)
        _require(name, 'w_qscheme.is_symmetry', w.is_symmetry, True, why)
        _require(name, 'w_observer (per channel)', w.is_per_channel, True,
                 why + ': use a PerChannel observer')
        _require(name, 'a_qscheme.bit', a.bit, 8, 'OpenVINO runs 8-bit '
                 'activations')


@MODELS.register_module()
class TensorRTQuantizer(NativeQuantizer):
    """Quantizer for TensorRT's explicit int8 mode: int8 weights per
    channel, symmetric; int8 activations symmetric and signed (``qint8``,
    zero point 0).

    It builds and calibrates on any machine (fake-quant); deploying the
    result needs TensorRT, i.e. an NVIDIA GPU.

    Args: see :class:`NativeQuantizer`.
    """
    backend = 'tensorrt'

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not torch.cuda.is_available():
            MMLogger.get_current_instance().info(
                'TensorRTQuantizer: no CUDA GPU here; the fake-quant model '
                'calibrates and evaluates on CPU, but deploying it to '
                'TensorRT needs an NVIDIA GPU')

    def check_qconfig(self, qconfig: QConfigHandler) -> None:
        name = type(self).__name__
        w, a = qconfig.w_qscheme, qconfig.a_qscheme
        why = 'TensorRT runs per-channel symmetric int8 weights'
        _require(name, 'w_qscheme.qdtype', w.qdtype, 'qint8', why)
        _require(name, 'w_qscheme.bit', w.bit, 8, why)
        _require(name, 'w_qscheme.is_symmetry', w.is_symmetry, True, why)
        _require(name, 'w_observer (per channel)', w.is_per_channel, True,
                 why + ': use a PerChannel observer')
        why = 'TensorRT runs symmetric signed int8 activations'
        _require(name, 'a_qscheme.qdtype', a.qdtype, 'qint8', why)
        _require(name, 'a_qscheme.bit', a.bit, 8, why)
        _require(name, 'a_qscheme.is_symmetry', a.is_symmetry, True, why)
