"""Pad pruned channel counts to the block size a runtime computes in.

CPU runtimes lay channels out in blocks (onnxruntime's NCHWc layout: 16
floats with AVX-512, 8 with AVX2) and send a convolution whose channel
counts are not a multiple of the block off the blocked path, to kernels
that can be several times slower per channel (a MobileNetV2 pruned to any
count ran slower than the unpruned one in onnxruntime). A model pruned
with ``round_to=1`` can still run on the blocked path: keep a few pruned
channels per group, enough to reach the next multiple of the block, and
make them compute zeros. The padded model computes exactly what the pruned
one does (the added channels are zero everywhere), at the cost of the
padded layers' extra work.

:func:`pad_masks_to_block` picks the channels to add, and
:func:`zero_padded_channels` silences them (the parameters that make
their values, along the layers' output side, are set to zero) before
:func:`~mmrazor.models.pruners.utils.slice_model` slices to the padded
masks. A layer that mixes statistics over channels (LayerNorm) sees the
extra zeros; compare the padded model with the pruned one before using it.
:func:`slice_padded` does the three steps.
"""
from typing import Dict, Optional

import numpy as np
import torch
from torch import nn

from mmrazor.models.task_modules.channel_analysis import ChannelDependency
from .utils import slice_model


def _channels_per_unit(dependency: ChannelDependency,
                       name: str) -> np.ndarray:
    """Channels each unit of group ``name`` holds in its first source
    layer (one per unit when no source layer says otherwise)."""
    group = dependency.groups[name]
    for src in group.sources:
        rec = dependency.layers.get(src)
        if rec is None:
            continue
        counts = dependency.unit_counts(name, rec.out_ids)
        if counts.sum() > 0:
            return np.maximum(counts, 1)
    return np.ones(group.num_units, dtype=np.int64)


def kept_channels(dependency: ChannelDependency, name: str,
                  mask: np.ndarray) -> int:
    """Channels group ``name`` keeps with the keep-mask ``mask`` over its
    units (counted in its first source layer).

    Args:
        dependency (ChannelDependency): The channel analysis.
        name (str): The group.
        mask (np.ndarray): Keep-mask over its units.

    Returns:
        int: The kept channels.
    """
    return int(_channels_per_unit(dependency, name)[np.asarray(
        mask, dtype=bool)].sum())


def pad_masks_to_block(dependency: ChannelDependency,
                       masks: Dict[str, np.ndarray],
                       block: int,
                       max_growth: float = 1.5) -> Dict[str, np.ndarray]:
    """Keep-masks with the kept channels of every group rounded up to a
    multiple of ``block`` by adding pruned units (in index order).

    A group keeps its mask when its count already is a multiple, when no
    multiple fits in the group, or when the padded count would exceed
    ``max_growth`` times the kept one (a layer pruned to 5 channels is
    cheaper on the slow path than padded to 16).

    Args:
        dependency (ChannelDependency): The channel analysis.
        masks (dict[str, np.ndarray]): Keep-masks over each group's units.
        block (int): The runtime's channel block (16 with AVX-512 in
            onnxruntime, 8 with AVX2).
        max_growth (float): Largest padded / kept channel ratio of a
            group. Defaults to 1.5.

    Returns:
        dict[str, np.ndarray]: New masks (every group of ``masks``); each
        keeps at least the units of ``masks``.

    Raises:
        ValueError: ``block < 1`` or ``max_growth < 1``.
    """
    if block < 1:
        raise ValueError(f'block={block}: a channel block is at least 1')
    if max_growth < 1:
        raise ValueError(f'max_growth={max_growth}: padding only adds '
                         'channels (>= 1)')
    padded = {}
    for name, mask in masks.items():
        mask = np.asarray(mask, dtype=bool)
        padded[name] = mask.copy()
        counts = _channels_per_unit(dependency, name)
        kept = int(counts[mask].sum())
        if kept == 0 or kept % block == 0 or mask.all():
            continue
        free = np.flatnonzero(~mask)
        totals = kept + np.cumsum(counts[free])
        aligned = np.flatnonzero(totals % block == 0)
        if not len(aligned) or totals[aligned[0]] > max_growth * kept:
            continue
        n_add = int(aligned[0]) + 1
        padded[name][free[:n_add]] = True
    return padded


def _zero_along(tensor: torch.Tensor, dim: int, flags: np.ndarray) -> None:
    index = torch.from_numpy(np.flatnonzero(flags)).to(tensor.device)
    with torch.no_grad():
        tensor.index_fill_(dim, index, 0)


def zero_padded_channels(root: nn.Module,
                         dependency: ChannelDependency,
                         masks: Dict[str, np.ndarray],
                         padded: Dict[str, np.ndarray],
                         twin: Optional[Dict[int, nn.Module]] = None) -> int:
    """Make the channels that ``padded`` keeps and ``masks`` does not
    compute zeros: every parameter that follows a layer's output channels
    (its handler's ``tensor_dims``: conv / linear weights and biases,
    norm scales and shifts) and every directly used per-channel parameter
    is set to zero at those channels.

    Args:
        root (nn.Module): The model to change (the analysed one, or a deep
            copy of it with ``twin``), not yet sliced.
        dependency (ChannelDependency): The channel analysis.
        masks (dict[str, np.ndarray]): The pruned model's keep-masks.
        padded (dict[str, np.ndarray]): The padded keep-masks
            (:func:`pad_masks_to_block`).
        twin (dict[int, nn.Module], optional): ``id(analysed module) ->
            its counterpart in root`` when ``root`` is a copy.

    Returns:
        int: How many layer outputs were changed.
    """
    own = (lambda m: twin[id(m)]) if twin is not None else (lambda m: m)
    keep = dependency.keep_by_id(masks)
    keep_padded = dependency.keep_by_id(padded)

    def added(ids: np.ndarray) -> np.ndarray:
        return dependency.mask_of(ids, keep_padded) & ~dependency.mask_of(
            ids, keep)

    changed = 0
    for rec in dependency.layers.values():
        flags = added(rec.out_ids)
        if not flags.any():
            continue
        module = own(rec.module)
        for attr, (_, dout) in rec.handler.tensor_dims(module).items():
            tensor = getattr(module, attr, None)
            if dout is not None and isinstance(tensor, nn.Parameter):
                _zero_along(tensor, dout, flags)
        changed += 1
    for prec in dependency.params.values():
        flags = added(prec.ids.ravel())
        if flags.any():
            dim = [d for d, s in enumerate(prec.ids.shape) if s > 1][0]
            _zero_along(getattr(own(prec.owner), prec.attr), dim, flags)
    return changed



def slice_padded(root: nn.Module,
                 dependency: ChannelDependency,
                 masks: Dict[str, np.ndarray],
                 block: int,
                 max_growth: float = 1.5,
                 twin: Optional[Dict[int, nn.Module]] = None
                 ) -> Dict[str, np.ndarray]:
    """Physically prune ``root`` to ``masks`` padded to ``block``
    (:func:`pad_masks_to_block`), the added channels silenced
    (:func:`zero_padded_channels`), in place.

    Args:
        root (nn.Module): The analysed model with all its channels and no
            masking hooks (or such a deep copy of it, with ``twin``).
        dependency (ChannelDependency): The channel analysis.
        masks (dict[str, np.ndarray]): The pruned model's keep-masks.
        block (int): The runtime's channel block.
        max_growth (float): Largest padded / kept channel ratio of a
            group. Defaults to 1.5.
        twin (dict[int, nn.Module], optional): ``id(analysed module) ->
            its counterpart in root`` when ``root`` is a copy.

    Returns:
        dict[str, np.ndarray]: The padded masks.
    """
    padded = pad_masks_to_block(dependency, masks, block, max_growth)
    zero_padded_channels(root, dependency, masks, padded, twin)
    slice_model(root, dependency, padded, twin)
    return padded
