"""A MobileNetV2 supernet: weight-sharing (kernels, expand ratios, widths)
or, as in MMRazor 1.x, one mutable per block built from configs.
"""
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch import nn

from mmrazor.models.mutables import OneShotMutableChannel, OneShotMutableValue
from mmrazor.models.ops import MBBlock
from mmrazor.registry import MODELS
from mmrazor.utils import make_divisible
from ..dynamic_ops import make_conv_module_dynamic, make_mb_block_dynamic
from .utils import (FrozenStagesMixin, build_block_mutable,
                    check_stage_indices)

#: The 1.x default initialisation of the block-mutable form.
_MUTABLE_FORM_INIT_CFG: List[Dict] = [
    dict(type='Kaiming', layer=['Conv2d']),
    dict(type='Constant', val=1, layer=['_BatchNorm', 'GroupNorm'])
]


def _arch_setting_form(arch_setting: Optional[Sequence[Sequence]]) -> str:
    """``'weight_sharing'`` (entries ``[expand_ratio, channels, num_blocks,
    stride]``) or ``'mutable'`` (entries ``[channels, num_blocks, stride,
    mutable_cfg]``, the 1.x form); raises ValueError for anything else."""
    if arch_setting is None:
        return 'weight_sharing'
    forms = set()
    for i, setting in enumerate(arch_setting):
        if not isinstance(setting, Sequence) or len(setting) != 4:
            raise ValueError(
                f'arch_setting[{i}] = {setting!r} must be [expand_ratio, '
                'channels, num_blocks, stride] or [channels, num_blocks, '
                'stride, mutable_cfg]')
        if isinstance(setting[3], Mapping):
            forms.add('mutable')
        elif all(isinstance(v, int) for v in setting):
            forms.add('weight_sharing')
        else:
            raise ValueError(
                f'arch_setting[{i}] = {setting!r}: expected 4 ints '
                '[expand_ratio, channels, num_blocks, stride] or [channels, '
                'num_blocks, stride, mutable_cfg] with a config dict last')
    if len(forms) > 1:
        raise ValueError('arch_setting mixes [expand_ratio, channels, '
                         'num_blocks, stride] entries with [channels, '
                         'num_blocks, stride, mutable_cfg] entries; use one '
                         f'form: {arch_setting!r}')
    if not forms:
        raise ValueError('arch_setting must have at least one stage')
    return forms.pop()


@MODELS.register_module()
class SearchableMobileNetV2(FrozenStagesMixin, BaseModule):
    """MobileNetV2 as a supernet, in one of two forms chosen by
    ``arch_setting``.

    Both have the MobileNetV2 layout: a 3x3 stride-2 stem conv
    (``conv1``), stages of blocks, a 1x1 conv to ``out_channel`` channels
    (``conv2``); ``out_indices`` pick stage outputs (``i``) and the final
    conv (``len(arch_setting)``).

    **Weight sharing** (OFA / BigNAS style; ``arch_setting`` entries
    ``[expand_ratio, channels, num_blocks, stride]``, MobileNetV2's by
    default). Stages are ``self.layers`` (``nn.ModuleList``) of
    :class:`~mmrazor.models.ops.MBBlock`. Searched, all with weight
    sharing:

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

    **Block mutables** (the MMRazor 1.x form, e.g. the SPOS MobileNet
    space; ``arch_setting`` entries ``[channels, num_blocks, stride,
    mutable_cfg]``). Stage ``i`` (from 1) is ``self.layer{i}``
    (``nn.Sequential``; their names are ``self.layer_names``), and every
    block is built from the stage's ``mutable_cfg`` with
    ``module_kwargs=dict(in_channels, out_channels, stride)``; the first
    block of a stage has its stride. ``conv_cfg``, ``norm_cfg``,
    ``act_cfg`` and ``with_cp`` apply to the stem and final conv and reach
    the blocks as defaults of the mutable's candidate configs (for
    candidates whose class takes them and that do not set them).
    ``kernel_choices``, ``expand_ratio_choices`` and ``width_choices`` are
    not used in this form.

    Args:
        arch_setting (Sequence[Sequence], optional): The stages, in either
            form above. Defaults to MobileNetV2's (weight sharing).
        kernel_choices (Sequence[int]): Odd kernel sizes (weight sharing).
            Defaults to ``(3, 5, 7)``.
        expand_ratio_choices (Sequence[int]): Expand ratios (weight
            sharing). Defaults to ``(3, 4, 6)``.
        width_choices (Sequence[float]): Width ratios in ``(0, 1]`` (weight
            sharing). Defaults to ``(0.5, 0.75, 1.0)``.
        widen_factor (float): Scales the stem and stage widths (rounded to
            8); above 1 it also scales ``last_channels``. Defaults to 1.0.
        first_channels (int): Full stem width. Defaults to 32.
        last_channels (int): Width of the final 1x1 conv (not searched);
            the built width is ``self.out_channel``. Defaults to 1280.
        out_indices (Sequence[int], optional): Outputs: ``i`` is stage
            ``i`` (from 0), ``len(arch_setting)`` the final conv (7 for
            MobileNetV2). Defaults to the final conv only.
        conv_cfg (dict, optional): Conv layer config; the weight-sharing
            form needs it to build ``nn.Conv2d`` (the default).
        norm_cfg (dict): Norm layer config; the weight-sharing form needs
            ``nn.BatchNorm2d``. Defaults to ``dict(type='BN')``.
        act_cfg (dict): Defaults to ``dict(type='ReLU6')``.
        with_cp (bool): Activation checkpointing in blocks. Defaults to
            False.
        frozen_stages (int): Freeze the stem and the first
            ``frozen_stages`` stages (eval mode, no gradients); -1 freezes
            nothing. Defaults to -1.
        norm_eval (bool): Keep the norm layers in eval mode while training.
            Defaults to False.
        init_cfg (dict | list[dict], optional): mmengine initialisation
            config. Defaults to None for weight sharing, and for block
            mutables to the 1.x one (Kaiming convs, norm weights 1).
    """

    mobilenet_v2_setting = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2),
                            (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                            (6, 320, 1, 1))

    def __init__(self,
                 arch_setting: Optional[Sequence[Sequence]] = None,
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
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 init_cfg: Optional[Union[Dict, List[Dict]]] = None) -> None:
        form = _arch_setting_form(arch_setting)
        if init_cfg is None and form == 'mutable':
            init_cfg = [dict(cfg) for cfg in _MUTABLE_FORM_INIT_CFG]
        super().__init__(init_cfg=init_cfg)
        if arch_setting is None:
            arch_setting = self.mobilenet_v2_setting
        num_stages = len(arch_setting)
        out_indices = check_stage_indices(out_indices, frozen_stages,
                                          num_stages)
        self.form = form
        self.out_indices = out_indices
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.widen_factor = widen_factor
        self.out_channel = int(last_channels * widen_factor) \
            if widen_factor > 1.0 else last_channels
        layer_cfgs = dict(
            conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)
        if form == 'mutable':
            self.arch_setting = [list(s) for s in arch_setting]
            in_channels = self._build_block_mutables(first_channels,
                                                     widen_factor, with_cp,
                                                     layer_cfgs)
            self.conv2 = ConvModule(in_channels, self.out_channel, 1,
                                    **layer_cfgs)
        else:
            self.arch_setting = [tuple(s) for s in arch_setting]
            last_width = self._build_weight_sharing(
                kernel_choices, expand_ratio_choices, width_choices,
                widen_factor, first_channels, with_cp, layer_cfgs)
            self.conv2 = ConvModule(last_width.num_channels,
                                    self.out_channel, 1, **layer_cfgs)
            make_conv_module_dynamic(self.conv2, in_channels=last_width)

    def _build_block_mutables(self, first_channels: int,
                              widen_factor: float, with_cp: bool,
                              layer_cfgs: Dict) -> int:
        """Stem and stages of the block-mutable form; returns the channels
        of the last stage."""
        in_channels = make_divisible(first_channels * widen_factor, 8)
        self.conv1 = ConvModule(
            3, in_channels, 3, stride=2, padding=1, **layer_cfgs)
        block_defaults = dict(layer_cfgs, with_cp=with_cp)
        self.layer_names: List[str] = []
        for i, (channels, num_blocks, stride,
                mutable_cfg) in enumerate(self.arch_setting):
            out_channels = make_divisible(channels * widen_factor, 8)
            blocks = []
            for j in range(num_blocks):
                blocks.append(
                    build_block_mutable(
                        mutable_cfg,
                        in_channels,
                        out_channels,
                        stride if j == 0 else 1,
                        block_defaults,
                        space_id=f'stage_{i}_block_{j}'))
                in_channels = out_channels
            name = f'layer{i + 1}'
            self.add_module(name, nn.Sequential(*blocks))
            self.layer_names.append(name)
        return in_channels

    def _build_weight_sharing(self, kernel_choices: Sequence[int],
                              expand_ratio_choices: Sequence[int],
                              width_choices: Sequence[float],
                              widen_factor: float, first_channels: int,
                              with_cp: bool, layer_cfgs: Dict
                              ) -> OneShotMutableChannel:
        """Stem and stages of the weight-sharing form; returns the width
        mutable of the last stage."""
        for k in kernel_choices:
            if not isinstance(k, int) or k % 2 == 0:
                raise ValueError(f'kernel choice {k!r} must be an odd int')
        for e in expand_ratio_choices:
            if not isinstance(e, int) or e < 2:
                raise ValueError(f'expand ratio choice {e!r} must be an '
                                 'int >= 2 (ratio 1 changes the block '
                                 'layout and is taken from arch_setting)')
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
            **layer_cfgs)
        make_conv_module_dynamic(self.conv1, out_channels=in_width)

        self.layers = nn.ModuleList()
        for i, (expand, channels, num_blocks, stride) in enumerate(
                self.arch_setting):
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
                    with_cp=with_cp,
                    **layer_cfgs)
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
        return in_width

    def stages(self) -> List[nn.Module]:
        """The stage modules, in order (without the stem and final conv).

        Returns:
            list[nn.Module]: ``self.layers`` (weight sharing) or
            ``self.layer1``, ``self.layer2``, ... (block mutables).
        """
        if self.form == 'mutable':
            return [getattr(self, name) for name in self.layer_names]
        return list(self.layers)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Stem, stages and final conv.

        Args:
            x (Tensor): Images, shape ``(N, 3, H, W)``.

        Returns:
            tuple[Tensor]: The outputs named by ``out_indices``.
        """
        x = self.conv1(x)
        outs: List[torch.Tensor] = []
        stages = self.stages()
        for i, layer in enumerate(stages):
            x = layer(x)
            if i in self.out_indices:
                outs.append(x)
        if len(stages) in self.out_indices:
            outs.append(self.conv2(x))
        return tuple(outs)
