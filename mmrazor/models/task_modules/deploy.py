"""Deploy a pruned (or searched) model as a portable artefact, and check it.

:func:`deploy_pruned` physically prunes a model to a channel config, checks
that the smaller model computes what the masked one computed, and writes a
folder (the *artefact*) that holds:

* ``model_config.py`` or ``model_spec.json``: how to build the original
  (unpruned) model: a copy of its config, or a small JSON spec (e.g. a
  torchvision model name);
* ``channel_cfg.yaml``: the channel config (layer -> in/out channels), as
  :meth:`StructurePruner.export_subnet` writes it;
* ``structure.json``: the size attributes of every resized layer
  (:func:`structure_of`);
* ``pruned_state_dict.pth``: the sliced weights, a plain ``state_dict``
  loadable with ``torch.load(..., weights_only=True)`` (never a pickled
  module);
* ``model.onnx`` when asked for (needs ``onnx``, ``onnxscript`` and
  ``onnxruntime``);
* ``deploy_report.json``: sizes and the output checks (:class:`DeployReport`).

:func:`save_deployed` writes the first four files of an already deployed
model. :func:`load_deployed` reads them back into a freshly built original
model; like the artefact itself it needs only torch: it uses nothing of
mmrazor and can be copied into a serving code base as it is.

The pruner lives in :mod:`mmrazor.models.pruners`, which itself imports the
channel analysis of this package, so it is imported inside the functions
that need it, never when this module is imported.
"""
import copy
import importlib.util
import json
import os
import os.path as osp
import random
import shutil
from dataclasses import dataclass, field
from typing import (Any, Callable, Dict, List, Optional, Sequence, Tuple,
                    Union)

import torch
from torch import nn

from mmrazor.utils import atomic_write_bytes
from .channel_analysis import LayerRecord, handler_of
from .channel_analysis.layer_handlers import REPLACED_BY_KEY
from .channel_analysis.structure_attrs import PRUNED_ATTRS_KEY

__all__ = [
    'DeployReport', 'deploy_pruned', 'save_deployed', 'load_deployed',
    'structure_of', 'first_mismatch', 'missing_onnx_packages', 'load_weights'
]

#: File names inside an artefact folder.
MODEL_CONFIG_FILE = 'model_config.py'
MODEL_SPEC_FILE = 'model_spec.json'
CHANNEL_CFG_FILE = 'channel_cfg.yaml'
STRUCTURE_FILE = 'structure.json'
STATE_DICT_FILE = 'pruned_state_dict.pth'
ONNX_FILE = 'model.onnx'
REPORT_FILE = 'deploy_report.json'

#: What ``--onnx`` / ``onnx=True`` needs installed.
ONNX_PACKAGES = ('onnx', 'onnxscript', 'onnxruntime')

# ------------------------------------------------ torch-only loading side

#: ``structure.json`` key of a module the deployment replaced by a plain
#: ``torch.nn`` layer: ``{'class': name, 'kwargs': constructor arguments}``.
TORCH_NN_KEY = '__torch_nn__'
#: The ``torch.nn`` classes an artefact may ask ``load_deployed`` to build,
#: with the attributes that are their constructor's arguments.
_BUILDABLE = {
    cls: ('in_channels', 'out_channels', 'kernel_size', 'stride', 'padding',
          'dilation', 'groups', 'padding_mode')
    for cls in ('Conv1d', 'Conv2d', 'Conv3d')
}


def _build_torch_nn(spec: Dict[str, Any], name: str) -> nn.Module:
    """The plain ``torch.nn`` layer of a ``structure.json`` entry."""
    cls = spec.get('class')
    if cls not in _BUILDABLE:
        raise ValueError(f'structure.json: {name!r} asks for torch.nn.'
                         f'{cls}, not one of {sorted(_BUILDABLE)}')
    kwargs = {
        k: tuple(v) if isinstance(v, list) else v
        for k, v in spec['kwargs'].items()
    }
    return getattr(nn, cls)(**kwargs)



def load_deployed(model: nn.Module, artefact_dir: str) -> nn.Module:
    """Resize a freshly built original model to a deployed artefact and
    load its weights.

    Uses torch only (the weights are read with ``weights_only=True``), so
    the artefact runs without mmrazor.

    Args:
        model (nn.Module): The original (unpruned) model, built as the
            artefact's ``model_config.py`` / ``model_spec.json`` says.
        artefact_dir (str): A folder written by :func:`save_deployed` or
            :func:`deploy_pruned`.

    Returns:
        nn.Module: ``model`` itself, resized and loaded, in eval mode.

    Raises:
        KeyError: ``structure.json`` names a module the model lacks.
        ValueError: ``structure.json`` asks for a ``torch.nn`` class other
            than a convolution.
        RuntimeError: The weights do not fit the resized model
            (from :meth:`nn.Module.load_state_dict`).
    """
    with open(osp.join(artefact_dir, STRUCTURE_FILE)) as f:
        structure = json.load(f)
    state = torch.load(
        osp.join(artefact_dir, STATE_DICT_FILE),
        map_location='cpu',
        weights_only=True)
    modules = dict(model.named_modules())
    for name, attrs in structure.items():
        if name not in modules:
            raise KeyError(f'structure.json: the model has no module '
                           f'{name!r}')
        attrs = dict(attrs)
        spec = attrs.pop(TORCH_NN_KEY, None)
        if spec is not None:  # e.g. a folded weight-standardised conv
            new = _build_torch_nn(spec, name)
            parent, _, child = name.rpartition('.')
            setattr(model.get_submodule(parent), child, new)
            modules[name] = new  # a conv has no submodules
        module = modules[name]
        for attr, value in attrs.items():
            setattr(module, attr,
                    tuple(value) if isinstance(value, list) else value)
    # Resize parameters and buffers to the stored shapes.
    for key, value in state.items():
        owner_name, _, attr = key.rpartition('.')
        owner = modules.get(owner_name)
        if owner is None:
            continue
        param = owner._parameters.get(attr)
        buffer = owner._buffers.get(attr)
        if param is not None and param.shape != value.shape:
            owner._parameters[attr] = nn.Parameter(
                torch.empty_like(value), requires_grad=param.requires_grad)
        elif buffer is not None and buffer.shape != value.shape:
            owner._buffers[attr] = torch.empty_like(value)
    model.load_state_dict(state)
    return model.eval()


# ------------------------------------------------------------ deploy side


def structure_of(model: nn.Module) -> Dict[str, Dict[str, Any]]:
    """Size attributes of every layer with channel weights, as its layer
    handler names them (``LayerHandler.size_attrs``: ``in_channels``,
    ``out_channels`` and ``groups`` of convs, ``in_features`` and
    ``out_features`` of linears, ``num_features`` of batch/instance norms,
    ``num_channels`` and ``num_groups`` of group norms, ``normalized_shape``
    of layer norms, ``num_parameters`` of PReLUs, ...), and the attributes
    a deployment rewrote on other modules (``num_heads`` of attention
    modules, ``splits`` of mixed-kernel convs). A layer the deployment
    replaced by a plain ``torch.nn`` conv (a weight-standardised conv with
    pruned inputs) also gets ``__torch_nn__``: its class and constructor
    arguments, which :func:`load_deployed` builds in its place.

    Args:
        model (nn.Module): A (deployed) model.

    Returns:
        dict[str, dict[str, Any]]: Module name -> ``{attr: value}``, with
        tuples as lists (JSON-ready).
    """
    out = {}
    for name, module in model.named_modules():
        handler = handler_of(module)
        # attributes a deployment rewrote on a module that is not a layer
        # (``num_heads`` of an attention module, ``splits`` of a mixed conv)
        names = tuple(handler.size_attrs) if handler is not None else ()
        names += tuple(module.__dict__.get(PRUNED_ATTRS_KEY, ()))
        if not names:
            continue
        attrs = {}
        for attr in names:
            value = getattr(module, attr)
            attrs[attr] = list(value) if isinstance(value,
                                                    (tuple, list)) else value
        cls = module.__dict__.get(REPLACED_BY_KEY)
        if cls in _BUILDABLE:
            kwargs = {k: getattr(module, k) for k in _BUILDABLE[cls]}
            kwargs = {k: list(v) if isinstance(v, tuple) else v
                      for k, v in kwargs.items()}
            kwargs['bias'] = module.bias is not None
            attrs[TORCH_NN_KEY] = {'class': cls, 'kwargs': kwargs}
        out[name] = attrs
    return out


def missing_onnx_packages() -> List[str]:
    """The packages that ONNX export and its check need but are not
    installed.

    Returns:
        list[str]: Missing names among ``onnx``, ``onnxscript`` and
        ``onnxruntime`` (empty when all are installed).
    """
    return [
        name for name in ONNX_PACKAGES
        if importlib.util.find_spec(name) is None
    ]


def load_weights(model: nn.Module, path: str) -> nn.Module:
    """Load the weights of the unpruned model from a checkpoint file.

    Args:
        model (nn.Module): The model to load into.
        path (str): A plain ``state_dict`` or ``{'state_dict': ...}``,
            e.g. a Runner checkpoint (read with ``weights_only=True`` and
            mmrazor's allow-list).

    Returns:
        nn.Module: ``model`` itself.

    Raises:
        RuntimeError: The weights do not fit the model.
    """
    from mmrazor.utils.checkpoint import safe_torch_load

    # a Runner checkpoint holds its message hub too: the allow-list of
    # safe_torch_load admits it, with weights_only=True
    state = safe_torch_load(path, map_location='cpu')
    if isinstance(state, dict) and 'state_dict' in state:
        state = state['state_dict']
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        if 'size mismatch' not in str(err):
            raise
        raise RuntimeError(
            f'{path}: its weights do not have the unpruned shapes of '
            f'{type(model).__name__} (a deployed / sliced checkpoint?); '
            'give the checkpoint of the unpruned or the masked fine-tuned '
            f'model (e.g. finetune/epoch_N.pth of tools/prune.py).\n{err}'
        ) from err
    return model


def save_deployed(model: nn.Module,
                  channel_cfg: Dict[str, Dict[str, Any]],
                  out_dir: str,
                  model_config: Optional[str] = None,
                  model_spec: Optional[Dict[str, Any]] = None) -> List[str]:
    """Write the artefact files of an already deployed (physically
    pruned) model.

    Args:
        model (nn.Module): The deployed model.
        channel_cfg (dict): Its channel config, as
            :meth:`StructurePruner.export_subnet` returns it.
        out_dir (str): The artefact folder (created when missing).
        model_config (str, optional): A config file that builds the
            original model; copied to ``model_config.py``.
        model_spec (dict, optional): A JSON-ready description of how to
            build the original model instead (e.g.
            ``{'torchvision': 'resnet18'}``); written to
            ``model_spec.json``.

    Returns:
        list[str]: The paths written.

    Raises:
        ValueError: Not exactly one of ``model_config`` and ``model_spec``
            is given.
    """
    if (model_config is None) == (model_spec is None):
        raise ValueError('give exactly one of model_config (a config file) '
                         'and model_spec (a dict) to say how the original '
                         'model is built')
    from mmrazor.models.pruners import dump_channel_cfg
    os.makedirs(out_dir, exist_ok=True)
    written = []
    if model_config is not None:
        path = osp.join(out_dir, MODEL_CONFIG_FILE)
        shutil.copyfile(model_config, path)
    else:
        path = osp.join(out_dir, MODEL_SPEC_FILE)
        with open(path, 'w') as f:
            json.dump(model_spec, f)
    written.append(path)
    path = osp.join(out_dir, CHANNEL_CFG_FILE)
    dump_channel_cfg(channel_cfg, path)
    written.append(path)
    path = osp.join(out_dir, STRUCTURE_FILE)
    with open(path, 'w') as f:
        json.dump(structure_of(model), f, indent=1)
    written.append(path)
    path = osp.join(out_dir, STATE_DICT_FILE)
    torch.save(model.state_dict(), path)
    written.append(path)
    return written


# Keys of ``deploy_report.json``, in the order they are written.
_REPORT_KEYS = ('input_shape', 'params_before', 'params_after',
                'max_diff_deployed_vs_masked', 'stale_attributes',
                'first_mismatch', 'torch_version',
                'max_diff_reloaded_vs_masked', 'stale_attributes_reloaded',
                'onnx', 'max_diff_onnxruntime_vs_masked',
                'onnx_channel_block', 'onnx_padded_groups',
                'max_diff_padded_vs_masked', 'onnx_padding_refused')
#: Keys written only when set (ONNX export, channel padding).
_OPTIONAL_KEYS = ('onnx', 'max_diff_onnxruntime_vs_masked',
                  'onnx_channel_block', 'onnx_padded_groups',
                  'max_diff_padded_vs_masked', 'onnx_padding_refused')
_DIFF_KEYS = ('max_diff_deployed_vs_masked', 'max_diff_reloaded_vs_masked',
              'max_diff_onnxruntime_vs_masked')


@dataclass
class DeployReport:
    """What :func:`deploy_pruned` measured (``deploy_report.json``).

    Args:
        out_dir (str): The artefact folder.
        atol (float): The tolerance of the output checks.
        input_shape (list[int]): The dummy input's shape.
        params_before (int): Parameters of the unpruned model.
        params_after (int): Parameters of the deployed model.
        max_diff_deployed_vs_masked (float): Largest output difference of
            the deployed model from the masked one.
        stale_attributes (list[str]): Modules of the deployed model whose
            size attributes disagree with their weights.
        first_mismatch (str, optional): The first layer (in execution
            order) whose deployed output differs from the masked one.
        torch_version (str): ``torch.__version__``.
        max_diff_reloaded_vs_masked (float): The same difference for the
            artefact loaded back into a fresh model (:func:`load_deployed`).
        stale_attributes_reloaded (list[str]): Stale modules of that model.
        onnx (str, optional): The ONNX file, when exported.
        max_diff_onnxruntime_vs_masked (float, optional): The output
            difference of the ONNX model run in onnxruntime.
        onnx_channel_block (int, optional): The block the ONNX model's
            channel counts were padded to.
        onnx_padded_groups (dict, optional): Group -> ``[kept, exported]``
            channels of the groups padded in the ONNX model.
        max_diff_padded_vs_masked (float, optional): The output difference
            of the padded model (in torch) from the masked one.
        onnx_padding_refused (str, optional): Why the ONNX model is not
            padded after all (the padded model computed something else).
    """
    out_dir: str
    atol: float
    input_shape: List[int]
    params_before: int
    params_after: int
    max_diff_deployed_vs_masked: float
    stale_attributes: List[str]
    first_mismatch: Optional[str]
    torch_version: str
    max_diff_reloaded_vs_masked: float = 0.0
    stale_attributes_reloaded: List[str] = field(default_factory=list)
    onnx: Optional[str] = None
    max_diff_onnxruntime_vs_masked: Optional[float] = None
    onnx_channel_block: Optional[int] = None
    onnx_padded_groups: Optional[Dict[str, List[int]]] = None
    max_diff_padded_vs_masked: Optional[float] = None
    onnx_padding_refused: Optional[str] = None

    def to_dict(self) -> Dict[str, Any]:
        """The content of ``deploy_report.json``.

        Returns:
            dict: The measurements (the ONNX entries only when exported).
        """
        out = {}
        for key in _REPORT_KEYS:
            value = getattr(self, key)
            if key in _OPTIONAL_KEYS and value is None:
                continue
            out[key] = value
        return out

    @property
    def problems(self) -> List[str]:
        """What failed: stale modules, the first differing layer and the
        output differences above ``atol`` (empty when the checks pass)."""
        problems = list(self.stale_attributes) + list(
            self.stale_attributes_reloaded)
        if self.first_mismatch:
            problems.append('first layer that differs: ' +
                            self.first_mismatch)
        for key in _DIFF_KEYS:
            value = getattr(self, key)
            if value is not None and value > self.atol:
                problems.append(f'{key}={value:.3g} > atol={self.atol}')
        return problems

    @property
    def ok(self) -> bool:
        """Whether every check passed."""
        return not self.problems


def _max_diff(a: Any, b: Any) -> float:
    """Largest absolute difference of two (nested) outputs."""
    if isinstance(a, torch.Tensor):
        return (a.float() - b.float()).abs().max().item()
    if isinstance(a, (list, tuple)):
        return max([_max_diff(x, y) for x, y in zip(a, b)] or [0.0])
    if isinstance(a, dict):
        return max([_max_diff(a[k], b[k]) for k in a] or [0.0])
    return 0.0


def _forward(model: nn.Module, x: torch.Tensor) -> Any:
    """Run ``model`` (its ``forward_dummy`` when it has one) without
    autograd."""
    with torch.no_grad():
        if hasattr(model, 'forward_dummy'):
            return model.forward_dummy(x)
        return model(x)


class _LayerRecorder:
    """Records the outputs of the analysed layers, to name the first layer
    whose deployed output differs from the masked one.

    Args:
        layers (dict[str, LayerRecord]): The layers of the channel analysis.
    """

    def __init__(self, layers: Dict[str, LayerRecord]) -> None:
        self.layers = layers
        self.outputs: Dict[str, torch.Tensor] = {}
        self.order: List[str] = []
        self.handles: list = []

    def start(self, root: Optional[nn.Module] = None) -> None:
        """Hook the layers; forget earlier outputs.

        Args:
            root (nn.Module, optional): The analysed model, after
                deployment: its layers are looked up by name (deployment
                may have put new modules in their places).
        """
        self.outputs, self.order = {}, []
        for name, rec in self.layers.items():
            if rec.kind == 'structure':
                continue  # a module's size attributes, not a layer
            module = rec.module if root is None else root.get_submodule(
                name)

            def hook(mod, inp, out, name=name):
                if isinstance(out, torch.Tensor) and name not in \
                        self.outputs:
                    self.outputs[name] = out.detach().clone()
                    self.order.append(name)

            self.handles.append(module.register_forward_hook(hook))

    def stop(self) -> Dict[str, torch.Tensor]:
        """Remove the hooks.

        Returns:
            dict[str, torch.Tensor]: Layer name -> its first output.
        """
        for handle in self.handles:
            handle.remove()
        self.handles = []
        return dict(self.outputs)


def first_mismatch(masked: Dict[str, torch.Tensor], order: List[str],
                   deployed: Dict[str, torch.Tensor], layer_masks: Dict,
                   layers: Dict[str, LayerRecord],
                   atol: float) -> Optional[str]:
    """The first layer (in execution order) whose deployed output differs
    from its masked output restricted to the kept channels.

    Args:
        masked (dict[str, torch.Tensor]): Layer outputs of the masked model.
        order (list[str]): The layers in the order they ran.
        deployed (dict[str, torch.Tensor]): Layer outputs of the deployed
            model.
        layer_masks (dict): Layer name -> ``(in_keep, out_keep)`` flags, as
            the pruner's ``_layer_masks`` returns them.
        layers (dict[str, LayerRecord]): The analysed layers (for their
            channel dimension).
        atol (float): The tolerance.

    Returns:
        str | None: ``'name: why'``, or None when every layer agrees.
    """
    for name in order:
        if name not in deployed:
            return f'{name} (did not run in the deployed model)'
        keep = layer_masks[name][1]
        ref = masked[name]
        dim = layers[name].out_dim % ref.dim()
        if ref.shape[dim] == len(keep):
            idx = torch.from_numpy(keep.nonzero()[0]).to(ref.device)
            ref = ref.index_select(dim, idx)
        got = deployed[name]
        if got.shape != ref.shape:
            return f'{name}: output shape {tuple(got.shape)}, expected ' \
                f'{tuple(ref.shape)}'
        diff = (got - ref).abs().max().item()
        if diff > atol:
            return f'{name}: max diff {diff:.3g}'
    return None


def _num_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _padded_copy(pruner: Any, to_pad: nn.Module, twin: Dict[int, nn.Module],
                 block: int, max_growth: float
                 ) -> Tuple[nn.Module, Dict[str, List[int]]]:
    """``to_pad`` (a copy of the analysed model) sliced to the pruner's
    masks padded to ``block``, the added channels silenced; and
    ``group -> [kept, exported]`` channels of the padded groups."""
    from mmrazor.models.pruners.channel_padding import (kept_channels,
                                                        slice_padded)
    dep, masks = pruner.dependency, pruner._masks
    padded = slice_padded(to_pad, dep, masks, block, max_growth, twin)
    groups = {
        name: [kept_channels(dep, name, masks[name]),
               kept_channels(dep, name, padded[name])]
        for name in masks if (padded[name] != masks[name]).any()
    }
    return to_pad.eval(), groups


def deploy_pruned(
    model: nn.Module,
    channel_cfg: Optional[Union[str, Dict[str, Any]]],
    out_dir: str,
    input_shape: Sequence[int] = (1, 3, 224, 224),
    *,
    model_config: Optional[str] = None,
    model_spec: Optional[Dict[str, Any]] = None,
    build_fresh: Optional[Callable[[], nn.Module]] = None,
    pruner_cfg: Optional[Dict[str, Any]] = None,
    except_start_keys: Optional[List[str]] = None,
    seed: int = 0,
    onnx: bool = False,
    atol: float = 1e-3,
    onnx_channel_block: int = 0,
    onnx_max_growth: float = 1.5,
) -> DeployReport:
    """Physically prune a model to a channel config, write the artefact
    and check it.

    The steps: analyse ``model`` with a :class:`StructurePruner`, set the
    subnet (masks), run the masked model on a random input, slice the
    weights (:meth:`StructurePruner.deploy_subnet`), run the deployed model
    on the same input, write the artefact (:func:`save_deployed`), load it
    into a fresh original model (:func:`load_deployed`) and run that,
    optionally export and run ONNX, and write ``deploy_report.json``.
    Failed checks do not raise: they are listed in the report's
    :attr:`DeployReport.problems`.

    Args:
        model (nn.Module): The original (unpruned) model with its trained
            weights, or an architecture wrapper with ``forward_dummy``. It
            is pruned in place and put in eval mode.
        channel_cfg (str | dict | None): A channel config YAML file, or a
            subnet :meth:`StructurePruner.set_subnet` accepts; None samples
            a random subnet (seeded with ``seed``). The config actually used
            is written to ``channel_cfg.yaml``.
        out_dir (str): The artefact folder (created when missing).
        input_shape (Sequence[int]): The shape of the dummy input used by
            the analysis and the checks. Defaults to ``(1, 3, 224, 224)``.
        model_config (str, optional): The config file that builds the
            original model (copied into the artefact).
        model_spec (dict, optional): A JSON-ready description of the
            original model instead, e.g. ``{'torchvision': 'resnet18'}``.
            Exactly one of ``model_config`` and ``model_spec`` is needed.
        build_fresh (Callable[[], nn.Module], optional): Builds a fresh
            original model to load the artefact into, as a user would.
            Defaults to a deep copy of ``model`` taken before pruning.
        pruner_cfg (dict, optional): The config's pruner (a
            :class:`StructurePruner` or a subclass such as
            ``ImportancePruner``; ``type`` defaults to StructurePruner).
        except_start_keys (list[str], optional): Overrides
            ``pruner_cfg['except_start_keys']``; when neither gives it,
            ``['head.fc']``.
        seed (int): Seeds the random subnet (``random.seed(seed)``) and
            the dummy input (``torch.manual_seed(seed + 1)``). Defaults to 0.
        onnx (bool): Also export ``model.onnx`` and compare onnxruntime's
            output with the masked model's. Defaults to False.
        atol (float): The tolerance of the output checks. Defaults to 1e-3.
        onnx_channel_block (int): With ``onnx``, pad every group's kept
            channels in the ONNX model up to a multiple of this block
            with channels that compute zeros
            (:mod:`~mmrazor.models.pruners.channel_padding`: onnxruntime's
            fast CPU convolutions want multiples of 16 with AVX-512, 8
            with AVX2); the torch artefact stays unpadded. 0 or 1: no
            padding. Defaults to 0.
        onnx_max_growth (float): Largest padded / kept channel ratio of a
            padded group. Defaults to 1.5.

    Returns:
        DeployReport: The measurements; ``report.ok`` tells whether every
        check passed, ``report.problems`` what failed.

    Raises:
        ImportError: ``onnx=True`` but a package it needs is missing.
        ValueError: Not exactly one of ``model_config`` and ``model_spec``
            is given.
        SubnetError: ``channel_cfg`` does not fit the model.
    """
    if onnx:
        missing = missing_onnx_packages()
        if missing:
            raise ImportError(f'onnx=True needs {", ".join(missing)}')
    if (model_config is None) == (model_spec is None):
        raise ValueError('give exactly one of model_config (a config file) '
                         'and model_spec (a dict) to say how the original '
                         'model is built')
    from mmrazor.models.pruners import (build_pruner, load_channel_cfg,
                                        stale_attributes)
    model.eval()
    # Without a builder, the "fresh" model is a copy of the original.
    template = copy.deepcopy(model) if build_fresh is None else None
    padding = onnx and onnx_channel_block > 1
    if padding:  # the copy that becomes the padded ONNX model
        to_pad = copy.deepcopy(model)
        twin = {id(a): b for a, b in zip(model.modules(), to_pad.modules())}
    shape = tuple(input_shape)
    kwargs = dict(pruner_cfg or {})
    if except_start_keys is not None:
        kwargs['except_start_keys'] = except_start_keys
    kwargs.setdefault('except_start_keys', ['head.fc'])
    pruner = build_pruner(kwargs)
    pruner.prepare_from_supernet(model, input_shape=shape)
    if channel_cfg is None:
        random.seed(seed)
        pruner.set_subnet(pruner.sample_subnet())
    else:
        if isinstance(channel_cfg, str):
            channel_cfg = load_channel_cfg(channel_cfg)
        pruner.set_subnet(channel_cfg)
    exported = pruner.export_subnet()

    torch.manual_seed(seed + 1)
    x = torch.randn(*shape)
    params_before = _num_params(model)
    recorder = _LayerRecorder(pruner.dependency.layers)
    layer_masks = pruner._layer_masks()
    recorder.start()
    masked = _forward(model, x)
    masked_layers, order = recorder.stop(), list(recorder.order)
    padded = None
    if padding:
        padded = _padded_copy(pruner, to_pad, twin, onnx_channel_block,
                              onnx_max_growth)
    pruner.deploy_subnet(model, exported)
    recorder.start(pruner._model)
    deployed = _forward(model, x)
    deployed_layers = recorder.stop()
    report = DeployReport(
        out_dir=out_dir,
        atol=atol,
        input_shape=list(shape),
        params_before=params_before,
        params_after=_num_params(model),
        max_diff_deployed_vs_masked=_max_diff(masked, deployed),
        stale_attributes=stale_attributes(model),
        first_mismatch=first_mismatch(masked_layers, order, deployed_layers,
                                      layer_masks, pruner.dependency.layers,
                                      atol),
        torch_version=torch.__version__)

    save_deployed(model, exported, out_dir, model_config, model_spec)

    # Reload the artefact into a fresh original model (torch-only path).
    fresh = load_deployed(
        build_fresh() if build_fresh is not None else template, out_dir)
    report.max_diff_reloaded_vs_masked = _max_diff(masked,
                                                   _forward(fresh, x))
    report.stale_attributes_reloaded = stale_attributes(fresh)

    exported_model = fresh
    if padded is not None:
        report.onnx_channel_block = onnx_channel_block
        report.onnx_padded_groups = padded[1]
        diff = _max_diff(masked, _forward(padded[0], x))
        report.max_diff_padded_vs_masked = diff
        if diff <= atol:
            exported_model = padded[0]
        else:  # (NaN included) e.g. a LayerNorm over the padded channels
            report.onnx_padding_refused = (
                f'the padded model differs from the masked one by {diff:.3g}'
                f' > atol={atol}: model.onnx is not padded')
    if onnx:
        import numpy as np
        import onnxruntime as ort
        path = osp.join(out_dir, ONNX_FILE)
        torch.onnx.export(exported_model, x, path, opset_version=17)
        report.onnx = path
        sess = ort.InferenceSession(path)
        ort_out = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})
        report.max_diff_onnxruntime_vs_masked = float(
            np.abs(ort_out[0] - masked.numpy()).max())

    atomic_write_bytes(
        json.dumps(report.to_dict(), indent=1).encode(),
        osp.join(out_dir, REPORT_FILE))
    return report
