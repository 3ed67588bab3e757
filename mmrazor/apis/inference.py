"""Inference helpers of the older toolbox: build the model an mmrazor
config describes, load its checkpoint, and hand back the task model
(an mmpretrain / mmdet / mmseg model) ready for that toolbox's inference
API (``mmpretrain.apis.inference_model``, ``mmdet.apis.inference_detector``,
``mmseg.apis.inference_model``).
"""
import copy
from pathlib import Path
from typing import Any, Dict, Optional, Union

from mmengine.config import Config
from mmengine.runner.checkpoint import (_load_checkpoint,
                                        _load_checkpoint_to_model)
import torch
from torch import nn

from mmrazor.registry import MODELS
from mmrazor.utils import register_all_modules
from mmrazor.utils.toolboxes import require_sibling
from .config_compat import sibling_config_bases

ConfigLike = Union[str, Path, Config]


def _load_config(config: ConfigLike,
                 cfg_options: Optional[Dict[str, Any]]) -> Config:
    """The config as a fresh :class:`Config` with ``cfg_options`` merged.

    Args:
        config (str | Path | Config): A config file (not translated: the
            returned model's ``cfg`` is in the file's own vocabulary) or a
            loaded config (copied, not changed).
        cfg_options (dict, optional): Dotted keys to override, as
            ``Config.merge_from_dict`` takes them.

    Returns:
        Config: The config to build from.
    """
    if isinstance(config, (str, Path)):
        # kept in the file's own vocabulary (0.x code reads model.cfg.data
        # ...); `mmcls::` style bases of 1.x configs resolve
        with sibling_config_bases(str(config)):
            config = Config.fromfile(str(config))
    elif isinstance(config, Config):
        config = copy.deepcopy(config)
    else:
        raise TypeError('config must be a file path or an mmengine Config, '
                        f'got {type(config).__name__}')
    if cfg_options is not None:
        config.merge_from_dict(cfg_options)
    return config


def _algorithm_cfg(config: Config) -> dict:
    """The algorithm's config: ``algorithm`` (0.x configs) or ``model``
    (1.x configs, where the algorithm is the runner's model)."""
    for key in ('algorithm', 'model'):
        value = config.get(key)
        if value is not None:
            if not isinstance(value, dict) or 'type' not in value:
                raise TypeError(
                    f'config {config.filename or "<Config>"}: `{key}` must '
                    f'be a dict with a `type`, got {value!r}')
            return value
    raise KeyError(f'config {config.filename or "<Config>"} has neither '
                   '`algorithm` (0.x) nor `model` (1.x): nothing to build')


def task_model_of(algorithm: nn.Module) -> nn.Module:
    """The task model (classifier, detector, segmentor) an algorithm
    compresses: its ``architecture``, unwrapped from an ``MMClsArchitecture``
    style wrapper (``architecture.model``) when there is one.

    Args:
        algorithm (nn.Module): A built algorithm, or a plain model.

    Returns:
        nn.Module: The task model; ``algorithm`` itself if it has no
        ``architecture``.
    """
    model = getattr(algorithm, 'architecture', algorithm)
    inner = getattr(model, 'model', None)
    return inner if isinstance(inner, nn.Module) else model


def _overlap(module: nn.Module, state_dict: Dict[str, Any]) -> int:
    return len(set(module.state_dict()) & set(state_dict))


def _load_weights(algorithm: nn.Module, model: nn.Module,
                  checkpoint: str) -> Dict[str, Any]:
    """Load ``checkpoint`` into the algorithm or into the task model,
    whichever its keys name (a checkpoint of training holds the algorithm,
    ``architecture.model.backbone...``; an exported subnet or student holds
    the task model, ``backbone...``).

    Args:
        algorithm (nn.Module): The built algorithm.
        model (nn.Module): Its task model.
        checkpoint (str): Path or URL of the checkpoint.

    Returns:
        dict: The loaded checkpoint (``meta`` included).
    """
    ckpt = _load_checkpoint(checkpoint, map_location='cpu')
    if not isinstance(ckpt, dict):
        raise TypeError(f'checkpoint {checkpoint}: expected a dict, got '
                        f'{type(ckpt).__name__}')
    state_dict = ckpt.get('state_dict', ckpt)
    target = max((algorithm, model), key=lambda m: _overlap(m, state_dict))
    if _overlap(target, state_dict) == 0:
        sample = sorted(state_dict)[:3]
        raise ValueError(
            f'checkpoint {checkpoint}: none of its keys (e.g. {sample}) '
            f'names a parameter of the {type(algorithm).__name__} built from '
            f'the config or of its {type(model).__name__}: wrong checkpoint '
            'for this config?')
    # Not strict: a supernet checkpoint also holds the weights of the
    # candidates a fixed subnet drops; mmengine logs what did not match.
    _load_checkpoint_to_model(target, ckpt, strict=False)
    return ckpt


def _dataset_meta(ckpt: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """Class names (and palette) stored in a checkpoint's ``meta``: the
    mmengine ``dataset_meta`` or the 0.x ``CLASSES`` / ``PALETTE``."""
    meta = ckpt.get('meta') or {}
    if meta.get('dataset_meta'):
        return dict(meta['dataset_meta'])
    found: Dict[str, Any] = {}
    if meta.get('CLASSES') is not None:
        found['classes'] = meta['CLASSES']
    if meta.get('PALETTE') is not None:
        found['palette'] = meta['PALETTE']
    return found or None


def init_model(config: ConfigLike,
               checkpoint: Optional[str] = None,
               device: str = 'cuda:0',
               cfg_options: Optional[Dict[str, Any]] = None) -> nn.Module:
    """Build the algorithm of an mmrazor config and return its task model.

    The algorithm is built from ``config.algorithm`` (0.x configs) or
    ``config.model`` (1.x configs), so a subnet it fixes at build time
    (``retraining=True`` with ``mutable_cfg`` / ``channel_cfg``, or
    ``fix_subnet``) shapes the returned model.

    Args:
        config (str | Path | Config): The config file or a loaded config.
        checkpoint (str, optional): Weights of the algorithm or of the task
            model. Defaults to None (freshly initialised weights).
        device (str): Device to put the model on. Defaults to 'cuda:0'.
        cfg_options (dict, optional): Config overrides in dotted form, e.g.
            ``{'algorithm.mutable_cfg': 'subnet.yaml'}``.

    Returns:
        nn.Module: The task model in eval mode, with the config as ``cfg``
        and, when the checkpoint stores them, the class names in
        ``dataset_meta``.
    """
    if str(device).startswith('cuda') and not torch.cuda.is_available():
        raise ValueError(f'device={device!r}, but this machine has no CUDA '
                         "device: pass device='cpu'")
    config = _load_config(config, cfg_options)
    register_all_modules(init_default_scope=False)
    algorithm = MODELS.build(_algorithm_cfg(config))
    model = task_model_of(algorithm)
    if checkpoint is not None:
        ckpt = _load_weights(algorithm, model, checkpoint)
        dataset_meta = _dataset_meta(ckpt)
        if dataset_meta is not None:
            model.dataset_meta = dataset_meta
    model.cfg = config
    model.to(device)
    model.eval()
    return model


def init_mmcls_model(
        config: ConfigLike,
        checkpoint: Optional[str] = None,
        device: str = 'cuda:0',
        cfg_options: Optional[Dict[str, Any]] = None) -> nn.Module:
    """Initialise the classifier of an mmrazor config (mmcls = mmpretrain).

    Args:
        config (str | Path | Config): The config file or a loaded config.
        checkpoint (str, optional): The checkpoint. Defaults to None.
        device (str): Device of the model. Defaults to 'cuda:0'.
        cfg_options (dict, optional): Config overrides in dotted form.

    Returns:
        nn.Module: The mmpretrain classifier, for
        ``mmpretrain.apis.inference_model``.
    """
    require_sibling('mmpretrain', 'init_mmcls_model')
    return init_model(config, checkpoint, device, cfg_options)


def init_mmdet_model(
        config: ConfigLike,
        checkpoint: Optional[str] = None,
        device: str = 'cuda:0',
        cfg_options: Optional[Dict[str, Any]] = None) -> nn.Module:
    """Initialise the detector of an mmrazor config. Needs mmdet and full
    mmcv (compiled ops).

    Args:
        config (str | Path | Config): The config file or a loaded config.
        checkpoint (str, optional): The checkpoint. Defaults to None.
        device (str): Device of the model. Defaults to 'cuda:0'.
        cfg_options (dict, optional): Config overrides in dotted form.

    Returns:
        nn.Module: The mmdet detector, for ``mmdet.apis.inference_detector``.

    Raises:
        SiblingImportError: mmdet or the compiled mmcv ops are missing.
    """
    require_sibling('mmdet', 'init_mmdet_model')
    return init_model(config, checkpoint, device, cfg_options)


def init_mmseg_model(
        config: ConfigLike,
        checkpoint: Optional[str] = None,
        device: str = 'cuda:0',
        cfg_options: Optional[Dict[str, Any]] = None) -> nn.Module:
    """Initialise the segmentor of an mmrazor config. Needs mmseg and full
    mmcv (compiled ops).

    Args:
        config (str | Path | Config): The config file or a loaded config.
        checkpoint (str, optional): The checkpoint. Defaults to None.
        device (str): Device of the model. Defaults to 'cuda:0'.
        cfg_options (dict, optional): Config overrides in dotted form.

    Returns:
        nn.Module: The mmseg segmentor, for ``mmseg.apis.inference_model``.

    Raises:
        SiblingImportError: mmseg or the compiled mmcv ops are missing.
    """
    require_sibling('mmseg', 'init_mmseg_model')
    return init_model(config, checkpoint, device, cfg_options)
