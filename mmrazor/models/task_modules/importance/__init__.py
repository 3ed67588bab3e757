"""Importance criteria for structured pruning: a score per unit of every
channel group of a channel analysis (see :class:`BaseImportance`)."""
from .base import NORMALIZATIONS, BaseImportance, RootScores
from .bn_scale import BNScaleImportance
from .group_fisher import GroupFisherImportance
from .magnitude import L1Importance, L2Importance, WeightMagnitudeImportance
from .random_importance import RandomImportance
from .taylor import TaylorImportance, default_loss

__all__ = [
    'BaseImportance', 'RootScores', 'NORMALIZATIONS',
    'WeightMagnitudeImportance', 'L1Importance', 'L2Importance',
    'BNScaleImportance', 'TaylorImportance', 'GroupFisherImportance', 'RandomImportance',
    'default_loss'
]
