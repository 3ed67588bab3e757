"""Greedy channel slimming (AutoSlim's search)."""
import json
import os
import os.path as osp
from typing import Any, Callable, Dict, List, Optional, Sequence

from mmengine.logging import MMLogger
from torch import nn

from mmrazor.structures import dump_subnet
from mmrazor.utils import atomic_write_bytes
from ..utils import recalibrate_bn
from .registry import SEARCHERS

STATE_FILE = 'greedy_state.json'


@SEARCHERS.register_module()
class GreedySearcher:
    """Start from the widest network and repeatedly drop one channel bin
    from the group whose slimming hurts the score least; record the
    channel configuration whenever FLOPs fall below a target.

    Each group has ``max_channel_bins`` bins; a group never goes below
    ``min_channel_bins``. Every step evaluates one candidate per group still
    slimmable (optionally after BatchNorm re-calibration), so the search
    costs about ``groups x (max_channel_bins - min_channel_bins)``
    evaluations. The state (current bins, results so far, the candidates of
    the step in progress) is saved atomically after every evaluation, and
    ``resume_from`` continues without re-evaluating anything.

    Outputs in ``work_dir``: ``subnet_{target}.yaml`` (the pruner's channel
    configuration, loadable by ``AutoSlim(channel_cfg=...)``), one per
    target, and ``greedy_results.json``.

    Args:
        algorithm (nn.Module): Has a ``pruner`` (``get_max_channel_bins``,
            ``set_channel_bins``, ``export_subnet``) and
            ``get_subnet_flops()``.
        dataloader (Iterable): Validation data for ``test_fn``.
        target_flops (Sequence[float]): FLOPs targets (any order).
        test_fn (Callable): ``test_fn(algorithm, dataloader) -> dict``.
        work_dir (str): Where results go.
        logger (logging.Logger, optional): Defaults to mmengine's current.
        max_channel_bins (int): Bins per group at full width.
        min_channel_bins (int): Fewest bins a group keeps. Defaults to 1.
        metrics, metric_options: Passed to ``test_fn`` when not None.
        score_key (str): The metric to maximise.
            Defaults to ``'accuracy_top-1'``.
        resume_from (str, optional): A ``greedy_state.json`` to continue.
        calib_dataloader (Iterable, optional): Training data for BN
            re-calibration of each candidate.
        calib_batches (int): Batches for re-calibration; 0 disables.
    """

    def __init__(self,
                 algorithm: nn.Module,
                 dataloader: Any,
                 target_flops: Sequence[float],
                 test_fn: Callable[..., Dict[str, float]],
                 work_dir: str,
                 logger: Any = None,
                 max_channel_bins: int = 8,
                 min_channel_bins: int = 1,
                 metrics: Any = None,
                 metric_options: Any = None,
                 score_key: str = 'accuracy_top-1',
                 resume_from: Optional[str] = None,
                 calib_dataloader: Any = None,
                 calib_batches: int = 0) -> None:
        if not target_flops:
            raise ValueError('GreedySearcher needs at least one target_flops')
        if not 1 <= min_channel_bins <= max_channel_bins:
            raise ValueError(
                f'need 1 <= min_channel_bins ({min_channel_bins}) <= '
                f'max_channel_bins ({max_channel_bins})')
        self.algorithm = algorithm
        self.pruner = algorithm.pruner
        self.dataloader = dataloader
        self.targets = sorted((float(t) for t in target_flops), reverse=True)
        self.test_fn = test_fn
        self.work_dir = work_dir
        self.logger = logger or MMLogger.get_current_instance()
        self.max_channel_bins = max_channel_bins
        self.min_channel_bins = min_channel_bins
        self.test_kwargs = {
            k: v
            for k, v in (('metrics', metrics),
                         ('metric_options', metric_options)) if v is not None
        }
        self.score_key = score_key
        self.resume_from = resume_from
        self.calib_dataloader = calib_dataloader
        self.calib_batches = calib_batches
        os.makedirs(work_dir, exist_ok=True)

    def _score(self, bins: Dict[str, int]) -> float:
        self.pruner.set_channel_bins(bins, self.max_channel_bins)
        if self.calib_dataloader is not None and self.calib_batches > 0:
            recalibrate_bn(self.algorithm, self.calib_dataloader,
                           self.calib_batches)
        metrics = self.test_fn(self.algorithm, self.dataloader,
                               **self.test_kwargs)
        if self.score_key not in metrics:
            raise KeyError(f'score_key {self.score_key!r} is not among the '
                           f'metrics of test_fn: {sorted(metrics)}')
        return float(metrics[self.score_key])

    def _save(self, state: Dict[str, Any]) -> None:
        atomic_write_bytes(
            json.dumps(state, indent=1).encode(),
            osp.join(self.work_dir, STATE_FILE))

    def _record(self, state: Dict[str, Any], target: float,
                flops: float) -> None:
        self.pruner.set_channel_bins(state['bins'], self.max_channel_bins)
        subnet = self.pruner.export_subnet()
        name = f'subnet_{int(target)}.yaml'
        dump_subnet(subnet, osp.join(self.work_dir, name), view='channel_cfg')
        state['results'].append(
            dict(target=target, flops=flops, bins=dict(state['bins']),
                 file=name))
        self.logger.info(f'greedy search: {flops:.4g} FLOPs <= target '
                         f'{target:.4g}, channel config in {name}')

    def search(self) -> List[Dict[str, Any]]:
        """Run (or resume) the greedy slimming.

        Returns:
            list[dict]: Per target: ``target``, ``flops``, ``bins``, ``file``.
        """
        if self.resume_from:
            with open(self.resume_from) as f:
                state = json.load(f)
        else:
            full = self.pruner.get_max_channel_bins(self.max_channel_bins)
            state = dict(
                bins={k: int(v.sum()) for k, v in full.items()},
                results=[],
                step_scores={},
                pending=list(self.targets))
        while state['pending']:
            self.pruner.set_channel_bins(state['bins'],
                                         self.max_channel_bins)
            flops = float(self.algorithm.get_subnet_flops())
            while state['pending'] and flops <= state['pending'][0]:
                self._record(state, state['pending'].pop(0), flops)
                self._save(state)
            if not state['pending']:
                break
            slimmable = [
                g for g, b in state['bins'].items()
                if b > self.min_channel_bins
            ]
            if not slimmable:
                raise RuntimeError(
                    f'greedy search: every group is at min_channel_bins='
                    f'{self.min_channel_bins} with {flops:.4g} FLOPs, above '
                    f'the targets {state["pending"]}')
            for group in slimmable:
                if group in state['step_scores']:
                    continue  # evaluated before a crash
                trial = dict(state['bins'])
                trial[group] -= 1
                state['step_scores'][group] = self._score(trial)
                self._save(state)
            best = max(slimmable,
                       key=lambda g: (state['step_scores'][g], g))
            state['bins'][best] -= 1
            self.logger.info(
                f'greedy search: slim {best!r} to {state["bins"][best]} bins '
                f'({self.score_key} {state["step_scores"][best]:.4f})')
            state['step_scores'] = {}
            self._save(state)
        atomic_write_bytes(
            json.dumps(state['results'], indent=1).encode(),
            osp.join(self.work_dir, 'greedy_results.json'))
        return state['results']
