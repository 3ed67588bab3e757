"""Hooks of pruning runs: the structure so far, and the costs with
checkpoints written when they cross thresholds (MMRazor 1.x's
``PruningStructureHook`` and ``ResourceInfoHook``)."""
import json
import os.path as osp
from typing import Any, Dict, Optional, Sequence

import numpy as np
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

from mmrazor.registry import HOOKS
from mmrazor.utils import atomic_write_bytes


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
            atomic_write_bytes(
                json.dumps(algorithm.fix_subnet_1x(), indent=1).encode(),
                osp.join(runner.work_dir, f'{stem}_fix_subnet.json'))
            self.saved.append(thr)
            print_log(
                f'ResourceInfoHook: flops ratio {ratios["flops"]:.4f} <= '
                f'{thr}: saved {stem}.pth, {stem}.yaml (channel config) '
                f'and {stem}_fix_subnet.json (1.x unit names)', 'current')
        if self.early_stop and self.thresholds and \
                min(self.thresholds) in self.saved:
            runner.train_loop.stop_training = True
