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
import weakref
from typing import Dict, Set

import numpy as np
from torch import nn

from ..channel_analysis import ChannelDependency
from ..channel_analysis.layer_handlers import own_parameters


def _kept(ids: np.ndarray, keep: np.ndarray, traced: bool) -> int:
    """How many of the channels ``ids`` are kept (untraced ones are)."""
    if traced:
        return int(np.count_nonzero(keep[ids]))
    return int(ChannelDependency.mask_of(ids, keep).sum())


class _CostPlan:
    """What :func:`channel_costs` needs of a model and its analysis, read
    once: the layers with their channel ids, the parameters used directly
    by ops, and the parameters outside both (counted in full)."""

    def __init__(self, model: nn.Module,
                 dependency: ChannelDependency) -> None:
        seen: Set[int] = set()
        self.layers = []
        for rec in dependency.layers.values():
            in_ids = np.asarray(rec.in_ids)
            out_ids = np.asarray(rec.out_ids)
            self.layers.append(
                (rec.module, rec.handler, in_ids,
                 bool(in_ids.size == 0 or in_ids.min() >= 0), out_ids,
                 bool(out_ids.size == 0 or out_ids.min() >= 0),
                 rec.out_ids is rec.in_ids, rec.positions))
            if rec.kind != 'structure':  # (a module's size attributes only)
                seen.update(id(p) for _, p in own_parameters(rec.module))
        self.params = []
        for prec in dependency.params.values():
            tensor = getattr(prec.owner, prec.attr)
            if isinstance(tensor, nn.Parameter) and id(tensor) not in seen:
                seen.add(id(tensor))
                ids = np.asarray(prec.ids).ravel()
                self.params.append((tensor.numel() // ids.size, ids,
                                    bool(ids.size == 0 or ids.min() >= 0)))
        self.fixed_params = sum(
            p.numel() for p in model.parameters() if id(p) not in seen)


#: dependency -> (model, plan): one plan per analysis
_PLANS: 'weakref.WeakKeyDictionary' = weakref.WeakKeyDictionary()


def _plan_of(model: nn.Module, dependency: ChannelDependency) -> _CostPlan:
    cached = _PLANS.get(dependency)
    if cached is None or cached[0]() is not model:
        cached = (weakref.ref(model), _CostPlan(model, dependency))
        _PLANS[dependency] = cached
    return cached[1]


def channel_costs(model: nn.Module, dependency: ChannelDependency,
                  unit_masks: Dict[str, np.ndarray]) -> Dict[str, int]:
    """FLOPs and parameters of ``model`` pruned to ``unit_masks``.

    What the model and its analysis give is read once per analysis (the
    analysis is only valid while the model keeps its shapes), so that a
    search evaluating many candidates pays a few array operations per
    layer each.

    Args:
        model (nn.Module): The analysed model (for the parameters outside
            the analysed layers, counted in full).
        dependency (ChannelDependency): Its channel analysis.
        unit_masks (dict[str, np.ndarray]): Group name -> keep-mask over
            its units (groups left out keep everything).

    Returns:
        dict: ``{'flops': int, 'params': int}``.
    """
    plan = _plan_of(model, dependency)
    keep = dependency.keep_by_id(unit_masks)
    flops = 0
    params = plan.fixed_params
    for (module, handler, in_ids, in_traced, out_ids, out_traced, same,
         positions) in plan.layers:
        cin = _kept(in_ids, keep, in_traced)
        cout = cin if same else _kept(out_ids, keep, out_traced)
        flops += handler.macs(module, cin, cout, positions)
        params += handler.params(module, cin, cout)
    for per_channel, ids, traced in plan.params:
        params += per_channel * _kept(ids, keep, traced)
    return dict(flops=int(flops), params=int(params))
