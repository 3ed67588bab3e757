"""Size attributes of modules that are not layers but bake a channel count
into their forward (the number of attention heads, the width of the heads
together, the split sizes of a mixed-kernel convolution).

The tracer adds one :class:`~.tracer.LayerRecord` per such module, whose
handler is a :class:`StructureAttrHandler`: the record holds the ids of the
units the attribute counts (one id per head, or the channels that are
split), and deploying it rewrites the attributes to the kept counts. The
record owns no tensors, so it adds no parameters or MACs.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from torch import nn

from .layer_handlers import LayerHandler

#: Attribute names that hold the number of attention heads.
HEAD_ATTRS = ('num_heads', 'num_attention_heads', 'n_heads', 'n_head',
              'heads')
#: Attribute names that hold the width of all heads together.
HEAD_WIDTH_ATTRS = ('attn_dim', 'all_head_size', 'inner_dim')
#: Instance attribute listing what a deployed module had rewritten (read by
#: :func:`~mmrazor.models.task_modules.deploy.structure_of`).
PRUNED_ATTRS_KEY = '_pruned_size_attrs'


def int_attrs(module: nn.Module, names: Sequence[str],
              value: int) -> List[str]:
    """The attributes of ``module`` among ``names`` that hold ``value``.

    Args:
        module (nn.Module): The module.
        names (Sequence[str]): Candidate attribute names.
        value (int): The value looked for.

    Returns:
        list[str]: The matching names.
    """
    found = []
    for name in names:
        v = module.__dict__.get(name)
        if isinstance(v, int) and not isinstance(v, bool) and v == value:
            found.append(name)
    return found


def sizes_attr(module: nn.Module, sizes: Sequence[int]) -> Optional[str]:
    """The attribute of ``module`` that holds the list of split sizes
    ``sizes`` (e.g. ``MixedConv2d.splits``), if any.

    Args:
        module (nn.Module): The module running the split.
        sizes (Sequence[int]): The split sizes of the call.

    Returns:
        str | None: The attribute name.
    """
    for name, v in module.__dict__.items():
        if name.startswith('_') or not isinstance(v, (list, tuple)):
            continue
        if len(v) == len(sizes) and all(
                isinstance(a, int) and a == b for a, b in zip(v, sizes)):
            return name
    return None


class StructureAttrHandler(LayerHandler):
    """Rewrites size attributes of a module when its units are pruned.

    One instance per record. The record's ``in_ids`` (and ``out_ids``, the
    same array) are the units the attributes count.

    Args:
        scaled (dict[str, int]): ``attr -> channels per unit``: deploying
            sets ``attr = kept units * channels per unit`` (``num_heads``:
            1, ``attn_dim``: the head size).
        pieces (Sequence[tuple[int, int]]): For a list attribute of split
            sizes: ``(start, stop)`` of every piece among the ids.
        pieces_attr (str, optional): The list attribute (``splits``).
    """

    kind = 'structure'

    def __init__(self,
                 scaled: Optional[Dict[str, int]] = None,
                 pieces: Sequence[Tuple[int, int]] = (),
                 pieces_attr: Optional[str] = None) -> None:
        self.scaled = dict(scaled or {})
        self.pieces = list(pieces)
        self.pieces_attr = pieces_attr
        self.size_attrs = tuple(self.scaled) + (
            (pieces_attr, ) if pieces_attr else ())

    def trace(self, tracer, call, rec) -> None:  # pragma: no cover
        raise RuntimeError('structure records are added by the tracer')

    def macs(self, module: nn.Module, cin: int, cout: int,
             positions: int) -> int:
        return 0

    def params(self, module: nn.Module, cin: int, cout: int) -> int:
        return 0

    def new_values(self, keep: np.ndarray, where: str) -> Dict[str, object]:
        """The attribute values for the kept units.

        Args:
            keep (np.ndarray): Keep-flags of the units.
            where (str): How errors name the module.

        Returns:
            dict: ``attr -> new value``.

        Raises:
            RuntimeError: Every unit (or every channel of a piece) would
                be pruned.
        """
        kept = int(keep.sum())
        if not kept:
            raise RuntimeError(f'{where}: every unit of '
                               f'{list(self.size_attrs)} would be pruned')
        values: Dict[str, object] = {
            attr: kept * per
            for attr, per in self.scaled.items()
        }
        if self.pieces_attr:
            sizes = [int(keep[a:b].sum()) for a, b in self.pieces]
            if not all(sizes):
                raise RuntimeError(f'{where}: a split piece would lose all '
                                   f'its channels ({sizes})')
            values[self.pieces_attr] = sizes
        return values

    def slice(self, module: nn.Module, in_keep: np.ndarray,
              out_keep: np.ndarray, where: str) -> Optional[nn.Module]:
        for attr, value in self.new_values(in_keep, where).items():
            old = getattr(module, attr)
            if isinstance(old, tuple):
                value = tuple(value)  # type: ignore
            setattr(module, attr, value)
        done = module.__dict__.get(PRUNED_ATTRS_KEY, ())
        module.__dict__[PRUNED_ATTRS_KEY] = tuple(
            dict.fromkeys(tuple(done) + self.size_attrs))
        return None
