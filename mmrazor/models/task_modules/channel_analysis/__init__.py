"""Channel dependency analysis: which layers' channels are pruned together,
and the table of layer handlers that says how each kind of layer is traced,
masked, sliced and counted."""
from .analyzer import ChannelAnalyzer, ChannelDependency, ChannelGroup
from .layer_handlers import (ConvHandler, ConvTransposeHandler,
                             GroupNormHandler, LayerCall, LayerHandler,
                             LayerNormHandler, LinearHandler, MixingHandler,
                             NormHandler, PReLUHandler, StdConvHandler,
                             handler_of, register_layer_handler,
                             register_layer_handler_by_name, slice_tensor)
from .structure_attrs import StructureAttrHandler
from .tracer import (ChannelAnalysisError, ChannelTracer, LayerRecord,
                     ParamRecord)
from .union_find import UnionFind

__all__ = [
    'ChannelAnalyzer', 'ChannelDependency', 'ChannelGroup',
    'ChannelAnalysisError', 'ChannelTracer', 'LayerRecord', 'ParamRecord',
    'UnionFind', 'LayerHandler', 'LayerCall', 'MixingHandler',
    'LinearHandler', 'ConvHandler', 'ConvTransposeHandler', 'NormHandler',
    'GroupNormHandler', 'PReLUHandler', 'LayerNormHandler', 'handler_of',
    'register_layer_handler', 'slice_tensor', 'StdConvHandler',
    'register_layer_handler_by_name', 'StructureAttrHandler'
]
