"""Candidate operations of the DARTS cell search space."""
from typing import Dict, Optional

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule, build_norm_layer
from mmcv.cnn.bricks.drop import DropPath

from mmrazor.registry import MODELS
from .base import BaseOP

_NORM = dict(type='BN', affine=False)
_ACT = dict(type='ReLU')


def _act_conv_norm(in_channels: int, out_channels: int, kernel_size: int,
                   stride: int, padding: int, dilation: int, groups: int,
                   conv_cfg: Optional[Dict], norm_cfg: Optional[Dict],
                   act_cfg: Optional[Dict]) -> ConvModule:
    """ReLU -> conv -> norm, the DARTS ordering."""
    return ConvModule(
        in_channels,
        out_channels,
        kernel_size,
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        bias=False,
        conv_cfg=conv_cfg,
        norm_cfg=norm_cfg,
        act_cfg=act_cfg,
        inplace=False,
        order=('act', 'conv', 'norm'))


class _DartsOP(BaseOP):
    """DARTS op base: stores the OpenMMLab layer configs.

    With ``use_drop_path`` the output goes through a ``DropPath`` layer
    (probability 0 until e.g. ``DropPathProbHook`` raises it), as in DARTS
    retraining; identity skips are never dropped.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 stride: int = 1,
                 conv_cfg: Optional[Dict] = None,
                 norm_cfg: Optional[Dict] = _NORM,
                 act_cfg: Optional[Dict] = _ACT,
                 use_drop_path: bool = False,
                 with_cp: bool = False,
                 init_cfg: Optional[Dict] = None) -> None:
        super().__init__(in_channels, out_channels, stride, with_cp,
                         init_cfg)
        self.conv_cfg = conv_cfg
        self.norm_cfg = norm_cfg
        self.act_cfg = act_cfg
        self.drop_path = DropPath(0.0) if use_drop_path else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self._run(self._forward, x)
        if self.drop_path is not None and out is not x:
            out = self.drop_path(out)
        return out

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


@MODELS.register_module()
class DartsPoolBN(_DartsOP):
    """3x3 max or average pooling followed by a norm layer.

    A 1x1 conv adapts channels when ``in_channels != out_channels``.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        stride (int): Pooling stride. Defaults to 1.
        pool_type (str): ``'max'`` or ``'avg'``. Defaults to ``'max'``.
        kernel_size (int): Pooling window. Defaults to 3.
        conv_cfg, norm_cfg, act_cfg, use_drop_path, with_cp, init_cfg: as in
            :class:`DartsSepConv`.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 stride: int = 1,
                 pool_type: str = 'max',
                 kernel_size: int = 3,
                 **kwargs) -> None:
        super().__init__(in_channels, out_channels, stride, **kwargs)
        pad = kernel_size // 2
        if pool_type == 'max':
            self.pool = nn.MaxPool2d(kernel_size, stride, pad)
        elif pool_type == 'avg':
            self.pool = nn.AvgPool2d(
                kernel_size, stride, pad, count_include_pad=False)
        else:
            raise ValueError(
                f"pool_type must be 'max' or 'avg', got {pool_type!r}")
        self.pool_type = pool_type
        self.proj = None if in_channels == out_channels else ConvModule(
            in_channels, out_channels, 1, bias=False,
            conv_cfg=self.conv_cfg, norm_cfg=None, act_cfg=None)
        self.norm = build_norm_layer(self.norm_cfg, out_channels)[1] \
            if self.norm_cfg else nn.Identity()

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.pool(x)
        if self.proj is not None:
            out = self.proj(out)
        return self.norm(out)


@MODELS.register_module()
class DartsSepConv(_DartsOP):
    """Separable conv applied twice: (ReLU, depthwise k x k, 1x1, norm) x 2.

    The first repetition carries the stride and keeps ``in_channels``;
    the second maps to ``out_channels``.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        stride (int): Stride of the first depthwise conv. Defaults to 1.
        kernel_size (int): Depthwise kernel size. Defaults to 3.
        conv_cfg (dict, optional): Conv layer config. Defaults to None.
        norm_cfg (dict): Norm config. Defaults to BN without affine.
        act_cfg (dict): Activation config. Defaults to ReLU.
        use_drop_path (bool): Apply drop-path to the output. Defaults to
            False.
        with_cp (bool): Activation checkpointing. Defaults to False.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 stride: int = 1,
                 kernel_size: int = 3,
                 **kwargs) -> None:
        super().__init__(in_channels, out_channels, stride, **kwargs)
        pad = kernel_size // 2
        layers = []
        for i, (cin, cout, s) in enumerate(
            ((in_channels, in_channels, stride),
             (in_channels, out_channels, 1))):
            layers.append(
                _act_conv_norm(cin, cin, kernel_size, s, pad, 1, cin,
                               self.conv_cfg, None, self.act_cfg))
            layers.append(
                _act_conv_norm(cin, cout, 1, 1, 0, 1, 1, self.conv_cfg,
                               self.norm_cfg, None))
        self.layers = nn.Sequential(*layers)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


@MODELS.register_module()
class DartsDilConv(_DartsOP):
    """Dilated separable conv: ReLU, dilated depthwise k x k, 1x1, norm.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        stride (int): Stride. Defaults to 1.
        kernel_size (int): Depthwise kernel size. Defaults to 3.
        dilation (int): Dilation. Defaults to 2.
        conv_cfg, norm_cfg, act_cfg, use_drop_path, with_cp, init_cfg: as in
            :class:`DartsSepConv`.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 stride: int = 1,
                 kernel_size: int = 3,
                 dilation: int = 2,
                 **kwargs) -> None:
        super().__init__(in_channels, out_channels, stride, **kwargs)
        pad = dilation * (kernel_size - 1) // 2
        self.layers = nn.Sequential(
            _act_conv_norm(in_channels, in_channels, kernel_size, stride,
                           pad, dilation, in_channels, self.conv_cfg, None,
                           self.act_cfg),
            _act_conv_norm(in_channels, out_channels, 1, 1, 0, 1, 1,
                           self.conv_cfg, self.norm_cfg, None))

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


@MODELS.register_module()
class DartsSkipConnect(_DartsOP):
    """Identity, or a factorized reduction when the shape changes.

    With stride 1 and equal channels it returns the input. Otherwise
    (ReLU, then two 1x1 stride-2 convs on the input and on the input
    shifted by one pixel, concatenated, then norm) halves the resolution.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels (even when reducing).
        stride (int): 1 or 2. Defaults to 1.
        conv_cfg, norm_cfg, act_cfg, use_drop_path, with_cp, init_cfg: as in
            :class:`DartsSepConv`.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 stride: int = 1,
                 **kwargs) -> None:
        super().__init__(in_channels, out_channels, stride, **kwargs)
        self.reduce = stride != 1 or in_channels != out_channels
        if self.reduce:
            if out_channels % 2:
                raise ValueError('DartsSkipConnect reducing needs even '
                                 f'out_channels, got {out_channels}')
            self.act = MODELS.build(self.act_cfg) if self.act_cfg \
                else nn.Identity()
            half = out_channels // 2
            self.conv1 = nn.Conv2d(in_channels, half, 1, stride, bias=False)
            self.conv2 = nn.Conv2d(in_channels, half, 1, stride, bias=False)
            self.norm = build_norm_layer(self.norm_cfg, out_channels)[1] \
                if self.norm_cfg else nn.Identity()

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.reduce:
            return x
        x = self.act(x)
        shifted = x[:, :, 1:, 1:]
        if self.stride > 1:
            shifted = nn.functional.pad(shifted, (0, 1, 0, 1))
        out = torch.cat((self.conv1(x), self.conv2(shifted)), 1)
        return self.norm(out)


@MODELS.register_module()
class DartsZero(_DartsOP):
    """The "no connection" op: zeros of the output shape.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        stride (int): Stride. Defaults to 1.
    """

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x[:, :, ::self.stride, ::self.stride].mul(0.)
        if self.out_channels != self.in_channels:
            n, _, h, w = out.shape
            out = out.new_zeros(n, self.out_channels, h, w)
        return out
