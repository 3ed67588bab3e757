"""The common base of search-space blocks (candidate operations)."""
from typing import Callable, Dict, Optional

import torch
import torch.utils.checkpoint as cp
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch import nn

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
    """A "skip" candidate: the input itself, or a 1x1 conv where the shape
    changes.

    With stride 1 and ``in_channels == out_channels`` (or the channels left
    out) it returns its input. Otherwise (the 0.x and 1.x contract) it
    downsamples with a 1x1 ``ConvModule`` (conv, ``norm_cfg``, ``act_cfg``)
    of stride ``stride`` from ``in_channels`` to ``out_channels``, kept as
    ``self.downsample`` (None when the op is a pure identity).

    Args:
        in_channels (int, optional): Input channels; needed when
            downsampling. Defaults to None.
        out_channels (int, optional): Output channels; needed when
            downsampling. Defaults to None.
        stride (int): Stride. Defaults to 1.
        conv_cfg (dict, optional): Conv config of the downsampling conv.
            Defaults to None.
        norm_cfg (dict, optional): Its norm config. Defaults to
            ``dict(type='BN')``.
        act_cfg (dict, optional): Its activation config. Defaults to
            ``dict(type='ReLU')``.
        with_cp (bool): Activation checkpointing. Defaults to False.
        init_cfg (dict, optional): mmengine initialisation config.
    """

    def __init__(self,
                 in_channels: Optional[int] = None,
                 out_channels: Optional[int] = None,
                 stride: int = 1,
                 conv_cfg: Optional[Dict] = None,
                 norm_cfg: Optional[Dict] = dict(type='BN'),
                 act_cfg: Optional[Dict] = dict(type='ReLU'),
                 with_cp: bool = False,
                 init_cfg: Optional[Dict] = None) -> None:
        super().__init__(in_channels, out_channels, stride, with_cp,
                         init_cfg)
        self.conv_cfg = conv_cfg
        self.norm_cfg = norm_cfg
        self.act_cfg = act_cfg
        reshapes = in_channels is not None and out_channels is not None \
            and in_channels != out_channels
        if stride != 1 or reshapes:
            if in_channels is None or out_channels is None:
                raise ValueError(
                    f'Identity with stride={stride} needs in_channels and '
                    'out_channels to build its downsampling conv, got '
                    f'in_channels={in_channels}, '
                    f'out_channels={out_channels}')
            self.downsample: Optional[nn.Module] = ConvModule(
                in_channels,
                out_channels,
                1,
                stride=stride,
                conv_cfg=conv_cfg,
                norm_cfg=norm_cfg,
                act_cfg=act_cfg)
        else:
            self.downsample = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The input, or its downsampled version.

        Args:
            x (Tensor): Input, shape ``(N, in_channels, H, W)``.

        Returns:
            Tensor: ``x`` or ``downsample(x)``.
        """
        if self.downsample is None:
            return x
        return self._run(self.downsample, x)


__all__ = ['BaseOP', 'Identity', 'channel_shuffle']
