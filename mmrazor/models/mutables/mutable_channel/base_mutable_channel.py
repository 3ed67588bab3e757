"""The base of channel mutables: a searchable channel count with a mask."""
from abc import abstractmethod
from typing import Dict, Optional, Sequence, Union

import numpy as np
import torch

from mmrazor.utils import make_divisible
from ..base_mutable import BaseMutable
from ..derived_mutable import (DEFAULT_DIVISOR, DerivedMethodMixin,
                               DerivedMutable, _check_divisor,
                               _concat_choice_fn, _concat_mask_fn,
                               _sources_of)
from ..mutable_value import MutableValue, OneShotMutableValue

Number = Union[int, float]


def first_k_mask(num_channels: int, k: int) -> torch.Tensor:
    """A bool mask of length ``num_channels`` keeping the first ``k``.

    Args:
        num_channels (int): Length of the mask.
        k (int): How many leading channels are kept.

    Returns:
        torch.Tensor: A 1-d bool tensor (on CPU).
    """
    if not 0 <= k <= num_channels:
        raise ValueError(f'cannot keep {k} of {num_channels} channels')
    # Built with numpy: mask bookkeeping issues no torch ops, so op-level
    # counters (FLOPs estimators) see only the model's computation.
    return torch.from_numpy(np.arange(num_channels) < k)


def _value(x: Union[Number, BaseMutable]) -> Number:
    return x.current_choice if isinstance(x, BaseMutable) else x


def _largest(x: Union[Number, BaseMutable]) -> Number:
    return max(x.choices) if isinstance(x, BaseMutable) else x


def _smallest(x: Union[Number, BaseMutable]) -> Number:
    return min(x.choices) if isinstance(x, BaseMutable) else x


class ChannelDerivationMixin(DerivedMethodMixin):
    """Arithmetic on channel mutables that gives derived channel mutables
    with masks (mixed into :class:`MutableChannel` and
    :class:`DerivedChannelMutable`, so derivations chain).

    * ``m * e`` with an int ``e``: each channel becomes ``e`` channels (the
      mask is ``current_mask`` with every flag repeated ``e`` times);
    * ``m * ratio`` with a float or a :class:`OneShotMutableValue` (a
      searched expand ratio): the first ``int(choice * ratio)`` channels of
      a layer of ``int(num_channels * max(ratio))`` channels. A plain
      :class:`MutableValue` is refused (``TypeError``), as in the older
      toolbox: a searched ratio is a one-shot value;
    * ``m // r`` and ``m // (r, divisor)``: the first
      ``make_divisible(choice / r, divisor)`` channels (``divisor``
      defaults to 8; with 1, ``choice // r``) of a layer of
      ``make_divisible(num_channels / min(r), divisor)`` channels;
    * :func:`concat_channel_mutables`: the concatenation of the masks.

    ``+`` and ``-`` give value-only derived mutables (no mask). Users need
    ``num_channels`` and ``current_mask``.
    """

    _is_channel_mutable = True

    def _check_factor(self, other: object) -> None:
        if isinstance(other, MutableValue) and not isinstance(
                other, OneShotMutableValue):
            raise TypeError(
                f'cannot multiply {type(self).__name__} by a '
                f'{type(other).__name__} ({other!r}): a channel mutable is '
                'multiplied by an int, a float or a OneShotMutableValue '
                '(a searched expand ratio)')

    def __mul__(self, other: Union[Number, BaseMutable]) -> DerivedMutable:
        self._check_factor(other)
        return super().__mul__(other)

    def __rmul__(self, other: Union[Number, BaseMutable]) -> DerivedMutable:
        self._check_factor(other)
        return super().__mul__(other)

    def _with_mask(self, derived: DerivedMutable,
                   mask_fn_of) -> 'DerivedChannelMutable':
        channel = DerivedChannelMutable(
            choice_fn=derived.choice_fn,
            source_mutables=derived.ordered_source_mutables)
        channel.mask_fn = mask_fn_of(channel)
        return channel

    def derive_same_mutable(self) -> 'DerivedChannelMutable':
        """A derived mutable with this value and this mask."""
        return self._with_mask(super().derive_same_mutable(),
                               lambda new: (lambda: self.current_mask))

    def derive_expand_mutable(self, expand_ratio: Union[Number, BaseMutable]
                              ) -> 'DerivedChannelMutable':
        """``self * expand_ratio`` with a mask (see the class docstring).

        Args:
            expand_ratio (int | float | BaseMutable): The factor.

        Returns:
            DerivedChannelMutable: Follows ``self`` (and ``expand_ratio``).
        """
        expand = expand_ratio
        derived = super().derive_expand_mutable(expand)
        if isinstance(expand, int) and not isinstance(expand, bool):
            return self._with_mask(
                derived, lambda new: (lambda: torch.from_numpy(
                    np.repeat(self.current_mask.numpy(), expand))))
        total = int(self.num_channels * _largest(expand))
        return self._with_mask(
            derived,
            lambda new: (lambda: first_k_mask(total, int(new.current_choice))))

    def derive_divide_mutable(self,
                              ratio: Union[Number, BaseMutable],
                              divisor: int = DEFAULT_DIVISOR
                              ) -> 'DerivedChannelMutable':
        """``make_divisible(self / ratio, divisor)`` with a first-k mask.

        Args:
            ratio (int | float | BaseMutable): The divisor of the value.
            divisor (int): Round to a multiple of it; with 1 the value is
                ``self // ratio``. Defaults to 8.

        Returns:
            DerivedChannelMutable: Follows ``self`` (and ``ratio``).
        """
        _check_divisor(divisor)
        derived = super().derive_divide_mutable(ratio, divisor)
        smallest = _smallest(ratio)
        if divisor == 1:
            total = int(self.num_channels // smallest)
        else:
            total = make_divisible(self.num_channels / smallest, divisor)
        return self._with_mask(
            derived,
            lambda new: (lambda: first_k_mask(total, int(new.current_choice))))


class MutableChannel(ChannelDerivationMixin, BaseMutable):
    """A searchable number of channels of a layer, with a channel mask.

    ``current_choice`` is the number of active channels (an int), so that
    arithmetic on channel mutables gives channel counts; ``current_mask`` is
    a bool tensor of length :attr:`num_channels` that marks the active
    channels. Masks always live on the CPU; dynamic ops turn them into
    slices or indices on the weights' device. Arithmetic gives
    :class:`DerivedChannelMutable` (see :class:`ChannelDerivationMixin`).

    Args:
        num_channels (int): The number of channels of the widest layer.
        alias (str, optional): Name shared by mutables that make one
            decision. Defaults to None.
        init_cfg (dict, optional): mmengine initialisation config.
    """

    def __init__(self,
                 num_channels: int,
                 alias: Optional[str] = None,
                 init_cfg: Optional[Dict] = None) -> None:
        super().__init__(alias=alias, init_cfg=init_cfg)
        if not isinstance(num_channels, int) or isinstance(
                num_channels, bool) or num_channels <= 0:
            raise ValueError('num_channels must be a positive int, got '
                             f'{num_channels!r}')
        self.num_channels = num_channels

    @property
    @abstractmethod
    def current_mask(self) -> torch.Tensor:
        """Bool tensor of length :attr:`num_channels`, True = active."""

    @property
    def activated_channels(self) -> int:
        """The number of active channels."""
        return int(np.count_nonzero(self.current_mask.numpy()))

    def extra_repr(self) -> str:
        return (f'num_channels={self.num_channels}, '
                f'activated_channels={self.activated_channels}' +
                self._repr_suffix())


class DerivedChannelMutable(ChannelDerivationMixin, DerivedMutable):
    """A :class:`DerivedMutable` of channels: its value is a channel count
    and it carries a mask, so further arithmetic keeps masks (e.g.
    ``(width * expand_ratio) // (4, 8)`` for a squeeze-excitation width).

    Made by arithmetic on channel mutables and by
    :func:`concat_channel_mutables`; not searched, not stored in subnets.
    """

    @property
    def num_channels(self) -> int:
        """Channels of the widest derived layer (the mask length)."""
        return len(self.current_mask)

    @property
    def activated_channels(self) -> int:
        """The number of active channels."""
        return int(np.count_nonzero(self.current_mask.numpy()))


def concat_channel_mutables(mutables: Sequence[Union[MutableChannel,
                                                     DerivedMutable]],
                            alias: Optional[str] = None
                            ) -> DerivedChannelMutable:
    """The channels of several layers concatenated (``torch.cat`` on dim 1).

    Args:
        mutables (Sequence): Channel mutables (or derived channel mutables
            that carry masks) in concatenation order.
        alias (str, optional): A display name.

    Returns:
        DerivedChannelMutable: Its value is the sum of the active channels,
        its mask the concatenation of the masks.

    Raises:
        ValueError: ``mutables`` is empty.
        TypeError: One of ``mutables`` carries no channel mask.
    """
    mutables = list(mutables)
    if not mutables:
        raise ValueError('concat_channel_mutables needs at least one mutable')
    for i, m in enumerate(mutables):
        if isinstance(m, DerivedMutable):
            has_mask = m.mask_fn is not None
        else:
            has_mask = isinstance(m, BaseMutable) and hasattr(
                m, 'current_mask')
        if not has_mask:
            raise TypeError(f'mutables[{i}] ({type(m).__name__}) is not a '
                            'channel mutable with a mask')
    return DerivedChannelMutable(
        choice_fn=_concat_choice_fn(mutables),
        mask_fn=_concat_mask_fn(mutables),
        source_mutables=_sources_of(*mutables),
        alias=alias)
