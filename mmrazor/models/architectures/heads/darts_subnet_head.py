"""The classifier head of DARTS retraining, with the auxiliary logits."""
from typing import Dict, List, Sequence

import torch
import torch.nn as nn
from mmpretrain.models.heads import LinearClsHead
from mmpretrain.registry import MODELS as CLS_MODELS

from mmrazor.registry import MODELS


@MODELS.register_module()
class DartsSubnetClsHead(LinearClsHead):
    """A linear classifier head that also trains on the auxiliary tower.

    With ``auxliary=True`` the :class:`~mmrazor.models.DartsBackbone`
    returns, in training, the auxiliary tower's features first and the
    last cell's after them (pooled by the neck). This head classifies the
    last features as :class:`mmpretrain.models.LinearClsHead` does and, when
    auxiliary features are there, adds ``aux_loss`` on the logits of its own
    linear layer over them. At test time the backbone returns no auxiliary
    features and the head is a plain linear head.

    Args:
        num_classes (int): Number of classes.
        in_channels (int): Channels of the last features.
        aux_in_channels (int): Channels of the auxiliary features (the
            backbone's ``aux_out_channels``, 768 in DARTS).
        aux_loss (dict): Config of the auxiliary loss (an mmpretrain loss).
            Defaults to cross-entropy of weight 0.4, as in DARTS.
        **kwargs: Other arguments of ``LinearClsHead`` (``loss``, ``topk``,
            ``cal_acc``, ``init_cfg``).
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 aux_in_channels: int,
                 aux_loss: Dict = dict(
                     type='CrossEntropyLoss', loss_weight=0.4),
                 **kwargs) -> None:
        super().__init__(num_classes, in_channels, **kwargs)
        if aux_in_channels <= 0:
            raise ValueError(f'aux_in_channels must be > 0, got '
                             f'{aux_in_channels}')
        self.aux_in_channels = aux_in_channels
        self.aux_linear = nn.Linear(aux_in_channels, num_classes)
        self.aux_loss_module = aux_loss if isinstance(
            aux_loss, nn.Module) else CLS_MODELS.build(aux_loss)

    def forward_aux(self, feats: Sequence[torch.Tensor]) -> torch.Tensor:
        """Logits of the auxiliary features (the first of ``feats``)."""
        return self.aux_linear(feats[0].flatten(1))

    def loss(self, feats: Sequence[torch.Tensor], data_samples: List,
             **kwargs) -> Dict[str, torch.Tensor]:
        """The classification losses, plus ``aux_loss`` when ``feats``
        holds the auxiliary features.

        Args:
            feats (Sequence[Tensor]): Neck outputs: ``(aux, last)`` in
                training with the auxiliary tower, else ``(last, )``.
            data_samples (list): The samples with their ground truth.

        Returns:
            dict[str, Tensor]: ``loss`` (and accuracies), ``aux_loss``.
        """
        losses = super().loss(feats, data_samples, **kwargs)
        if len(feats) > 1:
            score = self.forward_aux(feats)
            if 'gt_score' in data_samples[0]:
                target = torch.stack([s.gt_score for s in data_samples])
            else:
                target = torch.cat([s.gt_label for s in data_samples])
            losses['aux_loss'] = self.aux_loss_module(
                score, target, avg_factor=score.size(0))
        return losses
