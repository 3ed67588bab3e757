"""Knowledge distillation loss of Hinton et al. (2015)."""
from typing import Optional

import torch
import torch.nn.functional as F

from mmrazor.registry import MODELS
from .base import BaseDistillLoss, check_reduction, check_same_shape


@MODELS.register_module()
class KLDivergence(BaseDistillLoss):
    """KL divergence between temperature-softened class distributions.

    From "Distilling the Knowledge in a Neural Network" (Hinton et al.,
    2015, https://arxiv.org/abs/1503.02531):

    .. math::
        L = \\tau^2 \\cdot KL(p^T_\\tau \\| p^S_\\tau), \\quad
        p_\\tau = \\mathrm{softmax}(z / \\tau)

    The :math:`\\tau^2` factor keeps the gradient magnitude independent of
    the temperature, as the paper prescribes.

    Args:
        tau (float): Temperature. Defaults to 1.0.
        reduction (str): ``'batchmean'`` (sum over classes, mean over the
            batch: the mathematical KL divergence), ``'sum'``, ``'mean'``
            (mean over all elements) or ``'none'`` (per element).
            Defaults to ``'batchmean'``.
        loss_weight (float): Weight of the loss. Defaults to 1.0.
        teacher_detach (bool): Stop gradients through the teacher logits.
            Defaults to True.
    """

    def __init__(self,
                 tau: float = 1.0,
                 reduction: str = 'batchmean',
                 loss_weight: float = 1.0,
                 teacher_detach: bool = True) -> None:
        super().__init__(loss_weight, teacher_detach)
        if tau <= 0:
            raise ValueError(f'KLDivergence: tau must be > 0, got {tau}')
        self.tau = float(tau)
        self.reduction = check_reduction(reduction)

    def loss(self,
             student: torch.Tensor,
             teacher: torch.Tensor,
             gt_labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Compute the unweighted loss.

        Args:
            student (Tensor): Student logits, shape ``(N, C)``.
            teacher (Tensor): Teacher logits, shape ``(N, C)``.
            gt_labels (Tensor, optional): Unused.

        Returns:
            Tensor: The loss (a scalar unless ``reduction='none'``).
        """
        check_same_shape(student, teacher, 'KLDivergence')
        log_p_s = F.log_softmax(student / self.tau, dim=1)
        log_p_t = F.log_softmax(teacher / self.tau, dim=1)
        kl = F.kl_div(
            log_p_s, log_p_t, reduction=self.reduction, log_target=True)
        return self.tau**2 * kl
