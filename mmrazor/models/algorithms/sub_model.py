"""``sub_model``: build a supernet and fix it to a subnet, as MMRazor 1.x
configs ask with ``model = dict(type='mmrazor.sub_model', cfg=supernet,
fix_subnet='SUBNET.yaml')``."""
import logging
from pathlib import Path
from typing import Any, Dict, Optional, Union

from mmengine.logging import print_log
from torch import nn

from mmrazor.registry import MODELS

SUB_MODEL_MODES = ('mutable', 'deploy')


def check_sub_model_args(mode: str, extra_prefix: str) -> None:
    """Refuse arguments of MMRazor 1.x's ``sub_model`` this one lacks.

    Args:
        mode (str): ``'mutable'`` or ``'deploy'``.
        extra_prefix (str): Must be empty.

    Raises:
        ValueError: Naming the argument and its value.
    """
    if mode not in SUB_MODEL_MODES:
        raise ValueError(f'sub_model mode must be one of {SUB_MODEL_MODES}, '
                         f'got {mode!r}')
    if extra_prefix:
        raise ValueError(
            f'sub_model extra_prefix={extra_prefix!r} is not supported: '
            'write the subnet keys relative to the model built from `cfg` '
            '(or strip a common prefix of the keys with `prefix`)')


@MODELS.register_module(name='sub_model')
def sub_model(cfg: Union[dict, nn.Module],
              fix_subnet: Union[str, Path, Dict[str, Any]],
              mode: str = 'mutable',
              prefix: str = '',
              extra_prefix: str = '',
              init_weight_from_supernet: bool = False,
              init_cfg: Optional[dict] = None,
              **inherited: Any) -> nn.Module:
    """Build the supernet ``cfg`` and fix every mutable of it to
    ``fix_subnet``.

    The model returned is the architecture itself (an ``ImageClassifier``,
    say), not an algorithm wrapping it: it trains and evaluates as that
    subnet.

    Args:
        cfg (dict | nn.Module): The supernet config (or model).
        fix_subnet (str | Path | dict): The subnet, or its YAML / JSON file;
            keys relative to the model built from ``cfg``.
        mode (str): ``'mutable'`` keeps the searchable modules, fixed;
            ``'deploy'`` replaces them by the static modules they export.
            Defaults to ``'mutable'``.
        prefix (str): Stripped from module paths before matching keys.
            Defaults to ''.
        extra_prefix (str): Not supported; must be ''.
        init_weight_from_supernet (bool): Initialise the supernet's weights
            (its ``init_cfg``, e.g. a supernet checkpoint) before fixing it.
            Defaults to False.
        init_cfg (dict, optional): The subnet's initialisation, e.g.
            ``dict(type='Pretrained', checkpoint=..., prefix='architecture.')``
            for a checkpoint of the algorithm that trained it.
        **inherited: Arguments of the supernet's algorithm that a 1.x
            subnet config inherits from its base ``model`` (e.g. BigNAS's
            ``architecture``, ``distiller``, ``drop_path_rate``): they
            configure training the supernet, not the subnet, and are
            ignored (named in a log line).

    Returns:
        nn.Module: The fixed subnet.
    """
    from mmrazor.structures import export_fix_subnet, load_fix_subnet
    check_sub_model_args(mode, extra_prefix)
    if inherited:
        print_log(
            'sub_model ignores the supernet algorithm\'s arguments its '
            f'config inherited: {sorted(inherited)} (a misspelt sub_model '
            'argument would be among them)',
            logger='current',
            level=logging.WARNING)
    model = cfg if isinstance(cfg, nn.Module) else MODELS.build(cfg)
    if init_weight_from_supernet:
        model.init_weights()
    load_fix_subnet(model, fix_subnet, prefix=prefix)
    if mode == 'deploy':
        _, model = export_fix_subnet(model, slice_weight=True, prefix=prefix)
    if init_cfg is not None:
        model.init_cfg = init_cfg
    return model
