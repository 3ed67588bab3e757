"""The embedding head of Contrastive Representation Distillation."""
from typing import Dict, Optional

import torch
import torch.nn.functional as F
from torch import nn

from mmrazor.registry import MODELS
from .connectors import BaseConnector


@MODELS.register_module()
class CRDConnector(BaseConnector):
    """Linear embedding followed by L2 normalisation (CRD's ``Embed``).

    From "Contrastive Representation Distillation" (Tian et al., ICLR 2020,
    https://arxiv.org/abs/1910.10699): student and teacher features are
    flattened, projected to ``dim_out`` by a linear layer and normalised to
    unit L2 norm before ``CRDLoss`` contrasts them.

    Args:
        dim_in (int): Size of the flattened input feature. Defaults to 1024.
        dim_out (int): Size of the embedding. Defaults to 128.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 dim_in: int = 1024,
                 dim_out: int = 128,
                 init_cfg: Optional[Dict] = None) -> None:
        super().__init__(init_cfg)
        self.dim_in = dim_in
        self.linear = nn.Linear(dim_in, dim_out)

    def forward_train(self, feature: torch.Tensor) -> torch.Tensor:
        """Embed ``feature``.

        Args:
            feature (Tensor): Shape ``(N, ...)`` with ``dim_in`` elements per
                sample, e.g. pooled features ``(N, dim_in)``.

        Returns:
            Tensor: Unit-norm embeddings of shape ``(N, dim_out)``.
        """
        flat = feature.reshape(feature.shape[0], -1)
        if flat.shape[1] != self.dim_in:
            raise ValueError(
                f'CRDConnector: the feature of shape {tuple(feature.shape)} '
                f'has {flat.shape[1]} elements per sample, but dim_in='
                f'{self.dim_in}')
        return F.normalize(self.linear(flat), p=2, dim=1)
