"""A Conv2d with mutable in/out channels and kernel size."""
from typing import Any, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mmrazor.models.mutables import BaseMutable
from mmrazor.registry import MODELS
from .base import DynamicMixin, Index, _mask_of, mask_to_index, take


@MODELS.register_module()
class DynamicConv2d(nn.Conv2d, DynamicMixin):
    """``nn.Conv2d`` whose channels and kernel size follow mutables.

    Build it at the largest size (same arguments as ``nn.Conv2d``), then
    :meth:`register_mutable_attr` with ``'in_channels'`` / ``'out_channels'``
    (channel mutables) and/or ``'kernel_size'`` (a value mutable of odd ints
    up to the built kernel size: the kernel is the centre crop of the full
    kernel, so all kernel sizes share weights, and the padding becomes
    ``dilation * (k - 1) // 2``).

    Grouped convs: a depthwise conv (``groups == in_channels ==
    out_channels``) keeps one group per active channel (in and out masks
    must agree); other grouped convs keep their number of groups and need
    every group to keep the same channels.

    Active hyper-parameters, for resource estimators (read-only, computed
    from the mutables' current choices):

    * ``active_in_channels`` (int), ``active_out_channels`` (int),
    * ``active_kernel_size`` (tuple of 2 ints), ``active_padding``,
    * ``active_groups`` (int).

    A conv of the current choice has
    ``active_out_channels * active_in_channels / active_groups * kh * kw``
    weights, and that many multiply-adds per output pixel.
    """

    mutable_attr_names = ('in_channels', 'out_channels', 'kernel_size')

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._init_mutable_attrs()

    @classmethod
    def convert_from(cls, module: nn.Conv2d) -> 'DynamicConv2d':
        """A dynamic copy of ``module`` (same weights, no mutables yet)."""
        new = cls(module.in_channels, module.out_channels,
                  module.kernel_size, module.stride, module.padding,
                  module.dilation, module.groups, module.bias is not None,
                  module.padding_mode)
        new.load_state_dict(module.state_dict())
        return new.to(module.weight.device)

    # ------------------------------------------------------------ checking
    @property
    def is_depthwise(self) -> bool:
        """One group per channel (``groups == in == out channels``)."""
        return self.groups > 1 and (self.groups == self.in_channels ==
                                    self.out_channels)

    def _check_mutable_attr(self, name: str, mutable: BaseMutable) -> None:
        if name == 'kernel_size':
            if self.kernel_size[0] != self.kernel_size[1]:
                raise ValueError('a mutable kernel size needs a square '
                                 f'kernel, got {self.kernel_size}')
            if self.padding_mode != 'zeros' or isinstance(self.padding, str):
                raise ValueError('a mutable kernel size needs numeric zero '
                                 'padding')
            for k in mutable.choices:
                if not isinstance(k, int) or k % 2 == 0 or \
                        not 1 <= k <= self.kernel_size[0]:
                    raise ValueError(
                        f'kernel size choice {k!r} must be an odd int '
                        f'<= {self.kernel_size[0]}')
        else:
            full = getattr(self, name)
            self._check_channel_mutable(name, mutable, full)

    # ------------------------------------------------------- active values
    @property
    def active_kernel_size(self) -> Tuple[int, int]:
        """The kernel size in use."""
        mutable = self.get_mutable_attr('kernel_size')
        if mutable is None:
            return tuple(self.kernel_size)
        k = int(mutable.current_choice)
        return (k, k)

    @property
    def active_padding(self) -> Any:
        """The padding in use (follows a mutable kernel size)."""
        if self.get_mutable_attr('kernel_size') is None:
            return self.padding
        k = self.active_kernel_size[0]
        return tuple(d * (k - 1) // 2 for d in self.dilation)

    @property
    def active_in_channels(self) -> int:
        """Input channels in use."""
        if self.is_depthwise:
            return self._depthwise_count()
        return self._active_count('in_channels', self.in_channels)

    @property
    def active_out_channels(self) -> int:
        """Output channels in use."""
        if self.is_depthwise:
            return self._depthwise_count()
        return self._active_count('out_channels', self.out_channels)

    @property
    def active_groups(self) -> int:
        """Groups in use (the active channels for a depthwise conv)."""
        return self._depthwise_count() if self.is_depthwise else self.groups

    def _depthwise_mask(self) -> torch.Tensor:
        masks = [
            _mask_of(m) for m in (self.get_mutable_attr('in_channels'),
                                  self.get_mutable_attr('out_channels'))
            if m is not None
        ]
        if not masks:
            return torch.from_numpy(np.ones(self.out_channels, dtype=bool))
        if len(masks) == 2 and not np.array_equal(masks[0].numpy(),
                                                  masks[1].numpy()):
            raise RuntimeError('depthwise DynamicConv2d: the in_channels and '
                               'out_channels mutables disagree')
        return masks[0]

    def _depthwise_count(self) -> int:
        return int(np.count_nonzero(self._depthwise_mask().numpy()))

    # ------------------------------------------------------------ weights
    def _group_index(self, attr: str, full: int, device: torch.device,
                     per_group: bool) -> Index:
        """Channels of a grouped conv: all groups must keep the same."""
        mutable = self.get_mutable_attr(attr)
        if mutable is None:
            return slice(None)
        rows = _mask_of(mutable).numpy().reshape(self.groups,
                                                 full // self.groups)
        if per_group:
            if not (rows == rows[0]).all():
                raise RuntimeError(
                    f'grouped DynamicConv2d ({self.groups} groups): every '
                    f'group must keep the same {attr}')
            return mask_to_index(torch.from_numpy(rows[0].copy()), device)
        counts = rows.sum(1)
        if not (counts == counts[0]).all():
            raise RuntimeError(
                f'grouped DynamicConv2d ({self.groups} groups): every group '
                f'must keep as many {attr}')
        return mask_to_index(torch.from_numpy(rows.flatten()), device)

    def get_active_params(self):
        """The weight, bias, padding and groups of the current choice.

        Returns:
            tuple: ``(weight, bias, padding, groups)``.
        """
        device = self.weight.device
        if self.is_depthwise:
            out_index = in_index = mask_to_index(self._depthwise_mask(),
                                                 device)
            in_index = slice(None)  # weight dim 1 has size 1
        elif self.groups == 1:
            out_index = self._channel_index('out_channels', device)
            in_index = self._channel_index('in_channels', device)
        else:
            out_index = self._group_index('out_channels', self.out_channels,
                                          device, per_group=False)
            in_index = self._group_index('in_channels', self.in_channels,
                                         device, per_group=True)
        weight = take(take(self.weight, out_index, 0), in_index, 1)
        bias = take(self.bias, out_index, 0)
        weight = self._active_kernel(weight)
        return weight, bias, self.active_padding, self.active_groups

    def _active_kernel(self, weight: torch.Tensor) -> torch.Tensor:
        """The kernel of the active size from the channel-sliced full
        kernel ``weight``: its centre crop. Subclasses (e.g. OFA's kernel
        transformation) override this.

        Args:
            weight (Tensor): Shape ``(out, in / groups, K, K)``, ``K`` the
                built kernel size.

        Returns:
            Tensor: Shape ``(out, in / groups, k, k)``, ``k`` the active
            kernel size.
        """
        k = self.active_kernel_size[0]
        full = self.kernel_size[0]
        if k == full:
            return weight
        start = (full - k) // 2
        return weight[:, :, start:start + k, start:start + k]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not len(self.mutable_attrs):
            return super().forward(x)
        weight, bias, padding, groups = self.get_active_params()
        if self.padding_mode != 'zeros':
            return F.conv2d(
                F.pad(x, self._reversed_padding_repeated_twice,
                      mode=self.padding_mode), weight, bias, self.stride, 0,
                self.dilation, groups)
        return F.conv2d(x, weight, bias, self.stride, padding, self.dilation,
                        groups)

    def to_static_op(self) -> nn.Conv2d:
        """A plain ``nn.Conv2d`` of the current choice with copied weights.
        """
        weight, bias, padding, groups = self.get_active_params()
        static = nn.Conv2d(
            weight.shape[1] * groups,
            weight.shape[0],
            tuple(weight.shape[2:]),
            stride=self.stride,
            padding=padding,
            dilation=self.dilation,
            groups=groups,
            bias=bias is not None,
            padding_mode=self.padding_mode)
        static = static.to(device=weight.device, dtype=weight.dtype)
        with torch.no_grad():
            static.weight.copy_(weight)
            if bias is not None:
                static.bias.copy_(bias)
        static.train(self.training)
        return static
