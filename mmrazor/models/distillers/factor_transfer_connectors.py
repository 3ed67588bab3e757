"""Paraphraser (teacher) and translator (student) of Factor Transfer
("Paraphrasing Complex Network: Network Compression via Factor Transfer",
Kim et al., NeurIPS 2018, https://arxiv.org/abs/1802.04977)."""
from typing import Dict, List, Optional

import torch
from torch import nn

from mmrazor.registry import MODELS
from .connectors import BaseConnector

#: Slope of the leaky ReLUs of the paraphraser and the translator.
LEAKY_SLOPE = 0.1

PHASES = ('pretrain', 'train')


def conv_norm_act(conv: nn.Module, channels: int,
                  use_bn: bool) -> List[nn.Module]:
    """``conv -> BN (or nothing) -> LeakyReLU(0.1)``.

    The identity stands where no BN is used, so that the layer indices
    (hence the checkpoint keys) are those of MMRazor 1.x either way.

    Args:
        conv (nn.Module): The convolution.
        channels (int): Its output channels.
        use_bn (bool): Add a ``BatchNorm2d``.

    Returns:
        list[nn.Module]: The three layers.
    """
    norm = nn.BatchNorm2d(channels) if use_bn else nn.Identity()
    return [conv, norm, nn.LeakyReLU(LEAKY_SLOPE, inplace=True)]


def build_encoder(in_channel: int, out_channel: int,
                  use_bn: bool) -> nn.Sequential:
    """Three 3x3 convs: ``in -> in -> out -> out`` channels.

    Args:
        in_channel (int): Input channels.
        out_channel (int): Factor channels.
        use_bn (bool): Batch-normalise each conv.

    Returns:
        nn.Sequential: The encoder.
    """
    layers = []
    for cin, cout in ((in_channel, in_channel), (in_channel, out_channel),
                      (out_channel, out_channel)):
        layers += conv_norm_act(
            nn.Conv2d(cin, cout, 3, 1, 1), cout, use_bn)
    return nn.Sequential(*layers)


@MODELS.register_module()
class Paraphraser(BaseConnector):
    """Teacher connector of Factor Transfer: a convolutional auto-encoder.

    The encoder (three 3x3 convs to ``out_channel``) extracts the teacher
    factor; the decoder (three 3x3 transposed convs back to ``in_channel``)
    reconstructs the teacher feature. In the ``'pretrain'`` phase the
    paraphraser is trained alone with a reconstruction loss (``forward``
    returns the reconstruction); in the ``'train'`` phase it is frozen and
    ``forward`` returns the factor, computed without gradient.

    Args:
        in_channel (int): Channels of the teacher feature.
        out_channel (int): Channels of the factor.
        phase (str): ``'pretrain'`` or ``'train'``. Defaults to
            ``'pretrain'``.
        use_bn (bool): Batch-normalise each conv. Defaults to False.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 in_channel: int,
                 out_channel: int,
                 phase: str = 'pretrain',
                 use_bn: Optional[bool] = False,
                 init_cfg: Optional[Dict] = None) -> None:
        super().__init__(init_cfg)
        if phase not in PHASES:
            raise ValueError(f'Paraphraser: phase={phase!r} is not '
                             f'supported; use one of {PHASES}')
        self.phase = phase
        self.in_channel = in_channel
        self.encoder = build_encoder(in_channel, out_channel, bool(use_bn))
        decoder = []
        for cin, cout in ((out_channel, out_channel),
                          (out_channel, in_channel), (in_channel, in_channel)):
            decoder += conv_norm_act(
                nn.ConvTranspose2d(cin, cout, 3, 1, 1), cout, bool(use_bn))
        self.decoder = nn.Sequential(*decoder)

    def forward_train(self, feature: torch.Tensor) -> torch.Tensor:
        """Reconstruction (``'pretrain'``) or factor (``'train'``).

        Args:
            feature (Tensor): Teacher feature ``(N, in_channel, H, W)``.

        Returns:
            Tensor: ``decoder(encoder(feature))`` when pretraining, else
            ``encoder(feature)`` without gradient.
        """
        if feature.dim() != 4 or feature.shape[1] != self.in_channel:
            raise ValueError(
                f'Paraphraser: expected a feature of shape (N, '
                f'{self.in_channel}, H, W) (in_channel), got '
                f'{tuple(feature.shape)}')
        if self.phase == 'pretrain':
            return self.decoder(self.encoder(feature))
        with torch.no_grad():
            return self.encoder(feature)


@MODELS.register_module()
class Translator(BaseConnector):
    """Student connector of Factor Transfer: a convolutional encoder (three
    3x3 convs) mapping the student feature to the teacher's factor space.

    Args:
        in_channel (int): Channels of the student feature.
        out_channel (int): Channels of the factor.
        use_bn (bool): Batch-normalise each conv. Defaults to True.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 in_channel: int,
                 out_channel: int,
                 use_bn: Optional[bool] = True,
                 init_cfg: Optional[Dict] = None) -> None:
        super().__init__(init_cfg)
        self.in_channel = in_channel
        self.encoder = build_encoder(in_channel, out_channel, bool(use_bn))

    def forward_train(self, feature: torch.Tensor) -> torch.Tensor:
        """Translate the student feature.

        Args:
            feature (Tensor): Shape ``(N, in_channel, H, W)``.

        Returns:
            Tensor: The student factor ``(N, out_channel, H, W)``.
        """
        if feature.dim() != 4 or feature.shape[1] != self.in_channel:
            raise ValueError(
                f'Translator: expected a feature of shape (N, '
                f'{self.in_channel}, H, W) (in_channel), got '
                f'{tuple(feature.shape)}')
        return self.encoder(feature)
