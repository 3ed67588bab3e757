"""ops of mmrazor."""
from .base import BaseOP, Identity, channel_shuffle
from .darts_series import (DartsDilConv, DartsPoolBN, DartsSepConv,
                           DartsSkipConnect, DartsZero)
from .mb_block import MBBlock, SELayer
from .shufflenet_series import ShuffleBlock, ShuffleXception

__all__ = [
    'BaseOP', 'Identity', 'channel_shuffle', 'ShuffleBlock',
    'ShuffleXception', 'DartsSepConv', 'DartsDilConv', 'DartsPoolBN',
    'DartsSkipConnect', 'DartsZero', 'MBBlock', 'SELayer'
]
