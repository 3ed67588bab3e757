"""Run the searcher a config names on a trained supernet."""
import os.path as osp
from typing import Any, Callable, Dict, Optional

import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.model import is_model_wrapper
from mmengine.structures import BaseDataElement
from torch.utils.data import DataLoader, Subset

from mmrazor.registry import DATASETS, explain_unknown_types
from .runner import build_runner

#: Metric names of the older toolbox and their mmpretrain spelling.
OLD_METRIC_NAMES = {
    'accuracy_top-1': 'accuracy/top1',
    'accuracy_top-5': 'accuracy/top5',
}


def _plain_loader(loader_cfg: dict,
                  num_samples: Optional[int] = None,
                  seed: int = 0) -> DataLoader:
    """A loader over the whole dataset on this rank (candidates are split
    across ranks, not the data), in a fixed order.

    With ``num_samples``, a fixed random subset of that size (drawn with
    ``seed``): every candidate is then calibrated on the very same batches,
    whatever the order of evaluation, so a resumed search scores candidates
    exactly as an uninterrupted one.
    """
    dataset = loader_cfg['dataset']
    if isinstance(dataset, dict):
        dataset = DATASETS.build(dataset)
    if num_samples is not None and num_samples < len(dataset):
        generator = torch.Generator().manual_seed(seed)
        picked = torch.randperm(len(dataset), generator=generator)
        dataset = Subset(dataset, picked[:num_samples].tolist())
    return DataLoader(
        dataset,
        batch_size=loader_cfg.get('batch_size', 64),
        shuffle=False,
        num_workers=loader_cfg.get('num_workers', 0),
        collate_fn=pseudo_collate)


def make_test_fn(evaluator) -> Callable[..., Dict[str, float]]:
    """A ``test_fn(model, dataloader) -> metrics`` from an mmengine
    evaluator, evaluating on this rank alone (no gathering across ranks).

    Args:
        evaluator (mmengine.evaluator.Evaluator): Its metrics are used.

    Returns:
        Callable: The test function.
    """

    @torch.no_grad()
    def test_fn(model, dataloader, **unused) -> Dict[str, float]:
        model.eval()
        for batch in dataloader:
            outputs = model.val_step(batch)
            samples = [
                o.to_dict() if isinstance(o, BaseDataElement) else o
                for o in outputs
            ]
            for metric in evaluator.metrics:
                metric.process(batch, samples)
        results: Dict[str, float] = {}
        for metric in evaluator.metrics:
            values = metric.compute_metrics(metric.results)
            metric.results.clear()
            prefix = f'{metric.prefix}/' if metric.prefix else ''
            results.update({prefix + k: v for k, v in values.items()})
        for old, new in OLD_METRIC_NAMES.items():
            if new in results and old not in results:
                results[old] = results[new]
        return results

    return test_fn


def run_search(cfg: Config,
               checkpoint: str,
               resume_from: Optional[str] = None) -> Dict[str, Any]:
    """Load a trained supernet and run ``cfg.searcher`` on it.

    The supernet is the config's ``model``; candidates are scored with
    ``val_dataloader`` / ``val_evaluator``, and BatchNorm is re-calibrated
    on ``train_dataloader`` when the searcher's ``calib_batches`` > 0.

    Args:
        cfg (Config): A config holding ``searcher=dict(type=...)``.
        checkpoint (str): The trained supernet.
        resume_from (str, optional): A ``search_state.json`` to continue.

    Returns:
        dict: The best subnet.
    """
    from mmrazor.core.searchers import SEARCHERS
    if 'searcher' not in cfg:
        raise KeyError('the config has no `searcher=dict(type=...)` entry; '
                       'see configs/nas/spos/*search*.py')
    runner = build_runner(cfg)
    runner.load_checkpoint(checkpoint)
    model = runner.model.module if is_model_wrapper(
        runner.model) else runner.model
    seed = cfg.get('randomness', {}).get('seed', 0) or 0
    searcher_cfg = dict(cfg.searcher)
    searcher_type = searcher_cfg.pop('type')
    with explain_unknown_types():
        val_loader = _plain_loader(cfg.val_dataloader)
        evaluator = runner.build_evaluator(cfg.val_evaluator)
    evaluator.dataset_meta = getattr(val_loader.dataset, 'metainfo', None)
    calib_loader = None
    calib_batches = searcher_cfg.get('calib_batches', 0)
    if calib_batches > 0:
        batch_size = cfg.train_dataloader.get('batch_size', 64)
        calib_loader = _plain_loader(cfg.train_dataloader,
                                     calib_batches * batch_size, seed)
    searcher_cls = SEARCHERS.get(searcher_type)
    if searcher_cls is None:
        raise KeyError(f'unknown searcher type {searcher_type!r}; '
                       f'registered: {sorted(SEARCHERS.module_dict)}')
    if resume_from is None and cfg.get('resume_search', False):
        state = osp.join(cfg.work_dir, 'search_state.json')
        resume_from = state if osp.isfile(state) else None
    searcher = searcher_cls(
        algorithm=model,
        dataloader=val_loader,
        test_fn=make_test_fn(evaluator),
        work_dir=cfg.work_dir,
        logger=runner.logger,
        calib_dataloader=calib_loader,
        resume_from=resume_from,
        **searcher_cfg)
    return searcher.search()
