"""Classification entry points (the ``mmcls`` API of the older toolbox)."""
from .train import train_model

__all__ = ['train_model']
