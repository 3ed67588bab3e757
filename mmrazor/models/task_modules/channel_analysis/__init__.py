"""Channel dependency analysis: which layers' channels are pruned together."""
from .analyzer import ChannelAnalyzer, ChannelDependency, ChannelGroup
from .tracer import (ChannelAnalysisError, ChannelTracer, LayerRecord,
                     ParamRecord)
from .union_find import UnionFind

__all__ = [
    'ChannelAnalyzer', 'ChannelDependency', 'ChannelGroup',
    'ChannelAnalysisError', 'ChannelTracer', 'LayerRecord', 'ParamRecord',
    'UnionFind'
]
