"""Common base of the image generators of data-free distillation."""
from typing import Optional

import torch
from mmengine.model import BaseModule


def check_positive_int(value: int, name: str, owner: str) -> int:
    """Check that ``value`` is an integer > 0.

    Args:
        value (int): The value.
        name (str): The argument's name, for the message.
        owner (str): The class taking it, for the message.

    Returns:
        int: ``value``.

    Raises:
        ValueError: ``value`` is no positive integer.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f'{owner}: {name} must be an integer > 0, got '
                         f'{value!r}')
    return value


class BaseGenerator(BaseModule):
    """A generator of synthetic images from Gaussian noise.

    ``forward(data=None, batch_size=1)`` draws ``batch_size`` latent
    vectors from :math:`N(0, I)` (or takes the given ones, ``data`` of shape
    ``(N, latent_dim)``) and returns images of shape
    ``(N, 3, img_size, img_size)``. Subclasses implement
    :meth:`generate`.

    Args:
        img_size (int): Height and width of the generated images.
        latent_dim (int): Length of a latent vector.
        hidden_channels (int): Channels of the widest feature map.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 img_size: int,
                 latent_dim: int,
                 hidden_channels: int,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        owner = type(self).__name__
        self.img_size = check_positive_int(img_size, 'img_size', owner)
        self.latent_dim = check_positive_int(latent_dim, 'latent_dim', owner)
        self.hidden_channels = check_positive_int(hidden_channels,
                                                  'hidden_channels', owner)

    @property
    def device(self) -> torch.device:
        """The device of the generator's parameters."""
        return next(self.parameters()).device

    def sample_batch(self, batch_size: int) -> torch.Tensor:
        """Draw latent vectors from the standard normal distribution.

        Args:
            batch_size (int): How many.

        Returns:
            Tensor: Shape ``(batch_size, latent_dim)``.
        """
        check_positive_int(batch_size, 'batch_size', type(self).__name__)
        return torch.randn(batch_size, self.latent_dim, device=self.device)

    def process_latent(self,
                       data: Optional[torch.Tensor] = None,
                       batch_size: int = 1) -> torch.Tensor:
        """The latent vectors to generate from.

        Args:
            data (Tensor, optional): Given latent vectors, shape
                ``(N, latent_dim)``; None draws ``batch_size`` of them.
            batch_size (int): How many to draw when ``data`` is None.
                Defaults to 1.

        Returns:
            Tensor: Shape ``(N, latent_dim)``.

        Raises:
            ValueError: ``data`` has the wrong shape.
        """
        if data is None:
            return self.sample_batch(batch_size)
        if not isinstance(data, torch.Tensor) or data.dim() != 2 or \
                data.shape[1] != self.latent_dim:
            shape = tuple(data.shape) if isinstance(
                data, torch.Tensor) else type(data).__name__
            raise ValueError(
                f'{type(self).__name__}: data must be latent vectors of '
                f'shape (N, latent_dim={self.latent_dim}), got {shape}')
        return data.to(self.device)

    def forward(self,
                data: Optional[torch.Tensor] = None,
                batch_size: int = 1) -> torch.Tensor:
        """Generate images.

        Args:
            data (Tensor, optional): Latent vectors ``(N, latent_dim)``;
                None draws ``batch_size`` of them.
            batch_size (int): How many images when ``data`` is None.
                Defaults to 1.

        Returns:
            Tensor: Images, shape ``(N, 3, img_size, img_size)``.
        """
        return self.generate(self.process_latent(data, batch_size))

    def generate(self, latent: torch.Tensor) -> torch.Tensor:
        """Images from latent vectors; implemented by subclasses."""
        raise NotImplementedError
