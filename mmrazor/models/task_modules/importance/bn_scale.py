"""BN scale criterion: |gamma| of the norm layers of a group."""
from typing import Sequence

import torch

from mmrazor.registry import TASK_UTILS
from ..channel_analysis import ChannelDependency
from .base import BaseImportance, RootScores, sum_per_channel


@TASK_UTILS.register_module()
class BNScaleImportance(BaseImportance):
    """A unit's score is the sum of ``|gamma|`` (the affine ``weight``) of
    every norm layer in its group (network slimming, Liu et al. 2017): a
    residual group with several BNs adds them up.

    Groups without an affine norm layer cannot be scored and are left out
    of :meth:`scores` (an importance pruner leaves them unpruned and says
    so).

    Args:
        norm_kinds (Sequence[str]): Layer kinds (handler ``kind``) read as
            norm layers. Defaults to ``('norm', 'groupnorm', 'layernorm')``
            (BatchNorm/InstanceNorm, GroupNorm, LayerNorm).
        normalize (str): See :class:`BaseImportance`. Defaults to
            ``'mean'``.
    """

    def __init__(self,
                 norm_kinds: Sequence[str] = ('norm', 'groupnorm',
                                              'layernorm'),
                 normalize: str = 'mean') -> None:
        super().__init__(normalize=normalize)
        self.norm_kinds = tuple(norm_kinds)

    def _root_scores(self, dependency: ChannelDependency) -> RootScores:
        roots = RootScores(dependency)
        for rec in dependency.layers.values():
            if rec.kind not in self.norm_kinds:
                continue
            gamma = getattr(rec.module, 'weight', None)
            dims = rec.handler.tensor_dims(rec.module).get('weight')
            if not isinstance(gamma, torch.Tensor) or dims is None or \
                    dims[1] is None:
                continue  # not affine
            sums = sum_per_channel(gamma.detach().abs(), dims[1])
            if len(sums) != len(rec.out_ids):
                raise ValueError(f'{rec.name}.weight: {len(sums)} entries '
                                 f'but {len(rec.out_ids)} channels')
            roots.add(rec.out_ids, sums)
        return roots
