"""A Linear layer with mutable in/out features."""
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from mmrazor.models.mutables import BaseMutable
from mmrazor.registry import MODELS
from .base import DynamicMixin, take


@MODELS.register_module()
class DynamicLinear(nn.Linear, DynamicMixin):
    """``nn.Linear`` whose features follow channel mutables.

    Mutable attributes: ``'in_features'`` and ``'out_features'`` (also
    accepted as ``'in_channels'`` / ``'out_channels'``).

    Active hyper-parameters, for resource estimators:
    ``active_in_features`` and ``active_out_features`` (ints); the layer of
    the current choice does ``active_in_features * active_out_features``
    multiply-adds per sample.
    """

    mutable_attr_names = ('in_features', 'out_features')
    mutable_attr_aliases = {
        'in_channels': 'in_features',
        'out_channels': 'out_features'
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._init_mutable_attrs()

    @classmethod
    def convert_from(cls, module: nn.Linear) -> 'DynamicLinear':
        """A dynamic copy of ``module`` (same weights, no mutables yet)."""
        new = cls(module.in_features, module.out_features,
                  module.bias is not None)
        new.load_state_dict(module.state_dict())
        return new.to(module.weight.device)

    def _check_mutable_attr(self, name: str, mutable: BaseMutable) -> None:
        self._check_channel_mutable(name, mutable, getattr(self, name))

    @property
    def active_in_features(self) -> int:
        """Input features in use."""
        return self._active_count('in_features', self.in_features)

    @property
    def active_out_features(self) -> int:
        """Output features in use."""
        return self._active_count('out_features', self.out_features)

    def get_active_params(self):
        """``(weight, bias)`` of the current choice."""
        device = self.weight.device
        out_index = self._channel_index('out_features', device)
        in_index = self._channel_index('in_features', device)
        weight = take(take(self.weight, out_index, 0), in_index, 1)
        return weight, take(self.bias, out_index, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not len(self.mutable_attrs):
            return super().forward(x)
        weight, bias = self.get_active_params()
        return F.linear(x, weight, bias)

    def to_static_op(self) -> nn.Linear:
        """A plain ``nn.Linear`` of the current choice with copied weights.
        """
        weight, bias = self.get_active_params()
        static = nn.Linear(weight.shape[1], weight.shape[0],
                           bias is not None).to(weight.device, weight.dtype)
        with torch.no_grad():
            static.weight.copy_(weight)
            if bias is not None:
                static.bias.copy_(bias)
        static.train(self.training)
        return static
