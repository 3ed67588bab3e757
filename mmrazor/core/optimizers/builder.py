"""``build_optimizers``: one optimizer, or one per sub-module."""
from typing import Dict, Union

from mmengine.optim import build_optim_wrapper
from torch import nn
from torch.optim import Optimizer


def _is_per_module(cfgs: dict) -> bool:
    return 'type' not in cfgs and len(cfgs) > 0 and all(
        isinstance(v, dict) for v in cfgs.values())


def _build_one(module: nn.Module, cfg: dict) -> Optimizer:
    cfg = dict(cfg)
    paramwise_cfg = cfg.pop('paramwise_cfg', None)
    wrapper_cfg = dict(type='OptimWrapper', optimizer=cfg)
    if paramwise_cfg is not None:
        wrapper_cfg['paramwise_cfg'] = paramwise_cfg
    return build_optim_wrapper(module, wrapper_cfg).optimizer


def build_optimizers(model: nn.Module,
                     cfgs: dict) -> Union[Optimizer, Dict[str, Optimizer]]:
    """Build one optimizer, or a dict of optimizers for sub-modules.

    ``cfgs`` is either one optimizer config (``dict(type='SGD', lr=...)``,
    optionally with ``paramwise_cfg``), or a dict of such configs keyed by
    attribute names of ``model`` (e.g. ``architecture`` and ``mutator``),
    giving one optimizer per sub-module.

    Args:
        model (nn.Module): The model (a DDP wrapper is unwrapped).
        cfgs (dict): The optimizer config(s).

    Returns:
        Optimizer | dict[str, Optimizer]: The optimizer(s).
    """
    if hasattr(model, 'module') and isinstance(model.module, nn.Module):
        model = model.module
    cfgs = dict(cfgs)
    if not _is_per_module(cfgs):
        return _build_one(model, cfgs)
    optimizers = {}
    for name, cfg in cfgs.items():
        sub = getattr(model, name, None)
        if not isinstance(sub, nn.Module):
            children = [n for n, _ in model.named_children()]
            raise KeyError(f'build_optimizers: the model has no sub-module '
                           f'{name!r} (its children: {children})')
        optimizers[name] = _build_one(sub, cfg)
    return optimizers
