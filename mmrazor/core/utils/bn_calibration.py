"""Re-estimate BatchNorm statistics of a subnet."""
from typing import Iterable

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


@torch.no_grad()
def recalibrate_bn(model: nn.Module, dataloader: Iterable,
                   num_batches: int) -> int:
    """Recompute the running mean/var of every BatchNorm from fresh batches.

    A subnet sampled from a supernet inherits BN statistics accumulated over
    all paths; evaluating it with them is biased. This resets the statistics
    and averages them (cumulative moving average) over ``num_batches``
    batches in train mode, without touching weights.

    Args:
        model (nn.Module): An mmengine model (``model.data_preprocessor``
            and ``model(inputs, data_samples, mode='tensor')``) or a plain
            module taking a tensor.
        dataloader (Iterable): Yields training batches.
        num_batches (int): How many batches to use; 0 disables.

    Returns:
        int: The number of batches used.
    """
    if num_batches <= 0:
        return 0
    bns = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    if not bns:
        return 0
    saved = {m: m.momentum for m in bns}
    was_training = model.training
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches seen
    model.train()
    used = 0
    try:
        for batch in dataloader:
            if used >= num_batches:
                break
            preprocess = getattr(model, 'data_preprocessor', None)
            if preprocess is not None and isinstance(batch, dict):
                data = preprocess(batch, True)
                model(data['inputs'], data.get('data_samples'), mode='tensor')
            else:
                model(batch[0] if isinstance(batch, (list, tuple)) else batch)
            used += 1
    finally:
        for m, momentum in saved.items():
            m.momentum = momentum
        model.train(was_training)
    return used
