"""What removing units of a channel group saves: FLOPs, parameters or
activation memory per unit, and the measured latency of a pruned copy."""
import copy
from typing import Any, Callable, Dict, Iterable, Optional

import numpy as np
import torch
from torch import nn

from mmrazor.models.task_modules.channel_analysis import ChannelDependency
from mmrazor.models.task_modules.estimators import (channel_costs,
                                                    time_function)
from .utils import slice_model

#: Costs a unit's score can be divided by (see ``ImportancePruner``).
COST_KINDS = ('flops', 'params', 'act')


def unit_costs(model: nn.Module, dependency: ChannelDependency,
               masks: Dict[str, np.ndarray], kind: str,
               groups: Iterable[str]) -> Dict[str, float]:
    """What one more unit of each group costs, given the current masks.

    * ``'flops'`` / ``'params'``: the drop of
      :func:`~mmrazor.models.task_modules.channel_costs` when one more kept
      unit of the group is removed (it depends on how far the neighbouring
      groups are pruned already);
    * ``'act'``: the activation memory of a unit, the output positions of
      every producing layer (conv / linear) summed over the unit's channels
      (the feature maps a unit's channels occupy per sample).

    Args:
        model (nn.Module): The analysed model.
        dependency (ChannelDependency): Its analysis.
        masks (dict[str, np.ndarray]): Current keep-masks per group.
        kind (str): One of :data:`COST_KINDS`.
        groups (Iterable[str]): The groups to price.

    Returns:
        dict[str, float]: Group -> cost per unit (at least a tiny positive
        number, so that dividing by it is safe).
    """
    if kind not in COST_KINDS:
        raise ValueError(f'cost_normalization={kind!r} is not one of '
                         f'{list(COST_KINDS)} (or None)')
    groups = list(groups)
    if kind == 'act':
        per_root = np.zeros(len(dependency.root_of))
        sources = {src for g in dependency.prunable_groups.values()
                   for src in g.sources}
        for name in sources:
            rec = dependency.layers.get(name)
            if rec is None:
                continue
            ids = np.asarray(rec.out_ids).ravel()
            ids = ids[ids >= 0]
            positions = max(1, rec.positions)
            np.add.at(per_root, dependency.root_of[ids], positions)
        costs = {}
        for name in groups:
            units = np.asarray(dependency.groups[name].units, dtype=np.int64)
            costs[name] = float(per_root[units].mean()) if len(units) else 0
    else:
        base = channel_costs(model, dependency, masks)[kind]
        costs = {}
        for name in groups:
            mask = masks[name].copy()
            kept = np.flatnonzero(mask)
            if len(kept) <= 1:
                costs[name] = 0.0
                continue
            mask[kept[-1]] = False
            fewer = dict(masks)
            fewer[name] = mask
            costs[name] = float(base -
                                channel_costs(model, dependency, fewer)[kind])
    floor = 1e-12
    return {name: max(cost, floor) for name, cost in costs.items()}


def pruned_copy(model: nn.Module, dependency: ChannelDependency,
                masks: Dict[str, np.ndarray]) -> nn.Module:
    """A physically pruned deep copy of ``model`` (the model itself is left
    as it is). The model must carry no masking hooks while it is copied.

    Args:
        model (nn.Module): The analysed model.
        dependency (ChannelDependency): Its analysis.
        masks (dict[str, np.ndarray]): Keep-masks per group.

    Returns:
        nn.Module: The pruned copy.
    """
    clone = copy.deepcopy(model)
    twin = {
        id(old): new
        for (_, old), (_, new) in zip(
            model.named_modules(remove_duplicate=False),
            clone.named_modules(remove_duplicate=False))
    }
    slice_model(clone, dependency, masks, twin)
    return clone


def measure_latency(model: nn.Module,
                    inputs: Any,
                    forward_fn: Optional[Callable[[nn.Module, Any],
                                                  Any]] = None,
                    warmup: int = 3,
                    runs: int = 20) -> float:
    """Median latency (ms) of one forward pass in eval mode, without
    gradients.

    Args:
        model (nn.Module): The model.
        inputs (Any): Its input.
        forward_fn (Callable, optional): ``forward_fn(model, inputs)``;
            defaults to ``model(inputs)``.
        warmup (int): Untimed runs. Defaults to 3.
        runs (int): Timed runs. Defaults to 20.

    Returns:
        float: Milliseconds.
    """
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return time_function(
                lambda: forward_fn(model, inputs)
                if forward_fn else model(inputs), warmup, runs)
    finally:
        model.train(was_training)
