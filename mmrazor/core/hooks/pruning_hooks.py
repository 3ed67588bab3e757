"""Hooks of pruning runs: the structure so far, and the costs with
checkpoints written when they cross thresholds (MMRazor 1.x's
``PruningStructureHook`` and ``ResourceInfoHook``)."""
import os.path as osp
from typing import Any, Dict, Optional, Sequence

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

from mmrazor.registry import HOOKS
from mmrazor.structures import dump_subnet


def _pruning_algorithm(runner) -> Optional[Any]:
    """The runner's model if it prunes by importance (has ``pruner`` and
    ``cost_ratios``), else None."""
    model = runner.model.module if is_model_wrapper(
        runner.model) else runner.model
    if hasattr(model, 'pruner') and hasattr(model, 'cost_ratios'):
        return model
    return None


@HOOKS.register_module()
class PruningStructureHook(Hook):
    """Log the kept units of every channel group of a pruning algorithm
    (``ImportancePruningAlgorithm``, ``GroupFisherAlgorithm``).

    Args:
        by_epoch (bool): Log after every ``interval`` epochs (else
            iterations). Defaults to True.
        interval (int): Defaults to 1.
    """

    priority = 'LOW'

    def __init__(self, by_epoch: bool = True, interval: int = 1) -> None:
        self.by_epoch = by_epoch
        self.interval = max(1, int(interval))

    def _log(self, runner) -> None:
        algorithm = _pruning_algorithm(runner)
        if algorithm is None:
            return
        kept = {
            name: f'{int(np.count_nonzero(unit.current_mask))}/'
            f'{unit.num_units}'
            for name, unit in algorithm.pruner.units.items()
        }
        ratios = algorithm.cost_ratios()
        print_log(
            f'pruning structure (flops {ratios["flops"]:.4f}, params '
            f'{ratios["params"]:.4f}): {kept}', 'current')

    def after_train_epoch(self, runner) -> None:
        if self.by_epoch and self.every_n_epochs(runner, self.interval):
            self._log(runner)

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: Any = None,
                         outputs: Optional[Dict] = None) -> None:
        if not self.by_epoch and self.every_n_train_iters(
                runner, self.interval):
            self._log(runner)


@HOOKS.register_module()
class ResourceInfoHook(Hook):
    """Log the FLOPs and parameter ratios of a pruning algorithm, and write
    a checkpoint (``flops_{thr:.2f}.pth``), its channel config
    (``flops_{thr:.2f}.yaml``, for ``tools/deploy_subnet.py``) and its 1.x
    ``fix_subnet`` (``flops_{thr:.2f}_fix_subnet.json``, for
    ``GroupFisherDeploySubModel``) the first time the FLOPs ratio falls to
    each threshold of ``save_ckpt_thr``.

    Costs come from the channel analysis (multiply-accumulates at the
    analysis input), so ``demo_input`` of MMRazor 1.x is accepted and not
    needed.

    Args:
        interval (int): Iterations between two checks. Defaults to 10.
        demo_input (dict, optional): Accepted for 1.x configs.
        save_ckpt_thr (Sequence[float]): FLOPs ratios at which to save.
            Defaults to ``[0.5]``.
        early_stop (bool): Stop training once the lowest threshold is
            saved. Defaults to False (1.x: training goes on).
    """

    priority = 'VERY_LOW'

    def __init__(self,
                 interval: int = 10,
                 demo_input: Optional[Dict[str, Any]] = None,
                 save_ckpt_thr: Sequence[float] = (0.5, ),
                 early_stop: bool = False) -> None:
        self.interval = max(1, int(interval))
        self.demo_input = demo_input
        for thr in save_ckpt_thr:
            if not 0 < float(thr) <= 1:
                raise ValueError(f'ResourceInfoHook: save_ckpt_thr value '
                                 f'{thr!r} is not in (0, 1]')
        self.thresholds = sorted({float(t) for t in save_ckpt_thr},
                                 reverse=True)
        self.early_stop = early_stop
        self.saved = []

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: Any = None,
                         outputs: Optional[Dict] = None) -> None:
        if not self.every_n_train_iters(runner, self.interval):
            return
        algorithm = _pruning_algorithm(runner)
        if algorithm is None:
            return
        ratios = algorithm.cost_ratios()
        runner.message_hub.update_scalar('train/flops_ratio',
                                         ratios['flops'])
        runner.message_hub.update_scalar('train/params_ratio',
                                         ratios['params'])
        for thr in self.thresholds:
            if thr in self.saved or ratios['flops'] > thr:
                continue
            stem = f'flops_{thr:.2f}'
            runner.save_checkpoint(
                runner.work_dir, filename=f'{stem}.pth', save_optimizer=False)
            from mmrazor.models.pruners import dump_channel_cfg
            dump_channel_cfg(algorithm.export_subnet(),
                             osp.join(runner.work_dir, f'{stem}.yaml'))
            dump_subnet(algorithm.fix_subnet_1x(),
                        osp.join(runner.work_dir, f'{stem}_fix_subnet.json'),
                        view='flat')
            self.saved.append(thr)
            print_log(
                f'ResourceInfoHook: flops ratio {ratios["flops"]:.4f} <= '
                f'{thr}: saved {stem}.pth, {stem}.yaml (channel config) '
                f'and {stem}_fix_subnet.json (1.x unit names)', 'current')
        if self.early_stop and self.thresholds and \
                min(self.thresholds) in self.saved:
            runner.train_loop.stop_training = True


@HOOKS.register_module()
class BNSparsityHook(Hook):
    """Network slimming's sparsity training (Liu et al., ICCV 2017): an
    L1 penalty ``penalty * sum |gamma|`` on the scale of every batch norm,
    applied as its sub-gradient ``penalty * sign(gamma)`` added to the
    gradient of each scale during the backward pass. Scales of unneeded
    channels are driven to zero, which ``BNScaleImportance`` then prunes.

    The gradient hooks are installed before training and removed after
    it; they work with any optimizer wrapper, AMP and DDP (every process
    adds the same term, which averaging keeps).

    Args:
        penalty (float): The L1 coefficient (1e-4 to 1e-5 in the paper).
        norm_types (Sequence[str]): Class names of the norm layers whose
            ``weight`` is penalised. Defaults to the batch norms.
    """

    priority = 'NORMAL'

    def __init__(self,
                 penalty: float = 1e-4,
                 norm_types: Sequence[str] = ('BatchNorm1d', 'BatchNorm2d',
                                              'BatchNorm3d', 'SyncBatchNorm',
                                              'SwitchableBatchNorm2d')
                 ) -> None:
        if isinstance(penalty, bool) or not float(penalty) >= 0:
            raise ValueError(f'BNSparsityHook: penalty={penalty!r} must be '
                             'a number >= 0')
        self.penalty = float(penalty)
        self.norm_types = tuple(norm_types)
        self._handles: list = []

    def penalise(self, model) -> int:
        """Install the gradient hooks on ``model``'s norm scales.

        Args:
            model (nn.Module): The model (wrappers are looked through).

        Returns:
            int: How many scales are penalised.
        """
        self.remove()
        model = model.module if is_model_wrapper(model) else model
        for module in model.modules():
            weight = getattr(module, 'weight', None)
            if type(module).__name__ not in self.norm_types or \
                    weight is None or not weight.requires_grad:
                continue

            def add_l1(grad, weight=weight):
                return grad + self.penalty * torch.sign(weight.detach())

            self._handles.append(weight.register_hook(add_l1))
        return len(self._handles)

    def remove(self) -> None:
        """Remove the gradient hooks."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def before_train(self, runner) -> None:
        count = self.penalise(runner.model)
        print_log(f'BNSparsityHook: L1 penalty {self.penalty:g} on '
                  f'{count} norm scales', 'current')

    def after_train(self, runner) -> None:
        self.remove()
