"""Generator losses of data-free distillation (DAFL, Chen et al., ICCV
2019): they score the teacher's response to generated images."""
import math

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from mmrazor.registry import MODELS


def gather_batch(preds: torch.Tensor) -> torch.Tensor:
    """Concatenate ``preds`` of every process along the batch, keeping the
    gradient of the local part (the other processes' parts are constants).

    Args:
        preds (Tensor): This process' tensor, shape ``(N, ...)``; every
            process must give the same shape.

    Returns:
        Tensor: Shape ``(world_size * N, ...)``; ``preds`` itself when not
        running distributed.
    """
    if not (dist.is_available() and dist.is_initialized()) or \
            dist.get_world_size() == 1:
        return preds
    parts = [torch.empty_like(preds) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, preds.detach().contiguous())
    parts[dist.get_rank()] = preds
    return torch.cat(parts, dim=0)


class DAFLLoss(nn.Module):
    """Base of the DAFL losses: ``loss_weight`` times :meth:`loss` of one
    teacher-side input (nothing is detached: the generator is trained
    through the frozen teacher).

    Args:
        loss_weight (float): Weight of the loss. Defaults to 1.0.
    """

    def __init__(self, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.loss_weight = float(loss_weight)

    def forward(self, preds_T: torch.Tensor) -> torch.Tensor:
        """Compute the weighted loss.

        Args:
            preds_T (Tensor): Teacher logits, shape ``(N, C)``.

        Returns:
            Tensor: The scalar loss.
        """
        if preds_T.dim() != 2:
            raise ValueError(f'{type(self).__name__} needs (N, C) logits as '
                             f'preds_T, got shape {tuple(preds_T.shape)}')
        return self.loss_weight * self.loss(preds_T)

    def loss(self, preds_T: torch.Tensor) -> torch.Tensor:
        """The unweighted loss. Implemented by subclasses."""
        raise NotImplementedError


@MODELS.register_module()
class OnehotLikeLoss(DAFLLoss):
    """DAFL's one-hot loss: the teacher's outputs on generated images should
    look like those on real ones, confident in one class:

    .. math::
        L = \\frac{1}{N} \\sum_n -\\log \\mathrm{softmax}(y^T_n)_{t_n},
        \\qquad t_n = \\arg\\max_c y^T_{n,c}

    (the pseudo label :math:`t_n` carries no gradient).

    Args:
        loss_weight (float): Weight of the loss. Defaults to 1.0.
    """

    def loss(self, preds_T: torch.Tensor) -> torch.Tensor:
        """Cross entropy against the teacher's own argmax."""
        return F.cross_entropy(preds_T, preds_T.detach().argmax(dim=1))


@MODELS.register_module()
class InformationEntropyLoss(DAFLLoss):
    """DAFL's information-entropy loss: generated images should cover the
    classes evenly, so the entropy of the teacher's mean class distribution
    over the batch is maximised, i.e. its negative (in base 10, as 1.x and
    the authors' code) is minimised:

    .. math::
        \\bar p = \\frac{1}{N} \\sum_n \\mathrm{softmax}(y^T_n), \\qquad
        L = \\sum_c \\bar p_c \\log_{10} \\bar p_c

    Args:
        gather (bool): In distributed training, compute :math:`\\bar p` over
            the batches of all processes (each keeps the gradient of its
            own part). Defaults to True.
        loss_weight (float): Weight of the loss. Defaults to 1.0.
    """

    def __init__(self, gather: bool = True, loss_weight: float = 1.0) -> None:
        super().__init__(loss_weight)
        self.gather = gather

    def loss(self, preds_T: torch.Tensor) -> torch.Tensor:
        """Negative entropy of the batch-mean class distribution."""
        if self.gather:
            preds_T = gather_batch(preds_T)
        mean_prob = F.softmax(preds_T, dim=1).mean(dim=0)
        return torch.special.xlogy(mean_prob, mean_prob).sum() / math.log(10)


@MODELS.register_module()
class ActivationLoss(DAFLLoss):
    """DAFL's activation loss: the teacher's features on generated images
    should be strongly activated, as on real ones:

    * ``norm_type='abs'``: :math:`L = -\\frac{1}{N D} \\sum_{n,d}
      |f^T_{n,d}|`, the negative mean of the paper's per-sample L1 norm
      divided by the feature size :math:`D`;
    * ``norm_type='norm'``: :math:`L = -\\|f^T\\|_F`, the L2 norm of the
      whole batch of features.

    Args:
        norm_type (str): ``'abs'`` or ``'norm'``. Defaults to ``'abs'``.
        loss_weight (float): Weight of the loss. Defaults to 1.0.
    """

    NORM_TYPES = ('abs', 'norm')

    def __init__(self,
                 norm_type: str = 'abs',
                 loss_weight: float = 1.0) -> None:
        super().__init__(loss_weight)
        if norm_type not in self.NORM_TYPES:
            raise ValueError(f'ActivationLoss: norm_type must be one of '
                             f'{self.NORM_TYPES}, got {norm_type!r}')
        self.norm_type = norm_type

    def forward(self, feat_T: torch.Tensor) -> torch.Tensor:
        """Compute the weighted loss.

        Args:
            feat_T (Tensor): Teacher features, shape ``(N, ...)``.

        Returns:
            Tensor: The scalar loss.
        """
        return self.loss_weight * self.loss(feat_T)

    def loss(self, feat_T: torch.Tensor) -> torch.Tensor:
        """The negative activation of the features."""
        if self.norm_type == 'abs':
            return -feat_T.abs().mean()
        return -torch.linalg.vector_norm(feat_T)
