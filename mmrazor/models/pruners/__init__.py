"""pruners of mmrazor."""
from .build import build_pruner
from .importance_pruning import ImportancePruner, build_importance
from .ratio_pruning import EmptyGroupError, RatioPruner
from .structure_pruning import StructurePruner
from .switchable_bn import SwitchableBatchNorm2d
from .utils import (MaskHooks, dump_channel_cfg, load_channel_cfg,
                    slice_layer, stale_attributes)

__all__ = [
    'StructurePruner', 'RatioPruner', 'ImportancePruner',
    'build_importance', 'build_pruner', 'EmptyGroupError', 'SwitchableBatchNorm2d',
    'MaskHooks',
    'slice_layer', 'stale_attributes', 'dump_channel_cfg',
    'load_channel_cfg'
]
