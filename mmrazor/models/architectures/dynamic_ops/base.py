"""What every dynamic op shares: mutable attributes and static export.

A dynamic op is a PyTorch layer built at its largest size whose
hyper-parameters (channels, kernel size) follow mutables. While searching it
computes with the active slice of its weights; :meth:`DynamicMixin.
to_static_op` returns the plain PyTorch layer of the current choice, with
copies of the sliced weights and the same outputs.

Exporting a supernet (``mmrazor.structures.export_fix_subnet(...,
slice_weight=True)``) replaces every module that has a ``to_static_op()``
method by what it returns.
"""
from typing import Dict, Optional, Tuple, Union

import numpy as np
import torch
from torch import nn

from mmrazor.models.mutables import BaseMutable

Index = Union[slice, torch.Tensor]


def mask_to_index(mask: torch.Tensor, device: torch.device) -> Index:
    """The cheapest way to pick the channels of a bool mask.

    Args:
        mask (Tensor): 1-d bool mask (on CPU).
        device (torch.device): Where the indexed tensors live.

    Returns:
        slice | Tensor: ``slice(0, k)`` when the mask keeps the first ``k``
        channels, otherwise a long tensor of indices on ``device``.
    """
    # numpy, not torch: mask bookkeeping must not show up as model ops in
    # op-level counters (FLOPs estimators).
    flags = mask.numpy()
    k = int(np.count_nonzero(flags))
    if flags[:k].all():
        return slice(0, k)
    return torch.from_numpy(np.flatnonzero(flags)).to(device)


def _mask_of(mutable: BaseMutable) -> torch.Tensor:
    mask = mutable.current_mask
    if mask.device.type != 'cpu':
        mask = mask.cpu()
    return mask if mask.dtype == torch.bool else mask.bool()


class DynamicMixin:
    """Mutable attributes for a layer (mixed into ``nn.Module`` subclasses).

    Subclasses name the attributes they accept in ``mutable_attr_names``
    and may map other spellings to them in ``mutable_attr_aliases``.
    Mutables are stored in ``self.mutable_attrs`` (an ``nn.ModuleDict``);
    one mutable may be registered in several ops (e.g. a conv's
    ``out_channels`` and the following norm's ``num_features``).
    """

    mutable_attr_names: Tuple[str, ...] = ()
    mutable_attr_aliases: Dict[str, str] = {}

    def _init_mutable_attrs(self) -> None:
        self.mutable_attrs = nn.ModuleDict()

    def register_mutable_attr(self, attr: str,
                              mutable: BaseMutable) -> 'DynamicMixin':
        """Make hyper-parameter ``attr`` follow ``mutable``.

        Args:
            attr (str): One of :attr:`mutable_attr_names` (or an alias).
            mutable (BaseMutable): A channel mutable (for channel
                attributes, its mask length must equal the layer's full
                channel count) or a value mutable (for ``kernel_size``).

        Returns:
            The op itself, so calls chain.
        """
        name = self.mutable_attr_aliases.get(attr, attr)
        if name not in self.mutable_attr_names:
            raise KeyError(f'{type(self).__name__} has no mutable attribute '
                           f'{attr!r}; accepted: '
                           f'{list(self.mutable_attr_names)}')
        if not isinstance(mutable, BaseMutable):
            raise TypeError(f'{type(self).__name__}.{attr} must be a '
                            f'mutable, got {type(mutable).__name__}')
        self._check_mutable_attr(name, mutable)
        self.mutable_attrs[name] = mutable
        return self

    def _check_mutable_attr(self, name: str, mutable: BaseMutable) -> None:
        """Subclasses validate that ``mutable`` fits attribute ``name``."""

    def _check_channel_mutable(self, name: str, mutable: BaseMutable,
                               full: int) -> None:
        if not hasattr(mutable, 'current_mask'):
            raise TypeError(f'{type(self).__name__}.{name} needs a channel '
                            f'mutable with a mask, got '
                            f'{type(mutable).__name__}')
        length = len(mutable.current_mask)
        if length != full:
            raise ValueError(f'{type(self).__name__}.{name}: the mutable '
                             f'masks {length} channels but the layer has '
                             f'{full}')

    def get_mutable_attr(self, attr: str) -> Optional[BaseMutable]:
        """The mutable of ``attr``, or None when it is not mutable."""
        name = self.mutable_attr_aliases.get(attr, attr)
        if name in self.mutable_attrs:
            return self.mutable_attrs[name]
        return None

    def _channel_index(self, attr: str, device: torch.device) -> Index:
        mutable = self.get_mutable_attr(attr)
        if mutable is None:
            return slice(None)
        return mask_to_index(_mask_of(mutable), device)

    def _active_count(self, attr: str, full: int) -> int:
        mutable = self.get_mutable_attr(attr)
        if mutable is None:
            return full
        return int(np.count_nonzero(_mask_of(mutable).numpy()))

    def to_static_op(self) -> nn.Module:
        """The plain PyTorch layer of the current choice (sliced weights
        copied, same outputs)."""
        raise NotImplementedError


def take(tensor: Optional[torch.Tensor], index: Index,
         dim: int = 0) -> Optional[torch.Tensor]:
    """``tensor`` indexed by ``index`` along ``dim`` (None passes through)."""
    if tensor is None or (isinstance(index, slice) and index == slice(None)):
        return tensor
    if isinstance(index, slice):
        return tensor.narrow(dim, index.start, index.stop - index.start)
    return tensor.index_select(dim, index)
