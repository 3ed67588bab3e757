"""The ShuffleNetV2 single-path one-shot search space (SPOS)."""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule

from mmrazor.registry import MODELS
from mmrazor.utils import make_divisible
from .utils import (FrozenStagesMixin, build_block_mutable,
                    has_pretrained_init, shufflenet_init)

#: The standard SPOS block: one of four ShuffleNetV2 blocks.
SPOS_MUTABLE_CFG: Dict = dict(
    type='OneShotMutableOP',
    candidates=dict(
        shuffle_3x3=dict(type='ShuffleBlock', kernel_size=3),
        shuffle_5x5=dict(type='ShuffleBlock', kernel_size=5),
        shuffle_7x7=dict(type='ShuffleBlock', kernel_size=7),
        shuffle_xception=dict(type='ShuffleXception')))

#: ``[channels, num_blocks, mutable_cfg]`` of the four SPOS stages.
SPOS_ARCH_SETTING: List[list] = [
    [64, 4, SPOS_MUTABLE_CFG],
    [160, 4, SPOS_MUTABLE_CFG],
    [320, 8, SPOS_MUTABLE_CFG],
    [640, 4, SPOS_MUTABLE_CFG],
]


@MODELS.register_module()
class SearchableShuffleNetV2(FrozenStagesMixin, BaseModule):
    """The ShuffleNetV2 search space of Single Path One-Shot NAS.

    A 3x3 stride-2 stem conv to ``16 * stem_multiplier`` channels (no
    max-pool), four stages in ``self.layers`` whose first block has stride
    2 and every block is a mutable built from the stage's ``mutable_cfg``
    (by default a ``OneShotMutableOP`` over ``shuffle_3x3``,
    ``shuffle_5x5``, ``shuffle_7x7``, ``shuffle_xception``), then a 1x1 conv
    to ``last_channels``. Block ``b`` of stage ``s`` is
    ``layers[s][b]``, i.e. ``backbone.layers.s.b`` inside a classifier.

    Args:
        arch_setting (list, optional): Per stage ``[channels, num_blocks,
            mutable_cfg]`` (``mutable_cfg`` may be left out for the SPOS
            default). Defaults to the SPOS stages ``[64, 4], [160, 4],
            [320, 8], [640, 4]``.
        stem_multiplier (int): Stem channels are ``16 * stem_multiplier``.
            Defaults to 1.
        widen_factor (float): Width multiplier of the stages. Defaults to
            1.0.
        last_channels (int): Channels of the last 1x1 conv. Defaults to
            1024.
        out_indices (Sequence[int], optional): Outputs to return: ``i <
            num_stages`` the stage outputs, ``num_stages`` (4) the last
            conv (which needs ``with_last_layer``). Defaults to
            ``(num_stages,)``, the last conv (``(4,)`` for SPOS): without
            the last layer, give ``out_indices`` explicitly.
        frozen_stages (int): Stages (with the stem) to freeze; -1 freezes
            nothing. Defaults to -1.
        with_last_layer (bool): Build the last 1x1 conv. Defaults to True.
        conv_cfg (dict, optional): Conv layer config. Defaults to None.
        norm_cfg (dict): Norm config. Defaults to ``dict(type='BN')``.
        act_cfg (dict): Activation config. Defaults to
            ``dict(type='ReLU')``.
        norm_eval (bool): Keep norm layers in eval mode when training.
            Defaults to False.
        with_cp (bool): Activation checkpointing in the blocks. Defaults to
            False.
        in_channels (int): Channels of the input images. Defaults to 3.
        init_cfg (dict | list[dict], optional): Initialisation config.
            Unless it loads a checkpoint (``'Pretrained'``),
            :meth:`init_weights` ends with the ShuffleNet initialisation.

    ``arch_setting`` is also kept as ``self.arch_setting``. Each block is
    built from its stage's ``mutable_cfg`` with ``module_kwargs=dict(
    in_channels, out_channels, stride)`` (the 1.x contract, so any mutable
    taking ``module_kwargs`` fits); ``conv_cfg``, ``norm_cfg``, ``act_cfg``
    and ``with_cp`` apply to the stem and the last conv, and reach the
    blocks as defaults of the mutable's candidate configs (for candidates
    whose class takes them and that do not set them).

    The older configs build this backbone without mutables and give the
    blocks by a mutator's ``placeholder_mapping``: every block is the place
    of group ``'all_blocks'`` with ``space_id`` ``stage_{s}_block_{b}``, so a
    mapping with that group replaces the blocks by its mutable (the keys of
    the older subnet files).
    """

    def __init__(self,
                 arch_setting: Optional[Sequence[Sequence]] = None,
                 stem_multiplier: int = 1,
                 widen_factor: float = 1.0,
                 last_channels: int = 1024,
                 out_indices: Optional[Sequence[int]] = None,
                 frozen_stages: int = -1,
                 with_last_layer: bool = True,
                 conv_cfg: Optional[Dict] = None,
                 norm_cfg: Dict = dict(type='BN'),
                 act_cfg: Dict = dict(type='ReLU'),
                 norm_eval: bool = False,
                 with_cp: bool = False,
                 in_channels: int = 3,
                 init_cfg: Optional[Union[Dict, List[Dict]]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        arch_setting = SPOS_ARCH_SETTING if arch_setting is None \
            else arch_setting
        num_stages = len(arch_setting)
        if out_indices is None:
            out_indices = (num_stages, )
        num_outputs = num_stages + 1 if with_last_layer else num_stages
        for i in out_indices:
            if not isinstance(i, int) or not 0 <= i < num_outputs:
                hint = '' if with_last_layer else \
                    f' (index {num_stages}, the last layer, needs ' \
                    'with_last_layer=True)'
                raise ValueError(f'out_indices entry {i!r} is not in '
                                 f'[0, {num_outputs - 1}]{hint}')
        if frozen_stages not in range(-1, num_stages + 1):
            raise ValueError(f'frozen_stages must be in [-1, {num_stages}]'
                             f', got {frozen_stages!r}')
        self.out_indices = tuple(out_indices)
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.with_last_layer = with_last_layer

        self.conv1 = ConvModule(
            in_channels,
            16 * stem_multiplier,
            3,
            stride=2,
            padding=1,
            conv_cfg=conv_cfg,
            norm_cfg=norm_cfg,
            act_cfg=act_cfg)
        in_channels = 16 * stem_multiplier  # from here: a block's input

        block_defaults = dict(
            conv_cfg=conv_cfg,
            norm_cfg=norm_cfg,
            act_cfg=act_cfg,
            with_cp=with_cp)
        self.arch_setting = [list(stage) for stage in arch_setting]
        self.layers = nn.ModuleList()
        for i, stage in enumerate(arch_setting):
            if len(stage) == 2:
                channels, num_blocks = stage
                mutable_cfg = SPOS_MUTABLE_CFG
            elif len(stage) == 3:
                channels, num_blocks, mutable_cfg = stage
            else:
                raise ValueError('each arch_setting entry must be '
                                 '[channels, num_blocks(, mutable_cfg)], '
                                 f'got {stage!r}')
            out_channels = make_divisible(channels * widen_factor, 2)
            blocks = []
            for b in range(num_blocks):
                blocks.append(
                    build_block_mutable(
                        mutable_cfg,
                        in_channels,
                        out_channels,
                        2 if b == 0 else 1,
                        block_defaults,
                        placeholder=dict(
                            group='all_blocks',
                            space_id=f'stage_{i}_block_{b}')))
                in_channels = out_channels
            self.layers.append(nn.Sequential(*blocks))

        if with_last_layer:
            self.last_conv = ConvModule(
                in_channels,
                last_channels,
                1,
                conv_cfg=conv_cfg,
                norm_cfg=norm_cfg,
                act_cfg=act_cfg)

    def init_weights(self) -> None:
        """Initialise: ``init_cfg`` first (and the blocks' own
        ``init_weights``); then, unless ``init_cfg`` loaded a checkpoint,
        the ShuffleNet initialisation of every conv and norm layer (see
        :func:`shufflenet_init`)."""
        already = self.is_init
        super().init_weights()
        if already or has_pretrained_init(self.init_cfg):
            return
        shufflenet_init(self, stem='conv1')

    def stages(self) -> List[nn.Module]:
        """The stages of the backbone, in order."""
        return list(self.layers)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Stem, stages and (with ``with_last_layer``) the last conv.

        Args:
            x (Tensor): Images, shape ``(N, in_channels, H, W)``.

        Returns:
            tuple[Tensor]: The outputs named by ``out_indices``.
        """
        x = self.conv1(x)
        outs = []
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i in self.out_indices:
                outs.append(x)
        if self.with_last_layer:
            x = self.last_conv(x)
            if len(self.layers) in self.out_indices:
                outs.append(x)
        return tuple(outs)
