"""Global mean pooling followed by dropout (the AttentiveNAS neck)."""
from typing import Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule

from mmrazor.registry import MODELS


@MODELS.register_module()
class SqueezeMeanPoolingWithDropout(BaseModule):
    """Average every feature map over its spatial dims (``(N, C, H, W)`` ->
    ``(N, C)``) and apply dropout with probability ``drop_ratio`` while
    training. Takes and returns a tensor or a tuple of tensors (as
    mmpretrain necks do).

    Args:
        drop_ratio (float): Dropout probability in ``[0, 1)``. Defaults to
            0.2.
    """

    def __init__(self, drop_ratio: float = 0.2) -> None:
        super().__init__()
        if not 0 <= drop_ratio < 1:
            raise ValueError(f'drop_ratio={drop_ratio!r} must be in [0, 1)')
        self.drop_ratio = drop_ratio

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 3:
            raise ValueError('SqueezeMeanPoolingWithDropout takes (N, C, '
                             f'...) feature maps, got shape {tuple(x.shape)}')
        x = x.flatten(2).mean(dim=2)
        if self.drop_ratio > 0:
            x = F.dropout(x, p=self.drop_ratio, training=self.training)
        return x

    def forward(
        self, inputs: Union[torch.Tensor, Tuple[torch.Tensor, ...]]
    ) -> Union[torch.Tensor, Tuple[torch.Tensor, ...]]:
        if isinstance(inputs, tuple):
            return tuple(self._pool(x) for x in inputs)
        if isinstance(inputs, torch.Tensor):
            return self._pool(inputs)
        raise TypeError('SqueezeMeanPoolingWithDropout takes a tensor or a '
                        f'tuple of tensors, got {type(inputs).__name__}')
