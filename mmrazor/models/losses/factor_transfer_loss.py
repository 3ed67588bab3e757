"""Factor transfer (Kim et al., NeurIPS 2018)."""
from typing import Optional

import torch
import torch.nn.functional as F

from mmrazor.registry import MODELS
from .base import BaseDistillLoss


@MODELS.register_module()
class FTLoss(BaseDistillLoss):
    """Factor transfer loss.

    From "Paraphrasing Complex Network: Network Compression via Factor
    Transfer" (Kim et al., NeurIPS 2018, https://arxiv.org/abs/1802.04977).
    The student's factor :math:`F_S` (the translator's output) is matched to
    the teacher's :math:`F_T` (the paraphraser's) after L2-normalising each
    sample's flattened factor, with the paper's :math:`p = 1`:

    .. math::
        L = \\frac{1}{N D} \\sum_{n=1}^{N} \\left\\|
            \\frac{F_{S,n}}{\\|F_{S,n}\\|_2} - \\frac{F_{T,n}}{\\|F_{T,n}\\|_2}
            \\right\\|_1

    (the mean absolute difference over the :math:`N \\times D` elements, as
    1.x computes it). In 1.x the forward arguments are ``s_feature`` /
    ``t_feature``.

    Args:
        loss_weight (float): Weight of the loss. Defaults to 1.0.
        teacher_detach (bool): Stop gradients through the teacher factor
            (the paraphraser is trained beforehand and kept fixed).
            Defaults to True.
    """

    def __init__(self,
                 loss_weight: float = 1.0,
                 teacher_detach: bool = True) -> None:
        super().__init__(loss_weight, teacher_detach)

    @staticmethod
    def factor(feat: torch.Tensor) -> torch.Tensor:
        """Each sample's flattened, L2-normalised factor.

        Args:
            feat (Tensor): A factor, shape ``(N, ...)``.

        Returns:
            Tensor: Shape ``(N, D)``, unit L2 norm per row.
        """
        return F.normalize(feat.reshape(feat.shape[0], -1), p=2, dim=1)

    def loss(self,
             student: torch.Tensor,
             teacher: torch.Tensor,
             gt_labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Compute the unweighted loss.

        Args:
            student (Tensor): Student factor, shape ``(N, ...)``.
            teacher (Tensor): Teacher factor with the same batch size and
                number of elements per sample.
            gt_labels (Tensor, optional): Unused.

        Returns:
            Tensor: The scalar loss.
        """
        if student.dim() < 1 or student.shape[0] != teacher.shape[0] or \
                student.numel() != teacher.numel():
            raise ValueError(
                'FTLoss needs factors with the same batch size and number '
                f'of elements; got student {tuple(student.shape)} and '
                f'teacher {tuple(teacher.shape)}')
        return (self.factor(student) - self.factor(teacher)).abs().mean()
