"""Iterative pruning while training: every few iterations the least
important units go, until a cost target is reached; training goes on
(fine-tuning) with the masks fixed."""
from typing import Any, Dict, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmengine.logging import MessageHub, print_log
from mmengine.optim import OptimWrapper
from torch import nn

from mmrazor.models.pruners import build_pruner
from mmrazor.models.task_modules.estimators import channel_costs
from mmrazor.registry import MODELS
from ..base import BaseAlgorithm

TARGET_KEYS = ('flops', 'params')


@MODELS.register_module()
class ImportancePruningAlgorithm(BaseAlgorithm):
    """Prune ``architecture`` during training by an importance criterion.

    Every ``interval`` training iterations :meth:`ImportancePruner.
    prune_step` removes the ``step_units`` least important chunks of
    units (scores per cost when the pruner has ``cost_normalization``); a
    data-driven criterion (Taylor, Group Fisher) reads the forward and
    backward passes of the iterations in between, and its statistics start
    anew after each step. Once the costs reach ``target`` no more units go
    and training fine-tunes the pruned model; without a target, pruning
    goes on as long as training does (Group Fisher's original schedule:
    take the checkpoint written when the costs cross a threshold, see
    :class:`~mmrazor.core.hooks.ResourceInfoHook`).

    The masks are part of the algorithm's ``state_dict`` (extra state), so
    checkpoints resume where pruning stood; :meth:`export_subnet` gives
    the channel config ``tools/deploy_subnet.py`` reads.

    Args:
        architecture (dict | nn.Module): The model to prune.
        pruner (dict): An ``ImportancePruner`` config.
        target (dict, optional): ``dict(flops=0.5)`` and/or ``params``:
            kept fractions of the unpruned model's costs.
        interval (int): Training iterations between two pruning steps.
            Defaults to 10.
        step_units (int): Chunks removed per step. Defaults to 1.
        input_shape (Sequence[int], optional): Dummy input of the
            analysis; defaults to the pruner's.
        data_preprocessor (dict | nn.Module, optional): See
            :class:`BaseAlgorithm`.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 architecture: Union[dict, nn.Module],
                 pruner: Dict[str, Any],
                 target: Optional[Dict[str, float]] = None,
                 interval: int = 10,
                 step_units: int = 1,
                 input_shape: Optional[Sequence[int]] = None,
                 data_preprocessor: Optional[Union[dict, nn.Module]] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(architecture, data_preprocessor, init_cfg)
        if not isinstance(interval, int) or interval < 1:
            raise ValueError(f'{type(self).__name__}: interval={interval!r} '
                             'must be a positive int')
        if not isinstance(step_units, int) or step_units < 1:
            raise ValueError(f'{type(self).__name__}: step_units='
                             f'{step_units!r} must be a positive int')
        self.target = dict(target or {})
        for key, value in self.target.items():
            if key not in TARGET_KEYS:
                raise ValueError(f'{type(self).__name__}: target key {key!r}'
                                 f' is not one of {list(TARGET_KEYS)}')
            if not 0 < value <= 1:
                raise ValueError(f'{type(self).__name__}: target {key}='
                                 f'{value!r} is not in (0, 1]')
        self.interval = interval
        self.step_units = step_units
        cfg = dict(pruner)
        cfg.setdefault('type', 'ImportancePruner')
        tool = build_pruner(cfg, input_shape)
        if not hasattr(tool, 'prune_step'):
            raise TypeError(f'{type(self).__name__}: pruner type '
                            f'{cfg["type"]!r} has no importance criterion')
        tool.prepare_from_supernet(self.architecture)
        # not a sub-module: the pruner holds no weights of its own
        object.__setattr__(self, 'pruner', tool)
        self.pruned_iters = 0
        self._base = channel_costs(tool._model, tool.dependency, {})
        self._done = False
        self._ratios: Optional[Tuple[int, Dict[str, float]]] = None

    # ------------------------------------------------------------ state
    def get_extra_state(self) -> Dict[str, Any]:
        """The masks and the iteration count, saved in checkpoints."""
        return dict(
            masks={
                name: torch.from_numpy(mask.copy())
                for name, mask in self.pruner._masks.items()
            },
            pruned_iters=self.pruned_iters)

    def set_extra_state(self, state: Dict[str, Any]) -> None:
        """Restore the masks of a checkpoint."""
        masks = {
            name: np.asarray(value.cpu().numpy(), dtype=bool)
            for name, value in state.get('masks', {}).items()
        }
        unknown = sorted(set(masks) - set(self.pruner._masks))
        if unknown:
            raise KeyError(f'{type(self).__name__}: the checkpoint masks '
                           f'channel groups the model does not have: '
                           f'{unknown[:5]}')
        self.pruner.set_subnet(masks)
        self.pruned_iters = int(state.get('pruned_iters', 0))
        self._done = self._reached()

    # ------------------------------------------------------------ costs
    def cost_ratios(self) -> Dict[str, float]:
        """FLOPs and parameters of the current masks, as fractions of the
        unpruned model's (computed again only after a mask changed: the
        pruner's change counter tells)."""
        pruner = self.pruner
        version = pruner._changes[0]
        if self._ratios is None or self._ratios[0] != version:
            now = channel_costs(pruner._model, pruner.dependency,
                                pruner._masks)
            self._ratios = (version, {
                key: now[key] / self._base[key] if self._base[key] else 1.0
                for key in ('flops', 'params')
            })
        return dict(self._ratios[1])

    def _reached(self) -> bool:
        if not self.target:
            return False
        ratios = self.cost_ratios()
        return all(ratios[k] <= v for k, v in self.target.items())

    def export_subnet(self) -> Dict[str, Dict[str, Any]]:
        """The current subnet as a channel config (``subnet.yaml``)."""
        return self.pruner.export_subnet()

    def fix_subnet_1x(self) -> Dict[str, int]:
        """The current subnet as MMRazor 1.x pruning configs write a
        ``fix_subnet``: 1.x unit name (``'backbone.conv1_(0, 64)_64'``) ->
        kept channels, for every prunable group (the input of
        ``GroupFisherDeploySubModel`` / ``PruneDeploySubModel``)."""
        pruner = self.pruner
        names = pruner.unit_names_1x()
        groups = pruner.channel_groups
        return {
            names[name]: int(unit.current_mask.sum()) *
            pruner._unit_size(groups[name])
            for name, unit in pruner.units.items()
        }

    # ------------------------------------------------------------ train
    def _gathering(self):
        criterion = self.pruner.importance
        if self._done or not hasattr(criterion, 'observe'):
            import contextlib
            return contextlib.nullcontext()
        return criterion.observe()

    def train_step(self, data: Union[dict, tuple, list],
                   optim_wrapper: OptimWrapper) -> Dict[str, torch.Tensor]:
        """One training iteration (statistics gathered), then a pruning
        step every ``interval`` iterations until the target is reached.

        Args:
            data (dict | tuple | list): A batch.
            optim_wrapper (OptimWrapper): The optimizer wrapper.

        Returns:
            dict: The log variables, with the current ``flops_ratio`` and
            ``params_ratio``.
        """
        with self._gathering():
            log_vars = super().train_step(data, optim_wrapper)
        self.pruned_iters += 1
        if not self._done and self.pruned_iters % self.interval == 0:
            self._prune_now()
        for key, value in self.cost_ratios().items():
            log_vars[f'{key}_ratio'] = torch.tensor(value)
        return log_vars

    def _prune_now(self) -> None:
        criterion = self.pruner.importance
        if hasattr(criterion, 'all_reduce'):
            criterion.all_reduce()
        removed = self.pruner.prune_step(self.step_units)
        if hasattr(criterion, 'reset'):
            criterion.reset()
        ratios = self.cost_ratios()
        if not removed:
            self._done = True
            print_log(f'{type(self).__name__}: no group can shrink any '
                      'more; pruning stops', 'current')
            return
        self._done = self._reached()
        hub = MessageHub.get_current_instance()
        hub.update_info('pruning/flops_ratio', ratios['flops'])
        text = ', '.join(f'{g} -{n}' for g, n in removed)
        print_log(
            f'{type(self).__name__}: iter {self.pruned_iters}: removed '
            f'{text}; flops {ratios["flops"]:.4f}, params '
            f'{ratios["params"]:.4f}' +
            (f' (target {self.target})' if self.target else ''), 'current')
        if self._done:
            print_log(f'{type(self).__name__}: target {self.target} '
                      'reached; fine-tuning goes on with fixed masks',
                      'current')
