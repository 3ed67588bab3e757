"""Relational knowledge distillation (Park et al., CVPR 2019) and DIST
(Huang et al., NeurIPS 2022)."""
from typing import Optional

import torch
import torch.nn.functional as F

from mmrazor.registry import MODELS
from .base import BaseDistillLoss, check_same_shape


def _flatten(feat: torch.Tensor, with_l2_norm: bool) -> torch.Tensor:
    feat = feat.reshape(feat.shape[0], -1)
    return F.normalize(feat, p=2, dim=1) if with_l2_norm else feat


def _check_batch(student: torch.Tensor, teacher: torch.Tensor,
                 name: str) -> None:
    if student.shape[0] != teacher.shape[0] or student.shape[0] < 2:
        raise ValueError(
            f'{name} relates the samples of a batch: student and teacher '
            'need the same batch size of at least 2, got '
            f'{tuple(student.shape)} and {tuple(teacher.shape)}')


class _RelationalKD(BaseDistillLoss):
    """Relational KD: the Huber loss between a relation of the student's
    embeddings and the same relation of the teacher's (Park et al., CVPR
    2019). Subclasses define :meth:`relation`.

    Args:
        loss_weight (float): Weight of the loss.
        with_l2_norm (bool): L2-normalise the flattened embeddings first.
        teacher_detach (bool): Stop gradients through the teacher.
    """

    def __init__(self,
                 loss_weight: float,
                 with_l2_norm: bool = True,
                 teacher_detach: bool = True) -> None:
        super().__init__(loss_weight, teacher_detach)
        self.with_l2_norm = with_l2_norm

    @staticmethod
    def relation(feat: torch.Tensor) -> torch.Tensor:
        """The relation of a batch of embeddings ``(N, D)``."""
        raise NotImplementedError

    def loss(self,
             student: torch.Tensor,
             teacher: torch.Tensor,
             gt_labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Compute the unweighted loss.

        Args:
            student (Tensor): Student embeddings, shape ``(N, ...)``.
            teacher (Tensor): Teacher embeddings, shape ``(N, ...)``.
            gt_labels (Tensor, optional): Unused.

        Returns:
            Tensor: The scalar loss.
        """
        _check_batch(student, teacher, type(self).__name__)
        s = _flatten(student, self.with_l2_norm)
        t = _flatten(teacher, self.with_l2_norm)
        return F.smooth_l1_loss(
            self.relation(s), self.relation(t), reduction='mean')


@MODELS.register_module()
class DistanceWiseRKD(_RelationalKD):
    """Distance-wise relational knowledge distillation (RKD-D).

    From "Relational Knowledge Distillation" (Park et al., CVPR 2019,
    https://arxiv.org/abs/1904.05068). With the pairwise Euclidean distances
    normalised by their mean over distinct pairs,
    :math:`\\psi_D(t_i, t_j) = \\|t_i - t_j\\|_2 / \\mu`,

    .. math::
        L = \\frac{1}{N^2} \\sum_{i,j} l_\\delta\\left(
            \\psi_D(t_i, t_j), \\psi_D(s_i, s_j)\\right)

    with :math:`l_\\delta` the Huber (smooth L1, :math:`\\delta=1`) loss.
    Student and teacher embeddings may have different sizes.

    Args:
        loss_weight (float): Weight of the loss. Defaults to 25.0 (the
            paper's :math:`\\lambda_{D}`).
        with_l2_norm (bool): L2-normalise the flattened embeddings first.
            Defaults to True.
        teacher_detach (bool): Stop gradients through the teacher.
            Defaults to True.
    """

    def __init__(self,
                 loss_weight: float = 25.0,
                 with_l2_norm: bool = True,
                 teacher_detach: bool = True) -> None:
        super().__init__(loss_weight, with_l2_norm, teacher_detach)

    @staticmethod
    def relation(feat: torch.Tensor) -> torch.Tensor:
        """Pairwise distances divided by their mean over distinct pairs.

        Args:
            feat (Tensor): Embeddings, shape ``(N, D)``.

        Returns:
            Tensor: Normalised distances, shape ``(N, N)``.
        """
        dist = torch.cdist(feat, feat, p=2)
        n = feat.shape[0]
        off_diag = ~torch.eye(n, dtype=torch.bool, device=feat.device)
        mean = dist[off_diag].mean().clamp(min=1e-12)
        return dist / mean


@MODELS.register_module()
class AngleWiseRKD(_RelationalKD):
    """Angle-wise relational knowledge distillation (RKD-A).

    From "Relational Knowledge Distillation" (Park et al., CVPR 2019). For
    every triplet :math:`(i, j, k)`,
    :math:`\\psi_A = \\langle e^{ij}, e^{kj} \\rangle` with
    :math:`e^{ij} = (t_i - t_j) / \\|t_i - t_j\\|_2`, and

    .. math::
        L = \\frac{1}{N^3} \\sum_{i,j,k} l_\\delta\\left(
            \\psi_A(t_i, t_j, t_k), \\psi_A(s_i, s_j, s_k)\\right)

    with :math:`l_\\delta` the Huber (smooth L1) loss.

    Args:
        loss_weight (float): Weight of the loss. Defaults to 50.0 (the
            paper's :math:`\\lambda_{A}`).
        with_l2_norm (bool): L2-normalise the flattened embeddings first.
            Defaults to True.
        teacher_detach (bool): Stop gradients through the teacher.
            Defaults to True.
    """

    def __init__(self,
                 loss_weight: float = 50.0,
                 with_l2_norm: bool = True,
                 teacher_detach: bool = True) -> None:
        super().__init__(loss_weight, with_l2_norm, teacher_detach)

    @staticmethod
    def relation(feat: torch.Tensor) -> torch.Tensor:
        """Cosines of all angles ``(i, j, k)`` at vertex ``j``.

        Args:
            feat (Tensor): Embeddings, shape ``(N, D)``.

        Returns:
            Tensor: ``cos[j, i, k]``, shape ``(N, N, N)``.
        """
        # e[j, i] = unit vector from t_j to t_i (zero when i == j).
        e = F.normalize(feat.unsqueeze(0) - feat.unsqueeze(1), p=2, dim=2)
        return torch.bmm(e, e.transpose(1, 2))


def _pearson_rows(a: torch.Tensor,
                  b: torch.Tensor,
                  eps: float = 1e-8) -> torch.Tensor:
    """Pearson correlation of matching rows of ``a`` and ``b``."""
    a = a - a.mean(dim=1, keepdim=True)
    b = b - b.mean(dim=1, keepdim=True)
    return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1) + eps)


@MODELS.register_module()
class DISTLoss(BaseDistillLoss):
    """Knowledge distillation from a stronger teacher (DIST).

    From "Knowledge Distillation from A Stronger Teacher" (Huang et al.,
    NeurIPS 2022, https://arxiv.org/abs/2205.10536). With
    :math:`Y = \\mathrm{softmax}(Z/\\tau)` of shape ``(N, C)`` and
    :math:`d_p(u, v) = 1 - \\rho_p(u, v)` (Pearson correlation):

    .. math::
        L = \\tau^2 \\left(\\beta \\frac{1}{N} \\sum_i d_p(Y^S_{i,:},
            Y^T_{i,:}) + \\gamma \\frac{1}{C} \\sum_j d_p(Y^S_{:,j},
            Y^T_{:,j})\\right)

    (inter-class relation over the rows, intra-class relation over the
    columns).

    Args:
        inter_loss_weight (float): :math:`\\beta`. Defaults to 1.0.
        intra_loss_weight (float): :math:`\\gamma`. Defaults to 1.0.
        tau (float): Temperature. Defaults to 1.0.
        loss_weight (float): Weight of the loss. Defaults to 1.0.
        teacher_detach (bool): Stop gradients through the teacher logits.
            Defaults to True.
    """

    def __init__(self,
                 inter_loss_weight: float = 1.0,
                 intra_loss_weight: float = 1.0,
                 tau: float = 1.0,
                 loss_weight: float = 1.0,
                 teacher_detach: bool = True) -> None:
        super().__init__(loss_weight, teacher_detach)
        if tau <= 0:
            raise ValueError(f'DISTLoss: tau must be > 0, got {tau}')
        self.inter_loss_weight = float(inter_loss_weight)
        self.intra_loss_weight = float(intra_loss_weight)
        self.tau = float(tau)

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
            Tensor: The scalar loss.
        """
        check_same_shape(student, teacher, 'DISTLoss')
        y_s = F.softmax(student / self.tau, dim=1)
        y_t = F.softmax(teacher / self.tau, dim=1)
        inter = (1 - _pearson_rows(y_s, y_t)).mean()
        intra = (1 - _pearson_rows(y_s.t(), y_t.t())).mean()
        return self.tau**2 * (
            self.inter_loss_weight * inter + self.intra_loss_weight * intra)
