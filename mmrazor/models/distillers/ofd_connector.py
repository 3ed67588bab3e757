"""The teacher's margin ReLU of "A Comprehensive Overhaul of Feature
Distillation" (OFD)."""
import math
from typing import Dict, Optional

import torch
from torch import nn

from mmrazor.registry import MODELS
from .connectors import BaseConnector

#: Below this probability of a negative response the margin is ``-3 s``.
MIN_NEGATIVE_PROB = 1e-3


def ofd_margin(weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Per-channel margin of OFD's teacher transform.

    Heo et al. (ICCV 2019, https://arxiv.org/abs/1904.01866) model the
    pre-ReLU response of channel ``c`` after batch normalisation as
    ``N(m, s^2)`` with ``m = bias[c]`` and ``s = |weight[c]|``; the margin
    is the expectation of the negative responses,

    .. math::
        margin = E[x | x < 0] = m - s \\frac{\\phi(m / s)}{\\Phi(-m / s)}

    (:math:`\\phi`, :math:`\\Phi`: standard normal pdf and cdf), or
    ``-3 s`` where negative responses are rare (``Phi(-m/s) <= 1e-3``).

    Args:
        weight (Tensor): BN scale, shape ``(C, )``.
        bias (Tensor): BN shift, shape ``(C, )``.

    Returns:
        Tensor: Margin of shape ``(1, C, 1, 1)``.
    """
    if weight.shape != bias.shape or weight.dim() != 1:
        raise ValueError(
            'ofd_margin: weight and bias must be 1-D of the same shape, got '
            f'{tuple(weight.shape)} and {tuple(bias.shape)}')
    std = weight.detach().abs().double().clamp_min(1e-12)
    mean = bias.detach().double()
    z = mean / std
    neg_prob = torch.special.ndtr(-z)
    pdf = torch.exp(-z**2 / 2) / math.sqrt(2 * math.pi)
    expected_negative = mean - std * pdf / neg_prob.clamp_min(1e-300)
    margin = torch.where(neg_prob > MIN_NEGATIVE_PROB, expected_negative,
                         -3 * std)
    return margin.to(weight.dtype).view(1, -1, 1, 1)


@MODELS.register_module()
class OFDTeacherConnector(BaseConnector):
    """Teacher transform of OFD: the margin ReLU ``max(x, margin)``.

    The teacher feature is recorded before its ReLU (at a BN output); the
    transform keeps positive responses and lifts negative ones to the
    per-channel margin. The margin comes from the BN that produced the
    feature: 1.x's ``OverhaulFeatureDistillation`` calls
    ``distiller.init_ofd_connectors(teacher)``, which finds the recorded BN
    of every ``OFDLoss`` teacher mapping and calls :meth:`init_margin` with
    ``ofd_margin(bn.weight, bn.bias)``; :meth:`init_margin_from_bn` does
    both steps.

    Args:
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self, init_cfg: Optional[Dict] = None) -> None:
        super().__init__(init_cfg)
        # Not persistent: 1.x checkpoints have no margin; it is recomputed.
        self.register_buffer('margin', None, persistent=False)

    def init_margin(self, margin: torch.Tensor) -> None:
        """Set the margin.

        Args:
            margin (Tensor): Shape ``(1, C, 1, 1)`` or ``(C, )``.
        """
        margin = torch.as_tensor(margin).detach()
        if margin.dim() == 1:
            margin = margin.view(1, -1, 1, 1)
        if margin.dim() != 4 or margin.shape[0] != 1 or \
                margin.shape[2:] != (1, 1):
            raise ValueError('OFDTeacherConnector.init_margin: margin must '
                             'have shape (C, ) or (1, C, 1, 1), got '
                             f'{tuple(margin.shape)}')
        self.margin = margin

    def init_margin_from_bn(self, bn: nn.Module) -> None:
        """Set the margin from the BN layer that produces the feature.

        Args:
            bn (nn.Module): An affine ``BatchNorm2d`` / ``SyncBatchNorm``.
        """
        if not isinstance(bn, nn.modules.batchnorm._BatchNorm) or \
                bn.weight is None:
            raise TypeError('OFDTeacherConnector: the margin needs an affine '
                            f'batch-norm layer, got {type(bn).__name__}')
        self.init_margin(ofd_margin(bn.weight, bn.bias))

    def forward_train(self, feature: torch.Tensor) -> torch.Tensor:
        """Apply the margin ReLU (no gradient to the teacher).

        Args:
            feature (Tensor): Pre-ReLU teacher feature ``(N, C, H, W)``.

        Returns:
            Tensor: ``max(feature, margin)``.
        """
        if self.margin is None:
            raise RuntimeError(
                'OFDTeacherConnector: the margin is not set; call '
                'init_margin(...) or init_margin_from_bn(bn) first (the '
                'OverhaulFeatureDistillation algorithm does it)')
        if feature.dim() != 4 or feature.shape[1] != self.margin.shape[1]:
            raise ValueError(
                f'OFDTeacherConnector: feature of shape '
                f'{tuple(feature.shape)} does not match the margin of shape '
                f'{tuple(self.margin.shape)}')
        margin = self.margin.to(feature.device, feature.dtype)
        return torch.max(feature.detach(), margin)
