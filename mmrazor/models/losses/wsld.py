"""Weighted soft labels (Zhou et al., ICLR 2021)."""
from typing import Optional

import torch
import torch.nn.functional as F

from mmrazor.registry import MODELS
from .base import BaseDistillLoss, check_same_shape


@MODELS.register_module()
class WSLD(BaseDistillLoss):
    """Weighted soft label distillation.

    From "Rethinking Soft Labels for Knowledge Distillation: A Bias-Variance
    Tradeoff Perspective" (Zhou et al., ICLR 2021,
    https://arxiv.org/abs/2102.00650). The soft-label cross entropy of each
    sample is weighted by how much better the teacher fits its label than
    the student:

    .. math::
        w_i = 1 - \\exp\\left(-\\frac{L^S_{ce,i}}{L^T_{ce,i}}\\right),
        \\qquad
        L = \\tau^2 \\frac{1}{N} \\sum_i w_i \\cdot
            \\left(-\\sum_c p^T_{\\tau,ic} \\log p^S_{\\tau,ic}\\right)

    where :math:`L_{ce}` is the (temperature 1) cross entropy with the
    ground-truth label, computed without gradients, and
    :math:`p_\\tau = \\mathrm{softmax}(z/\\tau)`. The :math:`\\tau^2`
    factor is the usual KD gradient scaling, as in the authors' code.

    Args:
        tau (float): Temperature. Defaults to 1.0.
        loss_weight (float): Weight of the loss. Defaults to 1.0.
        num_classes (int): Number of classes; labels must lie in
            ``[0, num_classes)`` and logits must have this many columns.
            Defaults to 1000.
        teacher_detach (bool): Stop gradients through the teacher logits.
            Defaults to True.
    """

    def __init__(self,
                 tau: float = 1.0,
                 loss_weight: float = 1.0,
                 num_classes: int = 1000,
                 teacher_detach: bool = True) -> None:
        super().__init__(loss_weight, teacher_detach)
        if tau <= 0:
            raise ValueError(f'WSLD: tau must be > 0, got {tau}')
        self.tau = float(tau)
        self.num_classes = int(num_classes)

    @property
    def needs_gt_labels(self) -> bool:
        """WSLD weighs samples by their ground-truth cross entropy."""
        return True

    def loss(self, student: torch.Tensor, teacher: torch.Tensor,
             gt_labels: Optional[torch.Tensor]) -> torch.Tensor:
        """Compute the unweighted loss.

        Args:
            student (Tensor): Student logits, shape ``(N, num_classes)``.
            teacher (Tensor): Teacher logits, shape ``(N, num_classes)``.
            gt_labels (Tensor): Class indices, shape ``(N, )``.

        Returns:
            Tensor: The scalar loss.
        """
        check_same_shape(student, teacher, 'WSLD')
        if gt_labels is None:
            raise ValueError('WSLD needs the ground-truth labels (gt_labels)')
        if student.shape[1] != self.num_classes:
            raise ValueError(
                f'WSLD: num_classes={self.num_classes} but the logits have '
                f'{student.shape[1]} columns')
        soft_ce = -(F.softmax(teacher / self.tau, dim=1) *
                    F.log_softmax(student / self.tau, dim=1)).sum(dim=1)
        with torch.no_grad():
            labels = gt_labels.view(-1, 1).long()
            ce_s = -F.log_softmax(student.detach(), dim=1).gather(1, labels)
            ce_t = -F.log_softmax(teacher.detach(), dim=1).gather(1, labels)
            ratio = (ce_s / (ce_t + 1e-7)).clamp(min=0).squeeze(1)
            weight = 1 - torch.exp(-ratio)
        return self.tau**2 * (weight * soft_ce).mean()
