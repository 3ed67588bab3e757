"""Turn plain layers and blocks into dynamic ones that follow mutables."""
from typing import Optional

from mmcv.cnn import ConvModule
from torch import nn

from mmrazor.models.mutables import BaseMutable
from mmrazor.models.mutables.mutable_channel import ChannelDerivationMixin
from .dynamic_conv import DynamicConv2d
from .dynamic_norm import DynamicBatchNorm2d


def make_conv_module_dynamic(conv_module: ConvModule,
                             in_channels: Optional[BaseMutable] = None,
                             out_channels: Optional[BaseMutable] = None,
                             kernel_size: Optional[BaseMutable] = None
                             ) -> ConvModule:
    """Replace, in place, the conv (and BatchNorm) of an mmcv
    ``ConvModule`` by dynamic ops following the given mutables.

    Args:
        conv_module (ConvModule): Built at the largest size.
        in_channels (BaseMutable, optional): Channel mutable of the input.
        out_channels (BaseMutable, optional): Channel mutable of the output
            (also drives the norm layer).
        kernel_size (BaseMutable, optional): Value mutable of the kernel.

    Returns:
        ConvModule: The same module.
    """
    conv = conv_module.conv
    if type(conv) is nn.Conv2d:
        conv = DynamicConv2d.convert_from(conv)
        conv_module.conv = conv
    elif not isinstance(conv, DynamicConv2d):
        raise TypeError('only nn.Conv2d can be made dynamic, got '
                        f'{type(conv).__name__}')
    for attr, mutable in (('in_channels', in_channels),
                          ('out_channels', out_channels),
                          ('kernel_size', kernel_size)):
        if mutable is not None:
            conv.register_mutable_attr(attr, mutable)
    if conv_module.with_norm and out_channels is not None:
        norm = conv_module.norm
        if type(norm) is nn.BatchNorm2d:
            norm = DynamicBatchNorm2d.convert_from(norm)
            setattr(conv_module, conv_module.norm_name, norm)
        elif not isinstance(norm, DynamicBatchNorm2d):
            raise TypeError('only BatchNorm2d can follow a channel mutable, '
                            f'got {type(norm).__name__}')
        norm.register_mutable_attr('num_features', out_channels)
    return conv_module


def _make_se_dynamic(se: nn.Module, hidden: BaseMutable) -> None:
    """SE convs follow the hidden width; the squeeze width follows it as
    ``make_divisible(hidden / ratio, divisor)``."""
    if not isinstance(hidden, ChannelDerivationMixin):
        raise TypeError('the hidden width of an MBBlock with SE must be a '
                        'channel mutable (or derived from one), got '
                        f'{type(hidden).__name__}')
    squeezed = hidden // (se.ratio, se.divisor)
    if len(squeezed.current_mask) != se.conv1.out_channels:
        raise ValueError(f'SE squeeze width: the mutable masks '
                         f'{len(squeezed.current_mask)} channels, the layer '
                         f'has {se.conv1.out_channels}')
    se.conv1 = DynamicConv2d.convert_from(se.conv1)
    se.conv1.register_mutable_attr('in_channels', hidden)
    se.conv1.register_mutable_attr('out_channels', squeezed)
    se.conv2 = DynamicConv2d.convert_from(se.conv2)
    se.conv2.register_mutable_attr('in_channels', squeezed)
    se.conv2.register_mutable_attr('out_channels', hidden)


def make_mb_block_dynamic(block: nn.Module,
                          in_channels: Optional[BaseMutable] = None,
                          mid_channels: Optional[BaseMutable] = None,
                          out_channels: Optional[BaseMutable] = None,
                          kernel_size: Optional[BaseMutable] = None
                          ) -> nn.Module:
    """Make an :class:`~mmrazor.models.ops.MBBlock` (built at its largest
    kernel, expand ratio and widths) follow mutables, in place.

    With squeeze-and-excitation, the SE convs follow the hidden width and
    the squeeze width is ``make_divisible(hidden / ratio, divisor)`` of the
    current hidden width.

    Args:
        block (MBBlock): The block.
        in_channels (BaseMutable, optional): Channel mutable of the input.
        mid_channels (BaseMutable, optional): Channel mutable of the hidden
            width (e.g. ``in_channels * expand_ratio``).
        out_channels (BaseMutable, optional): Channel mutable of the output.
        kernel_size (BaseMutable, optional): Value mutable of the depthwise
            kernel.

    Returns:
        MBBlock: The same block.
    """
    if block.expand_conv is not None:
        make_conv_module_dynamic(block.expand_conv, in_channels,
                                 mid_channels)
    elif mid_channels is None:
        mid_channels = in_channels
    make_conv_module_dynamic(
        block.depthwise_conv,
        mid_channels,
        mid_channels,
        kernel_size=kernel_size)
    if getattr(block, 'se', None) is not None and mid_channels is not None:
        _make_se_dynamic(block.se, mid_channels)
    make_conv_module_dynamic(block.linear_conv, mid_channels, out_channels)
    return block
