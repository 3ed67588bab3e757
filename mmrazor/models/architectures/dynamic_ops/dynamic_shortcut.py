"""The shortcut of AttentiveNAS blocks: avg-pool and a 1x1 conv when the
block changes the resolution or the width."""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from mmrazor.models.mutables import BaseMutable
from .base import DynamicMixin


def _pool(x: torch.Tensor, reduction: int) -> torch.Tensor:
    """Average pooling by ``reduction`` (1 or 2) whose output size matches a
    stride-2 'same'-padded conv (odd sizes are padded by one)."""
    if reduction == 1:
        return x
    padding = (x.size(-2) % 2, x.size(-1) % 2)
    return F.avg_pool2d(x, reduction, padding=padding)


class ShortcutLayer(nn.Module):
    """Static AttentiveNAS shortcut: average pooling by ``reduction``, then
    an optional 1x1 conv (present when the widths differ).

    Args:
        reduction (int): 1 or 2 (the block's stride).
        conv (nn.Module, optional): The 1x1 conv; None for none.
    """

    def __init__(self, reduction: int = 1,
                 conv: Optional[nn.Module] = None) -> None:
        super().__init__()
        if reduction not in (1, 2):
            raise ValueError(f'ShortcutLayer reduction must be 1 or 2, got '
                             f'{reduction!r}')
        self.reduction = reduction
        self.conv = conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _pool(x, self.reduction)
        if self.conv is not None:
            x = self.conv(x)
        return x


class DynamicShortcutLayer(ShortcutLayer, DynamicMixin):
    """AttentiveNAS shortcut of a searchable block.

    Built with a 1x1 conv of the largest widths (a dynamic conv, e.g.
    ``DynamicConv2d`` or ``BigNasConv2d``); the conv runs only while the
    active input and output widths differ. Mutable attributes:
    ``'in_channels'`` and ``'out_channels'`` (channel mutables; they are
    registered in the conv too).

    Args:
        conv (DynamicConv2d): The 1x1 conv, ``bias=False``.
        reduction (int): 1 or 2 (the block's stride).
    """

    mutable_attr_names = ('in_channels', 'out_channels')

    def __init__(self, conv: nn.Module, reduction: int = 1) -> None:
        if not hasattr(conv, 'register_mutable_attr'):
            raise TypeError('DynamicShortcutLayer needs a dynamic conv, got '
                            f'{type(conv).__name__}')
        super().__init__(reduction, conv)
        self._init_mutable_attrs()

    def _check_mutable_attr(self, name: str, mutable: BaseMutable) -> None:
        self._check_channel_mutable(name, mutable, getattr(self.conv, name))

    def register_mutable_attr(self, attr: str,
                              mutable: BaseMutable) -> 'DynamicShortcutLayer':
        """See :meth:`DynamicMixin.register_mutable_attr`; the conv gets
        the mutable too."""
        super().register_mutable_attr(attr, mutable)
        self.conv.register_mutable_attr(attr, mutable)
        return self

    @property
    def active_channels(self) -> Tuple[int, int]:
        """Active ``(in_channels, out_channels)``."""
        return (self._active_count('in_channels', self.conv.in_channels),
                self._active_count('out_channels', self.conv.out_channels))

    @property
    def with_conv(self) -> bool:
        """Whether the conv runs for the current choice."""
        in_c, out_c = self.active_channels
        return in_c != out_c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _pool(x, self.reduction)
        if self.with_conv:
            x = self.conv(x)
        return x

    def to_static_op(self) -> ShortcutLayer:
        """A :class:`ShortcutLayer` of the current choice: the sliced conv
        when the active widths differ, no conv otherwise.

        Returns:
            ShortcutLayer: The static shortcut.
        """
        conv = self.conv
        convert = getattr(conv, 'to_static_op', None)
        if callable(convert):
            conv = convert()
        keep = self.with_conv
        static = ShortcutLayer(self.reduction, conv if keep else None)
        static.train(self.training)
        return static
