"""The student generation block of Masked Generative Distillation."""
from typing import Dict, Optional

import torch
from torch import nn

from mmrazor.registry import MODELS
from .connectors import BaseConnector


@MODELS.register_module()
class MGDConnector(BaseConnector):
    """Mask the student feature at random pixels and regenerate it.

    From "Masked Generative Distillation" (Yang et al., ECCV 2022,
    https://arxiv.org/abs/2205.01529): the (aligned) student feature is
    multiplied by a random spatial mask ``M`` (shared by all channels,
    ``M = 0`` with probability ``lambda_mgd``) and a generation block
    ``conv3x3 -> ReLU -> conv3x3`` must reconstruct the teacher feature:
    ``G(align(S) * M)``.

    Args:
        student_channels (int): Channels of the student feature.
        teacher_channels (int): Channels of the teacher feature; a 1x1
            ``align`` conv maps the student onto them when they differ.
        lambda_mgd (float): Ratio of masked pixels. Defaults to 0.65.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 student_channels: int,
                 teacher_channels: int,
                 lambda_mgd: float = 0.65,
                 init_cfg: Optional[Dict] = None) -> None:
        super().__init__(init_cfg)
        if not 0 <= lambda_mgd <= 1:
            raise ValueError('MGDConnector: lambda_mgd must be in [0, 1], '
                             f'got {lambda_mgd}')
        self.student_channels = student_channels
        self.lambda_mgd = lambda_mgd
        self.align: Optional[nn.Module] = None
        if student_channels != teacher_channels:
            self.align = nn.Conv2d(student_channels, teacher_channels, 1)
        self.generation = nn.Sequential(
            nn.Conv2d(teacher_channels, teacher_channels, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(teacher_channels, teacher_channels, 3, padding=1))

    def random_mask(self, feature: torch.Tensor) -> torch.Tensor:
        """Draw the spatial mask: 0 where ``U(0, 1) > 1 - lambda_mgd``.

        Args:
            feature (Tensor): Shape ``(N, C, H, W)``.

        Returns:
            Tensor: Shape ``(N, 1, H, W)`` of zeros and ones.
        """
        n, _, h, w = feature.shape
        uniform = torch.rand((n, 1, h, w), device=feature.device)
        return (uniform <= 1 - self.lambda_mgd).to(feature.dtype)

    def forward_train(self, feature: torch.Tensor) -> torch.Tensor:
        """Align, mask and regenerate the student feature.

        Args:
            feature (Tensor): Student feature ``(N, student_channels, H, W)``.

        Returns:
            Tensor: Generated feature ``(N, teacher_channels, H, W)``.
        """
        if feature.dim() != 4 or feature.shape[1] != self.student_channels:
            raise ValueError(
                f'MGDConnector: expected a feature of shape (N, '
                f'{self.student_channels}, H, W) (student_channels), got '
                f'{tuple(feature.shape)}')
        if self.align is not None:
            feature = self.align(feature)
        return self.generation(feature * self.random_mask(feature))
