"""The quantized layers of a prepared model, and running data through it
with a forward pre-hook on some of them (what the post-calibration passes,
bias correction and learned rounding, read their inputs with)."""
from typing import Any, Callable, Dict

import torch
from torch import nn

from .export import CONV_BN_MODULES, WEIGHT_MODULES


def is_weight_layer(module: nn.Module) -> bool:
    """Whether ``module`` is a QAT conv / linear / conv-bn of a prepared
    model (its weight has a ``weight_fake_quant``)."""
    return type(module) in CONV_BN_MODULES or type(module) in WEIGHT_MODULES


def run_with_pre_hooks(pre_hooks: Dict[nn.Module, Callable],
                       run_batches: Callable[[], Any]) -> None:
    """Run ``run_batches()`` without gradients, each module of
    ``pre_hooks`` calling its hook ``hook(module, inputs)`` before its
    forward; the hooks are removed afterwards, also on an error.

    Args:
        pre_hooks (dict): Module -> forward pre-hook (returning None).
        run_batches (Callable[[], Any]): Runs the forward passes.
    """
    handles = [
        module.register_forward_pre_hook(hook)
        for module, hook in pre_hooks.items()
    ]
    try:
        with torch.no_grad():
            run_batches()
    finally:
        for handle in handles:
            handle.remove()
