"""The shallow classifier of "Be Your Own Teacher" (BYOT)."""
import math
from typing import Dict, Optional, Tuple, Union

import torch
from torch import nn

from mmrazor.models.ops.darts_series import DartsSepConv
from mmrazor.registry import MODELS
from .connectors import BaseConnector


@MODELS.register_module()
class BYOTConnector(BaseConnector):
    """Attention module, bottleneck and classifier of one BYOT stage.

    From "Be Your Own Teacher" (Zhang et al., ICCV 2019,
    https://arxiv.org/abs/1905.08094): an intermediate stage of the network
    gets its own shallow classifier, taught by the deepest one.

    * attention: ``SepConv(stride) -> BN -> ReLU -> Upsample(x stride) ->
      Sigmoid``, multiplied onto the feature;
    * bottleneck (``scala``): ``log2(out_channel / in_channel)`` separable
      convs, each doubling the channels (and striding by ``stride``),
      then ``AvgPool2d(pool_size)``;
    * ``fc``: linear layer to ``num_classes``.

    The separable convs are :class:`~mmrazor.models.ops.DartsSepConv`
    (``(ReLU, depthwise k x k, 1x1, BN) x 2``).

    Args:
        in_channel (int): Base channels of the stage; the feature has
            ``in_channel * expansion`` channels.
        out_channel (int): Base channels after the bottleneck (those of the
            deepest stage); ``out_channel / in_channel`` must be a power of 2.
        num_classes (int): Classes of the classifier.
        expansion (int): Block expansion of the backbone (4 for
            bottlenecks, 1 for basic blocks). Defaults to 4.
        pool_size (int | tuple[int]): Kernel of the final average pooling;
            it must reduce the map to 1x1. Defaults to 4.
        kernel_size (int | tuple[int]): Kernel of the separable convs.
            Defaults to 3.
        stride (int | tuple[int]): Stride of the separable convs.
            Defaults to 1.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 in_channel: int,
                 out_channel: int,
                 num_classes: int,
                 expansion: int = 4,
                 pool_size: Union[int, Tuple[int]] = 4,
                 kernel_size: Union[int, Tuple[int]] = 3,
                 stride: Union[int, Tuple[int]] = 1,
                 init_cfg: Optional[Dict] = None) -> None:
        super().__init__(init_cfg)
        num_doublings = math.log2(out_channel / in_channel)
        if not num_doublings.is_integer() or num_doublings < 0:
            raise ValueError(
                'BYOTConnector: out_channel / in_channel must be a power of '
                f'2 (>= 1), got out_channel={out_channel}, '
                f'in_channel={in_channel}')
        self.in_channels = in_channel * expansion
        width = in_channel * expansion
        self.attention = nn.Sequential(
            DartsSepConv(width, width, stride=stride,
                         kernel_size=kernel_size),
            nn.BatchNorm2d(width), nn.ReLU(),
            nn.Upsample(scale_factor=stride, mode='bilinear'), nn.Sigmoid())
        bottleneck = []
        for _ in range(int(num_doublings)):
            bottleneck.append(
                DartsSepConv(width, width * 2, stride=stride,
                             kernel_size=kernel_size))
            width *= 2
        bottleneck.append(nn.AvgPool2d(pool_size))
        self.scala = nn.Sequential(*bottleneck)
        self.fc = nn.Linear(out_channel * expansion, num_classes)

    def forward_train(
            self, feature: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Classify a stage's feature.

        Args:
            feature (Tensor): Shape ``(N, in_channel * expansion, H, W)``.

        Returns:
            tuple[Tensor, Tensor]: The pooled feature map
            ``(N, out_channel * expansion, 1, 1)`` (``connector_idx=0``:
            matched with the deepest feature, the output of the neck's
            ``gap`` in the 1.x config) and the logits ``(N, num_classes)``
            (``connector_idx=1``).
        """
        if feature.dim() != 4 or feature.shape[1] != self.in_channels:
            raise ValueError(
                'BYOTConnector: expected a feature of shape (N, '
                f'{self.in_channels}, H, W) (in_channel * expansion), got '
                f'{tuple(feature.shape)}')
        attention = self.attention(feature)
        if attention.shape != feature.shape:
            raise ValueError(
                'BYOTConnector: the attention map has shape '
                f'{tuple(attention.shape)} but the feature '
                f'{tuple(feature.shape)}; use an input size divisible by '
                'the stride')
        pooled = self.scala(attention * feature)
        flat = pooled.flatten(1)
        if flat.shape[1] != self.fc.in_features:
            raise ValueError(
                f'BYOTConnector: the pooled feature has {flat.shape[1]} '
                f'elements per sample, fc expects {self.fc.in_features}; '
                'choose pool_size so that the map pools to 1x1')
        return pooled, self.fc(flat)
