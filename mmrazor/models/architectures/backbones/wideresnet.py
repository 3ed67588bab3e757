"""``WideResNet``: the CIFAR wide residual network of the 1.x toolbox.

Zagoruyko & Komodakis, "Wide Residual Networks", BMVC 2016. WRN-d-k has a
3x3 stem convolution to 16 channels, then 3 stages of ``(d - 4) / 6``
pre-activation basic blocks with ``16k``, ``32k`` and ``64k`` channels
(first-block strides 1, 2, 2), and a final BN + ReLU.

Module names follow the 1.x toolbox, so its configs' module paths
(``backbone.layer2.0.bn1``, ``backbone.bn1``) and checkpoints' keys hold:
``conv1`` (stem), ``layer{i}`` (stages), in each block ``bn1`` / ``conv1`` /
``bn2`` / ``conv2`` / ``downsample`` (a bare 1x1 conv), and ``bn1`` (the
final BN).
"""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_activation_layer, build_conv_layer, build_norm_layer
from mmengine.model import BaseModule
from torch.nn.modules.batchnorm import _BatchNorm

from mmrazor.registry import MODELS

ConfigType = Optional[Dict]


class PreActBasicBlock(nn.Module):
    """Pre-activation basic block of a wide residual network.

    ``out = conv2(drop(act(bn2(conv1(act(bn1(x))))))) + shortcut``, where
    the shortcut is ``x`` itself, or ``downsample(act(bn1(x)))`` (a 1x1
    conv) when the channels or the stride change.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        stride (int): Stride of the first conv (and of the shortcut).
            Defaults to 1.
        dilation (int): Dilation of the first conv. Defaults to 1.
        drop_rate (float): Dropout probability between the two convs.
            Defaults to 0.
        conv_cfg (dict, optional): Conv layer config. Defaults to None.
        norm_cfg (dict): Norm layer config. Defaults to ``dict(type='BN')``.
        act_cfg (dict): Activation config. Defaults to
            ``dict(type='ReLU')`` (not in place, so a recorded ``bn1``
            output stays the pre-activation map).
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 stride: int = 1,
                 dilation: int = 1,
                 drop_rate: float = 0.,
                 conv_cfg: ConfigType = None,
                 norm_cfg: Dict = dict(type='BN'),
                 act_cfg: Dict = dict(type='ReLU')) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.stride = stride
        self.drop_rate = drop_rate

        self.bn1 = build_norm_layer(norm_cfg, in_channels)[1]
        self.relu1 = build_activation_layer(act_cfg)
        self.conv1 = build_conv_layer(
            conv_cfg,
            in_channels,
            out_channels,
            kernel_size=3,
            stride=stride,
            padding=dilation,
            dilation=dilation,
            bias=False)
        self.bn2 = build_norm_layer(norm_cfg, out_channels)[1]
        self.relu2 = build_activation_layer(act_cfg)
        self.conv2 = build_conv_layer(
            conv_cfg,
            out_channels,
            out_channels,
            kernel_size=3,
            stride=1,
            padding=1,
            bias=False)
        self.downsample: Optional[nn.Module] = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = build_conv_layer(
                conv_cfg,
                in_channels,
                out_channels,
                kernel_size=1,
                stride=stride,
                bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Run the block.

        Args:
            x (torch.Tensor): Input of shape ``(N, in_channels, H, W)``.

        Returns:
            torch.Tensor: Output of shape ``(N, out_channels, H', W')``.
        """
        activated = self.relu1(self.bn1(x))
        out = self.conv1(activated)
        out = self.relu2(self.bn2(out))
        if self.drop_rate > 0:
            out = F.dropout(out, p=self.drop_rate, training=self.training)
        out = self.conv2(out)
        shortcut = x if self.downsample is None else self.downsample(
            activated)
        return out + shortcut


@MODELS.register_module()
class WideResNet(BaseModule):
    """Wide residual network for tiny images (CIFAR), WRN-``depth``-
    ``widen_factor``.

    Stage ``i`` (from 0) has ``(depth - 4) // 6`` blocks of
    ``base_channels * widen_factor * 2**i`` channels. The last stage is
    followed by the final ``bn1`` and an activation.

    Args:
        depth (int): Network depth, ``6 * n + 4`` (10, 16, 22, 28, 40, ...).
        widen_factor (int): Width multiplier k. Defaults to 4.
        in_channels (int): Input image channels. Defaults to 3.
        stem_channels (int): Output channels of the stem conv. Defaults to
            16.
        base_channels (int): Channels of the first stage before widening.
            Defaults to 16.
        expansion (int, optional): Width multiplier used instead of
            ``widen_factor`` when given (1.x argument). Defaults to None.
        num_stages (int): Number of stages, at most ``len(strides)``.
            Defaults to 3.
        strides (Sequence[int]): Stride of each stage's first block.
            Defaults to ``(1, 2, 2)``.
        dilations (Sequence[int]): Dilation of each stage. Defaults to
            ``(1, 1, 1)``.
        drop_rate (float): Dropout probability inside the blocks. Defaults
            to 0.
        out_indices (Sequence[int]): Stages whose outputs are returned; the
            last stage's output is taken after the final BN and activation,
            the others' are the stages' raw (pre-activation) outputs.
            Defaults to ``(2, )``.
        frozen_stages (int): Stages to freeze (no gradient, eval mode); 0
            freezes the stem, ``num_stages`` also the final BN; -1 freezes
            nothing. Defaults to -1.
        conv_cfg (dict, optional): Conv layer config. Defaults to None.
        norm_cfg (dict): Norm layer config. Defaults to
            ``dict(type='BN', requires_grad=True)``.
        act_cfg (dict): Activation config. Defaults to ``dict(type='ReLU')``
            (not in place, so recorded BN outputs stay pre-activation maps).
        norm_eval (bool): Keep norm layers in eval mode during training.
            Defaults to False.
        zero_init_residual (bool): Zero-initialise each block's last conv,
            so blocks start as identities. Defaults to False.
        init_cfg (dict | list[dict], optional): Initialisation config.
            Defaults to Kaiming for convs and constant 1 for norms.
    """

    def __init__(self,
                 depth: int,
                 widen_factor: int = 4,
                 in_channels: int = 3,
                 stem_channels: int = 16,
                 base_channels: int = 16,
                 expansion: Optional[int] = None,
                 num_stages: int = 3,
                 strides: Sequence[int] = (1, 2, 2),
                 dilations: Sequence[int] = (1, 1, 1),
                 drop_rate: float = 0.,
                 out_indices: Sequence[int] = (2, ),
                 frozen_stages: int = -1,
                 conv_cfg: ConfigType = None,
                 norm_cfg: Dict = dict(type='BN', requires_grad=True),
                 act_cfg: Dict = dict(type='ReLU'),
                 norm_eval: bool = False,
                 zero_init_residual: bool = False,
                 init_cfg: Optional[Union[Dict, List[Dict]]] = [
                     dict(type='Kaiming', layer=['Conv2d']),
                     dict(
                         type='Constant',
                         val=1,
                         layer=['_BatchNorm', 'GroupNorm'])
                 ]) -> None:
        super().__init__(init_cfg)
        self._check_args(depth, widen_factor, expansion, num_stages, strides,
                         dilations, drop_rate, out_indices, frozen_stages)
        self.depth = depth
        self.widen_factor = widen_factor
        self.expansion = widen_factor if expansion is None else expansion
        self.num_stages = num_stages
        self.blocks_per_stage = (depth - 4) // 6
        self.out_indices = tuple(
            index % num_stages for index in out_indices)
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.zero_init_residual = zero_init_residual

        self.conv1 = build_conv_layer(
            conv_cfg,
            in_channels,
            stem_channels,
            kernel_size=3,
            stride=1,
            padding=1,
            bias=False)
        self.res_layers: List[str] = []
        stage_in = stem_channels
        for i in range(num_stages):
            stage_out = base_channels * self.expansion * 2**i
            blocks = [
                PreActBasicBlock(
                    in_channels=stage_in if j == 0 else stage_out,
                    out_channels=stage_out,
                    stride=strides[i] if j == 0 else 1,
                    dilation=dilations[i],
                    drop_rate=drop_rate,
                    conv_cfg=conv_cfg,
                    norm_cfg=norm_cfg,
                    act_cfg=act_cfg) for j in range(self.blocks_per_stage)
            ]
            layer_name = f'layer{i + 1}'
            self.add_module(layer_name, nn.Sequential(*blocks))
            self.res_layers.append(layer_name)
            stage_in = stage_out
        self.feat_dim = stage_in
        self.bn1 = build_norm_layer(norm_cfg, stage_in)[1]
        self.relu = build_activation_layer(act_cfg)
        self._freeze_stages()

    @staticmethod
    def _check_args(depth: int, widen_factor: int, expansion: Optional[int],
                    num_stages: int, strides: Sequence[int],
                    dilations: Sequence[int], drop_rate: float,
                    out_indices: Sequence[int], frozen_stages: int) -> None:
        """Refuse arguments that describe no wide residual network."""
        if not isinstance(depth, int) or depth < 10 or (depth - 4) % 6:
            raise ValueError('depth must be 6 * n + 4 with n >= 1 '
                             f'(10, 16, 22, 28, 40, ...), got {depth!r}')
        for name, value in (('widen_factor', widen_factor), ('expansion',
                                                             expansion)):
            if value is not None and (not isinstance(value, int)
                                      or value < 1):
                raise ValueError(
                    f'{name} must be a positive int, got {value!r}')
        if not 1 <= num_stages <= min(len(strides), len(dilations)):
            raise ValueError(
                f'num_stages must be between 1 and the lengths of strides '
                f'{tuple(strides)} and dilations {tuple(dilations)}, got '
                f'{num_stages!r}')
        if not 0 <= drop_rate < 1:
            raise ValueError(f'drop_rate must be in [0, 1), got {drop_rate!r}')
        for index in out_indices:
            if not -num_stages <= index < num_stages:
                raise ValueError(
                    f'out_indices {tuple(out_indices)} has {index!r}, out of '
                    f'range for num_stages={num_stages}')
        if not -1 <= frozen_stages <= num_stages:
            raise ValueError(f'frozen_stages must be between -1 and '
                             f'num_stages={num_stages}, got {frozen_stages!r}')

    @property
    def norm1(self) -> nn.Module:
        """The final norm layer (1.x name)."""
        return self.bn1

    def _freeze_stages(self) -> None:
        """Stop the gradient of the frozen stages and put them in eval."""
        frozen: List[nn.Module] = []
        if self.frozen_stages >= 0:
            frozen.append(self.conv1)
        for i in range(1, self.frozen_stages + 1):
            frozen.append(getattr(self, f'layer{i}'))
        if self.frozen_stages == self.num_stages:
            frozen.append(self.bn1)
        for module in frozen:
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def init_weights(self) -> None:
        """Initialise from ``init_cfg``, then zero each block's last conv
        when ``zero_init_residual`` (unless loading a checkpoint)."""
        super().init_weights()
        pretrained = isinstance(self.init_cfg, dict) and \
            self.init_cfg.get('type') == 'Pretrained'
        if self.zero_init_residual and not pretrained:
            for module in self.modules():
                if isinstance(module, PreActBasicBlock):
                    nn.init.zeros_(module.conv2.weight)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Run the network.

        Args:
            x (torch.Tensor): Images of shape ``(N, in_channels, H, W)``.

        Returns:
            tuple[torch.Tensor]: The outputs of the stages in
            ``out_indices``, the last one after the final BN and activation.
        """
        if x.dim() != 4:
            raise ValueError('WideResNet expects input of shape (N, C, H, W), '
                             f'got shape {tuple(x.shape)}')
        outs = []
        x = self.conv1(x)
        for i, layer_name in enumerate(self.res_layers):
            x = getattr(self, layer_name)(x)
            if i == self.num_stages - 1:
                x = self.relu(self.bn1(x))
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)

    def train(self, mode: bool = True) -> 'WideResNet':
        """Set the training mode, keeping frozen stages (and, with
        ``norm_eval``, every norm layer) in eval mode.

        Args:
            mode (bool): Training mode. Defaults to True.

        Returns:
            WideResNet: This module.
        """
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for module in self.modules():
                if isinstance(module, _BatchNorm):
                    module.eval()
        return self
