"""Classification entry points (the ``mmcls`` API of the older toolbox)."""
from .inference import init_mmcls_model
from .train import train_model

__all__ = ['train_model', 'init_mmcls_model']
