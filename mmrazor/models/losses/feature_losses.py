"""Feature-map distillation losses: FitNets (L2) and attention transfer."""
from typing import Optional

import torch
import torch.nn.functional as F

from mmrazor.registry import MODELS
from .base import BaseDistillLoss, check_reduction, check_same_shape


@MODELS.register_module(name=['L2Loss', 'FitNetsLoss'])
class L2Loss(BaseDistillLoss):
    """Squared L2 distance between feature maps (FitNets hint loss).

    From "FitNets: Hints for Thin Deep Nets" (Romero et al., ICLR 2015,
    https://arxiv.org/abs/1412.6550): the student's (regressed) hint is
    matched to the teacher's guided layer with

    .. math:: L = \\| u^T - r(v^S) \\|_2^2

    where the regressor :math:`r` is the distiller's ``align_module``
    (a 1x1 conv or linear layer) when the shapes differ. Registered as
    ``L2Loss`` and ``FitNetsLoss``.

    Args:
        loss_weight (float): Weight of the loss. Defaults to 1.0.
        reduction (str, optional): ``'mean'`` (mean over all elements: the
            MSE), ``'batchmean'`` (sum divided by the batch size: the
            paper's per-sample squared norm), ``'sum'`` or ``'none'``.
            Defaults to ``'mean'`` (or what ``div_element`` says).
        normalize (bool): L2-normalise each sample's flattened features
            (then scale them by ``mult``) before comparing them. Defaults
            to False.
        teacher_detach (bool): Stop gradients through the teacher features.
            Defaults to True.
        mult (float): Scale of the normalised features (1.x). Defaults to
            1.0.
        div_element (bool, optional): The 1.x spelling of the reduction:
            True divides the summed squares by the number of elements
            (``'mean'``), False by the batch size (``'batchmean'``). Give
            it or ``reduction``, not both with different meanings.
        dist (bool): Return the L2 distance instead, the square root of the
            summed squares over the whole batch (1.x). Defaults to False;
            it takes no ``reduction`` / ``div_element``.

    Note:
        The 1.x class defaults to ``normalize=True`` and a division by the
        batch size; here the defaults stay ``normalize=False`` and the mean
        over elements. Configs that rely on the 1.x defaults should set
        ``normalize=True, div_element=False``.
    """

    def __init__(self,
                 loss_weight: float = 1.0,
                 reduction: Optional[str] = None,
                 normalize: bool = False,
                 teacher_detach: bool = True,
                 mult: float = 1.0,
                 div_element: Optional[bool] = None,
                 dist: bool = False) -> None:
        super().__init__(loss_weight, teacher_detach)
        if dist and (reduction is not None or div_element is not None):
            raise ValueError(
                'L2Loss(dist=True) returns the L2 distance of the batch and '
                f'takes no reduction (got reduction={reduction!r}, '
                f'div_element={div_element!r})')
        if div_element is not None:
            implied = 'mean' if div_element else 'batchmean'
            if reduction is not None and reduction != implied:
                raise ValueError(
                    f'L2Loss got div_element={div_element!r} (meaning '
                    f'reduction={implied!r}) and reduction={reduction!r}; '
                    'give one of them')
            reduction = implied
        self.reduction = check_reduction(
            'mean' if reduction is None else reduction)
        self.normalize = normalize
        self.mult = float(mult)
        self.dist = dist

    def loss(self,
             student: torch.Tensor,
             teacher: torch.Tensor,
             gt_labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Compute the unweighted loss.

        Args:
            student (Tensor): Student features, shape ``(N, ...)``.
            teacher (Tensor): Teacher features, same shape.
            gt_labels (Tensor, optional): Unused.

        Returns:
            Tensor: The loss.
        """
        check_same_shape(student, teacher, 'L2Loss')
        if self.normalize:
            n = student.shape[0]
            student = F.normalize(student.reshape(n, -1), dim=1) * self.mult
            teacher = F.normalize(teacher.reshape(n, -1), dim=1) * self.mult
        diff = (student - teacher).pow(2)
        if self.dist:
            return diff.sum().sqrt()
        if self.reduction == 'batchmean':
            return diff.sum() / diff.shape[0]
        if self.reduction == 'sum':
            return diff.sum()
        if self.reduction == 'mean':
            return diff.mean()
        return diff


@MODELS.register_module()
class ATLoss(BaseDistillLoss):
    """Attention transfer.

    From "Paying More Attention to Attention" (Zagoruyko & Komodakis, ICLR
    2017, https://arxiv.org/abs/1612.03928). The spatial attention map of a
    feature map :math:`A \\in R^{C\\times H\\times W}` is
    :math:`Q = \\mathrm{vec}(\\sum_c |A_c|^p)`, and the loss compares the
    L2-normalised maps:

    .. math::
        L = \\frac{1}{N\\,HW} \\sum_{n} \\left\\|
            \\frac{Q^S_n}{\\|Q^S_n\\|_2} - \\frac{Q^T_n}{\\|Q^T_n\\|_2}
            \\right\\|_2^2

    (the squared-distance form the authors' code uses; the channel count
    may differ between student and teacher, the spatial size may not).
    Any ``(N, C, ...)`` input works (as in 1.x): the map sums over dimension
    1 and flattens the rest; a ``(N, C)`` input gives one value per sample.

    Args:
        p (float): Exponent of the attention map. Defaults to 2.
        loss_weight (float): Weight of the loss (the paper's
            :math:`\\beta/2`). Defaults to 1.0.
        teacher_detach (bool): Stop gradients through the teacher features.
            Defaults to True.
    """

    def __init__(self,
                 p: float = 2.0,
                 loss_weight: float = 1.0,
                 teacher_detach: bool = True) -> None:
        super().__init__(loss_weight, teacher_detach)
        self.p = float(p)

    def attention(self, feat: torch.Tensor) -> torch.Tensor:
        """The normalised attention map of ``feat`` (shape ``(N, HW)``).

        Args:
            feat (Tensor): Feature map, shape ``(N, C, H, W)`` (or any
                ``(N, C, ...)``).

        Returns:
            Tensor: L2-normalised spatial attention, shape ``(N, H*W)``.
        """
        q = feat.abs().pow(self.p).sum(dim=1).reshape(feat.shape[0], -1)
        return F.normalize(q, p=2, dim=1)

    def loss(self,
             student: torch.Tensor,
             teacher: torch.Tensor,
             gt_labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Compute the unweighted loss.

        Args:
            student (Tensor): Student features, shape ``(N, Cs, ...)``,
                typically ``(N, Cs, H, W)``.
            teacher (Tensor): Teacher features, shape ``(N, Ct, ...)`` with
                the student's sizes after the channel dimension.
            gt_labels (Tensor, optional): Unused.

        Returns:
            Tensor: The scalar loss.
        """
        if student.dim() < 2 or student.dim() != teacher.dim() or \
                student.shape[0] != teacher.shape[0] or \
                student.shape[2:] != teacher.shape[2:]:
            raise ValueError(
                'ATLoss needs (N, C, ...) features (e.g. (N, C, H, W) maps) '
                'with the same N and the same sizes after C; got student '
                f'{tuple(student.shape)} and teacher '
                f'{tuple(teacher.shape)}')
        return (self.attention(student) -
                self.attention(teacher)).pow(2).mean()
