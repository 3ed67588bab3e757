"""Utilities of mmrazor."""
from .checkpoint import (TRUSTED_ENV, AtomicLocalBackend,
                         IncompleteCheckpointError, UnsafeCheckpointError,
                         add_safe_checkpoint_types, atomic_write_bytes,
                         is_trusted, safe_torch_load, save_state_dict,
                         trust_checkpoint)
from .misc import find_latest_checkpoint, make_divisible
from .setup_env import (close_distributed, default_dist_backend,
                        init_distributed,
                        prepare_distributed_cfg, register_all_modules,
                        setup_multi_processes)
from .typing import DumpChosen, chosen_of

__all__ = [
    'register_all_modules', 'setup_multi_processes', 'init_distributed',
    'default_dist_backend', 'prepare_distributed_cfg', 'safe_torch_load',
    'trust_checkpoint', 'is_trusted', 'save_state_dict',
    'add_safe_checkpoint_types',
    'UnsafeCheckpointError', 'IncompleteCheckpointError',
    'AtomicLocalBackend', 'atomic_write_bytes', 'TRUSTED_ENV',
    'make_divisible', 'find_latest_checkpoint', 'close_distributed',
    'DumpChosen', 'chosen_of'
]
