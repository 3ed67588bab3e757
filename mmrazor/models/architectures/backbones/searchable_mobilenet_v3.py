"""AttentiveMobileNetV3: the weight-sharing MobileNetV3 search space of
BigNAS / AttentiveNAS and Once-for-All (the MMRazor 1.x backbone)."""
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmcv.cnn import ConvModule, build_conv_layer
from mmcv.cnn.bricks.drop import DropPath
from mmengine.model import BaseModule, constant_init
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from mmrazor.models.mutables import (BaseMutable, OneShotMutableChannel,
                                     OneShotMutableValue)
from mmrazor.models.ops import MBBlock
from mmrazor.registry import MODELS
from mmrazor.utils import make_divisible
from ..dynamic_ops import (DynamicConv2d, DynamicSequential,
                           DynamicShortcutLayer, make_conv_module_dynamic)
from .utils import check_stage_indices

#: Keys of ``arch_setting``; each holds ``[min, max, step]`` entries.
ARCH_KEYS = ('kernel_size', 'num_blocks', 'expand_ratio', 'num_out_channels')
#: Prefix of the subnet keys (the backbone inside a classifier).
KEY_PREFIX = 'backbone.'
#: Squeeze-and-excitation of the blocks (AttentiveNAS / OFA).
SE_CFG = dict(
    ratio=4, divisor=8, act_cfg=(dict(type='ReLU'), dict(type='HSigmoid')))


def parse_values(key: str, entries: Sequence[Sequence[int]]
                 ) -> List[List[int]]:
    """Expand the ``[min, max, step]`` entries of ``arch_setting[key]``.

    Args:
        key (str): The ``arch_setting`` key (for error messages).
        entries (Sequence[Sequence[int]]): ``[min, max, step]`` per layer.

    Returns:
        list[list[int]]: The candidate values of each layer, ascending.

    Raises:
        ValueError: An entry is not three ints with ``min <= max``,
            ``step > 0`` and ``max - min`` a multiple of ``step``, or a
            value is invalid for ``key`` (even kernels, values below 1).
    """
    if isinstance(entries, (str, bytes)) or not isinstance(entries, Sequence):
        raise ValueError(f'arch_setting[{key!r}] must be a list of '
                         f'[min, max, step] entries, got {entries!r}')
    values = []
    for i, entry in enumerate(entries):
        where = f'arch_setting[{key!r}][{i}] = {entry!r}'
        if not isinstance(entry, Sequence) or len(entry) != 3 or not all(
                isinstance(v, int) and not isinstance(v, bool)
                for v in entry):
            raise ValueError(f'{where}: expected [min, max, step] ints')
        low, high, step = entry
        if step <= 0 or low > high or (high - low) % step:
            raise ValueError(f'{where}: need min <= max, step > 0 and '
                             'max - min a multiple of step')
        if low < 1:
            raise ValueError(f'{where}: values must be >= 1')
        choices = list(range(low, high + 1, step))
        if key == 'kernel_size' and any(k % 2 == 0 for k in choices):
            raise ValueError(f'{where}: kernel sizes must be odd, got '
                             f'{choices}')
        values.append(choices)
    return values


def _resolve_layer_cfg(cfg: Optional[Dict], name: str) -> Optional[Dict]:
    """A copy of a conv / norm config whose ``type`` is the class when
    MMRazor's registry (or its parents) knows it, so that mmcv builds it
    whatever the default scope (``'DynamicBatchNorm2d'`` and
    ``'mmrazor.DynamicBatchNorm2d'`` both work)."""
    if cfg is None:
        return None
    if not isinstance(cfg, dict) or 'type' not in cfg:
        raise ValueError(f'{name} must be a dict with a type, got {cfg!r}')
    cfg = dict(cfg)
    if isinstance(cfg['type'], str):
        cls = MODELS.get(cfg['type'])
        if cls is None:
            raise ValueError(f'{name}: unknown layer type {cfg["type"]!r}')
        cfg['type'] = cls
    return cfg


def _act_cfg(act: Union[str, Dict], index: int) -> Dict:
    if isinstance(act, str):
        return dict(type=act)
    if isinstance(act, dict) and 'type' in act:
        return dict(act)
    raise ValueError(f'act_cfg_list[{index}] must be a type name or a dict '
                     f'with a type, got {act!r}')


def _alias_key(alias: str) -> str:
    """``self.mutables`` key of a subnet key (no dots in module names)."""
    return alias[len(KEY_PREFIX):].replace('.', '_')


class SearchableMBBlock(MBBlock):
    """An :class:`MBBlock` of the supernet, with the shortcut chosen by the
    backbone.

    Args:
        shortcut (nn.Module, optional): The AttentiveNAS shortcut (pooling
            and 1x1 conv); when given it is added to the block output.
            Without it, the input itself is added when
            ``with_res_shortcut`` (stride 1 and equal full widths).
        **kwargs: Arguments of :class:`MBBlock`.
    """

    def __init__(self, shortcut: Optional[nn.Module] = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.shortcut = shortcut

    @property
    def has_residual(self) -> bool:
        """Whether the block adds a shortcut (AttentiveNAS) or its input
        (stride 1, equal full widths) to its residual branch: only then
        can drop-path drop that branch."""
        return self.shortcut is not None or self.with_res_shortcut

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        if self.expand_conv is not None:
            out = self.expand_conv(out)
        out = self.depthwise_conv(out)
        if self.se is not None:
            out = self.se(out)
        out = self.linear_conv(out)
        if self.shortcut is not None:
            return self.shortcut(x) + self.drop_path(out)
        if self.with_res_shortcut:
            if x.shape[1] != out.shape[1]:
                raise RuntimeError(
                    f'identity shortcut: the block input has {x.shape[1]} '
                    f'channels but its output {out.shape[1]}; choose equal '
                    'widths or build the backbone with '
                    'with_attentive_shortcut=True')
            return x + self.drop_path(out)
        return out


@MODELS.register_module()
class AttentiveMobileNetV3(BaseModule):
    """The weight-sharing MobileNetV3 supernet of AttentiveNAS / BigNAS and
    Once-for-All (OFA), with the arguments of MMRazor 1.x.

    Layout: ``first_conv`` (3x3, stride 2) -> ``layers[0..n-1]`` (the ``n``
    stages of inverted-residual blocks, each a :class:`DynamicSequential`
    whose depth is searched) -> ``layers[n]`` (also ``last_conv``): the 1x1
    "final expand" conv (BN, activation) to ``expand_ratio[-1]`` times the
    last stage width, global average pooling, and the 1x1 "feature mix"
    conv (no norm, no bias, activation) to ``last_channels``. The output
    has ``last_channels`` channels at 1x1 resolution.

    Searched, with weight sharing (smaller kernels are centre crops, or OFA
    transforms, of the largest; narrower layers the first channels):

    * the widths of ``first_conv``, of every stage and of the feature mix
      conv (``num_out_channels``);
    * the depth of every stage (``num_blocks``);
    * the depthwise kernel size and expand ratio of every stage
      (``kernel_size``, ``expand_ratio``), or of every block with
      ``fine_grained_mode`` (then blocks with SE also search the SE width
      through their own ratio ``expand_ratio_se``: the SE squeezes to
      ``make_divisible(in_channels * expand_ratio_se / 4, 8)`` channels,
      as the OFA subnet files of MMRazor 1.x store it; otherwise
      ``expand_ratio_se`` is the block's expand ratio).

    Mutables are in ``self.mutables`` and their aliases are the keys of
    the 1.x subnet files, relative to the classifier: stage ``i`` is
    numbered from 1 (``backbone.layers.{i}.depth``,
    ``backbone.layers.{i}.out_channels``, ``backbone.layers.{i}.kernel_size``
    or ``backbone.layers.{i}.{j}.kernel_size`` ...), plus
    ``backbone.first_channels`` and ``backbone.last_channels``
    (``last_mutable_channels``, the width a classifier head follows).
    The supernet starts at its largest subnet.

    Shortcuts: with ``with_attentive_shortcut`` (AttentiveNAS) every block
    adds a shortcut: the input, average-pooled when the block has stride
    2 and mapped by a 1x1 conv when its active input and output widths
    differ. Without (OFA), a block adds its input only when it has
    stride 1 and equal full input and output widths.

    Args:
        arch_setting (dict): ``kernel_size`` and ``num_blocks`` (one
            ``[min, max, step]`` entry per stage), ``expand_ratio`` (per
            stage, then the final expand conv) and ``num_out_channels``
            (``first_conv``, per stage, then the feature mix conv).
        widen_factor (float): Multiplies every width (rounded to 8).
            Defaults to 1.0.
        out_indices (Sequence[int], optional): Outputs, indices of
            ``layers`` (``n`` is the last conv). Defaults to ``(n, )``:
            ``(7, )`` for the AttentiveNAS space, as in 1.x.
        frozen_stages (int): Freeze ``first_conv`` and the first
            ``frozen_stages`` layers; -1 freezes nothing. Defaults to -1.
        conv_cfg (dict): Conv config, e.g. ``dict(type='BigNasConv2d')``
            (default) or ``dict(type='OFAConv2d')``.
        norm_cfg (dict): Norm config. Defaults to
            ``dict(type='DynamicBatchNorm2d')``.
        act_cfg_list (list, optional): Activations (type names or configs)
            of ``first_conv``, of each stage, of the final expand conv and
            of the feature mix conv (``n + 3``). Defaults to Swish
            everywhere (AttentiveNAS).
        stride_list (list[int], optional): Stride of each stage. Defaults
            to AttentiveNAS's ``[1, 2, 2, 2, 1, 2, 1]``.
        with_se_list (list[bool], optional): SE in each stage's blocks.
            Defaults to AttentiveNAS's ``[False, False, True, False, True,
            True, True]``.
        norm_eval (bool): Keep norm layers in eval mode while training.
            Defaults to False.
        zero_init_residual (bool): Zero the last norm of blocks with a
            shortcut in :meth:`init_weights`. Defaults to True.
        with_cp (bool): Activation checkpointing in blocks. Defaults to
            False.
        fine_grained_mode (bool): Kernel size and expand ratio per block
            (OFA) instead of per stage. Defaults to False.
        with_attentive_shortcut (bool): AttentiveNAS shortcuts (see above).
            Defaults to True.
        init_cfg (dict | list[dict], optional): mmengine init config.
    """

    default_stride_list = [1, 2, 2, 2, 1, 2, 1]
    default_with_se_list = [False, False, True, False, True, True, True]

    def __init__(self,
                 arch_setting: Dict[str, List],
                 widen_factor: float = 1.,
                 out_indices: Optional[Sequence[int]] = None,
                 frozen_stages: int = -1,
                 conv_cfg: Optional[Dict] = dict(type='BigNasConv2d'),
                 norm_cfg: Dict = dict(type='DynamicBatchNorm2d'),
                 act_cfg_list: Optional[List[Union[str, Dict]]] = None,
                 stride_list: Optional[List[int]] = None,
                 with_se_list: Optional[List[bool]] = None,
                 norm_eval: bool = False,
                 zero_init_residual: bool = True,
                 with_cp: bool = False,
                 fine_grained_mode: bool = False,
                 with_attentive_shortcut: bool = True,
                 init_cfg: Optional[Union[Dict, List[Dict]]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.arch_setting = arch_setting
        (self.kernel_size_list, self.num_blocks_list, self.expand_ratio_list,
         self.num_channels_list) = self._parse_arch_setting(
             arch_setting, widen_factor)
        num_stages = len(self.kernel_size_list)
        self.num_stages = num_stages
        self.stride_list = self._per_stage(
            'stride_list', stride_list, self.default_stride_list, num_stages)
        for i, stride in enumerate(self.stride_list):
            if stride not in (1, 2):
                raise ValueError(f'stride_list[{i}] = {stride!r}: strides '
                                 'must be 1 or 2')
        self.with_se_list = [
            bool(se) for se in self._per_stage('with_se_list', with_se_list,
                                               self.default_with_se_list,
                                               num_stages)
        ]
        if act_cfg_list is None:
            act_cfg_list = ['Swish'] * (num_stages + 3)
        if len(act_cfg_list) != num_stages + 3:
            raise ValueError(
                f'act_cfg_list needs {num_stages + 3} entries (first conv, '
                f'{num_stages} stages, final expand and feature mix convs), '
                f'got {len(act_cfg_list)}: {act_cfg_list!r}')
        self.act_cfg_list = [
            _act_cfg(act, i) for i, act in enumerate(act_cfg_list)
        ]
        out_indices = check_stage_indices(out_indices, frozen_stages,
                                          num_stages)
        self.widen_factor = widen_factor
        self.out_indices = out_indices
        self.frozen_stages = frozen_stages
        self.conv_cfg = _resolve_layer_cfg(conv_cfg, 'conv_cfg')
        self.norm_cfg = _resolve_layer_cfg(norm_cfg, 'norm_cfg')
        self.norm_eval = norm_eval
        self.zero_init_residual = zero_init_residual
        self.with_cp = with_cp
        self.fine_grained_mode = fine_grained_mode
        self.with_attentive_shortcut = with_attentive_shortcut

        self.mutables = nn.ModuleDict()
        self._build_layers()

    # ------------------------------------------------------------ settings
    @staticmethod
    def _parse_arch_setting(arch_setting: Dict[str, List],
                            widen_factor: float) -> Tuple[List, ...]:
        if not isinstance(arch_setting, dict):
            raise ValueError('arch_setting must be a dict with keys '
                             f'{ARCH_KEYS}, got {arch_setting!r}')
        missing = [k for k in ARCH_KEYS if k not in arch_setting]
        unknown = [k for k in arch_setting if k not in ARCH_KEYS]
        if missing or unknown:
            raise ValueError(f'arch_setting: missing key(s) {missing}, '
                             f'unknown key(s) {unknown}; expected '
                             f'{list(ARCH_KEYS)}')
        if not isinstance(widen_factor, (int, float)) or widen_factor <= 0:
            raise ValueError(f'widen_factor must be > 0, got {widen_factor!r}')
        parsed = {k: parse_values(k, arch_setting[k]) for k in ARCH_KEYS}
        num_stages = len(parsed['kernel_size'])
        expected = dict(
            kernel_size=num_stages,
            num_blocks=num_stages,
            expand_ratio=num_stages + 1,
            num_out_channels=num_stages + 2)
        if num_stages == 0:
            raise ValueError("arch_setting['kernel_size'] must have one "
                             'entry per stage, got none')
        layout = dict(
            kernel_size='one per stage',
            num_blocks='one per stage',
            expand_ratio='one per stage, then the final expand conv',
            num_out_channels='the first conv, one per stage, then the '
            'feature mix conv')
        for key, length in expected.items():
            if len(parsed[key]) != length:
                raise ValueError(
                    f'arch_setting[{key!r}] has {len(parsed[key])} entries, '
                    f'expected {length} for {num_stages} stages '
                    f'({layout[key]})')
        channels = parsed['num_out_channels']
        if widen_factor != 1:
            channels = [
                sorted({make_divisible(c * widen_factor, 8)
                        for c in choices}) for choices in channels
            ]
        return (parsed['kernel_size'], parsed['num_blocks'],
                parsed['expand_ratio'], channels)

    @staticmethod
    def _per_stage(name: str, given: Optional[List], default: List,
                   num_stages: int) -> List:
        if given is None:
            if len(default) != num_stages:
                raise ValueError(f'{name} must be given for an arch_setting '
                                 f'of {num_stages} stages (the default is '
                                 f'for {len(default)})')
            return list(default)
        if len(given) != num_stages:
            raise ValueError(f'{name} needs {num_stages} entries (one per '
                             f'stage), got {len(given)}: {given!r}')
        return list(given)

    # ------------------------------------------------------------ mutables
    def _value(self, alias: str, values: List[int]) -> OneShotMutableValue:
        mutable = OneShotMutableValue(values, alias=KEY_PREFIX + alias)
        self.mutables[_alias_key(KEY_PREFIX + alias)] = mutable
        return mutable

    def _channel(self, alias: str,
                 values: List[int]) -> OneShotMutableChannel:
        mutable = OneShotMutableChannel(
            max(values),
            values,
            candidate_mode='number',
            alias=KEY_PREFIX + alias)
        self.mutables[_alias_key(KEY_PREFIX + alias)] = mutable
        return mutable

    def _derived_alias(self, alias: str, source: OneShotMutableValue) -> None:
        derived = source.derive_same_mutable()
        derived.alias = KEY_PREFIX + alias
        self.mutables[_alias_key(KEY_PREFIX + alias)] = derived

    # ------------------------------------------------------------- layers
    def _conv_module(self, in_channels: int, out_channels: int,
                     kernel_size: int, act: Optional[Dict],
                     **kwargs: Any) -> ConvModule:
        kwargs.setdefault('norm_cfg', self.norm_cfg)
        return ConvModule(
            in_channels,
            out_channels,
            kernel_size,
            padding=kernel_size // 2,
            conv_cfg=self.conv_cfg,
            act_cfg=act,
            **kwargs)

    def _build_layers(self) -> None:
        first = self._channel('first_channels', self.num_channels_list[0])
        self.first_conv = self._conv_module(
            3, first.num_channels, 3, self.act_cfg_list[0], stride=2)
        make_conv_module_dynamic(self.first_conv, out_channels=first)

        self.layers = nn.ModuleList()
        in_mutable = first
        for i in range(self.num_stages):
            in_mutable = self._build_stage(i, in_mutable)
        self.layers.append(self._build_last_layer(in_mutable))

    def _build_stage(self, i: int,
                     in_mutable: BaseMutable) -> OneShotMutableChannel:
        prefix = f'layers.{i + 1}'
        kernels = self.kernel_size_list[i]
        ratios = self.expand_ratio_list[i]
        out_mutable = self._channel(f'{prefix}.out_channels',
                                    self.num_channels_list[i + 1])
        depth = self._value(f'{prefix}.depth', self.num_blocks_list[i])
        if not self.fine_grained_mode:
            kernel = self._value(f'{prefix}.kernel_size', kernels)
            ratio = self._value(f'{prefix}.expand_ratio', ratios)
        blocks = []
        for j in range(max(self.num_blocks_list[i])):
            se_ratio = None
            if self.fine_grained_mode:
                kernel = self._value(f'{prefix}.{j}.kernel_size', kernels)
                ratio = self._value(f'{prefix}.{j}.expand_ratio', ratios)
                if self.with_se_list[i]:
                    se_ratio = self._value(f'{prefix}.{j}.expand_ratio_se',
                                           ratios)
                else:
                    # 1.x subnet files may store it for blocks without SE
                    # too: a derived key, accepted and ignored on loading.
                    self._derived_alias(f'{prefix}.{j}.expand_ratio_se',
                                        ratio)
            elif self.with_se_list[i]:
                se_ratio = ratio
            blocks.append(
                self._build_block(i, self.stride_list[i] if j == 0 else 1,
                                  in_mutable, out_mutable, kernel, ratio,
                                  se_ratio))
            in_mutable = out_mutable
        stage = DynamicSequential(*blocks)
        stage.register_mutable_attr('depth', depth)
        self.layers.append(stage)
        return out_mutable

    def _build_block(self, stage: int, stride: int, in_mutable: BaseMutable,
                     out_mutable: BaseMutable, kernel: OneShotMutableValue,
                     ratio: OneShotMutableValue,
                     se_ratio: Optional[OneShotMutableValue]
                     ) -> SearchableMBBlock:
        in_max, out_max = in_mutable.num_channels, out_mutable.num_channels
        with_expand = max(ratio.choices) > 1
        shortcut = None
        same_width = in_mutable is out_mutable
        if self.with_attentive_shortcut and not (stride == 1 and same_width):
            conv = build_conv_layer(
                self.conv_cfg, in_max, out_max, 1, bias=False)
            if type(conv) is nn.Conv2d:
                conv = DynamicConv2d.convert_from(conv)
            shortcut = DynamicShortcutLayer(conv, reduction=stride)
            shortcut.register_mutable_attr('in_channels', in_mutable)
            shortcut.register_mutable_attr('out_channels', out_mutable)
        block = SearchableMBBlock(
            shortcut=shortcut,
            kernel_size=max(kernel.choices),
            expand_ratio=max(ratio.choices) if with_expand else 1,
            se_cfg=dict(SE_CFG) if se_ratio is not None else None,
            conv_cfg=self.conv_cfg,
            norm_cfg=self.norm_cfg,
            act_cfg=self.act_cfg_list[stage + 1],
            with_cp=self.with_cp,
            in_channels=in_max,
            out_channels=out_max,
            stride=stride)
        mid_mutable = in_mutable * ratio if with_expand else in_mutable
        if with_expand:
            make_conv_module_dynamic(block.expand_conv, in_mutable,
                                     mid_mutable)
        make_conv_module_dynamic(
            block.depthwise_conv,
            mid_mutable,
            mid_mutable,
            kernel_size=kernel)
        if block.se is not None:
            squeeze_base = in_mutable * se_ratio if with_expand \
                else in_mutable
            squeezed = squeeze_base // (SE_CFG['ratio'], SE_CFG['divisor'])
            for name, conv_in, conv_out in (('conv1', mid_mutable, squeezed),
                                            ('conv2', squeezed, mid_mutable)):
                conv = DynamicConv2d.convert_from(getattr(block.se, name))
                conv.register_mutable_attr('in_channels', conv_in)
                conv.register_mutable_attr('out_channels', conv_out)
                setattr(block.se, name, conv)
        make_conv_module_dynamic(block.linear_conv, mid_mutable, out_mutable)
        return block

    def _build_last_layer(self, in_mutable: BaseMutable) -> nn.Sequential:
        ratios = self.expand_ratio_list[-1]
        if len(ratios) > 1:
            ratio: Union[float, BaseMutable] = self._value(
                'last_expand_ratio', ratios)
        else:
            ratio = float(ratios[0])
        mid_mutable = in_mutable * ratio
        last = self._channel('last_channels', self.num_channels_list[-1])
        mid_max = int(in_mutable.num_channels * max(ratios))
        final_expand = self._conv_module(in_mutable.num_channels, mid_max, 1,
                                         self.act_cfg_list[-2])
        make_conv_module_dynamic(final_expand, in_mutable, mid_mutable)
        feature_mix = self._conv_module(
            mid_max,
            last.num_channels,
            1,
            self.act_cfg_list[-1],
            bias=False,
            norm_cfg=None)
        make_conv_module_dynamic(feature_mix, mid_mutable, last)
        return nn.Sequential(
            OrderedDict([('final_expand_layer', final_expand),
                         ('pool', nn.AdaptiveAvgPool2d((1, 1))),
                         ('feature_mix_layer', feature_mix)]))

    # ---------------------------------------------------------- accessors
    @property
    def last_conv(self) -> nn.Module:
        """The last layer (``layers[-1]``): final expand conv, pooling and
        feature mix conv."""
        return self.layers[-1]

    @property
    def first_mutable_channels(self) -> OneShotMutableChannel:
        """Width mutable of ``first_conv``."""
        return self.mutables[_alias_key(KEY_PREFIX + 'first_channels')]

    @property
    def last_mutable_channels(self) -> OneShotMutableChannel:
        """Width mutable of the backbone output (``last_channels``)."""
        return self.mutables[_alias_key(KEY_PREFIX + 'last_channels')]

    # ------------------------------------------------------------ dropout
    def set_dropout(self, dropout_stages: Sequence[int],
                    drop_path_rate: float) -> None:
        """Set the stochastic depth (drop-path) of the blocks of some
        stages, as MMRazor 1.x's ``set_dropout`` (BigNAS calls it before
        each subnet of a step: the rate for the largest, 0 for the others).

        Stages are numbered from 1 (``layers[0]`` is stage 1); number
        ``num_stages + 1`` is the last layer, which has no blocks (the OFA
        config of 1.x lists it: ``backbone_dropout_stages=[6, 7]`` for 6
        stages), so it changes nothing. Block ``b`` of the backbone (0-based
        over all built blocks of all stages, whatever the searched depth)
        gets the rate ``drop_path_rate * b / number of blocks``, growing
        with depth; it drops the residual branch of whole samples while
        training (``mmcv``'s ``DropPath``; nothing in eval mode). A block
        without a residual (OFA blocks changing the stride or the width)
        gets none. Blocks of other stages keep their rate. The backbone
        has no dropout of its own to set (1.x's neck holds it).

        Args:
            dropout_stages (Sequence[int]): Stages (from 1) to set.
            drop_path_rate (float): The rate of the last block, in
                ``[0, 1)``; 0 turns drop-path off in those stages.

        Raises:
            ValueError: A stage is not an int in ``[1, num_stages + 1]``,
                or the rate is not in ``[0, 1)``.
        """
        if isinstance(drop_path_rate, bool) or not isinstance(
                drop_path_rate, (int, float)) or \
                not 0 <= drop_path_rate < 1:
            raise ValueError('set_dropout: drop_path_rate must be a number '
                             f'in [0, 1), got {drop_path_rate!r}')
        if isinstance(dropout_stages, (str, bytes)) or not isinstance(
                dropout_stages, Sequence):
            raise ValueError('set_dropout: dropout_stages must be a list of '
                             f'stage numbers, got {dropout_stages!r}')
        for stage in dropout_stages:
            if isinstance(stage, bool) or not isinstance(stage, int) or \
                    not 1 <= stage <= self.num_stages + 1:
                raise ValueError(
                    f'set_dropout: dropout_stages entry {stage!r} is not a '
                    f'stage number in [1, {self.num_stages + 1}] (stages '
                    f'from 1, {self.num_stages + 1} = the last layer)')
        stages = list(self.layers)[:self.num_stages]
        total = sum(len(stage) for stage in stages)
        index = 0
        for number, stage in enumerate(stages, start=1):
            for block in stage:
                if number in dropout_stages:
                    rate = float(drop_path_rate) * index / total
                    if not block.has_residual:
                        rate = 0.0
                    block.drop_path_rate = rate
                    block.drop_path = DropPath(rate) if rate > 0 \
                        else nn.Identity()
                index += 1

    # ------------------------------------------------------------ running
    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Args:
            x (Tensor): Images, shape ``(N, 3, H, W)``.

        Returns:
            tuple[Tensor]: The outputs of the layers in ``out_indices``.
        """
        x = self.first_conv(x)
        outs = []
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)

    def init_weights(self) -> None:
        """Initialise (``init_cfg``), then zero the last norm of blocks
        with a shortcut when ``zero_init_residual``."""
        super().init_weights()
        if not self.zero_init_residual:
            return
        for module in self.modules():
            if isinstance(module, SearchableMBBlock) and (
                    module.shortcut is not None or module.with_res_shortcut):
                norm = getattr(module.linear_conv, 'norm', None)
                if isinstance(norm, _BatchNorm):
                    constant_init(norm, val=0, bias=0)

    def _freeze_stages(self) -> None:
        if self.frozen_stages < 0:
            return
        for module in [self.first_conv] + \
                list(self.layers)[:self.frozen_stages]:
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def train(self, mode: bool = True) -> 'AttentiveMobileNetV3':
        """Set the mode, keeping frozen layers (and norms with
        ``norm_eval``) in eval mode.

        Args:
            mode (bool): Training mode. Defaults to True.

        Returns:
            AttentiveMobileNetV3: The backbone.
        """
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for module in self.modules():
                if isinstance(module, _BatchNorm):
                    module.eval()
        return self
