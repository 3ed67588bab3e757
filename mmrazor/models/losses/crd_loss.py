"""Contrastive Representation Distillation (Tian et al., ICLR 2020)."""
import math
from typing import Any, Optional, Sequence, Tuple

import torch
from torch import nn

from mmrazor.registry import MODELS


def data_field(sample: Any, name: str) -> Optional[torch.Tensor]:
    """A field of a data sample (``DataSample`` or dict), or None.

    Args:
        sample (Any): One data sample.
        name (str): The field.

    Returns:
        Tensor, optional: The field as a long tensor.
    """
    if isinstance(sample, dict):
        value = sample.get(name)
    else:
        value = getattr(sample, name, None)
    return None if value is None else torch.as_tensor(value).long()


def nce_loss(scores: torch.Tensor, num_data: int,
             eps: float) -> torch.Tensor:
    """NCE loss of CRD (the paper's Eq. 18), positives in column 0.

    With ``K`` negatives and the uniform noise ``P_n = 1 / num_data``::

        L = -1/B sum_i [ log(P_i0 / (P_i0 + K P_n + eps))
                         + sum_k log(K P_n / (P_ik + K P_n + eps)) ]

    Args:
        scores (Tensor): Normalised scores ``(B, K + 1)``.
        num_data (int): Size of the dataset (of the memory).
        eps (float): Keeps the ratios finite.

    Returns:
        Tensor: The scalar loss.
    """
    noise = (scores.shape[1] - 1) / num_data
    positive = scores[:, 0]
    negative = scores[:, 1:]
    log_d1 = torch.log(positive / (positive + noise + eps))
    log_d0 = torch.log(noise / (negative + noise + eps))
    return -(log_d1.sum() + log_d0.sum()) / scores.shape[0]


@MODELS.register_module()
class CRDLoss(nn.Module):
    """Contrastive Representation Distillation loss with a memory bank.

    From "Contrastive Representation Distillation" (Tian et al., ICLR 2020,
    https://arxiv.org/abs/1910.10699). Two memory banks of ``sample_n``
    unit embeddings (one of the student's, one of the teacher's, indexed by
    the dataset index) supply negatives. For each sample ``i`` with
    contrast indices ``j_0 = i`` (or a same-class sample) and ``j_1..j_K``
    (negatives from other classes, given by ``CRDDataset``)::

        s-scores: exp(<m^T_j, s_i> / T) / Z_s   (student anchor)
        t-scores: exp(<m^S_j, t_i> / T) / Z_t   (teacher anchor)

    where ``m^T`` / ``m^S`` are the teacher / student memories and the
    constants ``Z`` are set once, at the first call, to
    ``mean(exp scores) * sample_n``. The loss is ``loss_weight *
    (NCE(s-scores) + NCE(t-scores))`` (:func:`nce_loss`). Afterwards, in
    training mode, the memories of the batch's samples are updated:
    ``m_i <- normalize(momentum * m_i + (1 - momentum) * f_i)``.

    Args:
        loss_weight (float): Weight of the loss. Defaults to 1.0.
        temperature (float): Temperature ``T``. Defaults to 0.07.
        neg_num (int): Negatives per sample ``K``. Defaults to 16384.
        sample_n (int): Size of the training set (rows of the memories).
            Defaults to 50000.
        dim_out (int): Embedding size (that of the ``CRDConnector``).
            Defaults to 128.
        momentum (float): Momentum of the memory update. Defaults to 0.5.
        eps (float): Keeps the NCE ratios finite. Defaults to 1e-7.
    """

    def __init__(self,
                 loss_weight: float = 1.0,
                 temperature: float = 0.07,
                 neg_num: int = 16384,
                 sample_n: int = 50000,
                 dim_out: int = 128,
                 momentum: float = 0.5,
                 eps: float = 1e-7) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(
                f'CRDLoss: temperature must be > 0, got {temperature}')
        if not 0 <= momentum < 1:
            raise ValueError(
                f'CRDLoss: momentum must be in [0, 1), got {momentum}')
        self.loss_weight = float(loss_weight)
        self.temperature = float(temperature)
        self.neg_num = int(neg_num)
        self.sample_n = int(sample_n)
        self.dim_out = int(dim_out)
        self.momentum = float(momentum)
        self.eps = float(eps)
        bound = 1. / math.sqrt(dim_out / 3)
        self.register_buffer('memory_student',
                             (torch.rand(sample_n, dim_out) * 2 - 1) * bound)
        self.register_buffer('memory_teacher',
                             (torch.rand(sample_n, dim_out) * 2 - 1) * bound)
        # Z_s and Z_t; negative until the first call sets them.
        self.register_buffer('normalizers', torch.tensor([-1., -1.]))

    def _indices(self, data_samples: Sequence[Any],
                 batch_size: int) -> Tuple[torch.Tensor, torch.Tensor]:
        """The samples' dataset indices and contrast indices.

        Args:
            data_samples (Sequence): Data samples with ``sample_idx`` and,
                from ``CRDDataset``, ``contrast_sample_idxs``.
            batch_size (int): Rows of the features.

        Returns:
            tuple[Tensor, Tensor]: ``(B, )`` and ``(B, neg_num + 1)``.
        """
        if len(data_samples) != batch_size:
            raise ValueError(
                f'CRDLoss: {len(data_samples)} data_samples for features of '
                f'batch size {batch_size}')
        sample_idx = [data_field(s, 'sample_idx') for s in data_samples]
        if any(i is None for i in sample_idx):
            raise KeyError(
                'CRDLoss: every data sample needs `sample_idx`; pack it with '
                'PackCRDClsInputs (CRDDataset adds it)')
        sample_idx = torch.stack([i.reshape(()) for i in sample_idx])
        contrast = [data_field(s, 'contrast_sample_idxs')
                    for s in data_samples]
        if all(c is None for c in contrast):
            # No indices from the dataset: uniform negatives.
            contrast_idx = torch.randint(
                self.sample_n, (batch_size, self.neg_num + 1))
            contrast_idx[:, 0] = sample_idx
        elif any(c is None for c in contrast):
            raise KeyError('CRDLoss: only some data samples have '
                           '`contrast_sample_idxs`')
        else:
            contrast_idx = torch.stack(contrast)
        expected = (batch_size, self.neg_num + 1)
        if tuple(contrast_idx.shape) != expected:
            raise ValueError(
                'CRDLoss: contrast_sample_idxs have shape '
                f'{tuple(contrast_idx.shape)}, expected {expected} (the '
                f'positive and neg_num={self.neg_num} negatives per sample)')
        for name, idx in (('sample_idx', sample_idx),
                          ('contrast_sample_idxs', contrast_idx)):
            if idx.min() < 0 or idx.max() >= self.sample_n:
                raise ValueError(
                    f'CRDLoss: {name} range over [{int(idx.min())}, '
                    f'{int(idx.max())}] but the memory has sample_n='
                    f'{self.sample_n} rows; set sample_n to the size of the '
                    'training set')
        device = self.memory_student.device
        return sample_idx.to(device), contrast_idx.to(device)

    def _scores(self, anchor: torch.Tensor, memory: torch.Tensor,
                contrast_idx: torch.Tensor, which: int) -> torch.Tensor:
        """Normalised scores of ``anchor`` against memory rows.

        Args:
            anchor (Tensor): Embeddings ``(B, D)``.
            memory (Tensor): The other side's memory ``(sample_n, D)``.
            contrast_idx (Tensor): Rows ``(B, K + 1)``.
            which (int): 0 for ``Z_s``, 1 for ``Z_t``.

        Returns:
            Tensor: ``exp(<m_j, anchor> / T) / Z`` of shape ``(B, K + 1)``.
        """
        rows = memory[contrast_idx].detach()
        scores = torch.exp(
            torch.einsum('bkd,bd->bk', rows, anchor) / self.temperature)
        if self.normalizers[which] < 0:
            self.normalizers[which] = scores.detach().mean() * self.sample_n
        # A copy: the buffer is written in place (a view would break the
        # backward pass).
        return scores / self.normalizers[which].clone()

    @torch.no_grad()
    def _update_memory(self, memory: torch.Tensor, sample_idx: torch.Tensor,
                       feats: torch.Tensor) -> None:
        """``m_i <- normalize(momentum * m_i + (1 - momentum) * f_i)``."""
        mixed = memory[sample_idx] * self.momentum + \
            feats.detach().to(memory.dtype) * (1 - self.momentum)
        memory[sample_idx] = mixed / mixed.norm(dim=1, keepdim=True)

    def forward(self, s_feats: torch.Tensor, t_feats: torch.Tensor,
                data_samples: Sequence[Any]) -> torch.Tensor:
        """Compute the loss and update the memories.

        Args:
            s_feats (Tensor): Student embeddings ``(B, dim_out)`` (from a
                ``CRDConnector``).
            t_feats (Tensor): Teacher embeddings ``(B, dim_out)``; not
                detached: the teacher's ``CRDConnector`` is trained.
            data_samples (Sequence): The batch's data samples, with
                ``sample_idx`` and ``contrast_sample_idxs``.

        Returns:
            Tensor: The scalar loss.
        """
        expected = (s_feats.shape[0], self.dim_out)
        for name, feats in (('s_feats', s_feats), ('t_feats', t_feats)):
            if tuple(feats.shape) != expected:
                raise ValueError(
                    f'CRDLoss: {name} has shape {tuple(feats.shape)}, '
                    f'expected {expected} (batch, dim_out={self.dim_out})')
        sample_idx, contrast_idx = self._indices(data_samples,
                                                 s_feats.shape[0])
        s_scores = self._scores(s_feats, self.memory_teacher, contrast_idx, 0)
        t_scores = self._scores(t_feats, self.memory_student, contrast_idx, 1)
        loss = nce_loss(s_scores, self.sample_n, self.eps) + \
            nce_loss(t_scores, self.sample_n, self.eps)
        if self.training:
            self._update_memory(self.memory_student, sample_idx, s_feats)
            self._update_memory(self.memory_teacher, sample_idx, t_feats)
        return self.loss_weight * loss
