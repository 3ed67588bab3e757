"""Element-wise L1 distance between student and teacher outputs."""
from typing import Optional

import torch

from mmrazor.registry import MODELS
from .base import BaseDistillLoss, check_reduction, check_same_shape


def legacy_reduction(size_average: Optional[bool],
                     reduce: Optional[bool]) -> str:
    """Translate torch's deprecated ``size_average`` / ``reduce`` flags.

    Args:
        size_average (bool, optional): Average (True) or sum (False) the
            element losses; None counts as True.
        reduce (bool, optional): Reduce at all; False keeps the element
            losses and ignores ``size_average``; None counts as True.

    Returns:
        str: ``'none'``, ``'sum'`` or ``'mean'``.
    """
    if reduce is False:
        return 'none'
    return 'sum' if size_average is False else 'mean'


@MODELS.register_module()
class L1Loss(BaseDistillLoss):
    """L1 distance between features or logits.

    .. math:: L = \\mathrm{reduce}_{i}\\, |s_i - t_i|

    Used by DFAD (Fang et al., "Data-Free Adversarial Distillation", 2019,
    https://arxiv.org/abs/1912.11006) on the logits: the student minimises
    it, the generator maximises it (``loss_weight=-1``). In 1.x the forward
    arguments are ``s_feature`` / ``t_feature``.

    Args:
        loss_weight (float): Weight of the loss. Defaults to 1.0.
        size_average (bool, optional): torch's deprecated flag: False sums
            instead of averaging. Given with ``reduce``, it overrides
            ``reduction`` (as in ``F.l1_loss``). Defaults to None.
        reduce (bool, optional): torch's deprecated flag: False returns the
            element-wise loss. Overrides ``reduction`` when given.
            Defaults to None.
        reduction (str): ``'mean'`` (over all elements), ``'sum'``,
            ``'batchmean'`` (sum divided by the batch size) or ``'none'``.
            Defaults to ``'mean'``.
        teacher_detach (bool): Stop gradients through the teacher output.
            Defaults to False, as 1.x never detached it: DFAD's generator
            step (``loss_weight=-1``) needs the gradient that flows back
            through the teacher into the generated images.
    """

    def __init__(self,
                 loss_weight: float = 1.0,
                 size_average: Optional[bool] = None,
                 reduce: Optional[bool] = None,
                 reduction: str = 'mean',
                 teacher_detach: bool = False) -> None:
        super().__init__(loss_weight, teacher_detach)
        check_reduction(reduction)
        if size_average is not None or reduce is not None:
            reduction = legacy_reduction(size_average, reduce)
        self.size_average = size_average
        self.reduce = reduce
        self.reduction = reduction

    def loss(self,
             student: torch.Tensor,
             teacher: torch.Tensor,
             gt_labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Compute the unweighted loss.

        Args:
            student (Tensor): Student output, shape ``(N, ...)``.
            teacher (Tensor): Teacher output, same shape.
            gt_labels (Tensor, optional): Unused.

        Returns:
            Tensor: The reduced loss (element-wise for ``'none'``).
        """
        check_same_shape(student, teacher, 'L1Loss')
        diff = (student - teacher).abs()
        if self.reduction == 'none':
            return diff
        if self.reduction == 'sum':
            return diff.sum()
        if self.reduction == 'batchmean':
            return diff.sum() / diff.shape[0]
        return diff.mean()
