"""Candidate blocks of the ShuffleNetV2 single-path one-shot space."""
from typing import Dict, List, Optional

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule

from mmrazor.registry import MODELS
from .base import BaseOP, channel_shuffle


class _ShuffleUnit(BaseOP):
    """The two-branch ShuffleNetV2 unit shared by both candidates.

    With stride 1 the input is split in two halves: one passes through, the
    other goes through ``branch_main``. With stride > 1 the whole input
    feeds both ``branch_proj`` (depthwise conv + 1x1 conv) and
    ``branch_main``. The two halves are concatenated and channel-shuffled.

    Subclasses build ``branch_main`` in :meth:`_build_main`.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 stride: int = 1,
                 proj_kernel_size: int = 3,
                 conv_cfg: Optional[Dict] = None,
                 norm_cfg: Dict = dict(type='BN'),
                 act_cfg: Dict = dict(type='ReLU'),
                 with_cp: bool = False,
                 init_cfg: Optional[Dict] = None) -> None:
        super().__init__(in_channels, out_channels, stride, with_cp,
                         init_cfg)
        if stride not in (1, 2):
            raise ValueError(f'stride must be 1 or 2, got {stride}')
        if out_channels % 2:
            raise ValueError(f'out_channels must be even, got {out_channels}')
        self.branch_channels = out_channels // 2
        if stride == 1 and in_channels != out_channels:
            raise ValueError(
                'with stride 1 in_channels must equal out_channels, got '
                f'{in_channels} and {out_channels}')
        self.conv_cfg = conv_cfg
        self.norm_cfg = norm_cfg
        self.act_cfg = act_cfg

        if stride > 1:
            self.branch_proj = nn.Sequential(
                self._dw(in_channels, proj_kernel_size, stride),
                self._pw(in_channels, self.branch_channels))
        else:
            self.branch_proj = None
        main_in = in_channels if stride > 1 else self.branch_channels
        self.branch_main = nn.Sequential(*self._build_main(main_in))

    def _dw(self, channels: int, kernel_size: int,
            stride: int = 1) -> ConvModule:
        """Depthwise conv + norm, no activation."""
        return ConvModule(
            channels,
            channels,
            kernel_size,
            stride=stride,
            padding=kernel_size // 2,
            groups=channels,
            conv_cfg=self.conv_cfg,
            norm_cfg=self.norm_cfg,
            act_cfg=None)

    def _pw(self, in_channels: int, out_channels: int) -> ConvModule:
        """Pointwise conv + norm + activation."""
        return ConvModule(
            in_channels,
            out_channels,
            1,
            conv_cfg=self.conv_cfg,
            norm_cfg=self.norm_cfg,
            act_cfg=self.act_cfg)

    def _build_main(self, in_channels: int) -> List[nn.Module]:
        raise NotImplementedError

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.branch_proj is not None:
            out = torch.cat((self.branch_proj(x), self.branch_main(x)), 1)
        else:
            keep, active = x.chunk(2, dim=1)
            out = torch.cat((keep, self.branch_main(active)), 1)
        return channel_shuffle(out, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._run(self._forward, x)


@MODELS.register_module()
class ShuffleBlock(_ShuffleUnit):
    """ShuffleNetV2 block with a ``kernel_size`` depthwise conv.

    Main branch: 1x1 conv, ``kernel_size`` depthwise conv (with the
    stride), 1x1 conv. With stride 2 the projection branch uses the same
    kernel size.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels (even).
        kernel_size (int): Depthwise kernel size (3, 5 or 7 in SPOS).
        stride (int): 1 or 2. Defaults to 1.
        conv_cfg (dict, optional): Conv layer config. Defaults to None.
        norm_cfg (dict): Norm layer config. Defaults to ``dict(type='BN')``.
        act_cfg (dict): Activation config. Defaults to
            ``dict(type='ReLU')``.
        with_cp (bool): Activation checkpointing. Defaults to False.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 kernel_size: int = 3,
                 stride: int = 1,
                 conv_cfg: Optional[Dict] = None,
                 norm_cfg: Dict = dict(type='BN'),
                 act_cfg: Dict = dict(type='ReLU'),
                 with_cp: bool = False,
                 init_cfg: Optional[Dict] = None) -> None:
        if kernel_size % 2 == 0:
            raise ValueError(f'kernel_size must be odd, got {kernel_size}')
        self.kernel_size = kernel_size
        super().__init__(in_channels, out_channels, stride, kernel_size,
                         conv_cfg, norm_cfg, act_cfg, with_cp, init_cfg)

    def _build_main(self, in_channels: int) -> List[nn.Module]:
        c = self.branch_channels
        return [
            self._pw(in_channels, c),
            self._dw(c, self.kernel_size, self.stride),
            self._pw(c, c),
        ]


@MODELS.register_module()
class ShuffleXception(_ShuffleUnit):
    """ShuffleNetV2 Xception-like block: three 3x3 depthwise convs.

    Main branch: (3x3 depthwise with the stride, 1x1 conv) three times.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels (even).
        stride (int): 1 or 2. Defaults to 1.
        conv_cfg (dict, optional): Conv layer config. Defaults to None.
        norm_cfg (dict): Norm layer config. Defaults to ``dict(type='BN')``.
        act_cfg (dict): Activation config. Defaults to
            ``dict(type='ReLU')``.
        with_cp (bool): Activation checkpointing. Defaults to False.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 stride: int = 1,
                 conv_cfg: Optional[Dict] = None,
                 norm_cfg: Dict = dict(type='BN'),
                 act_cfg: Dict = dict(type='ReLU'),
                 with_cp: bool = False,
                 init_cfg: Optional[Dict] = None) -> None:
        super().__init__(in_channels, out_channels, stride, 3, conv_cfg,
                         norm_cfg, act_cfg, with_cp, init_cfg)

    def _build_main(self, in_channels: int) -> List[nn.Module]:
        c = self.branch_channels
        return [
            self._dw(in_channels, 3, self.stride),
            self._pw(in_channels, c),
            self._dw(c, 3),
            self._pw(c, c),
            self._dw(c, 3),
            self._pw(c, c),
        ]
