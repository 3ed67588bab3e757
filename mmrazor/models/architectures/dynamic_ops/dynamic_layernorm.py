"""A LayerNorm whose normalized width follows a channel mutable."""
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from mmrazor.models.mutables import BaseMutable
from mmrazor.registry import MODELS
from .base import DynamicMixin, take


@MODELS.register_module()
class DynamicLayerNorm(nn.LayerNorm, DynamicMixin):
    """``nn.LayerNorm`` over the last dimension, whose width follows a
    channel mutable.

    Build it at the largest width (``normalized_shape`` must be one int, as
    in a transformer), then :meth:`register_mutable_attr` with
    ``'num_features'`` (also accepted as ``'in_channels'`` /
    ``'out_channels'`` / ``'embed_dims'``). Inputs carry only the active
    channels; the affine weight and bias of those channels are used.

    Active hyper-parameter, for resource estimators:
    ``active_num_features`` (int). The layer of the current choice has
    ``2 * active_num_features`` parameters when affine.
    """

    mutable_attr_names = ('num_features', )
    mutable_attr_aliases = {
        'in_channels': 'num_features',
        'out_channels': 'num_features',
        'embed_dims': 'num_features'
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if len(self.normalized_shape) != 1:
            raise ValueError('DynamicLayerNorm normalizes the last dimension '
                             'only; normalized_shape must be one int, got '
                             f'{tuple(self.normalized_shape)}')
        self._init_mutable_attrs()

    @property
    def num_features(self) -> int:
        """The full (largest) normalized width."""
        return int(self.normalized_shape[0])

    @property
    def affine(self) -> bool:
        """Whether the layer has a learnt weight and bias."""
        return bool(self.elementwise_affine)

    @classmethod
    def convert_from(cls, module: nn.LayerNorm) -> 'DynamicLayerNorm':
        """A dynamic copy of ``module`` (same weights, no mutables yet)."""
        new = cls(module.normalized_shape, module.eps,
                  module.elementwise_affine)
        new.load_state_dict(module.state_dict(), strict=False)
        return new.to(next(iter(module.state_dict().values()),
                           torch.empty(0)).device)

    def _check_mutable_attr(self, name: str, mutable: BaseMutable) -> None:
        self._check_channel_mutable(name, mutable, self.num_features)

    @property
    def active_num_features(self) -> int:
        """Channels in use."""
        return self._active_count('num_features', self.num_features)

    def get_active_params(self):
        """``(weight, bias)`` of the current choice (None when not affine).
        """
        device = self.weight.device if self.weight is not None else 'cpu'
        index = self._channel_index('num_features', device)
        return take(self.weight, index), take(self.bias, index)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not len(self.mutable_attrs):
            return super().forward(x)
        weight, bias = self.get_active_params()
        return F.layer_norm(x, (self.active_num_features, ), weight, bias,
                            self.eps)

    def to_static_op(self) -> nn.LayerNorm:
        """A plain ``nn.LayerNorm`` of the current width (copied weights).
        """
        weight, bias = self.get_active_params()
        static = nn.LayerNorm(self.active_num_features, self.eps,
                              self.elementwise_affine)
        if weight is not None:
            static = static.to(weight.device, weight.dtype)
            with torch.no_grad():
                static.weight.copy_(weight)
                if bias is not None and static.bias is not None:
                    static.bias.copy_(bias)
        static.train(self.training)
        return static
