"""Token embeddings of a vision transformer whose width follows a mutable.

* :class:`PatchEmbed` / :class:`DynamicPatchEmbed`: a ``patch_size`` x
  ``patch_size`` convolution with stride ``patch_size`` that turns an image
  into ``(B, num_patches, embed_dims)`` tokens.
* :class:`ClsTokenPosEmbed` / :class:`DynamicClsTokenPosEmbed`: prepends
  the class token and adds the absolute position embedding.

The plain classes are what :meth:`to_static_op` of the dynamic ones returns.
"""
from typing import Any, Sequence, Union

import torch
from torch import nn

from mmrazor.models.mutables import BaseMutable
from mmrazor.registry import MODELS
from .base import DynamicMixin, take
from .dynamic_conv import DynamicConv2d


def _to_2tuple(value: Union[int, Sequence[int]], name: str) -> tuple:
    if isinstance(value, int) and not isinstance(value, bool):
        return (value, value)
    if isinstance(value, Sequence) and len(value) == 2 and all(
            isinstance(v, int) for v in value):
        return tuple(value)
    raise ValueError(f'{name} must be an int or two ints, got {value!r}')


class PatchEmbed(nn.Module):
    """Image to patch tokens with a strided convolution.

    Args:
        img_size (int | tuple[int]): Input image size. Defaults to 224.
        patch_size (int | tuple[int]): Patch (and stride) size. Defaults
            to 16.
        in_channels (int): Image channels. Defaults to 3.
        embed_dims (int): Token width. Defaults to 768.
    """

    def __init__(self,
                 img_size: Union[int, Sequence[int]] = 224,
                 patch_size: Union[int, Sequence[int]] = 16,
                 in_channels: int = 3,
                 embed_dims: int = 768) -> None:
        super().__init__()
        self.img_size = _to_2tuple(img_size, 'img_size')
        self.patch_size = _to_2tuple(patch_size, 'patch_size')
        for size, patch in zip(self.img_size, self.patch_size):
            if size % patch:
                raise ValueError(f'img_size {self.img_size} is not a '
                                 f'multiple of patch_size {self.patch_size}')
        self.patches_resolution = (self.img_size[0] // self.patch_size[0],
                                   self.img_size[1] // self.patch_size[1])
        self.num_patches = self.patches_resolution[0] * \
            self.patches_resolution[1]
        self.in_channels = in_channels
        self.embed_dims = embed_dims
        self.projection = self._make_projection()

    def _make_projection(self) -> nn.Conv2d:
        return nn.Conv2d(
            self.in_channels,
            self.embed_dims,
            kernel_size=self.patch_size,
            stride=self.patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` images to ``(B, H/p * W/p, embed_dims)`` tokens.
        """
        if tuple(x.shape[-2:]) != self.img_size:
            raise ValueError(f'{type(self).__name__} expects images of size '
                             f'{self.img_size}, got {tuple(x.shape[-2:])}')
        return self.projection(x).flatten(2).transpose(1, 2)


@MODELS.register_module()
class DynamicPatchEmbed(PatchEmbed, DynamicMixin):
    """:class:`PatchEmbed` whose token width follows a channel mutable.

    Mutable attribute: ``'embed_dims'`` (also ``'out_channels'``), passed
    on to the projection (a :class:`DynamicConv2d`), which does the
    slicing; this module only keeps the mutable for reference.

    Args: as :class:`PatchEmbed`.
    """

    mutable_attr_names = ('embed_dims', )
    mutable_attr_aliases = {'out_channels': 'embed_dims'}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._init_mutable_attrs()

    def _make_projection(self) -> DynamicConv2d:
        return DynamicConv2d(
            self.in_channels,
            self.embed_dims,
            kernel_size=self.patch_size,
            stride=self.patch_size)

    def _check_mutable_attr(self, name: str, mutable: BaseMutable) -> None:
        self._check_channel_mutable(name, mutable, self.embed_dims)

    def register_mutable_attr(self, attr: str, mutable: BaseMutable
                              ) -> 'DynamicPatchEmbed':
        """Make the token width follow ``mutable`` (the projection's
        ``out_channels`` too).

        Returns:
            The op itself, so calls chain.
        """
        super().register_mutable_attr(attr, mutable)
        self.projection.register_mutable_attr('out_channels', mutable)
        return self

    @property
    def active_embed_dims(self) -> int:
        """Token width in use."""
        return self._active_count('embed_dims', self.embed_dims)

    def to_static_op(self) -> PatchEmbed:
        """A plain :class:`PatchEmbed` of the current width (copied
        weights)."""
        static = PatchEmbed(self.img_size, self.patch_size, self.in_channels,
                            self.active_embed_dims)
        convert = getattr(self.projection, 'to_static_op', None)
        # an exporter may have converted the projection already
        static.projection = convert() if callable(convert) else \
            self.projection
        static.train(self.training)
        return static


class ClsTokenPosEmbed(nn.Module):
    """Prepend a learnt class token and add an absolute position embedding.

    Args:
        num_patches (int): Patch tokens per image.
        embed_dims (int): Token width.
    """

    def __init__(self, num_patches: int, embed_dims: int) -> None:
        super().__init__()
        self.num_patches = num_patches
        self.embed_dims = embed_dims
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dims))
        self.pos_embed = nn.Parameter(
            torch.zeros(1, num_patches + 1, embed_dims))

    def get_active_params(self):
        """``(cls_token, pos_embed)`` in use."""
        return self.cls_token, self.pos_embed

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, num_patches, C)`` to ``(B, num_patches + 1, C)``."""
        cls_token, pos_embed = self.get_active_params()
        cls_tokens = cls_token.expand(x.shape[0], -1, -1)
        return torch.cat((cls_tokens, x), dim=1) + pos_embed


@MODELS.register_module()
class DynamicClsTokenPosEmbed(ClsTokenPosEmbed, DynamicMixin):
    """:class:`ClsTokenPosEmbed` whose width follows a channel mutable
    (mutable attribute ``'embed_dims'``, also ``'out_channels'``).

    Active hyper-parameter, for resource estimators:
    ``active_embed_dims``; the current choice has
    ``(num_patches + 2) * active_embed_dims`` parameters.

    Args: as :class:`ClsTokenPosEmbed`.
    """

    mutable_attr_names = ('embed_dims', )
    mutable_attr_aliases = {'out_channels': 'embed_dims'}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._init_mutable_attrs()

    def _check_mutable_attr(self, name: str, mutable: BaseMutable) -> None:
        self._check_channel_mutable(name, mutable, self.embed_dims)

    @property
    def active_embed_dims(self) -> int:
        """Token width in use."""
        return self._active_count('embed_dims', self.embed_dims)

    def get_active_params(self):
        index = self._channel_index('embed_dims', self.cls_token.device)
        return take(self.cls_token, index, 2), take(self.pos_embed, index, 2)

    def to_static_op(self) -> ClsTokenPosEmbed:
        """A plain :class:`ClsTokenPosEmbed` of the current width."""
        cls_token, pos_embed = self.get_active_params()
        static = ClsTokenPosEmbed(self.num_patches, self.active_embed_dims)
        static = static.to(cls_token.device, cls_token.dtype)
        with torch.no_grad():
            static.cls_token.copy_(cls_token)
            static.pos_embed.copy_(pos_embed)
        static.train(self.training)
        return static

