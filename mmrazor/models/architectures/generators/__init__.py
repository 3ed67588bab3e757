"""Image generators of data-free distillation."""
from .base_generator import BaseGenerator
from .upsampling_generators import DAFLGenerator, ZSKTGenerator

__all__ = ['BaseGenerator', 'DAFLGenerator', 'ZSKTGenerator']
