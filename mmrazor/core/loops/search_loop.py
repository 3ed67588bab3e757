"""Search as a stage of an mmengine run: a loop over a searcher."""
import copy
import os.path as osp
from typing import Any, Dict, Iterable, List, Optional, Union

import torch
from mmengine.evaluator import Evaluator
from mmengine.model import is_model_wrapper
from mmengine.runner import BaseLoop, Runner
from torch import nn
from torch.utils.data import DataLoader, SequentialSampler, Subset

from mmrazor.registry import DATASETS, LOOPS, SEARCHERS
from ..utils import get_dist_info

#: Metric names of the older toolbox and their mmpretrain spelling: a
#: searcher's ``score_key`` may use either.
OLD_METRIC_NAMES = {
    'accuracy_top-1': 'accuracy/top1',
    'accuracy_top-5': 'accuracy/top5',
}


def search_dataloader(dataloader: Union[DataLoader, Dict],
                      num_samples: Optional[int] = None,
                      seed: int = 0) -> DataLoader:
    """A loader over the whole dataset, in a fixed order, on this rank.

    The searchers split candidates across ranks, not the data, so the
    config's sampler (which would give each rank a shard) and batch sampler
    are replaced by a sequential one; the rest of the config (batch size,
    workers, ``collate_fn``) is built as mmengine builds loaders.

    With ``num_samples``, a fixed random subset of that size (drawn with
    ``seed``): every candidate is then calibrated on the very same samples,
    whatever the order of evaluation, so a resumed search scores candidates
    exactly as an uninterrupted one.

    Args:
        dataloader (DataLoader | dict): A loader config (``dataset`` a
            config or a dataset), or a loader, returned as it is.
        num_samples (int, optional): Size of the subset. Defaults to the
            whole dataset.
        seed (int): Seed of the subset. Defaults to 0.

    Returns:
        DataLoader: The loader.
    """
    if isinstance(dataloader, DataLoader):
        return dataloader
    if not isinstance(dataloader, dict) or 'dataset' not in dataloader:
        raise TypeError('a search dataloader must be a DataLoader or a '
                        'dict with a `dataset` entry, got '
                        f'{type(dataloader).__name__}: {dataloader!r}')
    cfg = copy.deepcopy(dict(dataloader))
    dataset = cfg['dataset']
    if isinstance(dataset, dict):
        dataset = DATASETS.build(dataset)
        if hasattr(dataset, 'full_init'):
            dataset.full_init()
    if num_samples is not None and num_samples < len(dataset):
        generator = torch.Generator().manual_seed(seed)
        picked = torch.randperm(len(dataset), generator=generator)
        dataset = Subset(dataset, picked[:num_samples].tolist())
    for key in ('batch_sampler', 'num_batch_per_epoch'):
        cfg.pop(key, None)
    cfg.update(dataset=dataset, sampler=SequentialSampler(dataset))
    return Runner.build_dataloader(cfg)


def evaluate_on_this_rank(evaluator: Evaluator, size: int) -> Dict[str, Any]:
    """The metrics of what ``evaluator`` processed on this rank.

    In a single process this is ``evaluator.evaluate(size)``. Launched
    distributed, the ranks score different candidates, so each metric's
    results are computed where they are, without mmengine's gathering
    across ranks (which would mix candidates).

    Args:
        evaluator (Evaluator): Holds the processed results.
        size (int): Length of the dataset.

    Returns:
        dict: Metric name (with the metric's prefix) -> value.
    """
    if get_dist_info()[1] == 1:
        return evaluator.evaluate(size)
    metrics: Dict[str, Any] = {}
    for metric in evaluator.metrics:
        values = metric.compute_metrics(metric.results[:size])
        metric.results.clear()
        for name, value in values.items():
            name = f'{metric.prefix}/{name}' if metric.prefix else name
            if name in metrics:
                raise ValueError(f'two metrics of the evaluator give {name!r}'
                                 '; give them different prefixes')
            metrics[name] = value
    return metrics


@LOOPS.register_module()
class SearchLoop(BaseLoop):
    """Run a searcher (:class:`~mmrazor.core.searchers.BaseSearcher`) as a
    stage of an mmengine run, scoring candidates with mmengine's evaluator.

    Each candidate is scored by a validation pass like mmengine's
    ``ValLoop``: ``model.val_step`` on every batch of ``dataloader``,
    ``evaluator.process``, then ``evaluator.evaluate`` (see
    :meth:`evaluate`). The metric names of the older toolbox
    (``accuracy_top-1``) are added next to mmpretrain's
    (``accuracy/top1``).

    Launched distributed, the searcher splits the candidates across ranks
    and each rank scores its candidate on the whole validation set (see
    :func:`search_dataloader`), so a score is the same for any number of
    ranks and BatchNorm re-calibration is not repeated on every rank.

    Args:
        runner (Runner): The runner; its model is the supernet, its
            ``work_dir`` receives the results.
        dataloader (DataLoader | dict): Validation data (e.g. the config's
            ``val_dataloader``).
        evaluator (Evaluator | dict | list): The metrics (e.g. the config's
            ``val_evaluator``).
        searcher (dict): ``dict(type='EvolutionSearcher', ...)``: the
            searcher and its arguments (the loop gives ``algorithm``,
            ``dataloader``, ``test_fn``, ``work_dir``, ``logger``,
            ``calib_dataloader`` and ``resume_from``).
        calib_dataloader (DataLoader | dict, optional): Training data for
            BatchNorm re-calibration, used when the searcher's
            ``calib_batches`` > 0: a fixed random subset of
            ``calib_batches x batch_size`` samples.
        calib_seed (int, optional): Seed of that subset. Defaults to the
            config's ``randomness.seed``, or 0.
        resume_from (str, optional): A state file of the searcher to
            continue, or ``'auto'``: the searcher's state file in the work
            dir when there is one.
    """

    def __init__(self,
                 runner: Runner,
                 dataloader: Union[DataLoader, Dict],
                 evaluator: Union[Evaluator, Dict, List],
                 searcher: Dict[str, Any],
                 calib_dataloader: Union[DataLoader, Dict, None] = None,
                 calib_seed: Optional[int] = None,
                 resume_from: Optional[str] = None) -> None:
        if not isinstance(searcher, dict) or 'type' not in searcher:
            raise TypeError('SearchLoop: `searcher` must be a dict with a '
                            f'`type`, e.g. dict(type="EvolutionSearcher"), '
                            f'got {searcher!r}')
        super().__init__(runner, search_dataloader(dataloader))
        self.evaluator = evaluator if isinstance(evaluator, Evaluator) else \
            runner.build_evaluator(evaluator)
        metainfo = getattr(self.dataloader.dataset, 'metainfo', None)
        if metainfo is not None:
            self.evaluator.dataset_meta = metainfo

        searcher = dict(searcher)
        searcher_type = searcher.pop('type')
        searcher_cls = SEARCHERS.get(searcher_type)
        if searcher_cls is None:
            raise KeyError(f'unknown searcher type {searcher_type!r} in '
                           f'`searcher`; registered: '
                           f'{sorted(SEARCHERS.module_dict)}')
        calib_batches = searcher.get('calib_batches', 0)
        if isinstance(calib_batches, bool) or not isinstance(
                calib_batches, int) or calib_batches < 0:
            raise ValueError('searcher.calib_batches must be an integer >= 0'
                             f', got {calib_batches!r}')
        calib_loader = None
        if calib_batches > 0:
            if calib_dataloader is None:
                raise ValueError(
                    f'searcher calib_batches={calib_batches} needs a '
                    'calibration loader: give SearchLoop calib_dataloader '
                    '(run_search uses the config\'s train_dataloader)')
            if calib_seed is None:
                randomness = getattr(runner, 'cfg', {}).get('randomness', {})
                calib_seed = randomness.get('seed') or 0
            batch_size = calib_dataloader.batch_size if isinstance(
                calib_dataloader, DataLoader) else calib_dataloader.get(
                    'batch_size', 1)
            calib_loader = search_dataloader(calib_dataloader,
                                             calib_batches * batch_size,
                                             calib_seed)
        if resume_from == 'auto':
            path = osp.join(runner.work_dir, searcher_cls.state_file)
            resume_from = path if osp.isfile(path) else None
        model = runner.model
        self.searcher = searcher_cls(
            algorithm=model.module if is_model_wrapper(model) else model,
            dataloader=self.dataloader,
            test_fn=self.evaluate,
            work_dir=runner.work_dir,
            logger=runner.logger,
            calib_dataloader=calib_loader,
            resume_from=resume_from,
            **searcher)

    @torch.no_grad()
    def evaluate(self, model: nn.Module, dataloader: Iterable = None,
                 **unused: Any) -> Dict[str, Any]:
        """Score the model's current subnet on this rank: ``val_step`` on
        every batch, ``evaluator.process``, then the metrics.

        Args:
            model (nn.Module): The (unwrapped) supernet.
            dataloader (Iterable, optional): Defaults to the loop's.
            **unused: Older keyword arguments (``metrics``), ignored: the
                evaluator decides the metrics.

        Returns:
            dict: Metric name -> value, plus the older names of
            :data:`OLD_METRIC_NAMES`.
        """
        dataloader = self.dataloader if dataloader is None else dataloader
        model.eval()
        for data_batch in dataloader:
            outputs = model.val_step(data_batch)
            self.evaluator.process(data_samples=outputs, data_batch=data_batch)
        metrics = evaluate_on_this_rank(self.evaluator,
                                        len(dataloader.dataset))
        for old, new in OLD_METRIC_NAMES.items():
            if new in metrics and old not in metrics:
                metrics[old] = metrics[new]
        return metrics

    # A search config of MMRazor 1.x runs its search as `train_cfg` (with
    # `tools/train.py` and `load_from`): mmengine's runner and hooks then
    # read these attributes of its train loop.
    @property
    def max_epochs(self) -> int:
        """Epochs of the searcher (1 for a searcher without epochs)."""
        return int(getattr(self.searcher, 'max_epoch', 1))

    @property
    def max_iters(self) -> int:
        """No training iterations: 0."""
        return 0

    @property
    def epoch(self) -> int:
        """No training epochs: 0."""
        return 0

    @property
    def iter(self) -> int:
        """No training iterations: 0."""
        return 0

    def run(self) -> Any:
        """Run (or resume) the search.

        Returns:
            The searcher's result (the best subnet for evolution search, the
            list of channel configs for greedy search).
        """
        self.runner.logger.info(
            f'search: {type(self.searcher).__name__} scoring on '
            f'{len(self.dataloader.dataset)} samples per candidate, results '
            f'in {self.runner.work_dir}')
        return self.searcher.search()
