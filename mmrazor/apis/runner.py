"""Build mmengine Runners from configs and command-line options.

``tools/train.py``, ``tools/test.py`` and ``tools/search.py`` share these
steps, so every entry point treats ``--work-dir``, ``--resume``, ``--amp``,
``--cfg-options``, ``--launcher`` and ``--trust-checkpoint`` alike.
"""
import argparse
import os
import os.path as osp
from fnmatch import fnmatchcase
from typing import Any, Dict, Iterator, List, Optional, Tuple, Union

import torch
from mmengine.config import Config, DictAction
from mmengine.runner import Runner

from mmrazor.registry import RUNNERS, explain_unknown_types
from mmrazor.utils import (init_distributed, prepare_distributed_cfg,
                           register_all_modules, setup_multi_processes,
                           trust_checkpoint)
from .config_compat import read_config


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """Add the options every mmrazor tool accepts.

    Args:
        parser (argparse.ArgumentParser): The tool's parser.
    """
    parser.add_argument('--work-dir', help='where logs and checkpoints go')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config entries, e.g. train_cfg.max_epochs=2 '
        "'train_dataloader.batch_size=32'")
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher; `pytorch` for torchrun / '
        'torch.distributed.launch')
    parser.add_argument(
        '--trust-checkpoint',
        action='store_true',
        help='load the checkpoints named by this command (--resume, '
        'load_from, CHECKPOINT) with weights_only=False. Only for files from '
        'a trusted source: a pickle can run arbitrary code')
    # torch.distributed.launch without --use-env passes --local-rank.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


class ConfigValueError(ValueError):
    """A config entry holds a value of the wrong type."""


_INT = ((int, ), 'an integer')
_NUMBER = ((int, float), 'a number')
_SEED = ((int, type(None)), 'an integer or None')

#: Well-known numeric config keys -> (accepted types, what to call them).
#: Keys are dotted; ``*`` matches within one key (``*_dataloader``) and a
#: list on the way holds several entries (a list of dataloaders). bool is
#: never accepted for a number. ``optim_wrapper.*`` covers the per-part
#: wrappers of ``SeparateOptimWrapperConstructor`` (DARTS).
NUMERIC_KEYS: Dict[str, Tuple[Tuple[type, ...], str]] = {
    'optim_wrapper.optimizer.lr': _NUMBER,
    'optim_wrapper.optimizer.momentum': _NUMBER,
    'optim_wrapper.optimizer.weight_decay': _NUMBER,
    'optim_wrapper.clip_grad.max_norm': _NUMBER,
    'optim_wrapper.*.optimizer.lr': _NUMBER,
    'optim_wrapper.*.optimizer.momentum': _NUMBER,
    'optim_wrapper.*.optimizer.weight_decay': _NUMBER,
    'optim_wrapper.*.clip_grad.max_norm': _NUMBER,
    'train_cfg.max_epochs': _INT,
    'train_cfg.max_iters': _INT,
    'train_cfg.val_interval': _INT,
    '*_dataloader.batch_size': _INT,
    '*_dataloader.num_workers': _INT,
    'randomness.seed': _SEED,
}


def _entries(node: Any, parts: List[str],
             key: str) -> Iterator[Tuple[str, Any]]:
    """The entries below ``node`` whose keys match ``parts``."""
    if not parts:
        yield key, node
    elif isinstance(node, (list, tuple)):
        for i, item in enumerate(node):
            yield from _entries(item, parts, f'{key}[{i}]')
    elif isinstance(node, dict):
        for name, child in node.items():
            if fnmatchcase(str(name), parts[0]):
                yield from _entries(child, parts[1:],
                                    f'{key}.{name}' if key else str(name))


def check_config_types(cfg: Union[Config, dict]) -> None:
    """Check the types of the well-known numeric keys of a config.

    Run before anything is built, so ``--cfg-options
    optim_wrapper.optimizer.lr=abc`` fails with the key's name instead of a
    ``TypeError`` deep in torch. Keys the config lacks are skipped.

    Args:
        cfg (Config | dict): The config; see :data:`NUMERIC_KEYS`.

    Raises:
        ConfigValueError: A key holds a value of the wrong type.
    """
    root = dict(cfg.items())
    for pattern, (types, expected) in NUMERIC_KEYS.items():
        for key, value in _entries(root, pattern.split('.'), ''):
            if isinstance(value, bool) or not isinstance(value, types):
                raise ConfigValueError(
                    f'config key {key} must be {expected}, got {value!r} '
                    f'({type(value).__name__})')


def config_from_args(args: argparse.Namespace) -> Config:
    """Read the config and apply the common command-line options.

    Args:
        args (argparse.Namespace): Parsed arguments with ``config``, the
            options of :func:`add_common_args` and, optionally, ``subnet``
            (a subnet file the model is fixed to).

    Returns:
        Config: The config, ready for :func:`build_runner`.

    Raises:
        ConfigValueError: A well-known numeric key holds a value of the
            wrong type (see :func:`check_config_types`).
    """
    if not osp.isfile(args.config):
        raise FileNotFoundError(f'config file {args.config!r} does not exist')
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    register_all_modules(init_default_scope=False)
    subnet = getattr(args, 'subnet', None)
    cfg, named = read_config(args.config, args.cfg_options, subnet)
    if subnet is not None and not named:
        # the config names no subnet: the model fixes itself to this one
        cfg.model.fix_subnet = subnet
    check_config_types(cfg)
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        name = osp.splitext(osp.basename(args.config))[0]
        cfg.work_dir = osp.join('./work_dirs', name)
    return cfg


def enable_amp(cfg: Config) -> None:
    """Switch the config's optimizer wrapper to mixed precision.

    On CUDA this is mmengine's ``AmpOptimWrapper`` (float16 with dynamic
    loss scaling); on a CPU-only machine it is
    :class:`mmrazor.core.CPUAmpOptimWrapper` (bfloat16 autocast).

    Args:
        cfg (Config): Changed in place.
    """
    wrapper = cfg.optim_wrapper
    kind = wrapper.get('type', 'OptimWrapper')
    if kind.split('.')[-1] in ('AmpOptimWrapper', 'CPUAmpOptimWrapper'):
        return
    if kind not in ('OptimWrapper', 'mmengine.OptimWrapper'):
        raise ValueError(f'--amp needs optim_wrapper.type "OptimWrapper", '
                         f'but the config uses {kind!r}')
    if torch.cuda.is_available():
        wrapper.type = 'AmpOptimWrapper'
        wrapper.setdefault('loss_scale', 'dynamic')
    else:
        wrapper.type = 'mmrazor.CPUAmpOptimWrapper'



def apply_resume(cfg: Config, resume: Optional[str]) -> None:
    """Apply ``--resume [CHECKPOINT]`` to the config.

    Args:
        cfg (Config): Changed in place.
        resume (str | None): ``None`` (no resume), ``'auto'`` (the latest
            checkpoint of the work dir) or a checkpoint path.
    """
    if resume is None:
        return
    cfg.resume = True
    if resume != 'auto':
        cfg.load_from = resume
    else:
        cfg.load_from = None


def setup_launch(cfg: Config, trust: bool = False,
                 *checkpoints: Optional[str]) -> None:
    """Prepare multi-processing, distributed init and trusted files.

    Args:
        cfg (Config): The config (``launcher`` set).
        trust (bool): Mark ``checkpoints`` and ``cfg.load_from`` trusted.
        *checkpoints (str | None): Checkpoint files named on the command line.
    """
    setup_multi_processes(cfg)
    if trust:
        for path in (*checkpoints, cfg.get('load_from')):
            if path:
                trust_checkpoint(path)
    launcher = cfg.get('launcher', 'none')
    prepare_distributed_cfg(cfg, launcher)
    if launcher != 'none':
        init_distributed(launcher, **cfg.env_cfg.get('dist_cfg', {}))


def build_runner(cfg: Config) -> Runner:
    """Build the Runner a config asks for (``runner_type`` or mmengine's).

    Adds :class:`mmrazor.core.ChannelsLastHook` to ``cfg.custom_hooks``
    (CPU training in ``channels_last``) unless ``cfg.cpu_channels_last`` is
    False.

    Args:
        cfg (Config): A full config; ``custom_hooks`` may be changed.

    Returns:
        Runner: The runner; unknown config types raise
        :class:`mmrazor.registry.UnknownTypeError`.
    """
    from mmrazor.core import add_channels_last_hook
    add_channels_last_hook(cfg)
    with explain_unknown_types():
        if 'runner_type' in cfg:
            return RUNNERS.build(cfg)
        return Runner.from_cfg(cfg)
