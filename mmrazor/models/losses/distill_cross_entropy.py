"""Cross-entropy with the teacher's hard labels (DeiT's hard distillation).
"""
import torch
import torch.nn.functional as F
from torch import nn

from mmrazor.registry import MODELS


@MODELS.register_module()
class DistillCrossEntropyLoss(nn.Module):
    """Cross-entropy of the student's logits against the teacher's
    predicted classes (the hard-label distillation of DeiT, Touvron et al.,
    ICML 2021):

    .. math::
        L = \\frac{w}{N} \\sum_n -\\log \\mathrm{softmax}(s_n)_{y_n},
        \\qquad y_n = \\arg\\max_c t_{n,c}

    In MMRazor 1.x configs this is the ``CrossEntropyLoss`` of a
    ``ConfigurableDistiller``'s ``distill_losses`` (forward arguments
    ``preds_S``, ``preds_T``); the distiller builds this class for that
    name, while heads keep mmpretrain's ``CrossEntropyLoss``.

    Args:
        loss_weight (float): Weight :math:`w`. Defaults to 1.0.
    """

    def __init__(self, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.loss_weight = float(loss_weight)

    def forward(self, preds_S: torch.Tensor,
                preds_T: torch.Tensor) -> torch.Tensor:
        """Compute the loss.

        Args:
            preds_S (Tensor): Student logits ``(N, C)``.
            preds_T (Tensor): Teacher logits ``(N, C)`` (detached).

        Returns:
            Tensor: The scalar loss.
        """
        if preds_S.dim() != 2 or preds_S.shape != preds_T.shape:
            raise ValueError(
                'DistillCrossEntropyLoss: preds_S and preds_T must be logits '
                'of one shape (N, C); got '
                f'{tuple(preds_S.shape)} and {tuple(preds_T.shape)}')
        labels = preds_T.detach().argmax(dim=1)
        return self.loss_weight * F.cross_entropy(preds_S, labels)
