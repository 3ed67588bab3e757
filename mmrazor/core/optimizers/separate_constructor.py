"""One optimizer wrapper per sub-module (e.g. DARTS weights and arch
params)."""
import copy
from typing import Dict, Optional

from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapperDict, build_optim_wrapper
from torch import nn

from mmrazor.registry import OPTIM_WRAPPER_CONSTRUCTORS


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class SeparateOptimWrapperConstructor:
    """Build an ``OptimWrapperDict`` holding one optimizer wrapper per
    sub-module of the model.

    Each key of the config whose value is a dict names an attribute of the
    model (``architecture`` and ``mutator`` for DARTS) and holds an
    ordinary ``optim_wrapper`` config for it (``type``, ``optimizer``,
    ``clip_grad``, ``paramwise_cfg``, ``constructor``, ...). Other
    top-level keys (e.g. ``type='AmpOptimWrapper'`` as set by ``--amp``)
    are defaults shared by every sub-config. The param schedulers of such
    a runner are given per key as well, e.g.
    ``param_scheduler=dict(architecture=[...], mutator=[])``.

    Example:
        >>> optim_wrapper = dict(
        ...     constructor='mmrazor.SeparateOptimWrapperConstructor',
        ...     architecture=dict(optimizer=dict(type='SGD', lr=0.025)),
        ...     mutator=dict(optimizer=dict(type='Adam', lr=3e-4)))

    Args:
        optim_wrapper_cfg (dict): Sub-module name -> optim wrapper config.
        paramwise_cfg (dict, optional): Not supported at this level (give
            it inside each sub-config); must be None.
    """

    def __init__(self,
                 optim_wrapper_cfg: Dict[str, dict],
                 paramwise_cfg: Optional[dict] = None) -> None:
        if paramwise_cfg is not None:
            raise ValueError(
                'SeparateOptimWrapperConstructor: put paramwise_cfg inside '
                'the config of each sub-module, not at the top level')
        if not isinstance(optim_wrapper_cfg, dict):
            raise TypeError('SeparateOptimWrapperConstructor needs a dict of '
                            'sub-module name -> optim wrapper config, got '
                            f'{optim_wrapper_cfg!r}')
        cfgs = copy.deepcopy(dict(optim_wrapper_cfg))
        shared = {k: v for k, v in cfgs.items() if not isinstance(v, dict)}
        self.optim_wrapper_cfg = {
            k: v
            for k, v in cfgs.items() if isinstance(v, dict)
        }
        if not self.optim_wrapper_cfg:
            raise TypeError('SeparateOptimWrapperConstructor: give one optim '
                            'wrapper config (a dict) per sub-module, e.g. '
                            'architecture=dict(optimizer=...); got only '
                            f'{sorted(shared)}')
        for cfg in self.optim_wrapper_cfg.values():
            for key, value in shared.items():
                cfg.setdefault(key, copy.deepcopy(value))

    def __call__(self, model: nn.Module) -> OptimWrapperDict:
        """Build the wrappers.

        Args:
            model (nn.Module): The model (a DDP wrapper is unwrapped).

        Returns:
            OptimWrapperDict: Name -> optim wrapper of that sub-module.
        """
        if is_model_wrapper(model):
            model = model.module
        wrappers = {}
        for name, cfg in self.optim_wrapper_cfg.items():
            sub = getattr(model, name, None)
            if not isinstance(sub, nn.Module):
                children = [n for n, _ in model.named_children()]
                raise KeyError(
                    f'SeparateOptimWrapperConstructor: optim_wrapper key '
                    f'{name!r} names no sub-module of '
                    f'{type(model).__name__} (its children: {children})')
            wrappers[name] = build_optim_wrapper(sub, copy.deepcopy(cfg))
        return OptimWrapperDict(**wrappers)
