"""Environment set-up: registries, multi-processing and distributed init."""
import datetime
import gc
import importlib
import os
import platform
import sys
import warnings
import weakref
from types import FunctionType
from typing import Any, Optional

import torch
import torch.distributed as torch_dist
from mmengine import Config
from mmengine.dist import init_dist


def register_all_modules(init_default_scope: bool = True) -> None:
    """Import every mmrazor module that registers something (see
    :func:`mmrazor.registry.register_all_modules`, which does the work).

    The registries sit above this package, which imports nothing of
    mmrazor: they are reached by module name, as mmengine reaches the
    registry of a scope.

    Args:
        init_default_scope (bool): Also make ``'mmrazor'`` the current default
            scope. Defaults to True.
    """
    registry = importlib.import_module('mmrazor.registry')
    registry.register_all_modules(init_default_scope)


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


def close_distributed() -> bool:
    """End the distributed part of a run cleanly: wait for every rank, then
    destroy the process groups while the interpreter is fully alive.

    Call it once a run's results are written, after dropping the objects
    that hold the default group (runners, model wrappers). It does nothing
    when no process group exists.

    Why it matters: a gloo group keeps worker threads. A worker that
    finishes a collective releases the finished work (and the Python
    tensors it holds) a moment later, and doing so needs the GIL. If the
    group outlives ``destroy_process_group`` (anything still referencing
    it), those threads are still running while Python shuts down, and a
    late release there calls ``pthread_exit`` inside a C++ destructor:
    ``terminate called without an active exception`` (SIGABRT) after the
    run's work is done. Destroying the last reference joins the workers
    instead. So this function frees reference cycles, destroys the groups,
    replaces the default group where torch modules imported after
    ``init_process_group`` captured it as a default argument value
    (``torch.distributed.nn.functional``, ``ZeroRedundancyOptimizer``, both
    imported by mmengine), and checks that the group is gone.

    Returns:
        bool: True if the default group was destroyed (or none existed);
        False, with a warning naming what still holds it, otherwise.
    """
    if not (torch_dist.is_available() and torch_dist.is_initialized()):
        return True
    torch_dist.barrier()
    world = weakref.ref(torch_dist.group.WORLD)
    gc.collect()
    torch_dist.destroy_process_group()
    _forget_default_arguments(world())
    gc.collect()
    group = world()
    if group is None:
        return True
    this_frame = sys._getframe()
    holders = sorted({
        type(obj).__qualname__
        for obj in gc.get_referrers(group) if obj is not this_frame
    })
    del this_frame, group
    held_by = ', '.join(holders) or 'objects the garbage collector cannot see'
    warnings.warn(
        'the default process group is still referenced after '
        f'destroy_process_group (by: {held_by}); its worker threads outlive '
        'the run and the process may abort at exit. Release model wrappers, '
        'runners and stored `group` references before close_distributed().',
        RuntimeWarning)
    return False


def _forget_default_arguments(group: Any) -> int:
    """Replace ``group`` by ``None`` wherever a function keeps it as a
    default argument value.

    ``def f(..., group=group.WORLD)`` evaluates ``group.WORLD`` when its
    module is imported; imported after ``init_process_group`` the function
    holds the default group for ever. ``None`` means "the default group at
    call time" to every torch collective, which is what such a default
    intends, and a destroyed group is unusable anyway.

    Args:
        group: The destroyed group (``None``: nothing to do).

    Returns:
        int: How many functions were changed.
    """
    if group is None:
        return 0
    changed = 0
    for obj in gc.get_objects():
        if type(obj) is not FunctionType:
            continue
        defaults, kwdefaults = obj.__defaults__, obj.__kwdefaults__
        if defaults and any(d is group for d in defaults):
            obj.__defaults__ = tuple(None if d is group else d
                                     for d in defaults)
            changed += 1
        if kwdefaults and any(d is group for d in kwdefaults.values()):
            obj.__kwdefaults__ = {
                k: None if d is group else d
                for k, d in kwdefaults.items()
            }
            changed += 1
    return changed


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
