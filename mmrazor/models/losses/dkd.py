"""Decoupled knowledge distillation (Zhao et al., CVPR 2022)."""
from typing import Optional

import torch
import torch.nn.functional as F

from mmrazor.registry import MODELS
from .base import BaseDistillLoss, check_same_shape


@MODELS.register_module()
class DKDLoss(BaseDistillLoss):
    """Decoupled knowledge distillation (DKD).

    From "Decoupled Knowledge Distillation" (Zhao et al., CVPR 2022,
    https://arxiv.org/abs/2203.08679). The classical KD loss is split into a
    target-class part (TCKD: binary target / non-target distributions) and
    a non-target-class part (NCKD: distribution among the non-target
    classes), which are weighted independently:

    .. math::
        L = \\tau^2 \\left(\\alpha \\, KL(b^T \\| b^S)
            + \\beta \\, KL(\\hat p^T \\| \\hat p^S)\\right)

    with :math:`b = [p_t, 1 - p_t]`, :math:`p = \\mathrm{softmax}(z/\\tau)`,
    :math:`t` the ground-truth class and :math:`\\hat p` the softmax over
    the non-target logits only; KL divergences are averaged over the batch.

    Args:
        tau (float): Temperature. Defaults to 1.0.
        alpha (float): Weight of TCKD. Defaults to 1.0.
        beta (float): Weight of NCKD. Defaults to 1.0.
        loss_weight (float): Weight of the loss. Defaults to 1.0.
        teacher_detach (bool): Stop gradients through the teacher logits.
            Defaults to True.
        reduction (str): How each KL divergence is reduced, as
            ``F.kl_div`` does it (the 1.x argument): ``'batchmean'`` (sum
            over the batch divided by its size, the paper's), ``'mean'``
            (divided by the number of terms: ``2N`` for TCKD, ``N*C`` for
            NCKD) or ``'sum'``. Defaults to ``'batchmean'``.
    """

    REDUCTIONS = ('batchmean', 'mean', 'sum')

    def __init__(self,
                 tau: float = 1.0,
                 alpha: float = 1.0,
                 beta: float = 1.0,
                 loss_weight: float = 1.0,
                 teacher_detach: bool = True,
                 reduction: str = 'batchmean') -> None:
        super().__init__(loss_weight, teacher_detach)
        if tau <= 0:
            raise ValueError(f'DKDLoss: tau must be > 0, got {tau}')
        if reduction not in self.REDUCTIONS:
            raise ValueError(f'DKDLoss: reduction must be one of '
                             f'{self.REDUCTIONS}, got {reduction!r}')
        self.reduction = reduction
        self.tau = float(tau)
        self.alpha = float(alpha)
        self.beta = float(beta)

    @property
    def needs_gt_labels(self) -> bool:
        """DKD splits the logits at the ground-truth class."""
        return True

    def loss(self, student: torch.Tensor, teacher: torch.Tensor,
             gt_labels: Optional[torch.Tensor]) -> torch.Tensor:
        """Compute the unweighted loss.

        Args:
            student (Tensor): Student logits, shape ``(N, C)``.
            teacher (Tensor): Teacher logits, shape ``(N, C)``.
            gt_labels (Tensor): Class indices, shape ``(N, )``.

        Returns:
            Tensor: The scalar loss.
        """
        check_same_shape(student, teacher, 'DKDLoss')
        if gt_labels is None:
            raise ValueError('DKDLoss needs the ground-truth labels '
                             '(gt_labels)')
        n, c = student.shape
        target = F.one_hot(gt_labels.view(-1).long(), c).bool()
        s = student / self.tau
        t = teacher / self.tau
        tckd = self._binary_kl(s, t, target) / self._terms(n, 2)
        # Softmax over the non-target classes: mask the target logit out.
        s_nt = s.masked_fill(target, float('-inf'))
        t_nt = t.masked_fill(target, float('-inf'))
        log_q_s = F.log_softmax(s_nt, dim=1)
        log_q_t = F.log_softmax(t_nt, dim=1)
        nckd = (log_q_t.exp() * (log_q_t - log_q_s)).masked_fill(
            target, 0).sum() / self._terms(n, c)
        return self.tau**2 * (self.alpha * tckd + self.beta * nckd)

    def _terms(self, n: int, per_sample: int) -> int:
        """What a summed KL divergence over ``n`` samples of
        ``per_sample`` terms is divided by under :attr:`reduction`."""
        return {'batchmean': n, 'mean': n * per_sample, 'sum': 1}[
            self.reduction]

    @staticmethod
    def _binary_kl(s: torch.Tensor, t: torch.Tensor,
                   target: torch.Tensor) -> torch.Tensor:
        """Summed KL between the teacher's and student's binary
        (target, non-target) distributions."""
        log_p_s = F.log_softmax(s, dim=1)
        log_p_t = F.log_softmax(t, dim=1)
        # log p_t and log(1 - p_t), computed stably with logsumexp.
        log_b_s = torch.stack([
            log_p_s.masked_fill(~target, float('-inf')).logsumexp(1),
            log_p_s.masked_fill(target, float('-inf')).logsumexp(1)
        ], 1)
        log_b_t = torch.stack([
            log_p_t.masked_fill(~target, float('-inf')).logsumexp(1),
            log_p_t.masked_fill(target, float('-inf')).logsumexp(1)
        ], 1)
        return (log_b_t.exp() * (log_b_t - log_b_s)).sum()
