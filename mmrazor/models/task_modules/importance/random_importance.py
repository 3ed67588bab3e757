"""Random scores: the baseline every criterion should beat."""
import numpy as np

from mmrazor.registry import TASK_UTILS
from ..channel_analysis import ChannelDependency
from .base import BaseImportance, RootScores


@TASK_UTILS.register_module()
class RandomImportance(BaseImportance):
    """Uniform random scores in [0, 1) per unit, drawn from ``seed``: the
    same analysis and seed give the same scores.

    Args:
        seed (int): Seed of the generator. Defaults to 0.
        normalize (str): See :class:`BaseImportance`. Defaults to
            ``'mean'``.
    """

    def __init__(self, seed: int = 0, normalize: str = 'mean') -> None:
        super().__init__(normalize=normalize)
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise TypeError(f'RandomImportance: seed must be an int, got '
                            f'{seed!r}')
        self.seed = int(seed)

    def _root_scores(self, dependency: ChannelDependency) -> RootScores:
        roots = RootScores(dependency)
        rng = np.random.default_rng(self.seed)
        roots.values = rng.random(len(roots.values))
        roots.seen[:] = True
        return roots
