"""RatioPruner: a random width ratio per channel group."""
import random
from typing import Dict, Optional, Sequence

from mmrazor.registry import MODELS
from .structure_pruning import StructurePruner


@MODELS.register_module()
class RatioPruner(StructurePruner):
    """A :class:`StructurePruner` whose widths are ratios from a list.

    Every group keeps ``ratio * num_units`` units (snapped to what its
    guard-rails allow) for a ratio drawn from ``ratios``; the widest and
    narrowest subnets use the largest and smallest ratio.

    Args:
        ratios (Sequence[float]): Candidate width ratios in ``(0, 1]``,
            e.g. ``[2 / 12, 3 / 12, ..., 12 / 12]``.
        **kwargs: See :class:`StructurePruner`.
    """

    def __init__(self, ratios: Sequence[float], **kwargs) -> None:
        super().__init__(**kwargs)
        ratios = sorted(float(r) for r in ratios)
        if not ratios or not all(0 < r <= 1 for r in ratios):
            raise ValueError(f'RatioPruner: ratios must be non-empty and in '
                             f'(0, 1], got {ratios}')
        self.ratios = ratios

    def _ratio_units(self, name: str, ratio: float) -> int:
        unit = self._unit(name)
        return unit.snap(max(1, round(ratio * unit.num_units)))

    def _ratio_subnet(self, ratio: float) -> Dict[str, int]:
        return {name: self._ratio_units(name, ratio) for name in self._groups}

    def sample_choice_of(self, key: str) -> int:
        """The units of group ``key`` at a ratio drawn from ``ratios``."""
        return self._ratio_units(key, random.choice(self.ratios))

    @property
    def max_choices(self) -> Dict[str, int]:
        """Every group at the largest ratio."""
        return self._ratio_subnet(self.ratios[-1])

    @property
    def min_choices(self) -> Dict[str, int]:
        """Every group at the smallest ratio."""
        return self._ratio_subnet(self.ratios[0])

    def set_ratio(self, ratio: float, groups: Optional[Sequence[str]] = None
                  ) -> None:
        """Every group (or only ``groups``) at one ratio (uniform thinning).

        Args:
            ratio (float): In ``(0, 1]``.
            groups (Sequence[str], optional): Defaults to all groups.
        """
        subnet = self._ratio_subnet(ratio)
        if groups is not None:
            subnet = {k: v for k, v in subnet.items() if k in set(groups)}
        self.set_subnet(subnet)
