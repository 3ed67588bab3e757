"""DetNAS: single-path one-shot search of a detector's backbone."""
from typing import Dict, Sequence, Union

from torch import nn

from mmrazor.registry import MODELS
from .spos import SPOS


@MODELS.register_module()
class DetNAS(SPOS):
    """SPOS applied to the backbone of a detector (Chen et al., 2019).

    The architecture is a detector (an mmdet model such as ``RetinaNet`` or
    ``FasterRCNN``, or an ``MMDetArchitecture`` wrapping one) whose backbone
    holds the mutables, e.g. ``SearchableShuffleNetV2`` with several
    ``out_indices`` feeding an FPN. Supernet training samples one backbone
    path per step exactly as :class:`SPOS` (the neck and head are shared by
    every path and trained at every step); the evolution search then scores
    candidates by the detector's mAP (``score_key='coco/bbox_mAP'``) while
    the resource constraints count the backbone alone, as the DetNAS paper
    budgets backbone FLOPs.

    Subnet files name module paths inside the detector
    (``backbone.layers.{stage}.{block}``) whether or not it is wrapped, so
    the YAML written by the search loads into the subnet config unchanged.

    Args:
        architecture (dict | nn.Module): The detector supernet.
        input_shape (tuple[int]): ``(C, H, W)`` of the dummy image on which
            the backbone's FLOPs are counted. Defaults to ``(3, 300, 300)``.
        backbone_name (str): Path of the searched sub-module inside the
            detector. Defaults to ``'backbone'`` (``'model.backbone'`` is
            found too when the detector is wrapped).
        **kwargs: Other arguments of :class:`SPOS` (``mutator``,
            ``fix_subnet``, ``bn_training_mode``, ``latency_lut``, ...).
    """

    def __init__(self,
                 architecture: Union[dict, nn.Module],
                 input_shape: Sequence[int] = (3, 300, 300),
                 backbone_name: str = 'backbone',
                 **kwargs) -> None:
        super().__init__(architecture, input_shape=input_shape, **kwargs)
        names = dict(self.architecture.named_modules())
        for candidate in (backbone_name, f'model.{backbone_name}'):
            if candidate in names:
                self.backbone_name = candidate
                break
        else:
            raise KeyError(
                f'DetNAS: the architecture {type(self.architecture).__name__}'
                f' has no sub-module {backbone_name!r} (backbone_name); its '
                f'top-level modules are '
                f'{[n for n, _ in self.architecture.named_children()]}')

    @property
    def backbone(self) -> nn.Module:
        """The searched backbone module."""
        return self.architecture.get_submodule(self.backbone_name)

    def estimate_resources(self) -> Dict[str, float]:
        """FLOPs (multiply-adds) and parameters of the current backbone
        path, counted on a ``(1, *input_shape)`` dummy image. The neck and
        head are not counted (nor run): the budget of DetNAS is the
        backbone's.

        Returns:
            dict: ``{'flops': ..., 'params': ...}`` of the backbone
            (+ ``'latency'`` in ms when ``latency_lut`` is given).
        """
        result = self.estimator.estimate(self.backbone)
        resources = dict(flops=float(result['flops']),
                         params=float(result['params']))
        if 'latency_lut' in result:
            resources['latency'] = float(result['latency_lut'])
        return resources
