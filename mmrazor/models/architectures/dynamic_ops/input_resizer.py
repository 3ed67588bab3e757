"""Resize the input images to a searched resolution."""
from typing import Any, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from mmrazor.models.mutables import BaseMutable
from mmrazor.registry import MODELS
from .base import DynamicMixin

_MODES = ('nearest', 'bilinear', 'bicubic', 'area', 'nearest-exact')


def _check_mode(mode: str) -> None:
    if mode not in _MODES:
        raise ValueError(f'interpolation_type={mode!r} is not one of '
                         f'{list(_MODES)}')


def _resize(x: torch.Tensor, shape: Optional[Sequence[int]], mode: str,
            align_corners: bool) -> torch.Tensor:
    """``x`` (N, C, H, W) resized to ``shape`` (H, W); unchanged when it
    already has that size or ``shape`` is None."""
    if shape is None or tuple(x.shape[-2:]) == tuple(shape):
        return x
    corners = align_corners if mode in ('bilinear', 'bicubic') else None
    return F.interpolate(
        x, size=tuple(int(s) for s in shape), mode=mode,
        align_corners=corners)


class InputResizer(nn.Module):
    """Resize every input batch to a fixed ``shape`` (the static form of
    :class:`DynamicInputResizer`).

    Args:
        shape (Sequence[int], optional): ``(H, W)``; None: no resizing.
        interpolation_type (str): ``F.interpolate`` mode. Defaults to
            ``'bicubic'``.
        align_corners (bool): For bilinear / bicubic. Defaults to False.
    """

    def __init__(self,
                 shape: Optional[Sequence[int]] = None,
                 interpolation_type: str = 'bicubic',
                 align_corners: bool = False) -> None:
        super().__init__()
        _check_mode(interpolation_type)
        self.shape = None if shape is None else tuple(int(s) for s in shape)
        self.interpolation_type = interpolation_type
        self.align_corners = align_corners

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _resize(x, self.shape, self.interpolation_type,
                       self.align_corners)

    def extra_repr(self) -> str:
        return f'shape={self.shape}, mode={self.interpolation_type!r}'


@MODELS.register_module()
class DynamicInputResizer(nn.Module, DynamicMixin):
    """Resize the input to the resolution a mutable chooses (BigNAS / OFA
    search the input size with the network).

    Mutable attribute: ``'shape'``, a value mutable whose choices are
    ``[H, W]`` pairs. Without one, inputs pass unchanged.

    Args:
        interpolation_type (str): ``F.interpolate`` mode. Defaults to
            ``'bicubic'``.
        align_corners (bool): For bilinear / bicubic. Defaults to False.
    """

    mutable_attr_names = ('shape', )

    def __init__(self,
                 interpolation_type: str = 'bicubic',
                 align_corners: bool = False) -> None:
        super().__init__()
        _check_mode(interpolation_type)
        self.interpolation_type = interpolation_type
        self.align_corners = align_corners
        self._init_mutable_attrs()

    def _check_mutable_attr(self, name: str, mutable: BaseMutable) -> None:
        for choice in mutable.choices:
            if not isinstance(choice, (list, tuple)) or len(choice) != 2:
                raise ValueError(
                    f'DynamicInputResizer: every choice of the shape '
                    f'mutable must be [H, W], got {choice!r}')

    @property
    def active_shape(self) -> Optional[Tuple[int, int]]:
        """``(H, W)`` of the current choice (None: not resized)."""
        mutable = self.get_mutable_attr('shape')
        if mutable is None:
            return None
        h, w = mutable.current_choice
        return int(h), int(w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _resize(x, self.active_shape, self.interpolation_type,
                       self.align_corners)

    def to_static_op(self) -> InputResizer:
        """An :class:`InputResizer` to the current shape."""
        return InputResizer(self.active_shape, self.interpolation_type,
                            self.align_corners)

    def extra_repr(self, *args: Any) -> str:
        return f'mode={self.interpolation_type!r}'
