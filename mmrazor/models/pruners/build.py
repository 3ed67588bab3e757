"""Building a pruner from a config's ``pruner`` entry."""
from typing import Any, Dict, Optional, Sequence

from mmrazor.registry import MODELS
from .structure_pruning import StructurePruner


def build_pruner(pruner: Optional[Dict[str, Any]] = None,
                 input_shape: Optional[Sequence[int]] = None
                 ) -> StructurePruner:
    """The pruner of a pruning config (a :class:`StructurePruner` or a
    subclass of it, e.g. ``ImportancePruner``), with the config's
    ``input_shape``.

    Args:
        pruner (dict, optional): ``dict(type='ImportancePruner', ...)``;
            defaults to a plain :class:`StructurePruner`.
        input_shape (Sequence[int], optional): Dummy input of the analysis.

    Returns:
        StructurePruner: The pruner.

    Raises:
        TypeError: ``type`` names something that is not a
            :class:`StructurePruner` (the message names it).
    """
    cfg = dict(pruner or {})
    cfg.setdefault('type', 'StructurePruner')
    if input_shape is not None:
        cfg['input_shape'] = tuple(input_shape)
    kind = cfg['type']
    cls = kind if isinstance(kind, type) else MODELS.get(kind)
    if not (isinstance(cls, type) and issubclass(cls, StructurePruner)):
        raise TypeError(f'pruner type {kind!r} is not a StructurePruner '
                        '(e.g. StructurePruner, ImportancePruner, '
                        'RatioPruner)')
    return MODELS.build(cfg)
