"""Necks of mmrazor's search spaces."""
from .squeeze_mean_pooling import SqueezeMeanPoolingWithDropout

__all__ = ['SqueezeMeanPoolingWithDropout']
