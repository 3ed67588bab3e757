"""Dynamic ops: layers whose channels / kernel size follow mutables."""
from .base import DynamicMixin, mask_to_index
from .bignas_conv import BigNasConv2d, OFAConv2d
from .dynamic_attention import (DynamicMultiheadAttention,
                                DynamicRelativePosition2D,
                                MultiheadAttention, RelativePosition2D)
from .dynamic_conv import DynamicConv2d
from .dynamic_embed import (ClsTokenPosEmbed, DynamicClsTokenPosEmbed,
                            DynamicPatchEmbed, PatchEmbed)
from .dynamic_layernorm import DynamicLayerNorm
from .dynamic_linear import DynamicLinear
from .dynamic_norm import DynamicBatchNorm2d
from .dynamic_sequential import DynamicSequential
from .dynamic_shortcut import DynamicShortcutLayer, ShortcutLayer
from .input_resizer import DynamicInputResizer, InputResizer
from .utils import make_conv_module_dynamic, make_mb_block_dynamic

__all__ = [
    'DynamicLayerNorm', 'DynamicPatchEmbed', 'PatchEmbed',
    'DynamicClsTokenPosEmbed', 'ClsTokenPosEmbed',
    'DynamicMultiheadAttention', 'MultiheadAttention',
    'DynamicRelativePosition2D', 'RelativePosition2D',
    'BigNasConv2d', 'OFAConv2d', 'DynamicShortcutLayer', 'ShortcutLayer',
    'DynamicMixin', 'DynamicConv2d', 'DynamicLinear', 'DynamicBatchNorm2d',
    'mask_to_index', 'DynamicSequential', 'make_conv_module_dynamic',
    'make_mb_block_dynamic', 'DynamicInputResizer', 'InputResizer'
]
