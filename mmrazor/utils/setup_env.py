"""Environment set-up: registries, multi-processing and distributed init."""
import datetime
import os
import platform
import warnings
from typing import Optional

import torch
import torch.distributed as torch_dist
from mmengine import Config
from mmengine.dist import init_dist
from mmengine.registry import DefaultScope


def register_all_modules(init_default_scope: bool = True) -> None:
    """Import every mmrazor module that registers something.

    Args:
        init_default_scope (bool): Also make ``'mmrazor'`` the current default
            scope, so that nested configs resolve mmrazor types first.
            Defaults to True.
    """
    import mmrazor.core  # noqa: F401,F403
    import mmrazor.datasets  # noqa: F401,F403
    import mmrazor.models  # noqa: F401,F403
    import mmrazor.structures  # noqa: F401,F403

    if not init_default_scope:
        return
    current = DefaultScope.get_current_instance()
    if current is None:
        DefaultScope.get_instance('mmrazor', scope_name='mmrazor')
    elif current.scope_name != 'mmrazor':
        warnings.warn(f'The current default scope "{current.scope_name}" is '
                      'not "mmrazor"; `register_all_modules` sets a new one.')
        stamp = datetime.datetime.now().strftime('%Y%m%d-%H%M%S-%f')
        DefaultScope.get_instance(f'mmrazor-{stamp}', scope_name='mmrazor')


def setup_multi_processes(cfg: Config) -> None:
    """Set the multi-processing start method, OpenCV threads and OMP/MKL
    threads the way OpenMMLab toolboxes do.

    Args:
        cfg (Config): A config; ``cfg.mp_start_method`` and
            ``cfg.opencv_num_threads`` are honoured when present (also under
            ``cfg.env_cfg.mp_cfg``).
    """
    mp_cfg = cfg.get('env_cfg', {}).get('mp_cfg', {})
    start = cfg.get('mp_start_method', mp_cfg.get('mp_start_method', None))
    if platform.system() != 'Windows' and start is not None:
        import torch.multiprocessing as mp
        current = mp.get_start_method(allow_none=True)
        if current is not None and current != start:
            warnings.warn(f'Multi-processing start method `{start}` differs '
                          f'from the previous setting `{current}`; it is '
                          f'forced to `{start}`.')
        mp.set_start_method(start, force=True)
    threads = cfg.get('opencv_num_threads',
                      mp_cfg.get('opencv_num_threads', 0))
    try:
        import cv2
        cv2.setNumThreads(threads)
    except ImportError:
        pass
    loaders = cfg.get('train_dataloader', None) or {}
    # multi-loader configs (e.g. DARTS) give a list or dict of loaders
    if isinstance(loaders, dict) and 'dataset' not in loaders and all(
            isinstance(v, dict) for v in loaders.values()):
        loaders = list(loaders.values())
    if not isinstance(loaders, (list, tuple)):
        loaders = [loaders]
    workers = max([
        loader.get('num_workers', 0) for loader in loaders
        if isinstance(loader, dict)
    ] or [0])
    if 'OMP_NUM_THREADS' not in os.environ and workers > 1:
        os.environ['OMP_NUM_THREADS'] = '1'
    if 'MKL_NUM_THREADS' not in os.environ and workers > 1:
        os.environ['MKL_NUM_THREADS'] = '1'


def default_dist_backend() -> str:
    """``'nccl'`` when CUDA devices are visible, else ``'gloo'``.

    Returns:
        str: The backend name.
    """
    return 'nccl' if torch.cuda.is_available() else 'gloo'


def init_distributed(launcher: str, backend: Optional[str] = None,
                     **kwargs) -> None:
    """Initialise the default process group for ``launcher``.

    Unlike mmengine's ``init_dist``, this works on machines without GPUs:
    the backend falls back to gloo and no CUDA device is selected. It is a
    no-op when the process group already exists.

    Args:
        launcher (str): ``'pytorch'`` (torchrun / torch.distributed.launch),
            ``'slurm'`` or ``'mpi'``.
        backend (str, optional): ``'nccl'``, ``'gloo'`` or ``'mpi'``. NCCL
            is replaced by gloo when CUDA is unavailable. Defaults to the
            best available.
        **kwargs: Passed to ``init_process_group`` (e.g. ``timeout``).
    """
    if torch_dist.is_available() and torch_dist.is_initialized():
        return
    if backend is None or (backend == 'nccl'
                           and not torch.cuda.is_available()):
        backend = default_dist_backend()
    if 'timeout' in kwargs and isinstance(kwargs['timeout'], (int, float)):
        kwargs['timeout'] = datetime.timedelta(seconds=kwargs['timeout'])
    if torch.cuda.is_available() or launcher != 'pytorch':
        init_dist(launcher, backend=backend, **kwargs)
        return
    for key in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'):
        if key not in os.environ:
            raise RuntimeError(
                f'--launcher pytorch needs the environment variable {key}; '
                'start the script with `torchrun --nproc_per_node N ...` or '
                '`python -m torch.distributed.launch --use-env ...`')
    torch_dist.init_process_group(backend=backend, **kwargs)


def close_distributed() -> None:
    """Wait for every rank, then destroy the default process group (if one
    was created).

    Called at the end of the tools: a process that exits with the group
    still alive may abort while the backend's threads are torn down
    (gloo: ``terminate called without an active exception``), which fails a
    run that had finished its work.
    """
    if torch_dist.is_available() and torch_dist.is_initialized():
        torch_dist.barrier()
        torch_dist.destroy_process_group()


def prepare_distributed_cfg(cfg: Config, launcher: str) -> None:
    """Make a config's distributed settings fit this machine, in place.

    The backend falls back to gloo without CUDA, and models are wrapped by
    :class:`mmrazor.core.RazorDistributedDataParallel`, which works on CPU
    as well as GPU, unless the config names another wrapper.

    Args:
        cfg (Config): The config to adapt.
        launcher (str): The launcher of this run; nothing changes for
            ``'none'``.
    """
    if launcher == 'none':
        return
    env_cfg = cfg.setdefault('env_cfg', {})
    dist_cfg = env_cfg.setdefault('dist_cfg', {})
    if dist_cfg.get('backend', 'nccl') == 'nccl' and \
            not torch.cuda.is_available():
        dist_cfg['backend'] = 'gloo'
    if cfg.get('model_wrapper_cfg') is None:
        cfg.model_wrapper_cfg = dict(
            type='mmrazor.RazorDistributedDataParallel',
            broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False))
