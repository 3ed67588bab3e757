"""PKD: distillation through the Pearson correlation (Cao et al., 2022)."""
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F

from mmrazor.registry import MODELS
from .base import BaseDistillLoss

Features = Union[torch.Tensor, Sequence[torch.Tensor]]


def as_levels(feats: Features, what: str) -> Tuple[torch.Tensor, ...]:
    """One tensor or a tuple / list of FPN levels, as a tuple.

    Args:
        feats (Tensor | Sequence[Tensor]): The feature map(s).
        what (str): ``'student'`` or ``'teacher'``, for messages.

    Returns:
        tuple[Tensor]: The levels.
    """
    if isinstance(feats, torch.Tensor):
        return (feats, )
    if isinstance(feats, (tuple, list)) and feats and all(
            isinstance(f, torch.Tensor) for f in feats):
        return tuple(feats)
    raise TypeError(f'PKDLoss: the {what} input must be a tensor or a '
                    f'non-empty tuple/list of tensors, got {type(feats)}')


@MODELS.register_module()
class PKDLoss(BaseDistillLoss):
    """PKD feature imitation.

    From "PKD: General Distillation Framework for Object Detectors via
    Pearson Correlation Coefficient" (Cao et al., NeurIPS 2022,
    https://arxiv.org/abs/2207.02039). Each channel of the student and the
    teacher map is standardised over the batch and the spatial positions
    (zero mean, unit standard deviation), then the maps are compared with
    half the mean squared error, which equals :math:`1 - r` for the Pearson
    correlation :math:`r` of the two maps:

    .. math::
        \\hat{x}_{n,c,h,w} = \\frac{x_{n,c,h,w} - \\mu_c}{\\sigma_c + 10^{-6}},
        \\qquad
        L = \\sum_{\\ell} \\frac{1}{2 N C H W}
            \\sum (\\hat{s}^{\\ell} - \\hat{t}^{\\ell})^2

    with :math:`\\mu_c, \\sigma_c` the mean and the (unbiased) standard
    deviation of channel :math:`c` over :math:`N \\times H \\times W`
    values, summed over the FPN levels :math:`\\ell` when tuples are given.
    When a level's spatial sizes differ, the student map (``resize_stu``)
    or else the teacher map is resized bilinearly to the other's size.
    In 1.x the forward arguments are ``preds_S`` / ``preds_T``.

    Args:
        loss_weight (float): Weight of the loss. Defaults to 1.0.
        resize_stu (bool): Resize the student map to the teacher's size
            (True) or the teacher's to the student's (False) when they
            differ. Defaults to True.
        teacher_detach (bool): Stop gradients through the teacher maps.
            Defaults to True.
    """

    EPS = 1e-6

    def __init__(self,
                 loss_weight: float = 1.0,
                 resize_stu: bool = True,
                 teacher_detach: bool = True) -> None:
        super().__init__(loss_weight, teacher_detach)
        self.resize_stu = resize_stu

    def standardize(self, feat: torch.Tensor) -> torch.Tensor:
        """Standardise each channel over the batch and the positions.

        Args:
            feat (Tensor): Feature map, shape ``(N, C, H, W)``.

        Returns:
            Tensor: Same shape, zero mean and unit std per channel.
        """
        per_channel = feat.transpose(0, 1).reshape(feat.shape[1], -1)
        mean = per_channel.mean(dim=1)
        std = per_channel.std(dim=1)
        shape = (1, -1) + (1, ) * (feat.dim() - 2)
        return (feat - mean.view(shape)) / (std.view(shape) + self.EPS)

    def match_sizes(self, student: torch.Tensor, teacher: torch.Tensor
                    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Resize one level so that both have the same spatial size.

        Args:
            student (Tensor): Student map, shape ``(N, C, Hs, Ws)``.
            teacher (Tensor): Teacher map, shape ``(N, C, Ht, Wt)``.

        Returns:
            tuple[Tensor, Tensor]: The student and teacher maps.
        """
        if student.dim() != 4 or teacher.dim() != 4 or \
                student.shape[:2] != teacher.shape[:2]:
            raise ValueError(
                'PKDLoss needs (N, C, H, W) maps with the same N and C; got '
                f'student {tuple(student.shape)} and teacher '
                f'{tuple(teacher.shape)}')
        if student.shape[2:] != teacher.shape[2:]:
            if self.resize_stu:
                student = F.interpolate(
                    student, teacher.shape[2:], mode='bilinear',
                    align_corners=False)
            else:
                teacher = F.interpolate(
                    teacher, student.shape[2:], mode='bilinear',
                    align_corners=False)
        return student, teacher

    def forward(self,
                student: Features,
                teacher: Features,
                gt_labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Compute the weighted loss over one map or a tuple of levels.

        Args:
            student (Tensor | Sequence[Tensor]): Student map(s), each
                ``(N, C, H, W)``.
            teacher (Tensor | Sequence[Tensor]): Teacher map(s), as many as
                the student's.
            gt_labels (Tensor, optional): Unused.

        Returns:
            Tensor: The scalar loss.
        """
        students = as_levels(student, 'student')
        teachers = as_levels(teacher, 'teacher')
        if len(students) != len(teachers):
            raise ValueError(
                f'PKDLoss: got {len(students)} student levels but '
                f'{len(teachers)} teacher levels')
        if self.teacher_detach:
            teachers = tuple(t.detach() for t in teachers)
        total = students[0].new_zeros(())
        for level_s, level_t in zip(students, teachers):
            level_s, level_t = self.match_sizes(level_s, level_t)
            diff = self.standardize(level_s) - self.standardize(level_t)
            total = total + diff.pow(2).mean() / 2
        return self.loss_weight * total
