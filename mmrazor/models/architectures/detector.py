"""An mmdet detector as an mmrazor architecture."""
import copy
from typing import Any, List, Optional, Union

import torch
from mmengine.config import ConfigDict
from torch import nn

from mmrazor.registry import MODELS
from mmrazor.utils.toolboxes import require_sibling
from .classifier import BaseArchitecture


def dummy_det_samples(img: torch.Tensor) -> List[Any]:
    """Data samples carrying only the image meta information of ``img``.

    Two-stage detectors need them in ``mode='tensor'`` (their RPN turns
    anchors into proposals with the image shape); the scale factor is 1, as
    for images that were not resized.

    Args:
        img (Tensor): Images, shape ``(N, C, H, W)``.

    Returns:
        list[DetDataSample]: One sample per image.
    """
    from mmdet.structures import DetDataSample
    height, width = img.shape[-2:]
    shape = (int(height), int(width))
    meta = dict(img_shape=shape, ori_shape=shape, pad_shape=shape,
                batch_input_shape=shape, scale_factor=(1.0, 1.0))
    return [DetDataSample(metainfo=meta) for _ in range(img.shape[0])]


@MODELS.register_module()
class MMDetArchitecture(BaseArchitecture):
    """An mmdet detector (RetinaNet, Faster R-CNN, GFL, ...) as an mmrazor
    architecture.

    Losses (``mode='loss'``) and predictions (``mode='predict'``, a list of
    ``DetDataSample`` with ``pred_instances``) are the detector's own.
    :meth:`forward_dummy` returns the raw head outputs without
    post-processing, as used to count FLOPs and to trace the network.

    Needs mmdet and full mmcv with compiled ops (``bash
    tools/build_mmcv.sh``). ``model`` builds in ``_scope_='mmdet'``:
    unscoped types nested in it are mmdet's (a ``FocalLoss`` is mmdet's, not
    mmpretrain's), and those only mmrazor registers are mmrazor's (so a
    searchable mmrazor backbone fits in).

    Example:
        >>> arch = MMDetArchitecture(model=dict(
        ...     type='mmdet.RetinaNet',
        ...     backbone=dict(type='ResNet', depth=18, out_indices=(1, 2, 3)),
        ...     neck=dict(type='FPN', in_channels=[128, 256, 512],
        ...               out_channels=64, num_outs=3),
        ...     bbox_head=dict(type='RetinaHead', num_classes=10,
        ...                    in_channels=64, ...)))

    Args:
        model (dict | nn.Module): The detector or its config.
        data_preprocessor (dict | nn.Module, optional): Overrides the
            detector's data preprocessor.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 model: Union[dict, nn.Module],
                 data_preprocessor: Optional[Union[dict, nn.Module]] = None,
                 init_cfg: Optional[dict] = None) -> None:
        require_sibling('mmdet', type(self).__name__)
        if isinstance(model, dict):
            # mmdet reads its train/test settings as attributes
            # (``test_cfg.score_thr``), as a config file would give them.
            model = ConfigDict(copy.deepcopy(model))
            # Unscoped types nested in it are mmdet's (see mmrazor.registry).
            model.setdefault('_scope_', 'mmdet')
        super().__init__(
            model, data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        from mmdet.models.detectors import BaseDetector
        if not isinstance(self.model, BaseDetector):
            raise TypeError(
                f'{type(self).__name__}: `model` must be an mmdet detector '
                f'(a subclass of mmdet BaseDetector), got '
                f'{type(self.model).__module__}.{type(self.model).__name__}')

    def forward(self,
                inputs: torch.Tensor,
                data_samples: Optional[List[Any]] = None,
                mode: str = 'tensor') -> Any:
        """Run the detector; in ``'tensor'`` mode without data samples,
        meta-only samples are made from the input's shape (see
        :func:`dummy_det_samples`).

        Args:
            inputs (Tensor): Preprocessed images.
            data_samples (list[DetDataSample], optional): Annotations.
            mode (str): ``'tensor'``, ``'loss'`` or ``'predict'``.

        Returns:
            The detector's output for ``mode``.
        """
        if mode == 'tensor' and data_samples is None:
            data_samples = dummy_det_samples(inputs)
        return self.model(inputs, data_samples, mode=mode)

    def forward_dummy(self, img: torch.Tensor) -> Any:
        """Raw detector outputs: backbone, neck and head(s), no decoding,
        no NMS.

        Args:
            img (Tensor): Images, shape ``(N, C, H, W)``.

        Returns:
            tuple: What the detector's ``_forward`` returns; for a one-stage
            detector ``(cls_scores, bbox_preds)``, each a list with one
            tensor per feature level.
        """
        return self(img, None, mode='tensor')
