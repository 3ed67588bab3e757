"""Activation-boundary distillation (Heo et al., AAAI 2019)."""
from typing import Optional

import torch
import torch.nn.functional as F

from mmrazor.registry import MODELS
from .base import BaseDistillLoss, check_same_shape


@MODELS.register_module()
class ABLoss(BaseDistillLoss):
    """Activation boundary loss.

    From "Knowledge Transfer via Distillation of Activation Boundaries Formed
    by Hidden Neurons" (Heo et al., AAAI 2019,
    https://arxiv.org/abs/1811.03233). The student's pre-activation response
    :math:`s` is pushed past a margin :math:`\\mu` on the side of zero on
    which the teacher's pre-activation response :math:`t` lies:

    .. math::
        L = \\frac{3}{1000 N} \\sum_i \\begin{cases}
            \\mathrm{ReLU}(\\mu - s_i)^2 & t_i > 0 \\\\
            \\mathrm{ReLU}(\\mu + s_i)^2 & t_i \\le 0
        \\end{cases}

    (the paper's squared-hinge approximation of the activation transfer
    loss; the :math:`\\frac{3}{1000 N}` scale, summing over the batch and
    dividing by its size :math:`N`, is the one of 1.x and of the authors'
    code, for which the 1.x configs' loss weights were chosen). The student
    map is usually a connector's projection onto the teacher's channels.
    In 1.x the forward arguments are ``s_feature`` / ``t_feature``.

    Args:
        loss_weight (float): Weight of the loss. Defaults to 1.0.
        margin (float): The margin :math:`\\mu` (>= 0). Defaults to 1.0.
        teacher_detach (bool): Stop gradients through the teacher map.
            Defaults to True.
    """

    #: Scale of the summed hinge terms (per sample), as in 1.x.
    SCALE = 3 / 1000

    def __init__(self,
                 loss_weight: float = 1.0,
                 margin: float = 1.0,
                 teacher_detach: bool = True) -> None:
        super().__init__(loss_weight, teacher_detach)
        if margin < 0:
            raise ValueError(f'ABLoss: margin must be >= 0, got {margin}')
        self.margin = float(margin)

    def loss(self,
             student: torch.Tensor,
             teacher: torch.Tensor,
             gt_labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Compute the unweighted loss.

        Args:
            student (Tensor): Student pre-activation map, shape ``(N, ...)``.
            teacher (Tensor): Teacher pre-activation map, same shape.
            gt_labels (Tensor, optional): Unused.

        Returns:
            Tensor: The scalar loss.
        """
        check_same_shape(student, teacher, 'ABLoss')
        active = teacher > 0
        hinge = torch.where(active, F.relu(self.margin - student),
                            F.relu(self.margin + student))
        return self.SCALE * hinge.pow(2).sum() / student.shape[0]
