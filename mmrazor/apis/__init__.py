"""High-level APIs: seeding, training, runner building."""
from . import mmcls
from .inference import init_mmcls_model, init_mmdet_model, init_mmseg_model
from .runner import (add_common_args, apply_resume, build_runner,
                     config_from_args, enable_amp, setup_launch)
from .search import run_search, search_loop_cfg
from .train import train_model
from .utils import set_random_seed

__all__ = [
    'set_random_seed', 'train_model', 'mmcls', 'build_runner',
    'config_from_args', 'add_common_args', 'apply_resume', 'enable_amp',
    'setup_launch', 'run_search', 'search_loop_cfg', 'init_mmcls_model',
    'init_mmdet_model', 'init_mmseg_model'
]
