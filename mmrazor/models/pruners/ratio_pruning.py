"""RatioPruner: a random width ratio per channel group."""
import logging
import random
from typing import Any, Dict, Optional, Sequence

from mmengine.logging import print_log
from torch import nn

from mmrazor.registry import MODELS
from .structure_pruning import StructurePruner


class EmptyGroupError(ValueError, AssertionError):
    """A width ratio keeps no channel of a group.

    A ``ValueError`` (a bad value), and an ``AssertionError`` as the
    original RatioPruner raised it.
    """


@MODELS.register_module()
class RatioPruner(StructurePruner):
    """A :class:`StructurePruner` whose widths are ratios from a list.

    Every group keeps ``round(ratio * num_units)`` units (snapped to what
    its guard-rails allow) for a ratio drawn from ``ratios``; the widest and
    narrowest subnets use the largest and smallest ratio.

    As in the original RatioPruner, a ratio that would keep no unit of a
    group (``round(ratio * num_units) == 0``, e.g. 1/8 of a 3-channel
    squeeze-excite layer) is an error, not silently widened: applying it
    (:meth:`set_min_channel`, sampling, :meth:`set_ratio`) raises
    :class:`EmptyGroupError` naming the groups, and
    :meth:`prepare_from_supernet` already warns about them.

    Args:
        ratios (Sequence[float]): Candidate width ratios in ``[0, 1]``,
            e.g. ``[2 / 12, 3 / 12, ..., 12 / 12]`` (a ratio of 0 empties
            every group: accepted, as by the original, and refused when
            applied).
        **kwargs: See :class:`StructurePruner`.
    """

    def __init__(self, ratios: Sequence[float], **kwargs) -> None:
        super().__init__(**kwargs)
        ratios = sorted(float(r) for r in ratios)
        if not ratios or not all(0 <= r <= 1 for r in ratios):
            raise ValueError(f'RatioPruner: ratios must be non-empty and in '
                             f'[0, 1], got {ratios}')
        self.ratios = ratios

    def prepare_from_supernet(self,
                              supernet: nn.Module,
                              input_shape: Optional[Sequence[int]] = None,
                              inputs: Any = None) -> None:
        """Analyse ``supernet`` (see :class:`StructurePruner`) and warn
        when the smallest ratio keeps no unit of some group (applying that
        ratio then raises :class:`EmptyGroupError`).

        Args:
            supernet (nn.Module): The model to prune.
            input_shape (Sequence[int], optional): Dummy input shape.
            inputs (Any): A real input instead.
        """
        super().prepare_from_supernet(supernet, input_shape, inputs)
        ratio = self.ratios[0]
        empty = [(name, self._unit(name).num_units) for name in self._groups
                 if round(ratio * self._unit(name).num_units) < 1]
        if empty:
            print_log(self._empty_message(ratio, empty), 'current',
                      logging.WARNING)

    @staticmethod
    def _empty_message(ratio: float, empty: Sequence) -> str:
        groups = ', '.join(f'{name!r} ({n} units)' for name, n in empty)
        return (f'RatioPruner: ratio {ratio:g} keeps no unit of {groups}: '
                'output channels should be a positive integer, not zero. '
                'Raise the smallest ratio, or leave these layers unpruned '
                '(except_start_keys / excluded).')

    def _ratio_units(self, name: str, ratio: float) -> int:
        """The units group ``name`` keeps at ``ratio``.

        Args:
            name (str): A group name.
            ratio (float): A width ratio.

        Returns:
            int: ``round(ratio * num_units)`` snapped to an allowed count.

        Raises:
            EmptyGroupError: The ratio keeps no unit of the group.
        """
        unit = self._unit(name)
        count = round(ratio * unit.num_units)
        if count < 1:
            raise EmptyGroupError(
                self._empty_message(ratio, [(name, unit.num_units)]))
        return unit.snap(count)

    def _ratio_subnet(self, ratio: float) -> Dict[str, int]:
        empty = [(name, self._unit(name).num_units) for name in self._groups
                 if round(ratio * self._unit(name).num_units) < 1]
        if empty:  # name every group at once
            raise EmptyGroupError(self._empty_message(ratio, empty))
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
            ratio (float): In ``[0, 1]``.
            groups (Sequence[str], optional): Defaults to all groups.
        """
        subnet = self._ratio_subnet(ratio)
        if groups is not None:
            subnet = {k: v for k, v in subnet.items() if k in set(groups)}
        self.set_subnet(subnet)
