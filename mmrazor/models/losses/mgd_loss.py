"""Masked generative distillation (Yang et al., ECCV 2022)."""
from typing import Optional

import torch

from mmrazor.registry import MODELS
from .base import BaseDistillLoss, check_same_shape


@MODELS.register_module()
class MGDLoss(BaseDistillLoss):
    """MGD's distillation loss.

    From "Masked Generative Distillation" (Yang et al., ECCV 2022,
    https://arxiv.org/abs/2205.01529). The student feature is randomly
    masked and a small generator rebuilds the teacher feature from it (the
    ``MGDConnector``); this loss compares the generated feature
    :math:`\\mathcal{G}(s)` with the teacher feature:

    .. math::
        L = \\frac{\\alpha_{mgd}}{N} \\sum_{n,c,h,w}
            (\\mathcal{G}(s)_{n,c,h,w} - t_{n,c,h,w})^2

    In 1.x the forward arguments are ``preds_S`` (the connector's output)
    and ``preds_T``.

    Args:
        alpha_mgd (float): The paper's :math:`\\alpha`, the weight of the
            summed squared error. Defaults to 2e-5.
        loss_weight (float): Extra weight (1.x had none). Defaults to 1.0.
        teacher_detach (bool): Stop gradients through the teacher feature.
            Defaults to True.
    """

    def __init__(self,
                 alpha_mgd: float = 0.00002,
                 loss_weight: float = 1.0,
                 teacher_detach: bool = True) -> None:
        super().__init__(loss_weight, teacher_detach)
        self.alpha_mgd = float(alpha_mgd)

    def loss(self,
             student: torch.Tensor,
             teacher: torch.Tensor,
             gt_labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Compute the unweighted loss.

        Args:
            student (Tensor): Generated student feature, ``(N, C, H, W)``.
            teacher (Tensor): Teacher feature, same shape.
            gt_labels (Tensor, optional): Unused.

        Returns:
            Tensor: The scalar loss.
        """
        check_same_shape(student, teacher, 'MGDLoss')
        return self.alpha_mgd * (student - teacher).pow(2).sum() / \
            student.shape[0]
