"""The common base of search-space blocks (candidate operations)."""
from typing import Callable, Dict, Optional

import torch
import torch.utils.checkpoint as cp
from mmengine.model import BaseModule

from mmrazor.registry import MODELS


class BaseOP(BaseModule):
    """A candidate operation of a search space.

    Every op maps ``in_channels`` to ``out_channels`` with a given
    ``stride``, so that candidates of one decision are interchangeable.

    Args:
        in_channels (int): Channels of the input.
        out_channels (int): Channels of the output.
        stride (int): Spatial stride. Defaults to 1.
        with_cp (bool): Use activation checkpointing in training (saves
            memory, costs a second forward). Defaults to False.
        init_cfg (dict, optional): mmengine initialisation config.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 stride: int = 1,
                 with_cp: bool = False,
                 init_cfg: Optional[Dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.stride = stride
        self.with_cp = with_cp

    def _run(self, fn: Callable[[torch.Tensor], torch.Tensor],
             x: torch.Tensor) -> torch.Tensor:
        """Run ``fn(x)``, checkpointed when ``with_cp`` applies."""
        if self.with_cp and x.requires_grad and self.training:
            return cp.checkpoint(fn, x, use_reentrant=False)
        return fn(x)


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """Interleave the channels of ``groups`` groups (ShuffleNet).

    Args:
        x (Tensor): Input of shape (N, C, H, W), C divisible by groups.
        groups (int): Number of groups.

    Returns:
        Tensor: Same shape, channels reordered group-interleaved.
    """
    n, c, h, w = x.shape
    if c % groups:
        raise ValueError(f'{c} channels cannot be split into {groups} '
                         'groups')
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(
        n, c, h, w)


@MODELS.register_module()
class Identity(BaseOP):
    """Pass the input through unchanged (a "skip" candidate).

    ``in_channels``, ``out_channels`` and ``stride`` are accepted so that it
    can be a candidate beside other ops; they must describe an identity
    (same channels, stride 1). ``conv_cfg``, ``norm_cfg``, ``act_cfg`` and
    ``with_cp`` are accepted (and unused) for the same reason.
    """

    def __init__(self,
                 in_channels: Optional[int] = None,
                 out_channels: Optional[int] = None,
                 stride: int = 1,
                 conv_cfg: Optional[Dict] = None,
                 norm_cfg: Optional[Dict] = None,
                 act_cfg: Optional[Dict] = None,
                 with_cp: bool = False,
                 init_cfg: Optional[Dict] = None) -> None:
        if stride != 1 or (in_channels is not None
                           and out_channels is not None
                           and in_channels != out_channels):
            raise ValueError(
                'Identity needs stride 1 and in_channels == out_channels, '
                f'got in={in_channels}, out={out_channels}, '
                f'stride={stride}')
        super().__init__(in_channels, out_channels, stride, with_cp,
                         init_cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


__all__ = ['BaseOP', 'Identity', 'channel_shuffle']
