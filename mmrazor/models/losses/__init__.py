"""losses of mmrazor."""
from .base import BaseDistillLoss
from .cwd import ChannelWiseDivergence
from .dkd import DKDLoss
from .feature_losses import ATLoss, L2Loss
from .kl_divergence import KLDivergence
from .relational import AngleWiseRKD, DISTLoss, DistanceWiseRKD
from .wsld import WSLD

__all__ = [
    'BaseDistillLoss', 'KLDivergence', 'ChannelWiseDivergence', 'WSLD',
    'DKDLoss', 'L2Loss', 'ATLoss', 'DistanceWiseRKD', 'AngleWiseRKD',
    'DISTLoss'
]
