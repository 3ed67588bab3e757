"""Run the searcher a config names on a trained supernet, as the
:class:`~mmrazor.core.loops.SearchLoop` stage of an mmengine run."""
from typing import Any, Dict, Optional

from mmengine.config import Config

from mmrazor.registry import LOOPS
from .runner import build_runner


def search_loop_cfg(cfg: Config,
                    resume_from: Optional[str] = None) -> Dict[str, Any]:
    """The :class:`~mmrazor.core.loops.SearchLoop` a search config asks for.

    Candidates are scored on ``val_dataloader`` with ``val_evaluator``;
    BatchNorm is re-calibrated on ``train_dataloader`` when the searcher's
    ``calib_batches`` > 0. An optional ``search_loop=dict(...)`` entry of
    the config overrides any of these. A 1.x search config, whose
    ``train_cfg`` became a ``SearchLoop`` (see
    :func:`~mmrazor.apis.config_compat.v1.translate_search_loop`), gives
    that loop as it is.

    Args:
        cfg (Config): A config holding ``searcher=dict(type=...)``.
        resume_from (str, optional): A state file to continue, or
            ``'auto'``; ``cfg.resume_search=True`` means ``'auto'``.

    Returns:
        dict: The loop's config (without ``runner``).

    Raises:
        KeyError: The config lacks ``searcher`` or a loader or evaluator
            the loop needs.
    """
    if resume_from is None and cfg.get('resume_search', False):
        resume_from = 'auto'
    train_cfg = cfg.get('train_cfg') or {}
    if 'searcher' not in cfg and isinstance(train_cfg, dict) and \
            str(train_cfg.get('type', '')).split('.')[-1] == 'SearchLoop':
        # a 1.x search config (its EvolutionSearchLoop translated)
        loop_cfg = dict(train_cfg)
        if resume_from is not None:
            loop_cfg['resume_from'] = resume_from
        return loop_cfg
    if 'searcher' not in cfg:
        raise KeyError('the config has no `searcher=dict(type=...)` entry; '
                       'see configs/nas/spos/*search*.py')
    loop_cfg = dict(
        type='SearchLoop',
        dataloader=cfg.get('val_dataloader'),
        evaluator=cfg.get('val_evaluator'),
        searcher=cfg.searcher,
        calib_dataloader=cfg.get('train_dataloader'),
        resume_from=resume_from)
    loop_cfg.update(cfg.get('search_loop', None) or {})
    for key, source in (('dataloader', 'val_dataloader'),
                        ('evaluator', 'val_evaluator')):
        if loop_cfg[key] is None:
            raise KeyError(f'the search scores candidates with `{source}` '
                           f'(or `search_loop.{key}`); the config has '
                           'neither')
    return loop_cfg


def run_search(cfg: Config,
               checkpoint: str,
               resume_from: Optional[str] = None) -> Any:
    """Load a trained supernet and run ``cfg.searcher`` on it: build the
    runner, load the checkpoint, build and run the search loop (see
    :func:`search_loop_cfg`).

    Args:
        cfg (Config): A config holding ``searcher=dict(type=...)``.
        checkpoint (str): The trained supernet.
        resume_from (str, optional): A searcher state file to continue.

    Returns:
        The searcher's result: the best subnet (evolution search) or the
        channel configs per target (greedy search).
    """
    loop_cfg = search_loop_cfg(cfg, resume_from)
    runner = build_runner(cfg)
    runner.load_checkpoint(checkpoint)
    loop = LOOPS.build(loop_cfg, default_args=dict(runner=runner))
    return loop.run()
