"""Task wrappers: a model of a sibling toolbox seen as an mmrazor
architecture."""
from typing import Any, List, Optional, Union

import torch
from mmengine.model import BaseModel
from torch import nn

from mmrazor.registry import MODELS


class BaseArchitecture(BaseModel):
    """Wraps a task model (classifier, detector, segmentor) built from a
    config of any registry scope.

    The wrapped model is ``self.model``; its data preprocessor is shared, and
    :meth:`forward` passes inputs, data samples and mode straight through,
    so losses and predictions are those of the wrapped model.

    Args:
        model (dict | nn.Module): The model or its config, e.g.
            ``dict(type='mmcls.ImageClassifier', ...)``.
        data_preprocessor (dict | nn.Module, optional): Overrides the wrapped
            model's data preprocessor.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 model: Union[dict, nn.Module],
                 data_preprocessor: Optional[Union[dict, nn.Module]] = None,
                 init_cfg: Optional[dict] = None) -> None:
        if isinstance(model, dict):
            model = MODELS.build(model)
        elif not isinstance(model, nn.Module):
            raise TypeError(f'{type(self).__name__}: `model` must be a config '
                            f'dict or an nn.Module, got {type(model)}')
        if data_preprocessor is None:
            data_preprocessor = getattr(model, 'data_preprocessor', None)
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.model = model

    def forward(self,
                inputs: torch.Tensor,
                data_samples: Optional[List[Any]] = None,
                mode: str = 'tensor') -> Any:
        """Run the wrapped model.

        Args:
            inputs (Tensor): Preprocessed inputs.
            data_samples (list, optional): Annotations of the inputs.
            mode (str): ``'tensor'``, ``'loss'`` or ``'predict'``.

        Returns:
            The wrapped model's output for ``mode``.
        """
        return self.model(inputs, data_samples, mode=mode)

    def forward_dummy(self, img: torch.Tensor) -> Any:
        """Forward without annotations or post-processing (for FLOPs).

        Args:
            img (Tensor): A batch of (preprocessed) images.

        Returns:
            Tensor | tuple[Tensor]: The raw network outputs.
        """
        return self.model(img, None, mode='tensor')

    def cal_pseudo_loss(self, pseudo_img: torch.Tensor) -> torch.Tensor:
        """A scalar that depends on every output of the network.

        Used for tracing: back-propagating it reaches every layer that
        contributes to the outputs.

        Args:
            pseudo_img (Tensor): A batch of (random) images.

        Returns:
            Tensor: The sum of all raw outputs.
        """
        return _sum_outputs(self.forward_dummy(pseudo_img))


def _sum_outputs(out: Any) -> torch.Tensor:
    if isinstance(out, torch.Tensor):
        return out.sum()
    if isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, (list, tuple)) and out:
        return sum(_sum_outputs(o) for o in out)
    raise TypeError(f'cannot sum network outputs of type {type(out)}')


@MODELS.register_module()
class MMClsArchitecture(BaseArchitecture):
    """An mmpretrain (mmcls) classifier as an mmrazor architecture.

    Example:
        >>> arch = MMClsArchitecture(model=dict(
        ...     type='mmcls.ImageClassifier',
        ...     backbone=dict(type='ResNet', depth=18),
        ...     neck=dict(type='GlobalAveragePooling'),
        ...     head=dict(type='LinearClsHead', num_classes=1000,
        ...               in_channels=512)))

    Args:
        model (dict | nn.Module): The classifier or its config.
        data_preprocessor (dict | nn.Module, optional): Overrides the
            classifier's data preprocessor.
        init_cfg (dict, optional): Initialisation config.
    """

    def forward_dummy(self, img: torch.Tensor) -> torch.Tensor:
        """Class scores without post-processing (backbone, neck, head).

        Args:
            img (Tensor): Images, shape ``(N, C, H, W)``.

        Returns:
            Tensor: The head's output (class scores) or, for a classifier
            without head, its features.
        """
        return self.model(img, None, mode='tensor')
