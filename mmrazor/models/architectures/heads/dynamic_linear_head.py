"""A linear classification head whose input width follows the backbone."""
from typing import Any, Optional

import torch
from mmpretrain.models.heads import LinearClsHead

from mmrazor.models.mutables import BaseMutable, DerivedMutable
from mmrazor.models.mutables.mutable_channel.base_mutable_channel import \
    first_k_mask
from mmrazor.registry import MODELS
from ..dynamic_ops import DynamicLinear


def channel_mutable_of(mutable: BaseMutable, width: int) -> BaseMutable:
    """``mutable`` as a channel mutable over ``width`` channels.

    A channel mutable (one with ``current_mask``) is returned as it is; a
    value mutable choosing a channel count becomes a derived mutable
    keeping the first ``current_choice`` channels.

    Args:
        mutable (BaseMutable): The width of a backbone's output.
        width (int): The full number of channels.

    Returns:
        BaseMutable: A mutable with a mask of ``width`` entries.
    """
    if hasattr(mutable, 'current_mask'):
        return mutable
    choices = getattr(mutable, 'choices', None)
    if not choices or not all(isinstance(c, int) for c in choices):
        raise TypeError(
            f'{type(mutable).__name__} cannot set a layer width: it is '
            f'neither a channel mutable nor a value mutable of ints '
            f'(choices {choices!r})')
    if max(choices) > width:
        raise ValueError(f'the mutable chooses up to {max(choices)} '
                         f'channels but the layer has {width}')

    def mask() -> torch.Tensor:
        return first_k_mask(width, int(mutable.current_choice))

    return DerivedMutable(
        choice_fn=lambda: int(mutable.current_choice),
        mask_fn=mask,
        source_mutables=[mutable])


@MODELS.register_module()
class DynamicLinearClsHead(LinearClsHead):
    """mmpretrain's ``LinearClsHead`` whose ``fc`` is a
    :class:`DynamicLinear`: its input width follows the mutable of the
    backbone's output width (see :meth:`connect_with_backbone`), so every
    subnet of a weight-sharing supernet shares one classifier.

    Args:
        num_classes (int): Number of classes.
        in_channels (int): Input width of the largest subnet.
        init_cfg (dict, optional): Defaults to a normal initialisation of
            the linear layer (std 0.01).
        **kwargs: Passed on to ``LinearClsHead`` (``loss``, ``topk``,
            ...).
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 init_cfg: Optional[dict] = dict(
                     type='Normal', layer='DynamicLinear', std=0.01),
                 **kwargs: Any) -> None:
        super().__init__(
            num_classes=num_classes,
            in_channels=in_channels,
            init_cfg=init_cfg,
            **kwargs)
        self.fc = DynamicLinear(self.in_channels, self.num_classes)

    def connect_with_backbone(self, backbone_output_mutable: BaseMutable
                              ) -> None:
        """Make the input width of ``fc`` follow the backbone's output.

        Args:
            backbone_output_mutable (BaseMutable): A channel mutable over
                ``in_channels`` channels, or a value mutable choosing the
                width.
        """
        self.fc.register_mutable_attr(
            'in_features',
            channel_mutable_of(backbone_output_mutable, self.in_channels))
