"""A BatchNorm2d with mutable channels."""
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from mmrazor.models.mutables import BaseMutable
from mmrazor.registry import MODELS
from .base import DynamicMixin, take


@MODELS.register_module()
class DynamicBatchNorm2d(nn.BatchNorm2d, DynamicMixin):
    """``nn.BatchNorm2d`` whose channels follow a channel mutable.

    Mutable attribute: ``'num_features'`` (also accepted as
    ``'in_channels'`` / ``'out_channels'``). Running statistics of the
    inactive channels are left untouched.

    Active hyper-parameter, for resource estimators:
    ``active_num_features`` (int).
    """

    mutable_attr_names = ('num_features', )
    mutable_attr_aliases = {
        'in_channels': 'num_features',
        'out_channels': 'num_features'
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._init_mutable_attrs()

    @classmethod
    def convert_from(cls, module: nn.BatchNorm2d) -> 'DynamicBatchNorm2d':
        """A dynamic copy of ``module`` (same state, no mutables yet)."""
        new = cls(module.num_features, module.eps, module.momentum,
                  module.affine, module.track_running_stats)
        new.load_state_dict(module.state_dict())
        new.train(module.training)
        device = next(iter(module.state_dict().values()), torch.empty(0))
        return new.to(device.device)

    def _check_mutable_attr(self, name: str, mutable: BaseMutable) -> None:
        self._check_channel_mutable(name, mutable, self.num_features)

    @property
    def active_num_features(self) -> int:
        """Channels in use."""
        return self._active_count('num_features', self.num_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not len(self.mutable_attrs):
            return super().forward(x)
        self._check_input_dim(x)
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and \
                self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:
                momentum = 1.0 / float(self.num_batches_tracked)
        use_batch_stats = self.training or (self.running_mean is None
                                            and self.running_var is None)
        track = not self.training or self.track_running_stats
        index = self._channel_index('num_features', x.device)
        mean = take(self.running_mean, index) if track else None
        var = take(self.running_var, index) if track else None
        out = F.batch_norm(x, mean, var, take(self.weight, index),
                           take(self.bias, index), use_batch_stats, momentum,
                           self.eps)
        if isinstance(index, torch.Tensor) and track and \
                self.running_mean is not None and use_batch_stats:
            # index_select copied the statistics: write the update back.
            with torch.no_grad():
                self.running_mean[index] = mean
                self.running_var[index] = var
        return out

    def to_static_op(self) -> nn.BatchNorm2d:
        """A plain ``nn.BatchNorm2d`` of the current choice (copied state).
        """
        index = self._channel_index('num_features', self.weight.device
                                    if self.weight is not None else 'cpu')
        static = nn.BatchNorm2d(self.active_num_features, self.eps,
                                self.momentum, self.affine,
                                self.track_running_stats)
        if self.running_mean is not None:
            static = static.to(self.running_mean.device)
        elif self.weight is not None:
            static = static.to(self.weight.device)
        state = {}
        for key, value in self.state_dict().items():
            if key.startswith('mutable_attrs.'):
                continue
            state[key] = value if value.dim() == 0 else take(value, index)
        static.load_state_dict({k: v.clone() for k, v in state.items()})
        static.train(self.training)
        return static
