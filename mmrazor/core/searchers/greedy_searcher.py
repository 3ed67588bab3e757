"""Greedy channel slimming (AutoSlim's search)."""
from typing import Any, Callable, Dict, List, Optional, Sequence

from torch import nn

from mmrazor.registry import SEARCHERS
from .base import BaseSearcher, subnet_key


@SEARCHERS.register_module()
class GreedySearcher(BaseSearcher):
    """Start from the widest network and repeatedly drop one channel bin
    from the group whose slimming hurts the score least; record the
    channel configuration whenever FLOPs fall below a target.

    Each group has ``max_channel_bins`` bins; a group never goes below
    ``min_channel_bins``. Every step scores one candidate per group still
    slimmable (see :class:`BaseSearcher`: BatchNorm re-calibration, the
    score function, candidates split across ranks), so the search costs
    about ``groups x (max_channel_bins - min_channel_bins)`` evaluations.
    The state (current bins, results so far, the scores of the step in
    progress) is saved atomically to ``work_dir/greedy_state.json`` after
    every round of scoring, and ``resume_from`` continues without scoring
    anything twice.

    Outputs in ``work_dir``: ``subnet_{target}.yaml`` (the pruner's channel
    configuration, loadable by ``AutoSlim(channel_cfg=...)``), one per
    target, and ``greedy_results.json``.

    Args:
        algorithm (nn.Module): Has a ``pruner`` (``get_max_channel_bins``,
            ``set_channel_bins``, ``export_subnet``) and
            ``get_subnet_flops()`` (or ``estimate_resources()``).
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

    state_file = 'greedy_state.json'

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
        super().__init__(
            algorithm, dataloader, test_fn, work_dir, logger=logger,
            metrics=metrics, metric_options=metric_options,
            score_key=score_key, resume_from=resume_from,
            calib_dataloader=calib_dataloader, calib_batches=calib_batches)
        self.pruner = algorithm.pruner
        self.targets = sorted((float(t) for t in target_flops), reverse=True)
        self.max_channel_bins = max_channel_bins
        self.min_channel_bins = min_channel_bins

    def apply(self, candidate: Dict[str, int]) -> None:
        """Set the pruner's widths to ``candidate``.

        Args:
            candidate (dict): Group name -> kept bins.
        """
        self.pruner.set_channel_bins(candidate, self.max_channel_bins)

    def _record(self, target: float, flops: float) -> None:
        self.apply(self.state['bins'])
        name = f'subnet_{int(target)}.yaml'
        self.write_subnet(self.pruner.export_subnet(), [name],
                          view='channel_cfg')
        self.state['results'].append(
            dict(target=target, flops=flops, bins=dict(self.state['bins']),
                 file=name))
        self.logger.info(f'greedy search: {flops:.4g} FLOPs <= target '
                         f'{target:.4g}, channel config in {name}')

    def _step(self, slimmable: List[str]) -> None:
        """Score slimming each group by one bin, then slim the best."""
        state = self.state
        todo = [g for g in slimmable if g not in state['step_scores']]
        trials = [dict(state['bins'], **{g: state['bins'][g] - 1})
                  for g in todo]
        groups = {subnet_key(t): g for t, g in zip(trials, todo)}

        def record(result: Dict[str, Any]) -> None:
            state['step_scores'][groups[result['key']]] = result['score']

        self.score_candidates(trials, record, 'greedy step')
        best = max(slimmable, key=lambda g: (state['step_scores'][g], g))
        state['bins'][best] -= 1
        self.logger.info(
            f'greedy search: slim {best!r} to {state["bins"][best]} bins '
            f'({self.score_key} {state["step_scores"][best]:.4f})')
        state['step_scores'] = {}
        self.save_state()

    def search(self) -> List[Dict[str, Any]]:
        """Run (or resume) the greedy slimming.

        Returns:
            list[dict]: Per target: ``target``, ``flops``, ``bins``, ``file``.
        """
        if self.resume_from:
            self.state = self.load_state(
                self.resume_from, ('bins', 'results', 'step_scores',
                                   'pending'))
        else:
            full = self.pruner.get_max_channel_bins(self.max_channel_bins)
            self.state = dict(
                bins={k: int(v.sum()) for k, v in full.items()},
                results=[],
                step_scores={},
                pending=list(self.targets))
        state = self.state
        while state['pending']:
            flops = self.resources_of(state['bins'])['flops']
            while state['pending'] and flops <= state['pending'][0]:
                self._record(state['pending'].pop(0), flops)
                self.save_state()
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
            self._step(slimmable)
        self.write_json('greedy_results.json', state['results'])
        return state['results']
