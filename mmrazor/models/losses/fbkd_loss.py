"""Feature-based KD for detectors (Zhang & Ma, ICLR 2021)."""
from typing import Sequence, Tuple

import torch
from torch import nn

from mmrazor.registry import MODELS

#: Names of the items of the ``FBKDStudentConnector`` output, in order.
STUDENT_ITEMS = ('s_spatial_mask', 's_channel_mask', 's_channel_pool_adapt',
                 's_spatial_pool_adapt', 's_relation_adapt', 's_feat_adapt')
#: Names of the items of the ``FBKDTeacherConnector`` output, in order.
TEACHER_ITEMS = ('t_spatial_mask', 't_channel_mask', 't_spatial_pool',
                 't_relation', 't_feat')


def unpack(items: Sequence[torch.Tensor], names: Tuple[str, ...],
           what: str) -> Tuple[torch.Tensor, ...]:
    """Check a connector's output tuple and return it as a tuple.

    Args:
        items (Sequence[Tensor]): The connector's output.
        names (tuple[str]): The expected items, in order.
        what (str): ``'s_input'`` or ``'t_input'``, for messages.

    Returns:
        tuple[Tensor]: The items.
    """
    if not isinstance(items, (tuple, list)) or len(items) != len(names):
        got = (f'{len(items)} items' if isinstance(items, (tuple, list))
               else type(items).__name__)
        raise ValueError(
            f'FBKDLoss: {what} must be a tuple of {len(names)} tensors '
            f'({", ".join(names)}), got {got}')
    return tuple(items)


def check_pair(student: torch.Tensor, teacher: torch.Tensor,
               s_name: str, t_name: str) -> None:
    """Raise a clear error when two compared items differ in shape.

    Args:
        student (Tensor): The student item.
        teacher (Tensor): The teacher item.
        s_name (str): Its name.
        t_name (str): The teacher item's name.
    """
    if student.shape != teacher.shape:
        raise ValueError(
            f'FBKDLoss: {s_name} has shape {tuple(student.shape)} but '
            f'{t_name} has shape {tuple(teacher.shape)}')


@MODELS.register_module()
class FBKDLoss(nn.Module):
    """Loss of "Improve Object Detection with Feature-based Knowledge
    Distillation: Towards Accurate and Efficient Detectors".

    From Zhang & Ma, ICLR 2021 (https://openreview.net/forum?id=uKhGRvM8QNH).
    The attention masks, pooled maps and non-local relations are computed by
    the ``FBKDStudentConnector`` / ``FBKDTeacherConnector`` (whose ``T``
    temperatures soften the masks); this loss combines them, as 1.x and the
    authors' code do:

    .. math::
        M &= \\mathrm{sg}\\left(\\tfrac{1}{2}(M^S_{sp} + M^T_{sp})\\right)
        \\\\
        L &= w_{l2} \\sqrt{\\textstyle\\sum M \\odot (F^T - F^S_{adapt})^2}
            + w_{ch} \\left\\| \\mathrm{mean}_{HW}(F^T)
                              - P^S_{ch,adapt} \\right\\|_2 \\\\
          &\\quad + w_{sp} \\left\\| P^T_{sp} - P^S_{sp,adapt} \\right\\|_2
            + w_{nl} \\left\\| R^T - R^S_{adapt} \\right\\|_2

    where every norm runs over the whole batch, :math:`\\mathrm{sg}` stops
    the gradient, and the result is multiplied by ``loss_weight``.

    Inputs (the connectors' outputs, by position):

    * ``s_input`` = ``(s_spatial_mask, s_channel_mask, s_channel_pool_adapt,
      s_spatial_pool_adapt, s_relation_adapt, s_feat_adapt)``:

      - ``s_spatial_mask`` ``(N, 1, H, W)``: spatial attention
        :math:`H W \\cdot \\mathrm{softmax}_{HW}(\\mathrm{mean}_C|F^S| / T)`;
      - ``s_channel_mask`` ``(N, C, 1, 1)``: channel attention
        :math:`C \\cdot \\mathrm{softmax}_C(\\mathrm{mean}_{HW}|F^S| / T)`
        (checked, but unused, as in the authors' code);
      - ``s_channel_pool_adapt`` ``(N, C)``: a linear layer applied to
        :math:`\\mathrm{mean}_{HW}(F^S)`;
      - ``s_spatial_pool_adapt`` ``(N, 1, H, W)``: a 3x3 conv applied to
        :math:`\\mathrm{mean}_C(F^S)`;
      - ``s_relation_adapt`` ``(N, C, H, W)``: a 1x1 conv applied to the
        student's non-local block output;
      - ``s_feat_adapt`` ``(N, C, H, W)``: a 1x1 conv applied to
        :math:`F^S`.

    * ``t_input`` = ``(t_spatial_mask, t_channel_mask, t_spatial_pool,
      t_relation, t_feat)``: the teacher's spatial and channel attention
      (as above), :math:`\\mathrm{mean}_C(F^T)` ``(N, 1, H, W)``, the
      teacher's non-local block output ``(N, C, H, W)`` and :math:`F^T`
      itself ``(N, C, H, W)``.

    The teacher items are not detached (only the mask :math:`M` is): the
    teacher connector's non-local block is trained by the relation term, as
    in 1.x; the teacher's own features come from its frozen forward.

    Args:
        mask_l2_weight (float): :math:`w_{l2}`. Defaults to 7e-5.
        channel_weight (float): :math:`w_{ch}`. Defaults to 4e-3.
        spatial_weight (float): :math:`w_{sp}`. Defaults to 4e-3.
        nonloacl_weight (float): :math:`w_{nl}` (1.x's spelling).
            Defaults to 7e-5.
        loss_weight (float): Weight of the whole loss. Defaults to 1.0.
    """

    def __init__(self,
                 mask_l2_weight: float = 7e-5,
                 channel_weight: float = 4e-3,
                 spatial_weight: float = 4e-3,
                 nonloacl_weight: float = 7e-5,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        self.mask_l2_weight = float(mask_l2_weight)
        self.channel_weight = float(channel_weight)
        self.spatial_weight = float(spatial_weight)
        self.nonloacl_weight = float(nonloacl_weight)
        self.loss_weight = float(loss_weight)

    def forward(self, s_input: Sequence[torch.Tensor],
                t_input: Sequence[torch.Tensor]) -> torch.Tensor:
        """Compute the weighted loss.

        Args:
            s_input (Sequence[Tensor]): The student connector's 6 outputs
                (see the class docstring).
            t_input (Sequence[Tensor]): The teacher connector's 5 outputs.

        Returns:
            Tensor: The scalar loss.
        """
        (s_spatial_mask, s_channel_mask, s_channel_pool_adapt,
         s_spatial_pool_adapt, s_relation_adapt,
         s_feat_adapt) = unpack(s_input, STUDENT_ITEMS, 's_input')
        (t_spatial_mask, t_channel_mask, t_spatial_pool, t_relation,
         t_feat) = unpack(t_input, TEACHER_ITEMS, 't_input')
        if t_feat.dim() != 4:
            raise ValueError('FBKDLoss: t_feat must be an (N, C, H, W) map, '
                             f'got shape {tuple(t_feat.shape)}')
        t_channel_pool = t_feat.mean(dim=(2, 3))
        for s_item, t_item, s_name, t_name in (
            (s_spatial_mask, t_spatial_mask, 's_spatial_mask',
             't_spatial_mask'),
            (s_channel_mask, t_channel_mask, 's_channel_mask',
             't_channel_mask'),
            (s_feat_adapt, t_feat, 's_feat_adapt', 't_feat'),
            (s_channel_pool_adapt, t_channel_pool, 's_channel_pool_adapt',
             'mean of t_feat over H, W'),
            (s_spatial_pool_adapt, t_spatial_pool, 's_spatial_pool_adapt',
             't_spatial_pool'),
            (s_relation_adapt, t_relation, 's_relation_adapt', 't_relation'),
        ):
            check_pair(s_item, t_item, s_name, t_name)

        spatial_mask = ((s_spatial_mask + t_spatial_mask) / 2).detach()
        # sqrt(sum(M * d^2)) as the norm of sqrt(M) * d (M > 0), whose
        # gradient stays finite when the difference vanishes.
        feat_loss = torch.linalg.vector_norm(
            (t_feat - s_feat_adapt) * spatial_mask.sqrt())
        channel_loss = torch.linalg.vector_norm(t_channel_pool -
                                                s_channel_pool_adapt)
        spatial_loss = torch.linalg.vector_norm(t_spatial_pool -
                                                s_spatial_pool_adapt)
        relation_loss = torch.linalg.vector_norm(t_relation -
                                                 s_relation_adapt)
        total = (self.mask_l2_weight * feat_loss +
                 self.channel_weight * channel_loss +
                 self.spatial_weight * spatial_loss +
                 self.nonloacl_weight * relation_loss)
        return self.loss_weight * total
