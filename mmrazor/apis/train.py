"""``train_model``: the older toolbox's training entry point on the Runner."""
import copy
import time
import warnings
from typing import Any, Dict, Optional, Sequence, Union

import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner
from torch import nn
from torch.utils.data import Dataset

from mmrazor.registry import explain_unknown_types
from mmrazor.utils import init_distributed, prepare_distributed_cfg

_RUNNER_KEYS = ('optim_wrapper', 'param_scheduler', 'train_cfg',
                'default_hooks', 'custom_hooks', 'env_cfg', 'randomness',
                'log_processor', 'log_level', 'visualizer', 'load_from',
                'resume', 'default_scope', 'auto_scale_lr')


class _SaveMetaHook(Hook):
    """Adds the caller's ``meta`` to every checkpoint (as the older API)."""

    priority = 'LOW'

    def __init__(self, meta: Dict[str, Any]) -> None:
        self.meta = meta

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint.setdefault('meta', {}).update(self.meta)


def train_model(model: nn.Module,
                dataset: Union[Dataset, dict, Sequence[Union[Dataset, dict]]],
                cfg: Config,
                distributed: bool = False,
                validate: bool = False,
                timestamp: Optional[str] = None,
                device: str = 'cuda',
                meta: Optional[dict] = None) -> Runner:
    """Train ``model`` on ``dataset`` with mmengine's Runner.

    The signature is that of the older toolbox; the work is done by the
    Runner, so hooks, checkpoints, resuming, AMP and DDP behave as in
    ``tools/train.py``.

    Args:
        model (nn.Module): The model (an mmengine ``BaseModel``).
        dataset (Dataset | dict | list): The training set, built or as a
            config; of a list, the first entry is the training set.
        cfg (Config): The config: ``work_dir``, ``train_dataloader`` (its
            dataset is replaced by ``dataset``), ``optim_wrapper``,
            ``train_cfg`` and, with ``validate``, ``val_dataloader``,
            ``val_cfg`` and ``val_evaluator``.
        distributed (bool): Train with the ``pytorch`` launcher (the process
            group is created from the torchrun environment if needed).
        validate (bool): Evaluate during training.
        timestamp (str, optional): Names the run's log folder.
        device (str): ``'cuda'`` or ``'cpu'``. mmengine puts the model on
            CUDA whenever it is available; ``'cuda'`` without CUDA falls back
            to the CPU with a warning.
        meta (dict, optional): Saved into every checkpoint's ``meta``.

    Returns:
        Runner: The runner after training.
    """
    if device == 'cuda' and not torch.cuda.is_available():
        warnings.warn('train_model: CUDA is not available, training on CPU')
    elif device == 'cpu' and torch.cuda.is_available():
        raise ValueError('train_model(device="cpu") with CUDA visible: hide '
                         'the GPUs with CUDA_VISIBLE_DEVICES="" to train on '
                         'the CPU')
    cfg = copy.deepcopy(cfg)
    if isinstance(dataset, (list, tuple)):
        dataset = dataset[0]
    launcher = 'pytorch' if distributed else 'none'
    prepare_distributed_cfg(cfg, launcher)
    if distributed:
        init_distributed(launcher, **cfg.env_cfg.get('dist_cfg', {}))

    train_loader = copy.deepcopy(cfg.train_dataloader)
    train_loader['dataset'] = dataset
    kwargs = {key: cfg[key] for key in _RUNNER_KEYS if key in cfg}
    if validate:
        kwargs.update(
            val_dataloader=cfg.val_dataloader,
            val_cfg=cfg.get('val_cfg', dict()),
            val_evaluator=cfg.val_evaluator)
    custom_hooks = list(kwargs.pop('custom_hooks', []) or [])
    if meta:
        custom_hooks.append(_SaveMetaHook(meta))
    experiment = timestamp or time.strftime('%Y%m%d_%H%M%S', time.localtime())
    with explain_unknown_types():
        runner = Runner(
            model=model,
            work_dir=cfg.work_dir,
            train_dataloader=train_loader,
            custom_hooks=custom_hooks,
            launcher=launcher,
            experiment_name=experiment,
            cfg=cfg,
            **kwargs)
        runner.train()
    return runner
