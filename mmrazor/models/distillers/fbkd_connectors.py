"""Student and teacher connectors of FBKD ("Improve Object Detection with
Feature-based Knowledge Distillation", Zhang & Ma, ICLR 2021)."""
from typing import Dict, Optional, Tuple

import torch
from mmcv.cnn import NonLocal2d
from torch import nn

from mmrazor.registry import MODELS
from .connectors import BaseConnector


class NonLocal2dMaxpoolNstride(NonLocal2d):
    """Non-local block whose keys and values can be sub-sampled more.

    With ``sub_sample=True``, ``g`` and ``phi`` are max-pooled by 2 (mmcv's
    ``NonLocal2d``) and then by ``maxpool_stride``, as in MMRazor 1.x (the
    relation matrix of a ``H x W`` map is then
    ``HW x HW / (2 * maxpool_stride)^2``).

    Args:
        in_channels (int): Channels of the input.
        reduction (int): Channel reduction of the embeddings. Defaults to 2.
        conv_cfg (dict): Convolution config. Defaults to ``Conv2d``.
        norm_cfg (dict): Norm after ``conv_out``. Defaults to BN.
        mode (str): ``'gaussian'``, ``'concatenation'``,
            ``'embedded_gaussian'`` or ``'dot_product'``.
        sub_sample (bool): Sub-sample keys and values. Defaults to False.
        maxpool_stride (int): Extra max-pooling of the sub-sampling.
            Defaults to 2.
        zeros_init (bool): Zero-initialise the output norm (the block
            starts as a residual identity). Defaults to True.
        **kwargs: Further arguments of mmcv's ``NonLocal2d``.
    """

    def __init__(self,
                 in_channels: int,
                 reduction: int = 2,
                 conv_cfg: Dict = dict(type='Conv2d'),
                 norm_cfg: Dict = dict(type='BN'),
                 mode: str = 'embedded_gaussian',
                 sub_sample: bool = False,
                 maxpool_stride: int = 2,
                 zeros_init: bool = True,
                 **kwargs) -> None:
        super().__init__(
            in_channels=in_channels,
            sub_sample=sub_sample,
            conv_cfg=conv_cfg,
            norm_cfg=norm_cfg,
            reduction=reduction,
            mode=mode,
            zeros_init=zeros_init,
            **kwargs)
        if sub_sample:
            extra_pool = nn.MaxPool2d(kernel_size=maxpool_stride)
            self.g = nn.Sequential(self.g, extra_pool)
            if self.mode == 'gaussian':
                self.phi = extra_pool
            else:
                self.phi = nn.Sequential(self.phi, extra_pool)


def attention_masks(feature: torch.Tensor, spatial_T: float,
                    channel_T: float) -> Tuple[torch.Tensor, torch.Tensor]:
    """FBKD's spatial and channel attention masks.

    ``A^S = HW softmax(mean_c |F| / T_s)`` over the ``H x W`` positions and
    ``A^C = C softmax(mean_hw |F| / T_c)`` over the channels.

    Args:
        feature (Tensor): Shape ``(N, C, H, W)``.
        spatial_T (float): Temperature of the spatial mask.
        channel_T (float): Temperature of the channel mask.

    Returns:
        tuple[Tensor, Tensor]: Spatial mask ``(N, 1, H, W)`` and channel
        mask ``(N, C, 1, 1)``.
    """
    n, c, h, w = feature.shape
    magnitude = feature.abs()
    spatial = magnitude.mean(dim=1).reshape(n, h * w)
    spatial_mask = (spatial / spatial_T).softmax(dim=1) * (h * w)
    channel = magnitude.mean(dim=(2, 3))
    channel_mask = (channel / channel_T).softmax(dim=1) * c
    return (spatial_mask.reshape(n, 1, h, w),
            channel_mask.reshape(n, c, 1, 1))


def check_feature(feature: torch.Tensor, in_channels: int,
                  who: str) -> None:
    """Raise a clear error unless ``feature`` is ``(N, in_channels, H, W)``.

    Args:
        feature (Tensor): The recorded feature.
        in_channels (int): The connector's ``in_channels``.
        who (str): The connector's name, for the message.
    """
    if feature.dim() != 4 or feature.shape[1] != in_channels:
        raise ValueError(f'{who}: expected a feature of shape (N, '
                         f'{in_channels}, H, W) (in_channels), got '
                         f'{tuple(feature.shape)}')


class FBKDConnector(BaseConnector):
    """What both sides of FBKD share: the attention masks of the feature
    and a non-local block (stored as ``<side>_non_local``, the 1.x
    attribute names, so 1.x checkpoints keep their keys).

    Args:
        in_channels (int): Channels of the feature.
        reduction (int): Channel reduction of the non-local block.
            Defaults to 2.
        conv_cfg (dict): Convolution config of the non-local block.
        norm_cfg (dict): Norm config of the non-local output.
        mode (str): Non-local pairwise function. Defaults to
            ``'dot_product'``.
        sub_sample (bool): Sub-sample the non-local keys and values.
            Defaults to False.
        maxpool_stride (int): Extra sub-sampling stride. Defaults to 2.
        zeros_init (bool): Zero-initialise the non-local output norm.
            Defaults to True.
        spatial_T (float): Temperature of the spatial mask. Defaults to 0.5.
        channel_T (float): Temperature of the channel mask. Defaults to 0.5.
        init_cfg (dict, optional): Initialisation config.
        **kwargs: Further arguments of the non-local block.
    """

    #: ``'student'`` or ``'teacher'`` (names the non-local block)
    side = ''

    def __init__(self,
                 in_channels: int,
                 reduction: int = 2,
                 conv_cfg: Dict = dict(type='Conv2d'),
                 norm_cfg: Dict = dict(type='BN'),
                 mode: str = 'dot_product',
                 sub_sample: bool = False,
                 maxpool_stride: int = 2,
                 zeros_init: bool = True,
                 spatial_T: float = 0.5,
                 channel_T: float = 0.5,
                 init_cfg: Optional[Dict] = None,
                 **kwargs) -> None:
        super().__init__(init_cfg)
        self.in_channels = in_channels
        self.spatial_T = spatial_T
        self.channel_T = channel_T
        self.add_module(
            f'{self.side}_non_local',
            NonLocal2dMaxpoolNstride(
                in_channels=in_channels,
                reduction=reduction,
                conv_cfg=conv_cfg,
                norm_cfg=norm_cfg,
                mode=mode,
                sub_sample=sub_sample,
                maxpool_stride=maxpool_stride,
                zeros_init=zeros_init,
                **kwargs))

    def masks(self, feature: torch.Tensor
              ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Check ``feature`` and return its spatial and channel masks (see
        :func:`attention_masks`)."""
        check_feature(feature, self.in_channels, type(self).__name__)
        return attention_masks(feature, self.spatial_T, self.channel_T)


@MODELS.register_module()
class FBKDStudentConnector(FBKDConnector):
    """Student side of FBKD: attention masks, adaptation layers and the
    non-local relation. Arguments are those of :class:`FBKDConnector`.
    """

    side = 'student'

    def __init__(self, in_channels: int, *args, **kwargs) -> None:
        super().__init__(in_channels, *args, **kwargs)
        self.channel_wise_adaptation = nn.Linear(in_channels, in_channels)
        self.spatial_wise_adaptation = nn.Conv2d(1, 1, 3, padding=1)
        self.adaptation_layers = nn.Conv2d(in_channels, in_channels, 1)
        self.non_local_adaptation = nn.Conv2d(in_channels, in_channels, 1)

    def forward_train(self, feature: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Compute the student's FBKD terms.

        Args:
            feature (Tensor): Student feature ``(N, C, H, W)``.

        Returns:
            tuple[Tensor]: Six tensors, in this order (the 1.x layout that
            ``FBKDLoss(s_input, t_input)`` reads):

            0. ``s_spatial_mask`` ``(N, 1, H, W)``: spatial attention mask;
            1. ``s_channel_mask`` ``(N, C, 1, 1)``: channel attention mask;
            2. ``s_channel_pool_adapt`` ``(N, C)``: ``channel_wise_adaptation``
               of the spatially averaged feature;
            3. ``s_spatial_pool_adapt`` ``(N, 1, H, W)``:
               ``spatial_wise_adaptation`` of the channel-averaged feature;
            4. ``s_relation_adapt`` ``(N, C, H, W)``: ``non_local_adaptation``
               of the non-local block's output;
            5. ``s_feat_adapt`` ``(N, C, H, W)``: ``adaptation_layers`` of the
               feature.
        """
        spatial_mask, channel_mask = self.masks(feature)
        channel_pool_adapt = self.channel_wise_adaptation(
            feature.mean(dim=(2, 3)))
        spatial_pool_adapt = self.spatial_wise_adaptation(
            feature.mean(dim=1, keepdim=True))
        relation_adapt = self.non_local_adaptation(
            self.student_non_local(feature))
        feat_adapt = self.adaptation_layers(feature)
        return (spatial_mask, channel_mask, channel_pool_adapt,
                spatial_pool_adapt, relation_adapt, feat_adapt)


@MODELS.register_module()
class FBKDTeacherConnector(FBKDConnector):
    """Teacher side of FBKD: attention masks, pooled feature and the
    non-local relation. Arguments are those of :class:`FBKDConnector`.
    """

    side = 'teacher'

    def forward_train(self, feature: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Compute the teacher's FBKD terms.

        Args:
            feature (Tensor): Teacher feature ``(N, C, H, W)``.

        Returns:
            tuple[Tensor]: Five tensors, in this order (the 1.x layout that
            ``FBKDLoss(s_input, t_input)`` reads):

            0. ``t_spatial_mask`` ``(N, 1, H, W)``: spatial attention mask;
            1. ``t_channel_mask`` ``(N, C, 1, 1)``: channel attention mask;
            2. ``t_spatial_pool`` ``(N, 1, H, W)``: channel-averaged feature;
            3. ``t_relation`` ``(N, C, H, W)``: the non-local block's output;
            4. ``t_feat`` ``(N, C, H, W)``: the feature itself.
        """
        spatial_mask, channel_mask = self.masks(feature)
        spatial_pool = feature.mean(dim=1, keepdim=True)
        relation = self.teacher_non_local(feature)
        return (spatial_mask, channel_mask, spatial_pool, relation, feature)
