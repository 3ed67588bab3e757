"""The ProxylessNAS search space and its published architectures."""
import math
import re
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch import nn

from mmrazor.models.mutables import DerivedMutable, OneShotMutableValue
from mmrazor.models.mutables.mutable_channel import (DerivedChannelMutable,
                                                     first_k_mask)
from mmrazor.models.ops import MBBlock
from mmrazor.registry import MODELS
from mmrazor.utils import make_divisible
from ..dynamic_ops import DynamicSequential, make_mb_block_dynamic

#: Block candidates: depthwise kernel 3/5/7 x expand ratio 3/6.
PROXYLESS_BLOCK_CHOICES: Tuple[str, ...] = ('k3e3', 'k3e6', 'k5e3', 'k5e6',
                                            'k7e3', 'k7e6')
#: Searched stages, their stride, and whether their depth is searched.
_STAGES = {2: 2, 3: 2, 4: 2, 5: 1, 6: 2, 7: 1}
_MAX_DEPTH = 4
_CHOICE_PATTERN = re.compile(r'^k(\d+)e(\d+)$')

# Public architectures of the space, as {decision: choice}. ``sS_depth`` is
# the number of blocks of stage S, ``sS_iJ`` the kernel/expand of its block J.
# The ProxylessNAS ones are the released ProxylessNAS models (Cai et al.,
# ICLR 2019); the AceNAS ones the models found by AceNAS (Zhang et al.,
# "AceNAS: Learning to Rank Ace Neural Architectures", 2021/2022) in this
# space, as published with NNI's model hub.


def _arch(depths: Sequence[int], blocks: Sequence[Sequence[str]]
          ) -> Dict[str, Union[int, str]]:
    arch: Dict[str, Union[int, str]] = {}
    for stage, depth, stage_blocks in zip(range(2, 8), depths, blocks):
        assert len(stage_blocks) == depth
        arch[f's{stage}_depth'] = depth
        for j, choice in enumerate(stage_blocks):
            arch[f's{stage}_i{j}'] = choice
    return arch


SEARCHED_ARCHS: Dict[str, Dict] = {
    'proxyless-mobile': dict(
        base_widths=(32, 16, 32, 40, 80, 96, 192, 320, 1280),
        arch=_arch([2, 4, 4, 4, 4, 1], [
            ['k5e3', 'k3e3'],
            ['k7e3', 'k3e3', 'k5e3', 'k5e3'],
            ['k7e6', 'k5e3', 'k5e3', 'k5e3'],
            ['k5e6', 'k5e3', 'k5e3', 'k5e3'],
            ['k7e6', 'k7e6', 'k7e3', 'k7e3'],
            ['k7e6'],
        ])),
    'proxyless-gpu': dict(
        base_widths=(40, 24, 32, 56, 112, 128, 256, 432, 1728),
        arch=_arch([1, 2, 2, 3, 4, 1], [
            ['k5e3'],
            ['k7e3', 'k3e3'],
            ['k7e6', 'k5e3'],
            ['k5e6', 'k3e3', 'k5e3'],
            ['k7e6', 'k7e6', 'k7e6', 'k5e6'],
            ['k7e6'],
        ])),
    'proxyless-cpu': dict(
        base_widths=(40, 24, 32, 48, 88, 104, 216, 360, 1432),
        arch=_arch([4, 4, 2, 4, 4, 1], [
            ['k3e6', 'k3e3', 'k3e3', 'k3e3'],
            ['k3e6', 'k3e3', 'k3e3', 'k5e3'],
            ['k3e6', 'k3e3'],
            ['k5e6', 'k3e3', 'k3e3', 'k3e3'],
            ['k5e6', 'k5e3', 'k5e3', 'k3e3'],
            ['k5e6'],
        ])),
    'acenas-m1': dict(
        base_widths=(32, 16, 32, 40, 80, 96, 192, 320, 1280),
        arch=_arch([2, 3, 2, 4, 4, 1], [
            ['k3e6', 'k3e3'],
            ['k5e3', 'k3e3', 'k5e3'],
            ['k3e6', 'k5e3'],
            ['k7e6', 'k3e6', 'k3e6', 'k7e3'],
            ['k7e6', 'k7e6', 'k7e3', 'k7e3'],
            ['k7e6'],
        ])),
    'acenas-m2': dict(
        base_widths=(32, 16, 32, 40, 80, 96, 192, 320, 1280),
        arch=_arch([1, 3, 2, 4, 4, 1], [
            ['k5e3'],
            ['k3e6', 'k3e3', 'k5e3'],
            ['k7e6', 'k5e6'],
            ['k5e6', 'k5e3', 'k5e6', 'k3e6'],
            ['k7e6', 'k5e6', 'k5e3', 'k5e6'],
            ['k7e6'],
        ])),
    'acenas-m3': dict(
        base_widths=(32, 16, 32, 40, 80, 96, 192, 320, 1280),
        arch=_arch([2, 2, 3, 4, 4, 1], [
            ['k3e3', 'k3e6'],
            ['k5e3', 'k3e3'],
            ['k5e6', 'k7e6', 'k3e6'],
            ['k7e6', 'k7e3', 'k7e3', 'k5e3'],
            ['k7e6', 'k7e3', 'k7e6', 'k3e3'],
            ['k5e6'],
        ])),
}


def parse_block_choice(choice: str) -> Tuple[int, int]:
    """``'k5e3'`` -> ``(5, 3)`` (kernel size, expand ratio)."""
    match = _CHOICE_PATTERN.match(str(choice))
    if match is None or choice not in PROXYLESS_BLOCK_CHOICES:
        raise ValueError(f'{choice!r} is not a ProxylessNAS block choice; '
                         f'valid: {list(PROXYLESS_BLOCK_CHOICES)}')
    return int(match.group(1)), int(match.group(2))


class _KernelOf:
    """The kernel size of a block-choice mutable (a picklable callable)."""

    def __init__(self, mutable: OneShotMutableValue) -> None:
        self.mutable = mutable

    def __call__(self) -> int:
        return parse_block_choice(self.mutable.current_choice)[0]


class _HiddenOf:
    """The hidden width of a block-choice mutable; ``mask=True`` gives the
    first-k mask of the widest block instead."""

    def __init__(self, mutable: OneShotMutableValue, in_channels: int,
                 max_hidden: int, mask: bool = False) -> None:
        self.mutable = mutable
        self.in_channels = in_channels
        self.max_hidden = max_hidden
        self.mask = mask

    def __call__(self) -> Union[int, torch.Tensor]:
        expand = parse_block_choice(self.mutable.current_choice)[1]
        hidden = _hidden_width(self.in_channels, expand)
        return first_k_mask(self.max_hidden, hidden) if self.mask else hidden


def _hidden_width(in_channels: int, expand_ratio: int) -> int:
    return make_divisible(in_channels * expand_ratio, 8)


def check_arch(arch: Dict[str, Union[int, str]]) -> None:
    """Raise ``ValueError``/``KeyError`` naming the first bad key or value
    of a ProxylessNAS architecture dict."""
    if not isinstance(arch, dict):
        raise TypeError(f'arch must be a dict, got {type(arch).__name__}')
    expected = set()
    for stage in _STAGES:
        key = f's{stage}_depth'
        depth = arch.get(key, 1 if stage == 7 else None)
        if depth is None:
            raise KeyError(f'arch misses {key!r}')
        valid = [1] if stage == 7 else list(range(1, _MAX_DEPTH + 1))
        if depth not in valid:
            raise ValueError(f'arch[{key!r}] = {depth!r} is not one of '
                             f'{valid}')
        expected.add(key)
        for j in range(depth):
            block_key = f's{stage}_i{j}'
            if block_key not in arch:
                raise KeyError(f'arch misses {block_key!r}')
            try:
                parse_block_choice(arch[block_key])
            except ValueError as e:
                raise ValueError(f'arch[{block_key!r}]: {e}') from None
            expected.add(block_key)
    unknown = sorted(set(arch) - expected)
    if unknown:
        raise KeyError(f'arch has unknown or unused keys {unknown} (a '
                       'block beyond its stage depth, or a misspelling)')


@MODELS.register_module()
class ProxylessNAS(BaseModule):
    """The ProxylessNAS search space (Cai et al., ICLR 2019).

    stem (3x3 conv, stride 2, ``widths[0]``) -> a fixed depthwise-separable
    block (``widths[1]``) -> six searched stages (``widths[2..7]``, strides
    2, 2, 2, 1, 2, 1) -> 1x1 "feature mix" conv (``widths[8]``) -> global
    pooling -> dropout -> linear classifier. Each block of a searched stage
    chooses its depthwise kernel {3, 5, 7} and expand ratio {3, 6}
    (``'k5e3'`` etc., :data:`PROXYLESS_BLOCK_CHOICES`); stages 2-6 choose
    their depth 1-4, stage 7 has one block. The first block of a stage
    changes the width and strides; the others are residual. Hidden widths
    are ``make_divisible(in_channels * expand, 8)``; activations ReLU6.

    With ``arch=None`` the model is a weight-sharing supernet: every block
    is built at k7/e6 with dynamic ops (the kernel is centre-cropped, the
    hidden width sliced) and the decisions are :class:`OneShotMutableValue`
    in ``self.mutables``, keyed and aliased ``sS_depth`` and ``sS_iJ`` —
    the keys of an architecture dict. With an ``arch`` dict the model is a
    plain network of that architecture.

    Args:
        num_classes (int, optional): Classes of the linear classifier. With
            None or 0 there is no head and ``forward`` returns a 1-tuple
            with the ``widths[8]``-channel feature map (mmpretrain-backbone
            style). Defaults to 1000.
        base_widths (Sequence[int]): The 9 widths, stem to head. Defaults
            to ``(32, 16, 32, 40, 80, 96, 192, 320, 1280)``.
        arch (dict, optional): A fixed architecture ``{'s2_depth': 2,
            's2_i0': 'k5e3', ...}``; None builds the supernet.
        width_mult (float): Multiplies every width (rounded to 8).
            Defaults to 1.0.
        dropout_rate (float): Dropout before the classifier. Defaults to 0.
        bn_eps (float): BatchNorm epsilon. Defaults to 1e-3.
        bn_momentum (float): BatchNorm momentum. Defaults to 0.1.
        init_cfg (dict, optional): mmengine initialisation config. Without
            it, convs get He (fan-out) normal init, BN ones/zeros and the
            classifier N(0, 0.01).
    """

    def __init__(self,
                 num_classes: Optional[int] = 1000,
                 base_widths: Sequence[int] = (32, 16, 32, 40, 80, 96, 192,
                                               320, 1280),
                 arch: Optional[Dict[str, Union[int, str]]] = None,
                 width_mult: float = 1.0,
                 dropout_rate: float = 0.,
                 bn_eps: float = 1e-3,
                 bn_momentum: float = 0.1,
                 init_cfg: Optional[Dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if len(base_widths) != 9:
            raise ValueError('base_widths needs 9 widths (stem, 7 stages, '
                             f'head), got {len(base_widths)}: {base_widths}')
        if arch is not None:
            check_arch(arch)
        self.arch = dict(arch) if arch is not None else None
        widths = [make_divisible(w * width_mult, 8) for w in base_widths]
        self.widths = widths
        self.num_classes = num_classes or 0
        norm_cfg = dict(type='BN', eps=bn_eps, momentum=bn_momentum)
        act_cfg = dict(type='ReLU6')
        block_cfg = dict(norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.mutables = nn.ModuleDict()

        self.stem = ConvModule(
            3,
            widths[0],
            3,
            stride=2,
            padding=1,
            norm_cfg=norm_cfg,
            act_cfg=act_cfg)
        blocks: List[nn.Module] = [
            MBBlock(
                3,
                1,
                in_channels=widths[0],
                out_channels=widths[1],
                **block_cfg)
        ]
        for stage, stride in _STAGES.items():
            blocks.append(
                self._make_stage(stage, widths[stage - 1], widths[stage],
                                 stride, block_cfg))
        self.blocks = nn.Sequential(*blocks)
        self.feature_mix_layer = ConvModule(
            widths[7], widths[8], 1, norm_cfg=norm_cfg, act_cfg=act_cfg)
        if self.num_classes:
            self.global_avg_pooling = nn.AdaptiveAvgPool2d(1)
            self.dropout = nn.Dropout(dropout_rate)
            self.classifier = nn.Linear(widths[8], self.num_classes)
        if init_cfg is None:
            self._default_init()

    def _make_stage(self, stage: int, in_channels: int, out_channels: int,
                    stride: int, block_cfg: Dict) -> nn.Sequential:
        searchable = self.arch is None
        if searchable:
            depth = _MAX_DEPTH if stage < 7 else 1
        else:
            depth = int(self.arch.get(f's{stage}_depth', 1))
        blocks = []
        for j in range(depth):
            block_in = in_channels if j == 0 else out_channels
            block_stride = stride if j == 0 else 1
            if searchable:
                kernel, expand = 7, 6
            else:
                kernel, expand = parse_block_choice(
                    self.arch[f's{stage}_i{j}'])
            block = MBBlock(
                kernel,
                expand,
                in_channels=block_in,
                out_channels=out_channels,
                stride=block_stride,
                **block_cfg)
            if block.mid_channels != _hidden_width(block_in, expand):
                raise ValueError(
                    f'stage {stage}: width {block_in} x {expand} is not a '
                    'multiple of 8; use widths divisible by 8')
            if searchable:
                self._make_searchable(block, f's{stage}_i{j}', block_in)
            blocks.append(block)
        if not searchable:
            return nn.Sequential(*blocks)
        stage_module = DynamicSequential(*blocks)
        if stage < 7:
            key = f's{stage}_depth'
            depth_mutable = OneShotMutableValue(
                list(range(1, _MAX_DEPTH + 1)),
                default_value=_MAX_DEPTH,
                alias=key)
            self.mutables[key] = depth_mutable
            stage_module.register_mutable_attr('depth', depth_mutable)
        return stage_module

    def _make_searchable(self, block: MBBlock, key: str,
                         in_channels: int) -> None:
        choice = OneShotMutableValue(
            list(PROXYLESS_BLOCK_CHOICES), default_value='k7e6', alias=key)
        self.mutables[key] = choice
        kernel = DerivedMutable(_KernelOf(choice), source_mutables=[choice])
        max_hidden = block.mid_channels
        hidden = DerivedChannelMutable(
            _HiddenOf(choice, in_channels, max_hidden),
            mask_fn=_HiddenOf(choice, in_channels, max_hidden, mask=True),
            source_mutables=[choice])
        make_mb_block_dynamic(
            block, mid_channels=hidden, kernel_size=kernel)

    def _default_init(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                nn.init.normal_(m.weight, 0, math.sqrt(2. / fan_out))
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def set_arch(self, arch: Dict[str, Union[int, str]]) -> None:
        """Set the supernet's current choices to an architecture dict (as
        in :data:`SEARCHED_ARCHS`); blocks beyond a stage's depth keep
        their choice (they do not run).

        Args:
            arch (dict): ``{'s2_depth': 2, 's2_i0': 'k5e3', ...}``.
        """
        if self.arch is not None:
            raise RuntimeError('set_arch needs the supernet (arch=None); '
                               'this model is fixed')
        check_arch(arch)
        for key, value in arch.items():
            if key in self.mutables:
                self.mutables[key].current_choice = value

    def get_arch(self) -> Dict[str, Union[int, str]]:
        """The current architecture as a compact dict (only the blocks that
        run), the inverse of :meth:`set_arch`."""
        if self.arch is not None:
            return dict(self.arch)
        arch: Dict[str, Union[int, str]] = {}
        for stage in _STAGES:
            key = f's{stage}_depth'
            depth = self.mutables[key].current_choice \
                if key in self.mutables else 1
            arch[key] = depth
            for j in range(depth):
                block_key = f's{stage}_i{j}'
                arch[block_key] = self.mutables[block_key].current_choice
        return arch

    def forward(self, x: torch.Tensor
                ) -> Union[torch.Tensor, Tuple[torch.Tensor]]:
        x = self.stem(x)
        x = self.blocks(x)
        x = self.feature_mix_layer(x)
        if not self.num_classes:
            return (x, )
        x = self.global_avg_pooling(x).flatten(1)
        return self.classifier(self.dropout(x))

    @classmethod
    def load_searched_model(cls,
                            name: str,
                            num_classes: int = 1000,
                            **kwargs) -> 'ProxylessNAS':
        """Build a published architecture of the space as a plain model.

        Args:
            name (str): One of ``'proxyless-mobile'`` (74.6% top-1 on
                ImageNet, ~320M multiply-adds, 4.1M parameters),
                ``'proxyless-gpu'``, ``'proxyless-cpu'`` (with their own
                base widths), ``'acenas-m1'``, ``'acenas-m2'``,
                ``'acenas-m3'``.
            num_classes (int): Classifier outputs. Defaults to 1000.
            **kwargs: Other arguments of :class:`ProxylessNAS` (e.g.
                ``dropout_rate``).

        Returns:
            ProxylessNAS: A fixed network (no mutables, random weights).
        """
        if name not in SEARCHED_ARCHS:
            raise ValueError(f'unknown ProxylessNAS architecture {name!r}; '
                             f'known: {sorted(SEARCHED_ARCHS)}')
        setting = SEARCHED_ARCHS[name]
        for key in ('arch', 'base_widths'):
            if key in kwargs:
                raise TypeError(f'{key!r} is set by the architecture name '
                                f'{name!r}')
        return cls(
            num_classes=num_classes,
            base_widths=setting['base_widths'],
            arch=setting['arch'],
            **kwargs)
