"""Translate configs of the 0.x toolbox (mmcv runner era) to mmengine's."""
from typing import Optional

from mmengine.config import Config


def is_0x_config(cfg: Config) -> bool:
    """Whether ``cfg`` is written for the 0.x toolbox (it holds
    ``algorithm`` or another key only that era used)."""
    return 'algorithm' in cfg


def translate_0x(cfg: Config) -> Config:
    """Return ``cfg`` in mmengine's vocabulary.

    Args:
        cfg (Config): A 0.x config.

    Returns:
        Config: The translated config.
    """
    # Configs of the older toolbox hold the plain model under `model` and
    # the algorithm (which wraps it) under `algorithm`: train the algorithm.
    cfg.model = cfg.pop('algorithm')
    return cfg


def apply_subnet_file(cfg: Config, subnet: Optional[str]) -> bool:
    """Point the subnet the config's model already names (``mutable_cfg``
    / ``channel_cfg`` of 0.x algorithms, ``fix_subnet`` of 1.x ones) at the
    file ``subnet`` instead.

    Args:
        cfg (Config): A translated config (changed in place).
        subnet (str, optional): The subnet file; None changes nothing.

    Returns:
        bool: Whether the model's config named a subnet that was replaced
        (the model then loads ``subnet`` when built).
    """
    if subnet is None:
        return False
    model = cfg.get('model', None)
    if isinstance(model, dict) and model.get('fix_subnet') is not None:
        model['fix_subnet'] = subnet
        return True
    return False
