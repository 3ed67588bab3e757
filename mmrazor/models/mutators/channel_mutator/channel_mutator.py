"""Mutators of channel mutables."""
import random
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

from mmrazor.models.mutables import MutableChannel, OneShotMutableChannel
from mmrazor.registry import MODELS
from ..base_mutator import BaseMutator, ChoicesType


@MODELS.register_module()
class ChannelMutator(BaseMutator):
    """Collects the channel mutables of a supernet and sets their widths.

    A decision is a group of tied channels: the channel mutables sharing an
    alias (e.g. all layers added together by residual connections), or a
    single un-aliased mutable keyed by its module path. Its choice is a
    channel count (sequential mutables keep the first channels) or, for
    :class:`~mmrazor.models.mutables.SimpleMutableChannel`, a mask.

    Example:
        >>> mutator = ChannelMutator()
        >>> mutator.prepare_from_supernet(supernet)
        >>> mutator.set_min_choices()            # the narrowest subnet
        >>> mutator.set_choices(mutator.sample_choices())
        >>> mutator.dump_subnet('subnet.yaml')
    """

    mutable_class = MutableChannel

    @property
    def channel_groups(self) -> Dict[str, List[MutableChannel]]:
        """Decision key -> the tied channel mutables of that decision."""
        return dict(self.search_groups)

    def num_channels_of(self, key: str) -> int:
        """The full width of decision ``key``."""
        return self.search_groups[key][0].num_channels

    @property
    def max_choices(self) -> ChoicesType:
        """The widest choice of every decision."""
        return {
            key: max(members[0].choices)
            for key, members in self.search_groups.items()
        }

    @property
    def min_choices(self) -> ChoicesType:
        """The narrowest choice of every decision."""
        return {
            key: min(members[0].choices)
            for key, members in self.search_groups.items()
        }

    def set_max_choices(self) -> None:
        """Set every decision to its widest choice."""
        self.set_choices(self.max_choices)

    def set_min_choices(self) -> None:
        """Set every decision to its narrowest choice."""
        self.set_choices(self.min_choices)


@MODELS.register_module()
class OneShotChannelMutator(ChannelMutator):
    """A :class:`ChannelMutator` for
    :class:`~mmrazor.models.mutables.OneShotMutableChannel` (candidate
    widths sampled uniformly, e.g. in BigNAS/OFA-style training)."""

    mutable_class = OneShotMutableChannel


@MODELS.register_module()
class SlimmableChannelMutator(ChannelMutator):
    """Switches a slimmable network between a fixed list of widths.

    Args:
        channel_cfgs (Sequence[dict | str], optional): The subnets, each a
            ``{key: {'chosen': width}}`` dict (as dumped by a channel
            mutator) or a path to such a YAML file. Every config must set
            every decision. Defaults to None (give them to
            :meth:`set_channel_cfgs` later).
        init_cfg (dict, optional): mmengine initialisation config.

    Example:
        >>> mutator = SlimmableChannelMutator([narrow_cfg, wide_cfg])
        >>> mutator.prepare_from_supernet(supernet)
        >>> mutator.switch_subnet(1)   # the wide network
    """

    def __init__(self,
                 channel_cfgs: Optional[Sequence[Union[Dict, str]]] = None,
                 init_cfg: Optional[Dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self._raw_cfgs = list(channel_cfgs or [])
        self.channel_cfgs: List[ChoicesType] = []

    def prepare_from_supernet(self, supernet) -> None:
        super().prepare_from_supernet(supernet)
        self.set_channel_cfgs(self._raw_cfgs)

    def set_channel_cfgs(self, channel_cfgs: Sequence[Union[Dict, str, Path]]
                         ) -> None:
        """Replace the list of subnets (each validated now).

        Args:
            channel_cfgs (Sequence[dict | str]): Subnet dicts or files
                (YAML / JSON).
        """
        from mmrazor.structures import SubnetError, load_subnet
        cfgs = []
        saved = self.current_choices
        for i, cfg in enumerate(channel_cfgs):
            choices = load_subnet(cfg)
            try:
                self.set_choices(choices)
            except SubnetError as e:
                raise SubnetError(f'channel_cfgs[{i}]: {e}') from e
            cfgs.append(choices)
        self.set_choices(saved)
        self._raw_cfgs = list(channel_cfgs)
        self.channel_cfgs = cfgs

    @property
    def num_subnets(self) -> int:
        """How many subnets the network switches between."""
        return len(self.channel_cfgs)

    def switch_subnet(self, index: int) -> None:
        """Use subnet ``index`` of :attr:`channel_cfgs`.

        Args:
            index (int): In ``[0, num_subnets)``.
        """
        if not 0 <= index < self.num_subnets:
            raise IndexError(f'subnet index {index} is not in '
                             f'[0, {self.num_subnets})')
        self.set_choices(self.channel_cfgs[index])

    def sample_choices(self) -> ChoicesType:
        """The choices of a random subnet of :attr:`channel_cfgs`."""
        if not self.channel_cfgs:
            raise RuntimeError('SlimmableChannelMutator has no channel_cfgs')
        return dict(random.choice(self.channel_cfgs))

    @property
    def max_choices(self) -> ChoicesType:
        """The widest of :attr:`channel_cfgs` (most active channels)."""
        return dict(max(self.channel_cfgs, key=self._total_width))

    @property
    def min_choices(self) -> ChoicesType:
        """The narrowest of :attr:`channel_cfgs`."""
        return dict(min(self.channel_cfgs, key=self._total_width))

    @staticmethod
    def _total_width(cfg: ChoicesType) -> Any:
        return sum(
            sum(v) if isinstance(v, list) else int(v) for v in cfg.values())
