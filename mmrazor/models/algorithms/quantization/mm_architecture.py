"""``MMArchitectureQuant``: an OpenMMLab model with fake-quants (1.x).

The float ``architecture`` is traced once per forward mode (``'tensor'``,
``'predict'``, ``'loss'``) by the quantizer; the prepared graphs
(``qmodels``) share their modules - weights, fused conv-bn modules,
weight fake-quants and the activation fake-quants of the common part of
the graphs - so calibrating or training in one mode quantizes them all.
"""
from contextlib import contextmanager
from typing import (Any, Callable, Dict, Iterator, List, Optional, Sequence,
                    Tuple, Union)

import torch
from mmengine.model import MMDistributedDataParallel
from torch import fx, nn

from mmrazor.models.quantizers.native_quantizer import \
    use_exact_conv_bn_where_gamma_is_zero
from mmrazor.registry import MODEL_WRAPPERS, MODELS
from ..base import BaseAlgorithm

FORWARD_MODES = ('tensor', 'predict', 'loss')
ARCHITECTURE_PREFIX = 'architecture.'


def load_float_checkpoint(model: nn.Module, path: str) -> None:
    """Load a local float checkpoint into ``model`` (strictly).

    The file is read with ``weights_only=True`` (mmrazor's safe loader).
    A checkpoint of an mmrazor algorithm (keys ``architecture.*``) gives
    its architecture's weights.

    Args:
        model (nn.Module): The float model.
        path (str): A local file; a URL is refused (nothing is downloaded).
    """
    from mmrazor.utils import safe_torch_load
    if not isinstance(path, str):
        raise TypeError(f'float_checkpoint must be a path, got {path!r}')
    if '://' in path:
        raise ValueError(
            f'float_checkpoint={path!r} is a URL; mmrazor downloads nothing. '
            'Download the checkpoint yourself and pass its local path, e.g. '
            '`--cfg-options model.float_checkpoint=/path/to/float.pth` (or '
            'give it to tools/ptq.py as CHECKPOINT)')
    checkpoint = safe_torch_load(path, map_location='cpu')
    state_dict = checkpoint.get('state_dict', checkpoint) \
        if isinstance(checkpoint, dict) else checkpoint
    if not isinstance(state_dict, dict):
        raise TypeError(f'float_checkpoint {path!r} holds no state dict '
                        f'(got {type(state_dict).__name__})')
    if any(k.startswith(ARCHITECTURE_PREFIX) for k in state_dict):
        state_dict = {
            k[len(ARCHITECTURE_PREFIX):]: v
            for k, v in state_dict.items() if k.startswith(ARCHITECTURE_PREFIX)
        }
    model.load_state_dict(state_dict, strict=True)
    # the runner's init_weights() must not re-initialise it
    model._is_init = True


def _set_submodule(root: nn.Module, path: str, module: nn.Module) -> None:
    parent_path, _, name = path.rpartition('.')
    parent = root.get_submodule(parent_path) if parent_path else root
    setattr(parent, name, module)


def share_submodules(source: fx.GraphModule,
                     target: fx.GraphModule) -> List[str]:
    """Make ``target`` call ``source``'s module wherever both graphs call a
    module of the same path and type.

    Args:
        source (fx.GraphModule): The graph whose modules are kept.
        target (fx.GraphModule): The graph changed in place.

    Returns:
        list[str]: The module paths of ``target`` that stay its own.
    """
    own = []
    for node in target.graph.nodes:
        if node.op != 'call_module':
            continue
        mine = target.get_submodule(node.target)
        try:
            theirs = source.get_submodule(node.target)
        except AttributeError:
            own.append(node.target)
            continue
        if theirs is mine:
            continue
        if type(theirs) is not type(mine):
            own.append(node.target)
            continue
        _set_submodule(target, node.target, theirs)
    return own


@contextmanager
def modes_restored(model: nn.Module) -> Iterator[None]:
    """Restore the train / eval mode of each module of ``model`` on exit.

    Args:
        model (nn.Module): The model.
    """
    modes = [(module, module.training) for module in model.modules()]
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training


#: ``(module of a qmodel, kind, name, module of the architecture, its
#: name)``: the module's ``kind`` (``'_parameters'`` or ``'_buffers'``)
#: entry ``name`` is the architecture module's tensor of that name.
TiedTensor = Tuple[nn.Module, str, str, nn.Module, str]


def find_tied_tensors(owner: nn.Module,
                      borrowers: nn.Module) -> List[TiedTensor]:
    """The parameters and buffers of ``borrowers``' modules that are
    tensors of ``owner``'s modules (e.g. the BN statistics a fused QAT
    conv-bn module takes from the float model's BN).

    Args:
        owner (nn.Module): The model whose tensors are borrowed.
        borrowers (nn.Module): The model borrowing them.

    Returns:
        list[TiedTensor]: One entry per borrowed tensor reference.
    """
    owners = {}
    for module in owner.modules():
        for kind in ('_parameters', '_buffers'):
            for name, tensor in getattr(module, kind).items():
                if tensor is not None:
                    owners[id(tensor)] = (kind, name, module)
    owner_modules = {id(m) for m in owner.modules()}
    tied = []
    for module in borrowers.modules():
        if id(module) in owner_modules:
            continue  # the very same module: nothing to re-tie
        for kind in ('_parameters', '_buffers'):
            for name, tensor in getattr(module, kind).items():
                found = owners.get(id(tensor)) if tensor is not None else None
                if found is not None and found[0] == kind:
                    tied.append((module, kind, name, found[2], found[1]))
    return tied


@MODELS.register_module()
class MMArchitectureQuant(BaseAlgorithm):
    """An OpenMMLab model with fake-quants, one prepared graph per forward
    mode (the 1.x algorithm).

    Args:
        architecture (dict | nn.Module): The float model.
        quantizer (dict | nn.Module): The quantizer, e.g.
            ``dict(type='mmrazor.OpenVINOQuantizer', global_qconfig=...,
            tracer=dict(type='mmrazor.CustomTracer', skipped_methods=...))``.
        data_preprocessor (dict | nn.Module, optional): Defaults to the
            architecture's.
        forward_modes (Sequence[str]): The modes traced, from
            ``'tensor'``, ``'predict'``, ``'loss'``. Defaults to all three.
        float_checkpoint (str, optional): A local float checkpoint loaded
            into the architecture before tracing (``weights_only=True``; a
            URL is refused).
        input_shapes (tuple): Input shape for export and deployment.
            Defaults to ``(1, 3, 224, 224)``.
        init_cfg (dict, optional): Initialisation config.
        deploy_cfg (dict, optional): The mmdeploy config of the 1.x
            configs, kept as ``self.deploy_cfg`` for export.

    Attributes:
        qmodels (nn.ModuleDict): The prepared graph of each forward mode.
        unsupported_ops (dict[str, list[str]]): Per mode, the ops left float.
    """

    def __init__(self,
                 architecture: Union[Dict, nn.Module],
                 quantizer: Union[Dict, nn.Module],
                 data_preprocessor: Optional[Union[Dict, nn.Module]] = None,
                 forward_modes: Sequence[str] = FORWARD_MODES,
                 float_checkpoint: Optional[str] = None,
                 input_shapes: Sequence[int] = (1, 3, 224, 224),
                 init_cfg: Optional[Dict] = None,
                 deploy_cfg: Optional[Dict] = None) -> None:
        super().__init__(architecture, data_preprocessor, init_cfg)
        if isinstance(forward_modes, str):
            forward_modes = (forward_modes, )
        bad = [m for m in forward_modes if m not in FORWARD_MODES]
        if bad or not forward_modes:
            raise ValueError(f'MMArchitectureQuant: forward_modes='
                             f'{tuple(forward_modes)!r}; each must be one of '
                             f'{FORWARD_MODES}')
        if (not isinstance(input_shapes, (tuple, list)) or not all(
                isinstance(s, int) and s > 0 for s in input_shapes)):
            raise ValueError('MMArchitectureQuant: input_shapes must be a '
                             f'tuple of positive ints, got {input_shapes!r}')
        self.forward_modes = tuple(forward_modes)
        self.input_shapes = tuple(input_shapes)
        self.deploy_cfg = deploy_cfg
        self.float_checkpoint = float_checkpoint
        if float_checkpoint is not None:
            load_float_checkpoint(self.architecture, float_checkpoint)
        self.quantizer = (
            quantizer if isinstance(quantizer, nn.Module) else
            MODELS.build(quantizer))
        self.unsupported_ops: Dict[str, List[str]] = {}
        self.qmodels = self._build_qmodels(self.architecture)
        self._tied_tensors = find_tied_tensors(self.architecture,
                                               self.qmodels)

    def init_weights(self) -> None:
        """Initialise the architecture (unless a float checkpoint was
        loaded), then give the fused conv-bn modules whose BN weight is now
        0 (``zero_init_residual``) torch's exact QAT path, which does not
        divide by it."""
        super().init_weights()
        use_exact_conv_bn_where_gamma_is_zero(self.qmodels)

    def _apply(self, fn: Callable, *args, **kwargs) -> 'MMArchitectureQuant':
        """``nn.Module._apply`` (``.to()``, ``.cuda()``, ``.double()``...),
        then tie the qmodels' borrowed tensors to the architecture's again.

        torch converts each module's buffers on their own, so without this
        a fused QAT conv-bn module and the float model's BN would keep
        separate copies of the BN statistics after a move to the GPU: QAT
        would update one and the float model (``QATValLoop``'s
        ``original.*`` metrics) read the other.
        """
        super()._apply(fn, *args, **kwargs)
        for module, kind, name, owner, owner_name in getattr(
                self, '_tied_tensors', ()):
            getattr(module, kind)[name] = getattr(owner, kind)[owner_name]
        return self

    def train(self, mode: bool = True) -> 'MMArchitectureQuant':
        """``nn.Module.train``, then the architecture's own ``train`` once
        more: the qmodels share the architecture's modules, and an
        architecture that keeps some of them in eval mode while training
        (mmcv's ``norm_eval``, frozen stages) must find them so after the
        qmodels were switched.

        Args:
            mode (bool): Train (True) or eval (False) mode.

        Returns:
            MMArchitectureQuant: ``self``.
        """
        super().train(mode)
        self.architecture.train(mode)
        return self

    def _build_qmodels(self, model: nn.Module) -> nn.ModuleDict:
        """Prepare one graph per forward mode, the model in train mode (its
        own ``train`` decides which BNs keep frozen statistics, see
        ``native_quantizer.freeze_fused_bn_statistics``); the modules'
        modes are restored afterwards."""
        qmodels = nn.ModuleDict()
        first = None
        with modes_restored(model):
            model.train()
            for mode in self.forward_modes:
                prepared = self.quantizer.prepare(model, {'mode': mode})
                self.unsupported_ops[mode] = list(
                    self.quantizer.unsupported_ops)
                if first is None:
                    first = prepared
                else:
                    share_submodules(first, prepared)
                qmodels[mode] = prepared
        return qmodels

    def forward(self,
                inputs: torch.Tensor,
                data_samples: Optional[List[Any]] = None,
                mode: str = 'tensor') -> Any:
        """Run the prepared graph of ``mode``.

        Args:
            inputs (Tensor): Preprocessed inputs.
            data_samples (list, optional): Annotations.
            mode (str): ``'tensor'``, ``'predict'`` or ``'loss'``.

        Returns:
            The architecture's output in ``mode``, fake-quantized.
        """
        if mode not in self.qmodels:
            raise RuntimeError(
                f'MMArchitectureQuant: mode {mode!r} was not traced; '
                f'forward_modes={self.forward_modes}')
        return self.qmodels[mode](inputs, data_samples, mode)

    def calibrate_step(self, data: Union[Dict, tuple, list]) -> Any:
        """Preprocess ``data`` and run it through the ``'tensor'`` graph
        (or the first one traced), without gradients."""
        data = self.data_preprocessor(data, False)
        mode = 'tensor' if 'tensor' in self.qmodels else self.forward_modes[0]
        with torch.no_grad():
            if isinstance(data, dict):
                return self(**data, mode=mode)
            return self(*data, mode=mode)


@MODEL_WRAPPERS.register_module()
class MMArchitectureQuantDDP(MMDistributedDataParallel):
    """mmengine's ``MMDistributedDataParallel`` for
    :class:`MMArchitectureQuant` (the 1.x name). Distributed runs need a
    process group (one GPU per process, or gloo on CPU).

    Args:
        module (nn.Module): The algorithm.
        **kwargs: Those of ``MMDistributedDataParallel``.
    """

    def calibrate_step(self, data: Union[Dict, tuple, list]) -> Any:
        """See :meth:`MMArchitectureQuant.calibrate_step`."""
        return self.module.calibrate_step(data)
