"""A MobileNetV2 supernet with searchable kernels, expand ratios and widths.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch import nn

from mmrazor.models.mutables import OneShotMutableChannel, OneShotMutableValue
from mmrazor.models.ops import MBBlock
from mmrazor.registry import MODELS
from mmrazor.utils import make_divisible
from ..dynamic_ops import make_conv_module_dynamic, make_mb_block_dynamic


@MODELS.register_module()
class SearchableMobileNetV2(BaseModule):
    """MobileNetV2 as a weight-sharing supernet (OFA / BigNAS style).

    Layout as MobileNetV2: a 3x3 stride-2 stem conv, seven stages of
    :class:`~mmrazor.models.ops.MBBlock` (``arch_setting``), a 1x1 conv to
    ``last_channels``. Searched, all with weight sharing:

    * every block's depthwise kernel size (``kernel_choices``; smaller
      kernels are centre crops of the largest);
    * every block's expand ratio (``expand_ratio_choices``; stages whose
      setting has expand ratio 1 keep it);
    * the width of the stem and of every stage (``width_choices``, ratios of
      the stage's full width). All blocks of a stage share its width, as
      their residual additions tie them.

    Residual connections are those of the full network: blocks after the
    first of a stage add their input; a first block does only when its
    stride is 1 and its full input and output widths are equal (a subnet
    whose widths happen to match does not gain one).

    The decisions are ``self.mutables`` (``nn.ModuleDict``), keyed and
    aliased ``stem_width``, ``stage{i}_width``, ``stage{i}_block{j}_kernel``
    and ``stage{i}_block{j}_expand_ratio`` (stages and blocks from 0).
    Width mutables are :class:`OneShotMutableChannel` (current choice: a
    channel count); the others :class:`OneShotMutableValue`. The supernet
    starts at its largest subnet. ``export_fix_subnet(model,
    slice_weight=True)`` gives a plain model of the current subnet.

    Args:
        arch_setting (Sequence[Sequence[int]], optional): Per stage
            ``[expand_ratio, channels, num_blocks, stride]``. Defaults to
            MobileNetV2's.
        kernel_choices (Sequence[int]): Odd kernel sizes. Defaults to
            ``(3, 5, 7)``.
        expand_ratio_choices (Sequence[int]): Defaults to ``(3, 4, 6)``.
        width_choices (Sequence[float]): Width ratios in ``(0, 1]``.
            Defaults to ``(0.5, 0.75, 1.0)``.
        widen_factor (float): Scales the full widths (rounded to 8).
            Defaults to 1.0.
        first_channels (int): Full stem width. Defaults to 32.
        last_channels (int): Width of the final 1x1 conv (not searched).
            Defaults to 1280.
        out_indices (Sequence[int], optional): Outputs: ``i`` is stage
            ``i``, ``len(arch_setting)`` the final conv (7 for
            MobileNetV2). Defaults to the final conv only.
        conv_cfg (dict, optional): Must build ``nn.Conv2d`` (default).
        norm_cfg (dict): Must build ``nn.BatchNorm2d``. Defaults to
            ``dict(type='BN')``.
        act_cfg (dict): Defaults to ``dict(type='ReLU6')``.
        with_cp (bool): Activation checkpointing in blocks. Defaults to
            False.
        init_cfg (dict, optional): mmengine initialisation config.
    """

    mobilenet_v2_setting = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2),
                            (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                            (6, 320, 1, 1))

    def __init__(self,
                 arch_setting: Optional[Sequence[Sequence[int]]] = None,
                 kernel_choices: Sequence[int] = (3, 5, 7),
                 expand_ratio_choices: Sequence[int] = (3, 4, 6),
                 width_choices: Sequence[float] = (0.5, 0.75, 1.0),
                 widen_factor: float = 1.0,
                 first_channels: int = 32,
                 last_channels: int = 1280,
                 out_indices: Optional[Sequence[int]] = None,
                 conv_cfg: Optional[Dict] = None,
                 norm_cfg: Dict = dict(type='BN'),
                 act_cfg: Dict = dict(type='ReLU6'),
                 with_cp: bool = False,
                 init_cfg: Optional[Dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        arch_setting = [
            tuple(s) for s in (arch_setting or self.mobilenet_v2_setting)
        ]
        for i, setting in enumerate(arch_setting):
            if len(setting) != 4:
                raise ValueError(f'arch_setting[{i}] = {setting} must be '
                                 '[expand_ratio, channels, num_blocks, '
                                 'stride]')
        if out_indices is None:
            out_indices = (len(arch_setting), )
        for index in out_indices:
            if not 0 <= index <= len(arch_setting):
                raise ValueError(f'out_indices entry {index} is not in '
                                 f'[0, {len(arch_setting)}]')
        for k in kernel_choices:
            if not isinstance(k, int) or k % 2 == 0:
                raise ValueError(f'kernel choice {k!r} must be an odd int')
        for e in expand_ratio_choices:
            if not isinstance(e, int) or e < 2:
                raise ValueError(f'expand ratio choice {e!r} must be an '
                                 'int >= 2 (ratio 1 changes the block '
                                 'layout and is taken from arch_setting)')
        self.arch_setting = arch_setting
        self.out_indices = tuple(out_indices)
        self.mutables = nn.ModuleDict()
        max_kernel = max(kernel_choices)
        max_expand = max(expand_ratio_choices)

        def width(channels: int, key: str) -> OneShotMutableChannel:
            mutable = OneShotMutableChannel(
                make_divisible(channels * widen_factor, 8),
                list(width_choices),
                candidate_mode='ratio',
                alias=key)
            self.mutables[key] = mutable
            return mutable

        in_width = width(first_channels, 'stem_width')
        self.conv1 = ConvModule(
            3,
            in_width.num_channels,
            3,
            stride=2,
            padding=1,
            conv_cfg=conv_cfg,
            norm_cfg=norm_cfg,
            act_cfg=act_cfg)
        make_conv_module_dynamic(self.conv1, out_channels=in_width)

        self.layers = nn.ModuleList()
        for i, (expand, channels, num_blocks, stride) in enumerate(
                arch_setting):
            out_width = width(channels, f'stage{i}_width')
            blocks = []
            for j in range(num_blocks):
                prefix = f'stage{i}_block{j}'
                kernel = OneShotMutableValue(
                    list(kernel_choices),
                    default_value=max_kernel,
                    alias=f'{prefix}_kernel')
                self.mutables[f'{prefix}_kernel'] = kernel
                block = MBBlock(
                    max_kernel,
                    1 if expand == 1 else max_expand,
                    in_channels=in_width.num_channels,
                    out_channels=out_width.num_channels,
                    stride=stride if j == 0 else 1,
                    conv_cfg=conv_cfg,
                    norm_cfg=norm_cfg,
                    act_cfg=act_cfg,
                    with_cp=with_cp)
                if expand == 1:
                    mid = None
                else:
                    ratio = OneShotMutableValue(
                        list(expand_ratio_choices),
                        default_value=max_expand,
                        alias=f'{prefix}_expand_ratio')
                    self.mutables[f'{prefix}_expand_ratio'] = ratio
                    mid = in_width * ratio
                make_mb_block_dynamic(
                    block,
                    in_channels=in_width,
                    mid_channels=mid,
                    out_channels=out_width,
                    kernel_size=kernel)
                blocks.append(block)
                in_width = out_width
            self.layers.append(nn.Sequential(*blocks))

        self.conv2 = ConvModule(
            in_width.num_channels,
            last_channels,
            1,
            conv_cfg=conv_cfg,
            norm_cfg=norm_cfg,
            act_cfg=act_cfg)
        make_conv_module_dynamic(self.conv2, in_channels=in_width)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        x = self.conv1(x)
        outs: List[torch.Tensor] = []
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i in self.out_indices:
                outs.append(x)
        if len(self.layers) in self.out_indices:
            outs.append(self.conv2(x))
        return tuple(outs)
