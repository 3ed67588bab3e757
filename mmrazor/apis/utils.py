"""Small helpers of the high-level API."""
from typing import Optional

from mmengine.runner import set_random_seed as _mmengine_set_random_seed


def set_random_seed(seed: Optional[int] = None,
                    deterministic: bool = False) -> int:
    """Seed Python, numpy and torch (all devices).

    Args:
        seed (int, optional): The seed; a random one is drawn (and returned)
            when None.
        deterministic (bool): Also make cuDNN deterministic (slower).
            Defaults to False.

    Returns:
        int: The seed used.
    """
    return _mmengine_set_random_seed(seed=seed, deterministic=deterministic)
