"""FLOPs and parameters of a channel-pruning candidate, without a copy of
the model and without a forward pass.

The channel analysis measured, once, how many positions every layer
computes per sample (``LayerRecord.positions``); which of its channels a
candidate keeps follows from the keep-masks of the channel groups. Each
layer's handler (:mod:`..channel_analysis.layer_handlers`) turns kept input
and output channels into multiply-accumulates and parameters, so that a
candidate costs a few array operations per layer.

The figures follow the convention of :class:`.ResourceEstimator`: MACs of
convolutions and matrix products at the analysis input shape, per sample;
parameters as the deployed (physically pruned) model holds them.
"""
from typing import Dict, Set

import numpy as np
from torch import nn

from ..channel_analysis import ChannelDependency
from ..channel_analysis.layer_handlers import own_parameters


def _kept(ids: np.ndarray, keep: np.ndarray) -> int:
    """How many of the channels ``ids`` are kept (untraced ones are)."""
    if ids.size and ids.min() >= 0:
        return int(np.count_nonzero(keep[ids]))
    return int(ChannelDependency.mask_of(ids, keep).sum())


def channel_costs(model: nn.Module, dependency: ChannelDependency,
                  unit_masks: Dict[str, np.ndarray]) -> Dict[str, int]:
    """FLOPs and parameters of ``model`` pruned to ``unit_masks``.

    Args:
        model (nn.Module): The analysed model (for the parameters outside
            the analysed layers, counted in full).
        dependency (ChannelDependency): Its channel analysis.
        unit_masks (dict[str, np.ndarray]): Group name -> keep-mask over
            its units (groups left out keep everything).

    Returns:
        dict: ``{'flops': int, 'params': int}``.
    """
    keep = dependency.keep_by_id(unit_masks)
    flops = params = 0
    seen: Set[int] = set()
    for rec in dependency.layers.values():
        module, handler = rec.module, rec.handler
        cin = _kept(rec.in_ids, keep)
        cout = cin if rec.out_ids is rec.in_ids else _kept(rec.out_ids, keep)
        flops += handler.macs(module, cin, cout, rec.positions)
        params += handler.params(module, cin, cout)
        if rec.kind != 'structure':  # (a module's size attributes only)
            seen.update(id(p) for _, p in own_parameters(module))
    for prec in dependency.params.values():
        tensor = getattr(prec.owner, prec.attr)
        if isinstance(tensor, nn.Parameter) and id(tensor) not in seen:
            seen.add(id(tensor))
            kept = _kept(prec.ids.ravel(), keep)
            params += tensor.numel() // prec.ids.size * kept
    for p in model.parameters():
        if id(p) not in seen:
            params += p.numel()
    return dict(flops=int(flops), params=int(params))
