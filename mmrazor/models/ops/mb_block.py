"""The inverted-residual (MobileNetV2 / ProxylessNAS) block."""
from typing import Dict, Optional, Sequence, Union

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule, build_activation_layer
from mmcv.cnn.bricks.drop import DropPath

from mmrazor.registry import MODELS
from mmrazor.utils import make_divisible
from .base import BaseOP


class SELayer(nn.Module):
    """Squeeze-and-excitation: channel gates from globally pooled features.

    Args:
        channels (int): Channels of the input (and output).
        ratio (float): Squeeze ratio; the squeezed width is
            ``make_divisible(channels / ratio, divisor)``. Defaults to 4.
        divisor (int): Rounding of the squeezed width. Defaults to 8.
        act_cfg (Sequence[dict]): Activations after the squeeze and the
            excitation convs. Defaults to ReLU then HSigmoid (MobileNetV3).
    """

    def __init__(self,
                 channels: int,
                 ratio: float = 4,
                 divisor: int = 8,
                 act_cfg: Sequence[Dict] = (dict(type='ReLU'),
                                            dict(type='HSigmoid'))) -> None:
        super().__init__()
        if len(act_cfg) != 2:
            raise ValueError(f'SELayer act_cfg needs 2 configs, got {act_cfg}')
        self.ratio = ratio
        self.divisor = divisor
        squeezed = make_divisible(channels / ratio, divisor)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.conv1 = nn.Conv2d(channels, squeezed, 1)
        self.act1 = build_activation_layer(dict(act_cfg[0]))
        self.conv2 = nn.Conv2d(squeezed, channels, 1)
        self.act2 = build_activation_layer(dict(act_cfg[1]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = self.act2(self.conv2(self.act1(self.conv1(self.pool(x)))))
        return x * gate


@MODELS.register_module()
class MBBlock(BaseOP):
    """Inverted residual block (MobileNetV2, ProxylessNAS "MBConv").

    1x1 expansion conv (absent when ``expand_ratio == 1``) -> ``kernel_size``
    depthwise conv with ``stride`` -> optional squeeze-and-excitation -> 1x1
    linear projection (norm, no activation). The input is added back when
    ``stride == 1`` and ``in_channels == out_channels``; ``drop_path_rate``
    then drops the residual branch per sample in training.

    Submodules (stable names, used by searchable backbones to make the block
    dynamic): ``expand_conv`` (ConvModule or None), ``depthwise_conv``
    (ConvModule), ``se`` (:class:`SELayer` or None), ``linear_conv``
    (ConvModule).

    Args:
        kernel_size (int): Kernel size of the depthwise conv (odd).
        expand_ratio (float): Hidden width is
            ``round(in_channels * expand_ratio)``.
        se_cfg (dict, optional): Keyword arguments of :class:`SELayer`
            (``ratio``, ``divisor``, ``act_cfg``); None means no SE.
            Defaults to None.
        conv_cfg (dict, optional): Conv layer config. Defaults to None.
        norm_cfg (dict): Norm layer config. Defaults to ``dict(type='BN')``.
        act_cfg (dict): Activation config. Defaults to
            ``dict(type='ReLU6')``.
        drop_path_rate (float): Stochastic-depth rate of the residual
            branch. Defaults to 0.
        with_cp (bool): Activation checkpointing. Defaults to False.
        **kwargs: ``in_channels``, ``out_channels``, ``stride`` (default 1)
            and ``init_cfg`` of :class:`BaseOP`.
    """

    def __init__(self,
                 kernel_size: int,
                 expand_ratio: Union[int, float],
                 se_cfg: Optional[Dict] = None,
                 conv_cfg: Optional[Dict] = None,
                 norm_cfg: Dict = dict(type='BN'),
                 act_cfg: Dict = dict(type='ReLU6'),
                 drop_path_rate: float = 0.,
                 with_cp: bool = False,
                 **kwargs) -> None:
        for key in ('in_channels', 'out_channels'):
            if key not in kwargs:
                raise TypeError(f'MBBlock needs {key}')
        super().__init__(with_cp=with_cp, **kwargs)
        if self.stride not in (1, 2):
            raise ValueError(f'MBBlock stride must be 1 or 2, got '
                             f'{self.stride}')
        if not isinstance(kernel_size, int) or kernel_size % 2 == 0:
            raise ValueError(f'MBBlock kernel_size must be an odd int, got '
                             f'{kernel_size!r}')
        if expand_ratio < 1:
            raise ValueError(f'MBBlock expand_ratio must be >= 1, got '
                             f'{expand_ratio!r}')
        if not 0 <= drop_path_rate < 1:
            raise ValueError('drop_path_rate must be in [0, 1), got '
                             f'{drop_path_rate!r}')
        self.kernel_size = kernel_size
        self.expand_ratio = expand_ratio
        self.mid_channels = int(round(self.in_channels * expand_ratio))
        self.with_res_shortcut = (
            self.stride == 1 and self.in_channels == self.out_channels)

        if expand_ratio != 1:
            self.expand_conv = ConvModule(
                self.in_channels,
                self.mid_channels,
                1,
                conv_cfg=conv_cfg,
                norm_cfg=norm_cfg,
                act_cfg=act_cfg)
        else:
            self.expand_conv = None
        self.depthwise_conv = ConvModule(
            self.mid_channels,
            self.mid_channels,
            kernel_size,
            stride=self.stride,
            padding=kernel_size // 2,
            groups=self.mid_channels,
            conv_cfg=conv_cfg,
            norm_cfg=norm_cfg,
            act_cfg=act_cfg)
        self.se = SELayer(self.mid_channels, **se_cfg) if se_cfg else None
        self.linear_conv = ConvModule(
            self.mid_channels,
            self.out_channels,
            1,
            conv_cfg=conv_cfg,
            norm_cfg=norm_cfg,
            act_cfg=None)
        self.drop_path = (
            DropPath(drop_path_rate) if drop_path_rate > 0 else nn.Identity())

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        if self.expand_conv is not None:
            out = self.expand_conv(out)
        out = self.depthwise_conv(out)
        if self.se is not None:
            out = self.se(out)
        out = self.linear_conv(out)
        if self.with_res_shortcut:
            out = x + self.drop_path(out)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._run(self._forward, x)

    def to_static_op(self) -> 'MBBlock':
        """Refresh ``in_channels``, ``mid_channels``, ``out_channels``,
        ``kernel_size`` and ``expand_ratio`` from the layers, and return
        the block itself.

        A searchable backbone builds the block at its largest size and
        makes its layers dynamic; exporters (which convert children before
        parents) then replace those layers by static ones of the chosen
        size, and this call makes the attributes describe them.
        """
        depthwise = self.depthwise_conv.conv
        first = self.expand_conv.conv if self.expand_conv is not None \
            else depthwise
        self.in_channels = first.in_channels
        self.mid_channels = depthwise.out_channels
        self.out_channels = self.linear_conv.conv.out_channels
        self.kernel_size = depthwise.kernel_size[0]
        ratio = self.mid_channels / self.in_channels
        self.expand_ratio = int(ratio) if ratio == int(ratio) else ratio
        return self
