"""Quantization algorithms (the 1.x ``MMArchitectureQuant``)."""
from .mm_architecture import (MMArchitectureQuant, MMArchitectureQuantDDP,
                              load_float_checkpoint, share_submodules)

__all__ = [
    'MMArchitectureQuant', 'MMArchitectureQuantDDP', 'load_float_checkpoint',
    'share_submodules'
]
