"""DetNAS: single-path one-shot search of a detector's backbone."""
from typing import Dict, Sequence

from mmrazor.registry import MODELS
from .spos import SPOS


@MODELS.register_module()
class DetNAS(SPOS):
    """SPOS applied to the backbone of a detector (Chen et al., 2019).

    The architecture is a detector (an mmdet model, or an
    ``MMDetArchitecture`` wrapping one) whose backbone holds the mutables,
    e.g. ``SearchableShuffleNetV2``. Training samples one backbone path per
    step exactly as :class:`SPOS`; resource constraints of the search count
    the backbone alone (as the DetNAS paper budgets backbone FLOPs), while
    the whole detector runs so the backbone sees real inputs.

    Args:
        architecture (dict | nn.Module): The detector supernet.
        input_shape (tuple[int]): ``(C, H, W)`` of the images used to count
            FLOPs. Defaults to ``(3, 300, 300)``.
        backbone_name (str): Path of the searched sub-module in the
            architecture. Defaults to ``'backbone'`` (``'model.backbone'``
            is found too when the detector is wrapped).
        **kwargs: Other arguments of :class:`SPOS`.
    """

    def __init__(self,
                 architecture,
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
            raise KeyError(f'DetNAS: the architecture has no sub-module '
                           f'{backbone_name!r}')

    def estimate_resources(self) -> Dict[str, float]:
        """FLOPs and parameters of the current backbone path.

        Returns:
            dict: ``{'flops': ..., 'params': ...}`` of the backbone.
        """
        result = self.estimator.estimate(
            self.architecture, module=self.backbone_name)
        return dict(flops=float(result['flops']),
                    params=float(result['params']))
