"""Pruning algorithms."""
from .autoslim import AutoSlim
from .ite_prune import ItePruneAlgorithm, PruneDeploySubModel
from .group_fisher import GroupFisherAlgorithm, GroupFisherSubModel
from .importance_pruning import ImportancePruningAlgorithm
from .pruned_model import pruned_model

__all__ = ['AutoSlim', 'ItePruneAlgorithm', 'PruneDeploySubModel',
           'pruned_model', 'ImportancePruningAlgorithm',
           'GroupFisherAlgorithm', 'GroupFisherSubModel']
