"""Train convolutional models on the CPU in ``torch.channels_last``.

On a CPU, PyTorch's oneDNN convolutions and batch norms run faster on
NHWC (``channels_last``) tensors than on NCHW ones:
``benchmarks/channels_last_step.py`` measured the quickstart model's training
step 1.22x-1.29x faster with one thread and 1.30x-1.50x with two (2-core AMD
EPYC with AVX-512). It is used with AVX-512 only (see :func:`skip_reason`:
with AVX2, oneDNN crashes in some channels_last backward passes). Only the
memory layout of the conv weights and activations changes; the results
agree up to float rounding (sums run in another order).

:class:`ChannelsLastHook` makes the switch when training starts;
:func:`add_channels_last_hook` adds it to every config that
:func:`mmrazor.apis.build_runner` builds unless the config sets
``cpu_channels_last = False``.
"""
from typing import Any, Optional, Tuple

import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.runner import Runner
from torch import nn
from torch.utils.hooks import RemovableHandle

from mmrazor.registry import HOOKS

#: Top-level config key that turns the default hook off when False.
CONFIG_KEY = 'cpu_channels_last'


def cpu_capability() -> str:
    """The vector instruction set PyTorch's CPU kernels use here
    (``torch.backends.cpu.get_cpu_capability()``: ``'AVX512'``,
    ``'AVX2'``, ``'DEFAULT'``, ...)."""
    return torch.backends.cpu.get_cpu_capability()


def conv2d_to_channels_last(model: nn.Module) -> int:
    """Store the weight of every ``nn.Conv2d`` of ``model`` channels_last.

    The parameters stay the same objects (their ``data`` is replaced), so an
    optimizer built before keeps working. Only 2-D convolutions change:
    ``Module.to(memory_format=torch.channels_last)`` would also reorder
    other 4-D tensors and fails on 5-D ones (``nn.Conv3d``). Convolutions
    then return channels_last outputs, which the following layers keep.

    Args:
        model (nn.Module): Changed in place.

    Returns:
        int: The number of ``nn.Conv2d`` modules found.
    """
    count = 0
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            module.weight.data = module.weight.data.contiguous(
                memory_format=torch.channels_last)
            count += 1
    return count


def inputs_to_channels_last(module: nn.Module, args: Tuple[Any, ...],
                            output: Any) -> Any:
    """Forward hook of a data preprocessor: 4-D ``inputs`` channels_last.

    Args:
        module (nn.Module): The data preprocessor (unused).
        args (tuple): Its positional arguments (unused).
        output (Any): What it returned; a dict whose ``inputs`` is a 4-D
            floating-point tensor is changed, anything else is kept as is.

    Returns:
        Any: ``output``.
    """
    if isinstance(output, dict):
        inputs = output.get('inputs')
        if (isinstance(inputs, torch.Tensor) and inputs.dim() == 4
                and inputs.is_floating_point()):
            output['inputs'] = inputs.contiguous(
                memory_format=torch.channels_last)
    return output


def skip_reason(model: nn.Module) -> Optional[str]:
    """Why :class:`ChannelsLastHook` leaves ``model`` as it is, if it does.

    Args:
        model (nn.Module): The runner's model.

    Returns:
        str | None: The reason, or None when the model is converted.
    """
    if is_model_wrapper(model):
        # DDP lays out its gradient buckets after the parameters it wraps.
        return 'the model is wrapped (distributed)'
    first = next(model.parameters(), None)
    if first is None:
        return 'the model has no parameters'
    if first.device.type != 'cpu':
        return f'the model is on {first.device.type}, not the CPU'
    if not any(isinstance(m, nn.Conv2d) for m in model.modules()):
        return 'the model has no nn.Conv2d'
    capability = cpu_capability()
    if not capability.startswith('AVX512'):
        # torch 2.14 on an AVX2 CPU: the weight gradient of a channels_last
        # 1x1 stride-2 conv with fewer than 8 input channels (a ResNet
        # downsample at width 4) dies with SIGSEGV / SIGBUS
        return (f'the CPU kernels use {capability}: channels_last is '
                'measured faster with AVX-512 only, and with AVX2 oneDNN '
                'crashes in the backward pass of 1x1 stride-2 convolutions '
                'with fewer than 8 input channels')
    for name, module in model.named_modules():
        # mmcv's compiled deformable convolutions (RepPoints, DCN
        # backbones) need contiguous NCHW inputs
        if type(module).__module__.startswith('mmcv.ops') and \
                'deform' in type(module).__name__.lower():
            return (f'{name} is a {type(module).__name__}, whose compiled '
                    'kernel needs contiguous (NCHW) inputs')
    return None


@HOOKS.register_module()
class ChannelsLastHook(Hook):
    """Before training, store a CPU model's 2-D convolutions and input
    batches in ``torch.channels_last``.

    The model is converted with :func:`conv2d_to_channels_last`, and its
    ``data_preprocessor`` gets the forward hook
    :func:`inputs_to_channels_last`, so training and validation batches are
    channels_last too. The model is left as it is when it is wrapped
    (distributed training), not on the CPU or without ``nn.Conv2d`` (see
    :func:`skip_reason`); the log says which.

    :func:`mmrazor.apis.build_runner` adds this hook to every config (see
    :func:`add_channels_last_hook`); set ``cpu_channels_last = False`` in
    the config (or ``--cfg-options cpu_channels_last=False``) to train in
    the default layout.
    """

    # Convert before other hooks' ``before_train`` look at the model.
    priority = 'VERY_HIGH'

    def __init__(self) -> None:
        self.handle: Optional[RemovableHandle] = None

    def before_train(self, runner: Runner) -> None:
        """Convert the model and hook its data preprocessor.

        Args:
            runner (Runner): The runner; its ``model`` is changed in place.
        """
        model = runner.model
        reason = skip_reason(model)
        if reason is not None:
            runner.logger.info(f'channels_last: not used, {reason}')
            return
        count = conv2d_to_channels_last(model)
        preprocessor = getattr(model, 'data_preprocessor', None)
        if isinstance(preprocessor, nn.Module) and self.handle is None:
            self.handle = preprocessor.register_forward_hook(
                inputs_to_channels_last)
        runner.logger.info(
            f'channels_last: {count} Conv2d weights and the input batches '
            f'are channels_last (set {CONFIG_KEY}=False to turn it off)')


def add_channels_last_hook(cfg: Config) -> None:
    """Add a :class:`ChannelsLastHook` to ``cfg.custom_hooks``.

    Nothing is added when ``cfg.cpu_channels_last`` is False or
    ``custom_hooks`` already holds a ``ChannelsLastHook``.

    Args:
        cfg (Config): Changed in place.
    """
    if not cfg.get(CONFIG_KEY, True):
        return
    hooks = list(cfg.get('custom_hooks', None) or [])
    for hook in hooks:
        kind = hook.get('type') if isinstance(hook, dict) else type(hook)
        name = kind if isinstance(kind, str) else getattr(kind, '__name__', '')
        if name.split('.')[-1] == ChannelsLastHook.__name__:
            return
    hooks.append(dict(type='mmrazor.ChannelsLastHook'))
    cfg.custom_hooks = hooks
