"""``SearchableMobileNet``: the older name of the SPOS MobileNet space."""
from typing import Dict, List, Optional, Sequence, Union

from mmrazor.registry import MODELS
from .searchable_mobilenet_v2 import SearchableMobileNetV2

#: ``[channels, num_blocks, stride]`` of the stages, by
#: ``arch_setting_type`` (the ProxylessNAS GPU and mobile layouts).
ARCH_SETTINGS: Dict[str, List[List[int]]] = {
    'proxyless_gpu': [[24, 1, 1], [32, 4, 2], [56, 4, 2], [112, 4, 2],
                      [128, 4, 1], [256, 4, 2], [432, 1, 1]],
    'proxyless_mobile': [[16, 1, 1], [32, 4, 2], [40, 4, 2], [80, 4, 2],
                         [96, 4, 1], [192, 4, 2], [320, 1, 1]],
}


@MODELS.register_module()
class SearchableMobileNet(SearchableMobileNetV2):
    """The older face of :class:`SearchableMobileNetV2` (block mutables
    form) with its blocks left to a mutator's ``placeholder_mapping``.

    Every block is a :class:`~mmrazor.models.mutables.Placeholder` with
    ``space_id`` ``stage_{i}_block_{j}`` (stages from 0): the first stage's
    of group ``'first_blocks'``, the others' of ``'searchable_blocks'``; it
    gets ``choice_args=dict(in_channels, out_channels, stride)``. The model
    runs once a mutator with a mapping for both groups has been prepared on
    it (e.g. by ``SPOS(mutator=dict(type='OneShotMutator',
    placeholder_mapping=...))``).

    Args:
        first_channels (int): Stem width. Defaults to 32.
        last_channels (int): Width of the final 1x1 conv. Defaults to 1280.
        widen_factor (float): Scales the stem and stage widths. Defaults to
            1.0.
        out_indices (Sequence[int]): Outputs (stage ``i`` from 0, 7 the
            final conv). Defaults to ``(7,)``.
        arch_setting_type (str): ``'proxyless_gpu'`` or
            ``'proxyless_mobile'`` (see :data:`ARCH_SETTINGS`). Defaults to
            ``'proxyless_gpu'``.
        **kwargs: ``frozen_stages``, ``conv_cfg``, ``norm_cfg``,
            ``act_cfg``, ``norm_eval``, ``with_cp``, ``init_cfg`` of
            :class:`SearchableMobileNetV2`.
    """

    def __init__(self,
                 first_channels: int = 32,
                 last_channels: int = 1280,
                 widen_factor: float = 1.0,
                 out_indices: Sequence[int] = (7, ),
                 arch_setting_type: str = 'proxyless_gpu',
                 init_cfg: Optional[Union[Dict, List[Dict]]] = None,
                 **kwargs) -> None:
        if arch_setting_type not in ARCH_SETTINGS:
            raise ValueError(f'arch_setting_type must be one of '
                             f'{sorted(ARCH_SETTINGS)}, got '
                             f'{arch_setting_type!r}')
        for key in ('arch_setting', 'kernel_choices', 'expand_ratio_choices',
                    'width_choices'):
            if key in kwargs:
                raise TypeError(f'SearchableMobileNet takes no {key!r}: its '
                                'stages come from arch_setting_type and its '
                                'blocks from placeholder_mapping (use '
                                'SearchableMobileNetV2 for the newer form)')
        arch_setting = []
        for i, (channels, num_blocks, stride) in enumerate(
                ARCH_SETTINGS[arch_setting_type]):
            group = 'first_blocks' if i == 0 else 'searchable_blocks'
            arch_setting.append([
                channels, num_blocks, stride,
                dict(type='Placeholder', group=group)
            ])
        self.arch_setting_type = arch_setting_type
        super().__init__(
            arch_setting=arch_setting,
            first_channels=first_channels,
            last_channels=last_channels,
            widen_factor=widen_factor,
            out_indices=out_indices,
            init_cfg=init_cfg,
            **kwargs)
