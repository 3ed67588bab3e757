"""Translate names of 1.x configs that moved since (mmcls -> mmpretrain)."""
from mmengine.config import Config


def translate_1x(cfg: Config) -> Config:
    """Return ``cfg`` with moved names of the 1.x era replaced.

    Args:
        cfg (Config): A config read by :func:`~.load_config`.

    Returns:
        Config: The translated config.
    """
    return cfg
