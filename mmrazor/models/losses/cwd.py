"""Channel-wise distillation for dense prediction (Shu et al., ICCV 2021)."""
from typing import Optional

import torch
import torch.nn.functional as F

from mmrazor.registry import MODELS
from .base import BaseDistillLoss, check_same_shape


@MODELS.register_module()
class ChannelWiseDivergence(BaseDistillLoss):
    """Channel-wise knowledge distillation (CWD).

    From "Channel-wise Knowledge Distillation for Dense Prediction"
    (Shu et al., ICCV 2021, https://arxiv.org/abs/2011.13256). Each channel of
    a feature or logit map is turned into a distribution over its spatial
    locations, and the teacher's distribution is matched with KL divergence:

    .. math::
        \\phi(y_c)_i = \\frac{\\exp(y_{c,i}/\\tau)}
                             {\\sum_{j=1}^{W H} \\exp(y_{c,j}/\\tau)},
        \\qquad
        L = \\frac{\\tau^2}{N C} \\sum_{n=1}^{N} \\sum_{c=1}^{C}
            \\sum_{i=1}^{W H} \\phi(y^T_{n,c})_i
            \\log \\frac{\\phi(y^T_{n,c})_i}{\\phi(y^S_{n,c})_i}

    (the paper's :math:`\\frac{\\tau^2}{C}` normalisation, averaged over the
    batch).

    Args:
        tau (float): Temperature. Defaults to 1.0.
        loss_weight (float): Weight of the loss. Defaults to 1.0.
        teacher_detach (bool): Stop gradients through the teacher map.
            Defaults to True.
    """

    def __init__(self,
                 tau: float = 1.0,
                 loss_weight: float = 1.0,
                 teacher_detach: bool = True) -> None:
        super().__init__(loss_weight, teacher_detach)
        if tau <= 0:
            raise ValueError(
                f'ChannelWiseDivergence: tau must be > 0, got {tau}')
        self.tau = float(tau)

    def loss(self,
             student: torch.Tensor,
             teacher: torch.Tensor,
             gt_labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Compute the unweighted loss.

        Args:
            student (Tensor): Student map, shape ``(N, C, H, W)``.
            teacher (Tensor): Teacher map, shape ``(N, C, H, W)``.
            gt_labels (Tensor, optional): Unused.

        Returns:
            Tensor: The scalar loss.
        """
        check_same_shape(student, teacher, 'ChannelWiseDivergence')
        if student.dim() != 4:
            raise ValueError('ChannelWiseDivergence expects (N, C, H, W) '
                             f'maps, got shape {tuple(student.shape)}')
        n, c = student.shape[:2]
        s = student.reshape(n * c, -1) / self.tau
        t = teacher.reshape(n * c, -1) / self.tau
        log_p_t = F.log_softmax(t, dim=1)
        log_p_s = F.log_softmax(s, dim=1)
        kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum()
        return self.tau**2 * kl / (n * c)
