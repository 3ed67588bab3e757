"""Switchable BatchNorm: one set of BN statistics per subnet."""
from typing import Optional

import numpy as np
import torch
from torch import nn

from mmrazor.models.task_modules.channel_analysis import (
    NormHandler, register_layer_handler)
from mmrazor.registry import MODELS


@MODELS.register_module()
class SwitchableBatchNorm2d(nn.Module):
    """Several ``BatchNorm2d`` of the same width; ``index`` picks the one
    in use (slimmable networks keep private BN statistics per width).

    The channel tracer treats it as a per-channel norm layer (see
    :class:`SwitchableBatchNorm2dHandler`); deploying a pruned model
    replaces it by a plain ``nn.BatchNorm2d`` (the one in use).

    Args:
        num_features (int): Channels.
        num_bns (int): How many BNs (subnets).
        eps (float): As ``nn.BatchNorm2d``. Defaults to 1e-5.
        momentum (float, optional): Defaults to 0.1.
        affine (bool): Defaults to True.
        track_running_stats (bool): Defaults to True.
    """

    def __init__(self,
                 num_features: int,
                 num_bns: int,
                 eps: float = 1e-5,
                 momentum: Optional[float] = 0.1,
                 affine: bool = True,
                 track_running_stats: bool = True) -> None:
        super().__init__()
        if num_bns < 1:
            raise ValueError(f'num_bns must be >= 1, got {num_bns}')
        self.num_features = num_features
        self.num_bns = num_bns
        self.bns = nn.ModuleList(
            nn.BatchNorm2d(num_features, eps, momentum, affine,
                           track_running_stats) for _ in range(num_bns))
        self.index = 0

    @classmethod
    def convert_from(cls, bn: nn.BatchNorm2d,
                     num_bns: int) -> 'SwitchableBatchNorm2d':
        """A switchable BN whose every BN is a copy of ``bn``."""
        new = cls(bn.num_features, num_bns, bn.eps, bn.momentum, bn.affine,
                  bn.track_running_stats)
        for inner in new.bns:
            inner.load_state_dict(bn.state_dict())
        ref = bn.weight if bn.weight is not None else bn.running_mean
        if ref is not None:
            new = new.to(ref.device)
        new.train(bn.training)
        return new

    @property
    def active_bn(self) -> nn.BatchNorm2d:
        """The BN in use."""
        if not 0 <= self.index < self.num_bns:
            raise IndexError(f'SwitchableBatchNorm2d index {self.index} is '
                             f'not in [0, {self.num_bns})')
        return self.bns[self.index]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.active_bn(x)

    def extra_repr(self) -> str:
        return f'{self.num_features}, num_bns={self.num_bns}, ' \
            f'index={self.index}'


@register_layer_handler(SwitchableBatchNorm2d)
class SwitchableBatchNorm2dHandler(NormHandler):
    """A :class:`SwitchableBatchNorm2d` is traced and masked as a
    per-channel norm; it is counted and sliced as the BN in use, which
    takes its place in the deployed model."""

    kind = 'switchable_bn'

    def needs_slicing(self, module: nn.Module, in_keep: np.ndarray,
                      out_keep: np.ndarray) -> bool:
        return True  # the deployed model holds no mmrazor module

    def slice(self, module: nn.Module, in_keep: np.ndarray,
              out_keep: np.ndarray, where: str) -> nn.Module:
        bn = module.active_bn
        super().slice(bn, in_keep, out_keep, where)
        return bn

    def params(self, module: nn.Module, cin: int, cout: int) -> int:
        return super().params(module.active_bn, cin, cout)
