"""An mmseg segmentor as an mmrazor architecture."""
import copy
from typing import Optional, Union

import torch
from mmengine.config import ConfigDict
from torch import nn

from mmrazor.registry import MODELS
from mmrazor.utils.toolboxes import require_sibling
from .classifier import BaseArchitecture, _sum_outputs


@MODELS.register_module()
class MMSegArchitecture(BaseArchitecture):
    """An mmseg segmentor (``EncoderDecoder`` such as PSPNet, DeepLabV3,
    ...) as an mmrazor architecture.

    Losses (``mode='loss'``, including those of auxiliary heads) and
    predictions (``mode='predict'``, a list of ``SegDataSample`` with
    ``pred_sem_seg`` and ``seg_logits``) are the segmentor's own.
    :meth:`forward_dummy` returns the decode head's logits (at the decode
    head's resolution, before resizing to the image), as used to count
    FLOPs.

    Needs mmsegmentation and full mmcv with compiled ops (``bash
    tools/build_mmcv.sh``). ``model`` builds in ``_scope_='mmseg'``:
    unscoped types nested in it are mmseg's (a ``CrossEntropyLoss`` is
    mmseg's, not mmpretrain's), those only mmrazor registers mmrazor's.

    Example:
        >>> arch = MMSegArchitecture(model=dict(
        ...     type='mmseg.EncoderDecoder',
        ...     backbone=dict(type='ResNetV1c', depth=18, ...),
        ...     decode_head=dict(type='PSPHead', num_classes=11, ...)))

    Args:
        model (dict | nn.Module): The segmentor or its config.
        data_preprocessor (dict | nn.Module, optional): Overrides the
            segmentor's data preprocessor.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 model: Union[dict, nn.Module],
                 data_preprocessor: Optional[Union[dict, nn.Module]] = None,
                 init_cfg: Optional[dict] = None) -> None:
        require_sibling('mmseg', type(self).__name__)
        if isinstance(model, dict):
            # mmseg reads its train/test settings as attributes
            # (``test_cfg.score_thr``), as a config file would give them.
            model = ConfigDict(copy.deepcopy(model))
            # Unscoped types nested in it are mmseg's (see mmrazor.registry).
            model.setdefault('_scope_', 'mmseg')
        super().__init__(
            model, data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        from mmseg.models.segmentors import BaseSegmentor
        if not isinstance(self.model, BaseSegmentor):
            raise TypeError(
                f'{type(self).__name__}: `model` must be an mmseg segmentor '
                f'(a subclass of mmseg BaseSegmentor), got '
                f'{type(self.model).__module__}.{type(self.model).__name__}')

    def forward_dummy(self, img: torch.Tensor) -> torch.Tensor:
        """Segmentation logits without post-processing.

        Args:
            img (Tensor): Images, shape ``(N, C, H, W)``.

        Returns:
            Tensor: The decode head's logits, ``(N, num_classes, h, w)``
            with ``h, w`` the resolution of the decode head (for PSPNet 1/8
            of the image).
        """
        return self.model(img, None, mode='tensor')

    def cal_pseudo_loss(self, pseudo_img: torch.Tensor) -> torch.Tensor:
        """Sum of the decode head's logits and of every auxiliary head's.

        Auxiliary heads only act in training, but they read backbone
        features and hold parameters, so tracing includes them.

        Args:
            pseudo_img (Tensor): A batch of (random) images.

        Returns:
            Tensor: A scalar that depends on every head.
        """
        total = _sum_outputs(self.forward_dummy(pseudo_img))
        if getattr(self.model, 'with_auxiliary_head', False):
            feats = self.model.extract_feat(pseudo_img)
            heads = self.model.auxiliary_head
            if not isinstance(heads, nn.ModuleList):
                heads = [heads]
            for head in heads:
                total = total + _sum_outputs(head.forward(feats))
        return total
