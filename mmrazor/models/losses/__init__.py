"""losses of mmrazor."""
from .ab_loss import ABLoss
from .base import BaseDistillLoss
from .cwd import ChannelWiseDivergence
from .crd_loss import CRDLoss
from .data_free_losses import (ActivationLoss, InformationEntropyLoss,
                               OnehotLikeLoss)
from .distill_cross_entropy import DistillCrossEntropyLoss
from .dkd import DKDLoss
from .factor_transfer_loss import FTLoss
from .fbkd_loss import FBKDLoss
from .feature_losses import ATLoss, L2Loss
from .kd_soft_ce import KDSoftCELoss
from .kl_divergence import KLDivergence
from .l1_loss import L1Loss
from .mgd_loss import MGDLoss
from .ofd_loss import OFDLoss
from .pkd_loss import PKDLoss
from .relational import AngleWiseRKD, DISTLoss, DistanceWiseRKD
from .wsld import WSLD

__all__ = [
    'BaseDistillLoss', 'KLDivergence', 'ChannelWiseDivergence', 'WSLD',
    'DKDLoss', 'L2Loss', 'ATLoss', 'DistanceWiseRKD', 'AngleWiseRKD',
    'DISTLoss',
    'L1Loss', 'ABLoss', 'OFDLoss', 'FTLoss', 'PKDLoss', 'MGDLoss', 'FBKDLoss',
    'KDSoftCELoss', 'InformationEntropyLoss', 'OnehotLikeLoss',
    'ActivationLoss', 'CRDLoss', 'DistillCrossEntropyLoss'
]
