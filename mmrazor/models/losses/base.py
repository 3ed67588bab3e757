"""Common base of the distillation losses."""
from typing import Optional

import torch
from torch import nn

_REDUCTIONS = ('none', 'mean', 'sum', 'batchmean')


def check_reduction(reduction: str, allowed=_REDUCTIONS) -> str:
    """Validate a ``reduction`` argument.

    Args:
        reduction (str): The requested reduction.
        allowed (tuple[str]): The reductions the loss supports.

    Returns:
        str: ``reduction`` unchanged.

    Raises:
        ValueError: ``reduction`` is not one of ``allowed``.
    """
    if reduction not in allowed:
        raise ValueError(f'reduction={reduction!r} is not supported; use one '
                         f'of {", ".join(repr(r) for r in allowed)}')
    return reduction


def reduce_per_sample(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    """Reduce a loss given per sample (shape ``(N, ...)``).

    Args:
        loss (Tensor): Element-wise loss whose first dimension is the batch.
        reduction (str): ``'none'`` (unchanged), ``'sum'``, ``'mean'`` (over
            all elements) or ``'batchmean'`` (sum divided by the batch size).

    Returns:
        Tensor: The reduced loss.
    """
    if reduction == 'none':
        return loss
    if reduction == 'sum':
        return loss.sum()
    if reduction == 'mean':
        return loss.mean()
    return loss.sum() / loss.shape[0]


def check_same_shape(student: torch.Tensor, teacher: torch.Tensor,
                     loss_name: str) -> None:
    """Raise a clear error when the student and teacher shapes differ.

    Args:
        student (Tensor): Student output.
        teacher (Tensor): Teacher output.
        loss_name (str): Name of the loss, for the message.
    """
    if student.shape != teacher.shape:
        raise ValueError(
            f'{loss_name}: the student output has shape '
            f'{tuple(student.shape)} but the teacher output has shape '
            f'{tuple(teacher.shape)}; add an `align_module` to the '
            'distiller component to map one onto the other')


class BaseDistillLoss(nn.Module):
    """Base class of mmrazor's distillation losses.

    A distillation loss compares a student output with the teacher output of
    the same kind. Subclasses implement :meth:`loss`; the teacher output is
    detached first (unless ``teacher_detach=False``) and the result is
    multiplied by ``loss_weight``.

    Args:
        loss_weight (float): Weight of the loss. Defaults to 1.0.
        teacher_detach (bool): Stop gradients through the teacher output, so
            that a trainable teacher is not pulled towards the student.
            Defaults to True.
    """

    def __init__(self,
                 loss_weight: float = 1.0,
                 teacher_detach: bool = True) -> None:
        super().__init__()
        self.loss_weight = float(loss_weight)
        self.teacher_detach = teacher_detach

    def forward(self,
                student: torch.Tensor,
                teacher: torch.Tensor,
                gt_labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Compute the weighted loss.

        Args:
            student (Tensor): Student output.
            teacher (Tensor): Teacher output.
            gt_labels (Tensor, optional): Ground-truth class indices of shape
                ``(N, )``; only used by losses that need them.

        Returns:
            Tensor: The loss.
        """
        if self.teacher_detach:
            teacher = teacher.detach()
        return self.loss_weight * self.loss(student, teacher, gt_labels)

    def loss(self, student: torch.Tensor, teacher: torch.Tensor,
             gt_labels: Optional[torch.Tensor]) -> torch.Tensor:
        """The unweighted loss. Implemented by subclasses."""
        raise NotImplementedError

    @property
    def needs_gt_labels(self) -> bool:
        """Whether :meth:`forward` needs ``gt_labels``."""
        return False
