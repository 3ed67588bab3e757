"""Read configs of every generation of the toolbox.

:func:`load_config` is the one way mmrazor's tools read a config file:

* 1.x configs inherit base configs of sibling toolboxes (``mmcls::``,
  ``mmdet::``, ``mmseg::``, ``mmrazor::``); :mod:`.bases` resolves them
  without ``pkg_resources``;
* names that moved since (mmcls -> mmpretrain, ...) are translated by
  :mod:`.v1`;
* 0.x configs (mmcv-runner era: ``algorithm=``, ``data=``,
  ``optimizer_config=`` ...) are translated to mmengine's keys by
  :mod:`.v0`, and keys without a meaning now are refused by name.

Command-line overrides are merged in the config's own vocabulary, before
translation: ``--cfg-options data.train.data_prefix=...`` for a 0.x config,
``train_dataloader.dataset.data_root=...`` for a 1.x one. Keys already in
the new vocabulary (e.g. ``train_cfg.max_iters`` given on the command line
for a 0.x config) win over what translation derives.
"""
from typing import Dict, Optional, Tuple

from mmengine.config import Config

from .bases import sibling_config_bases
from .v0 import apply_subnet_file, is_0x_config, translate_0x
from .v1 import translate_1x


def read_config(path: str,
                cfg_options: Optional[Dict] = None,
                subnet: Optional[str] = None) -> Tuple[Config, bool]:
    """Read a config of any generation into today's mmengine vocabulary.

    Args:
        path (str): The config file.
        cfg_options (dict, optional): ``--cfg-options`` overrides, keyed in
            the config's own vocabulary (see the module docstring).
        subnet (str, optional): A subnet file (``--subnet``) replacing the
            one the config names, before translation (so a URL there is
            never read).

    Returns:
        tuple[Config, bool]: The translated config, and whether it named a
        subnet that now points at ``subnet`` (the model then loads it when
        built; otherwise the caller fixes the built model itself).
    """
    with sibling_config_bases(path):
        cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    named = apply_subnet_file(cfg, subnet)
    cfg = translate_1x(cfg)
    if is_0x_config(cfg):
        cfg = translate_0x(cfg)
    return cfg, named


def load_config(path: str, cfg_options: Optional[Dict] = None) -> Config:
    """Read a config of any generation (see :func:`read_config`).

    Args:
        path (str): The config file.
        cfg_options (dict, optional): ``--cfg-options`` overrides, keyed in
            the config's own vocabulary.

    Returns:
        Config: The config, translated.
    """
    return read_config(path, cfg_options)[0]


__all__ = ['load_config', 'read_config', 'sibling_config_bases']
