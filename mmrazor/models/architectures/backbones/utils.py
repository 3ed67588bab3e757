"""Helpers shared by the searchable backbones."""
import copy
import inspect
from typing import (Any, Dict, Iterable, List, Mapping, Optional, Sequence,
                    Tuple, Union)

import torch.nn as nn
from mmengine.model import constant_init, normal_init
from torch.nn.modules.batchnorm import _BatchNorm

from mmrazor.models.mutables.placeholder import (mark_placeholder,
                                                 placeholder_mark)
from mmrazor.registry import MODELS


def _takes_keyword(type_: Any, key: str) -> bool:
    """Whether the class a config ``type`` names takes keyword ``key``."""
    cls = MODELS.get(type_) if isinstance(type_, str) else type_
    if not inspect.isclass(cls):
        return False
    try:
        params = inspect.signature(cls.__init__).parameters
    except (TypeError, ValueError):
        return False
    return key in params or any(p.kind is inspect.Parameter.VAR_KEYWORD
                                for p in params.values())


def build_block_mutable(mutable_cfg: Mapping,
                        in_channels: int,
                        out_channels: int,
                        stride: int,
                        block_defaults: Optional[Dict] = None,
                        placeholder: Optional[Dict] = None,
                        space_id: Optional[str] = None) -> nn.Module:
    """Build one searchable block of a backbone stage.

    This is the 1.x contract of the stage mutables: the mutable config gets
    ``module_kwargs=dict(in_channels, out_channels, stride)`` (merged over
    the ``module_kwargs`` the config already has), and nothing else, so
    that any mutable (or plain module) taking ``module_kwargs`` can stand
    in a stage.

    ``block_defaults`` (the backbone's ``conv_cfg``, ``norm_cfg``, ...)
    reach the blocks as defaults of the *candidate* configs instead: a
    candidate (an entry of ``mutable_cfg['candidates']``) gets a key when
    neither the candidate config nor the mutable's own ``module_kwargs``
    set it, and only when the candidate's class takes that keyword.

    Args:
        mutable_cfg (Mapping): Config of the mutable (e.g. a
            ``OneShotMutableOP`` over block candidates). Not modified.
        in_channels (int): Input channels of the block.
        out_channels (int): Output channels of the block.
        stride (int): Stride of the block.
        block_defaults (dict, optional): Defaults for the candidates.
        placeholder (dict, optional): ``dict(group=..., space_id=...)``:
            mark the block as the place of that older placeholder, so that a
            mutator's ``placeholder_mapping`` naming ``group`` replaces it
            (with ``choice_args=dict(in_channels, out_channels, stride)``).
        space_id (str, optional): ``space_id`` of a block that is an older
            :class:`~mmrazor.models.mutables.Placeholder` without one.

    Returns:
        nn.Module: The built mutable.
    """
    if not isinstance(mutable_cfg, Mapping) or 'type' not in mutable_cfg:
        raise TypeError('a stage mutable must be a config dict with a '
                        f"'type', got {mutable_cfg!r}")
    cfg = copy.deepcopy(dict(mutable_cfg))
    kwargs = dict(cfg.get('module_kwargs') or {})
    candidates = cfg.get('candidates')
    if block_defaults and isinstance(candidates, Mapping):
        filled = {}
        for name, candidate in candidates.items():
            if isinstance(candidate, Mapping) and 'type' in candidate:
                candidate = dict(candidate)
                for key, value in block_defaults.items():
                    if key not in candidate and key not in kwargs and \
                            _takes_keyword(candidate['type'], key):
                        candidate[key] = copy.deepcopy(value)
            filled[name] = candidate
        cfg['candidates'] = filled
    kwargs.update(
        in_channels=in_channels, out_channels=out_channels, stride=stride)
    cfg['module_kwargs'] = kwargs
    block = MODELS.build(cfg)
    mark = placeholder_mark(block)
    if mark is not None and mark.space_id is None:
        mark.space_id = space_id
    if placeholder is not None:
        mark_placeholder(
            block,
            choice_args=dict(
                in_channels=in_channels,
                out_channels=out_channels,
                stride=stride),
            **placeholder)
    return block


def has_pretrained_init(init_cfg: Optional[Union[Dict, List[Dict]]]) -> bool:
    """Whether ``init_cfg`` loads a checkpoint (type ``'Pretrained'``)."""
    cfgs: Iterable = [init_cfg] if isinstance(init_cfg, Mapping) else (
        init_cfg or [])
    return any(
        isinstance(cfg, Mapping) and cfg.get('type') == 'Pretrained'
        for cfg in cfgs)


def shufflenet_init(module: nn.Module, stem: str = 'conv1') -> None:
    """The ShuffleNet initialisation (as in the SPOS reference code).

    Convs ``normal(0, 1 / fan_in_channels)`` (the stem: ``normal(0,
    0.01)``), biases 0; norm layers weight 1, bias 1e-4, running mean 0.

    Args:
        module (nn.Module): The backbone.
        stem (str): Name of the stem submodule. Defaults to ``'conv1'``.
    """
    for name, m in module.named_modules():
        if isinstance(m, nn.Conv2d):
            in_stem = name == stem or name.startswith(stem + '.')
            std = 0.01 if in_stem else 1.0 / m.weight.shape[1]
            normal_init(m, mean=0, std=std, bias=0)
        elif isinstance(m, (_BatchNorm, nn.GroupNorm)):
            if getattr(m, 'weight', None) is not None:
                constant_init(m, val=1, bias=0.0001)
            if getattr(m, 'running_mean', None) is not None:
                nn.init.constant_(m.running_mean, 0)


class FrozenStagesMixin:
    """``frozen_stages`` and ``norm_eval`` for a backbone: the stem
    (``conv1``) and the first ``frozen_stages`` stages stay in eval mode
    without gradients, and with ``norm_eval`` every norm layer stays in eval
    mode while training.

    The backbone sets ``frozen_stages`` and ``norm_eval`` and provides
    :meth:`stages`, its stages in order.
    """

    frozen_stages: int
    norm_eval: bool

    def stages(self) -> List[nn.Module]:
        """The stages of the backbone, in order."""
        raise NotImplementedError

    def _freeze_stages(self) -> None:
        if self.frozen_stages < 0:
            return
        for module in [self.conv1] + self.stages()[:self.frozen_stages]:
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def train(self, mode: bool = True) -> nn.Module:
        """Set training mode, keeping frozen stages (and norm layers with
        ``norm_eval``) in eval mode.

        Args:
            mode (bool): Training (True) or evaluation (False) mode.

        Returns:
            nn.Module: The backbone itself.
        """
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self


def check_stage_indices(out_indices: Optional[Sequence[int]],
                        frozen_stages: int,
                        num_stages: int) -> Tuple[int, ...]:
    """Validate a backbone's ``out_indices`` and ``frozen_stages``.

    Args:
        out_indices (Sequence[int], optional): Outputs to return, each in
            ``[0, num_stages]``; None means the last (``num_stages``).
        frozen_stages (int): In ``[-1, num_stages]``.
        num_stages (int): The number of stages.

    Returns:
        tuple[int]: ``out_indices``.

    Raises:
        ValueError: Naming the value out of range.
    """
    if out_indices is None:
        out_indices = (num_stages, )
    for index in out_indices:
        if not isinstance(index, int) or not 0 <= index <= num_stages:
            raise ValueError(f'out_indices entry {index!r} is not in '
                             f'[0, {num_stages}]')
    if frozen_stages not in range(-1, num_stages + 1):
        raise ValueError(f'frozen_stages must be in [-1, {num_stages}],'
                         f' got {frozen_stages!r}')
    return tuple(out_indices)
