"""Soft-label cross entropy for knowledge distillation."""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from mmrazor.registry import MODELS

_REDUCTIONS = ('none', 'mean', 'sum')


def check_soft_ce_reduction(reduction: Optional[str]) -> str:
    """Validate a reduction of :class:`KDSoftCELoss` (None means 'none').

    Args:
        reduction (str, optional): The requested reduction.

    Returns:
        str: ``'none'``, ``'mean'`` or ``'sum'``.
    """
    reduction = 'none' if reduction is None else reduction
    if reduction not in _REDUCTIONS:
        raise ValueError(f'KDSoftCELoss: reduction={reduction!r} is not '
                         f'supported; use one of {_REDUCTIONS}')
    return reduction


@MODELS.register_module()
class KDSoftCELoss(nn.Module):
    """Cross entropy between the teacher's and the student's softened
    class distributions (Hinton et al., "Distilling the Knowledge in a
    Neural Network", 2015, https://arxiv.org/abs/1503.02531):

    .. math::
        \\ell_n = -\\sum_c \\mathrm{softmax}(t_n/\\tau)_c
                  \\log \\mathrm{softmax}(s_n/\\tau)_c, \\qquad
        L = w \\, \\tau^2 \\, \\mathrm{reduce}_n(w_n \\ell_n)

    (:math:`\\tau^2` only with ``mult_tem_square``; :math:`w_n` the
    optional per-sample ``weight``). It differs from the KL divergence by
    the teacher's entropy, a constant for the student.

    Args:
        tau (float): Temperature :math:`\\tau` (> 0). Defaults to 1.0.
        reduction (str): ``'mean'`` (over the batch, or the sum divided by
            ``avg_factor`` when one is given), ``'sum'`` or ``'none'``
            (None also means ``'none'``). Defaults to ``'mean'``.
        mult_tem_square (bool): Multiply by :math:`\\tau^2`. Defaults to
            True.
        loss_weight (float): Weight :math:`w` of the loss. Defaults to 1.0.
        teacher_detach (bool): Stop gradients through the teacher logits.
            Defaults to True.
    """

    def __init__(self,
                 tau: float = 1.0,
                 reduction: str = 'mean',
                 mult_tem_square: bool = True,
                 loss_weight: float = 1.0,
                 teacher_detach: bool = True) -> None:
        super().__init__()
        if tau <= 0:
            raise ValueError(f'KDSoftCELoss: tau must be > 0, got {tau}')
        self.tau = float(tau)
        self.reduction = check_soft_ce_reduction(reduction)
        self.mult_tem_square = mult_tem_square
        self.loss_weight = float(loss_weight)
        self.teacher_detach = teacher_detach

    def forward(self,
                preds_S: torch.Tensor,
                preds_T: torch.Tensor,
                weight: Optional[torch.Tensor] = None,
                avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None) -> torch.Tensor:
        """Compute the weighted loss.

        Args:
            preds_S (Tensor): Student logits, shape ``(N, C)``.
            preds_T (Tensor): Teacher logits, shape ``(N, C)``.
            weight (Tensor, optional): Per-sample weights, shape ``(N, )``.
            avg_factor (float, optional): Divisor of the summed loss for
                ``'mean'`` (instead of ``N``); not allowed with ``'sum'``.
            reduction_override (str, optional): Reduction for this call.

        Returns:
            Tensor: The loss (shape ``(N, )`` for ``'none'``).
        """
        if preds_S.shape != preds_T.shape or preds_S.dim() != 2:
            raise ValueError(
                'KDSoftCELoss needs (N, C) logits of the same shape; got '
                f'preds_S {tuple(preds_S.shape)} and preds_T '
                f'{tuple(preds_T.shape)}')
        reduction = (check_soft_ce_reduction(reduction_override)
                     if reduction_override else self.reduction)
        if self.teacher_detach:
            preds_T = preds_T.detach()
        soft_label = F.softmax(preds_T / self.tau, dim=1)
        per_sample = -(soft_label *
                       F.log_softmax(preds_S / self.tau, dim=1)).sum(dim=1)
        if weight is not None:
            if weight.numel() != per_sample.numel():
                raise ValueError(
                    'KDSoftCELoss: weight must hold one value per sample '
                    f'({per_sample.numel()}), got shape '
                    f'{tuple(weight.shape)}')
            per_sample = per_sample * weight.reshape(-1).to(per_sample)
        loss = self.reduce(per_sample, reduction, avg_factor)
        if self.mult_tem_square:
            loss = loss * self.tau**2
        return self.loss_weight * loss

    @staticmethod
    def reduce(per_sample: torch.Tensor, reduction: str,
               avg_factor: Optional[float]) -> torch.Tensor:
        """Reduce the per-sample losses.

        Args:
            per_sample (Tensor): Shape ``(N, )``.
            reduction (str): ``'none'``, ``'mean'`` or ``'sum'``.
            avg_factor (float, optional): Divisor for ``'mean'``.

        Returns:
            Tensor: The reduced loss.
        """
        if avg_factor is not None and reduction == 'sum':
            raise ValueError('KDSoftCELoss: avg_factor can not be used with '
                             "reduction='sum'")
        if reduction == 'none':
            return per_sample
        if reduction == 'sum':
            return per_sample.sum()
        if avg_factor is not None:
            return per_sample.sum() / avg_factor
        return per_sample.mean()
