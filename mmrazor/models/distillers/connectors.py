"""Connectors: modules mapping a recorded student feature onto the
teacher's (MMRazor 1.x ``connectors`` of ``ConfigurableDistiller``)."""
from typing import Dict, Optional, Tuple, Union

import torch
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule

from mmrazor.registry import MODELS


class BaseConnector(BaseModule):
    """Base of connectors: ``forward(feature)`` calls :meth:`forward_train`.

    Args:
        init_cfg (dict, optional): Initialisation config.
    """

    def forward(self, feature: torch.Tensor) -> torch.Tensor:
        """Map ``feature``.

        Args:
            feature (Tensor): A recorded feature.

        Returns:
            Tensor: The mapped feature.
        """
        return self.forward_train(feature)

    def forward_train(self, feature: torch.Tensor) -> torch.Tensor:
        """The mapping; implemented by subclasses."""
        raise NotImplementedError


@MODELS.register_module()
class ConvModuleConnector(BaseConnector):
    """A convolution, optionally followed by normalisation and activation
    (mmcv's ``ConvModule``), e.g. a 1x1 projection of a student feature map
    onto the teacher's channels (FitNets' regressor).

    Args:
        in_channel (int): Channels of the student feature.
        out_channel (int): Channels of the teacher feature.
        kernel_size (int | tuple): Defaults to 1.
        stride (int | tuple): Defaults to 1.
        padding (int | tuple): Defaults to 0.
        dilation (int | tuple): Defaults to 1.
        groups (int): Defaults to 1.
        bias (bool | str): ``'auto'``: a bias unless a norm follows.
        conv_cfg (dict, optional): Convolution config; None: ``Conv2d``.
        norm_cfg (dict, optional): Normalisation, e.g. ``dict(type='BN')``;
            None: none.
        act_cfg (dict, optional): Activation; None: none. Defaults to
            ``dict(type='ReLU')``.
        inplace (bool): In-place activation. Defaults to True.
        order (tuple[str]): Order of conv, norm and act. Defaults to
            ``('conv', 'norm', 'act')``.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 in_channel: int,
                 out_channel: int,
                 kernel_size: Union[int, Tuple[int, int]] = 1,
                 stride: Union[int, Tuple[int, int]] = 1,
                 padding: Union[int, Tuple[int, int]] = 0,
                 dilation: Union[int, Tuple[int, int]] = 1,
                 groups: int = 1,
                 bias: Union[str, bool] = 'auto',
                 conv_cfg: Optional[Dict] = None,
                 norm_cfg: Optional[Dict] = None,
                 act_cfg: Optional[Dict] = dict(type='ReLU'),
                 inplace: bool = True,
                 order: tuple = ('conv', 'norm', 'act'),
                 init_cfg: Optional[Dict] = None) -> None:
        super().__init__(init_cfg)
        self.conv_module = ConvModule(
            in_channel,
            out_channel,
            kernel_size,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups,
            bias=bias,
            conv_cfg=conv_cfg,
            norm_cfg=norm_cfg,
            act_cfg=act_cfg,
            inplace=inplace,
            order=order)

    def forward_train(self, feature: torch.Tensor) -> torch.Tensor:
        """Project ``feature``.

        Args:
            feature (Tensor): Shape ``(N, in_channel, H, W)``.

        Returns:
            Tensor: Shape ``(N, out_channel, H', W')``.
        """
        return self.conv_module(feature)
