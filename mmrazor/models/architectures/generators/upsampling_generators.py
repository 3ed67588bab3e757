"""The upsampling generators of DAFL and ZSKT."""
from typing import Optional

import torch
from torch import nn

from mmrazor.registry import MODELS
from .base_generator import BaseGenerator, check_positive_int

#: Channels of the generated images by default (RGB).
IMAGE_CHANNELS = 3


class UpsamplingGenerator(BaseGenerator):
    """The generator shared by DAFL and ZSKT (DCGAN-like): a linear layer
    maps the latent vector onto a ``hidden_channels`` feature map of size
    ``img_size / scale_factor**2``, batch-normalised; two stages of
    ``Upsample(scale_factor)`` + 3x3 conv + BN + LeakyReLU (``hidden ->
    hidden``, ``hidden -> hidden / 2``) bring it to ``img_size``; a last
    3x3 conv makes the ``img_channels`` image channels, followed by
    :meth:`image_output`.

    Args:
        img_size (int): Height and width of the images; a multiple of
            ``scale_factor ** 2``.
        latent_dim (int): Length of a latent vector.
        hidden_channels (int): Channels of the first feature maps; even.
        scale_factor (int): Upsampling factor of each stage. Defaults to 2.
        bn_eps (float): ``eps`` of the batch norms of the two stages.
        leaky_slope (float): Negative slope of the LeakyReLUs. Defaults to
            0.2.
        init_cfg (dict, optional): Initialisation config.
        img_channels (int): Channels of the images (1 for grey-scale
            data such as Fashion-MNIST). Defaults to 3.
    """

    def __init__(self,
                 img_size: int,
                 latent_dim: int,
                 hidden_channels: int,
                 scale_factor: int = 2,
                 bn_eps: float = 1e-5,
                 leaky_slope: float = 0.2,
                 init_cfg: Optional[dict] = None,
                 img_channels: int = IMAGE_CHANNELS) -> None:
        super().__init__(img_size, latent_dim, hidden_channels, init_cfg)
        owner = type(self).__name__
        self.img_channels = check_positive_int(img_channels, 'img_channels',
                                               owner)
        self.scale_factor = check_positive_int(scale_factor, 'scale_factor',
                                               owner)
        if img_size % scale_factor**2:
            raise ValueError(
                f'{owner}: img_size ({img_size}) must be a multiple of '
                f'scale_factor ** 2 ({scale_factor}**2 = {scale_factor**2})')
        if hidden_channels < 2 or hidden_channels % 2:
            raise ValueError(f'{owner}: hidden_channels must be an even '
                             f'integer >= 2, got {hidden_channels}')
        self.init_size = img_size // scale_factor**2
        self.bn_eps = float(bn_eps)
        self.leaky_slope = float(leaky_slope)
        half = hidden_channels // 2
        self.linear = nn.Linear(latent_dim,
                                hidden_channels * self.init_size**2)
        self.bn0 = nn.BatchNorm2d(hidden_channels)
        self.stage1 = self._up_stage(hidden_channels, hidden_channels)
        self.stage2 = self._up_stage(hidden_channels, half)
        self.to_image = nn.Conv2d(half, self.img_channels, 3, padding=1)
        self.image_output = self.build_image_output()

    def _up_stage(self, in_channels: int, out_channels: int) -> nn.Sequential:
        return nn.Sequential(
            nn.Upsample(scale_factor=self.scale_factor),
            nn.Conv2d(in_channels, out_channels, 3, padding=1),
            nn.BatchNorm2d(out_channels, eps=self.bn_eps),
            nn.LeakyReLU(self.leaky_slope))

    def build_image_output(self) -> nn.Module:
        """The layers after the last conv; implemented by subclasses."""
        raise NotImplementedError

    def generate(self, latent: torch.Tensor) -> torch.Tensor:
        """Images from latent vectors.

        Args:
            latent (Tensor): Shape ``(N, latent_dim)``.

        Returns:
            Tensor: Shape ``(N, 3, img_size, img_size)``.
        """
        x = self.linear(latent).view(-1, self.hidden_channels,
                                     self.init_size, self.init_size)
        x = self.stage2(self.stage1(self.bn0(x)))
        return self.image_output(self.to_image(x))


@MODELS.register_module()
class DAFLGenerator(UpsamplingGenerator):
    """The generator of DAFL ("Data-Free Learning of Student Networks",
    Chen et al., ICCV 2019): the upsampling generator whose images go
    through ``tanh`` and a batch norm without affine parameters.

    Args:
        img_size (int): Height and width of the images.
        latent_dim (int): Length of a latent vector.
        hidden_channels (int): Channels of the first feature maps.
        scale_factor (int): Upsampling factor per stage. Defaults to 2.
        bn_eps (float): ``eps`` of the stages' batch norms. Defaults to 0.8,
            the value of the DAFL code (it passed 0.8 where BatchNorm2d
            takes ``eps``).
        leaky_slope (float): LeakyReLU slope. Defaults to 0.2.
        init_cfg (dict, optional): Initialisation config.
        img_channels (int): Channels of the images. Defaults to 3.
    """

    def __init__(self,
                 img_size: int,
                 latent_dim: int,
                 hidden_channels: int,
                 scale_factor: int = 2,
                 bn_eps: float = 0.8,
                 leaky_slope: float = 0.2,
                 init_cfg: Optional[dict] = None,
                 img_channels: int = IMAGE_CHANNELS) -> None:
        super().__init__(img_size, latent_dim, hidden_channels, scale_factor,
                         bn_eps, leaky_slope, init_cfg, img_channels)

    def build_image_output(self) -> nn.Module:
        """``tanh`` then a batch norm without affine parameters."""
        return nn.Sequential(
            nn.Tanh(), nn.BatchNorm2d(self.img_channels, affine=False))


@MODELS.register_module()
class ZSKTGenerator(UpsamplingGenerator):
    """The generator of ZSKT ("Zero-shot Knowledge Transfer via Adversarial
    Belief Matching", Micaelli & Storkey, NeurIPS 2019): the upsampling
    generator whose images go through a batch norm with affine parameters
    (no ``tanh``).

    Args:
        img_size (int): Height and width of the images.
        latent_dim (int): Length of a latent vector.
        hidden_channels (int): Channels of the first feature maps.
        scale_factor (int): Upsampling factor per stage. Defaults to 2.
        bn_eps (float): ``eps`` of the stages' batch norms. Defaults to
            1e-5.
        leaky_slope (float): LeakyReLU slope. Defaults to 0.2.
        init_cfg (dict, optional): Initialisation config.
        img_channels (int): Channels of the images. Defaults to 3.
    """

    def build_image_output(self) -> nn.Module:
        """A batch norm with affine parameters."""
        return nn.BatchNorm2d(self.img_channels, affine=True)
