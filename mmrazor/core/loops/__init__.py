"""Loops that mmrazor adds to mmengine's."""
from .calibrated_val_loop import CalibratedValLoop
from .distill_val_loop import SingleTeacherDistillValLoop
from .quantization_loops import PTQLoop  # noqa: F401
from .self_distill_val_loop import SelfDistillValLoop
from .search_loop import (OLD_METRIC_NAMES, SearchLoop, evaluate_on_this_rank,
                          search_dataloader)

__all__ = [
    'SearchLoop', 'search_dataloader', 'evaluate_on_this_rank',
    'OLD_METRIC_NAMES', 'SingleTeacherDistillValLoop', 'CalibratedValLoop',
    'SelfDistillValLoop'
]
