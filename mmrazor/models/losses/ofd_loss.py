"""Overhaul of feature distillation (Heo et al., ICCV 2019)."""
from typing import Optional

import torch

from mmrazor.registry import MODELS
from .base import BaseDistillLoss, check_same_shape


@MODELS.register_module()
class OFDLoss(BaseDistillLoss):
    """Partial L2 loss of "A Comprehensive Overhaul of Feature Distillation".

    From Heo et al., ICCV 2019 (https://arxiv.org/abs/1904.01866). The
    teacher's pre-ReLU map is first clamped from below by a per-channel
    margin (the ``OFDTeacherConnector``); where the teacher is negative and
    the student is already below it, the ReLU that follows makes both zero,
    so that position is skipped:

    .. math::
        L = \\frac{1}{N \\cdot m} \\sum_i (s_i - t_i)^2 \\,
            \\mathbb{1}[s_i > t_i \\ \\lor\\ t_i > 0]

    with :math:`m` = ``mul_factor`` (1.x's scale) and :math:`N` the batch
    size. In 1.x the forward arguments are ``s_feature`` / ``t_feature``.

    Args:
        loss_weight (float): Weight of the loss. Defaults to 1.0.
        mul_factor (float): Divisor of the summed loss (> 0). Defaults to
            1000.
        teacher_detach (bool): Stop gradients through the teacher map.
            Defaults to True.
    """

    def __init__(self,
                 loss_weight: float = 1.0,
                 mul_factor: float = 1000.,
                 teacher_detach: bool = True) -> None:
        super().__init__(loss_weight, teacher_detach)
        if mul_factor <= 0:
            raise ValueError(
                f'OFDLoss: mul_factor must be > 0, got {mul_factor}')
        self.mul_factor = float(mul_factor)

    def loss(self,
             student: torch.Tensor,
             teacher: torch.Tensor,
             gt_labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Compute the unweighted loss.

        Args:
            student (Tensor): Student pre-ReLU map, shape ``(N, ...)``.
            teacher (Tensor): Teacher pre-ReLU map (margin-clamped), same
                shape.
            gt_labels (Tensor, optional): Unused.

        Returns:
            Tensor: The scalar loss.
        """
        check_same_shape(student, teacher, 'OFDLoss')
        counted = (student > teacher) | (teacher > 0)
        squared = (student - teacher).pow(2) * counted
        return squared.sum() / (student.shape[0] * self.mul_factor)
