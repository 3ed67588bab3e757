"""Masking and physical slicing of layers found by the channel analysis."""
import contextlib
import copy
from typing import Callable, Dict, Iterator, List, Optional, Tuple

import numpy as np
import torch
from torch import nn

from mmrazor.models.task_modules.channel_analysis import (ChannelDependency,
                                                          LayerRecord,
                                                          ParamRecord,
                                                          handler_of,
                                                          slice_tensor)
from mmrazor.structures import dump_subnet, load_subnet


def slice_layer(rec: LayerRecord, in_keep: np.ndarray,
                out_keep: np.ndarray) -> Optional[nn.Module]:
    """Physically remove the pruned channels of one layer, in place, with
    its handler (see :mod:`~mmrazor.models.task_modules.channel_analysis.
    layer_handlers`).

    Args:
        rec (LayerRecord): The layer (from the channel analysis).
        in_keep (np.ndarray): Keep-flags of its input channels.
        out_keep (np.ndarray): Keep-flags of its output channels.

    Returns:
        nn.Module | None: A module to put in the layer's place (e.g. the
        BN in use of a :class:`SwitchableBatchNorm2d`), else None.
    """
    handler, m = rec.handler, rec.module
    if not handler.needs_slicing(m, in_keep, out_keep):
        return None
    return handler.slice(m, in_keep, out_keep,
                         f'{rec.name} ({type(m).__name__})')


def slice_param(rec: ParamRecord, keep: np.ndarray) -> None:
    """Slice a directly used parameter (e.g. a layer scale) in place.

    Args:
        rec (ParamRecord): The parameter.
        keep (np.ndarray): Keep-flags of its channels (flattened ids).
    """
    dim = [d for d, s in enumerate(rec.ids.shape) if s > 1][0]
    slice_tensor(rec.owner, rec.attr, keep, dim)


def _shape_for(n: int, ndim: int, dim: int) -> List[int]:
    shape = [1] * ndim
    shape[dim % ndim] = n
    return shape


def slice_model(root: nn.Module,
                dependency: ChannelDependency,
                masks: Dict[str, np.ndarray],
                twin: Optional[Dict[int, nn.Module]] = None) -> None:
    """Remove the pruned channels physically: every analysed layer is
    sliced (or replaced) and every parameter used directly by ops is cut.

    Args:
        root (nn.Module): The model whose layers are sliced (the analysed
            model, or a deep copy of it with ``twin``).
        dependency (ChannelDependency): The channel analysis.
        masks (dict[str, np.ndarray]): Keep-masks per group.
        twin (dict[int, nn.Module], optional): ``id(analysed module) ->
            its counterpart in root`` when ``root`` is a copy; defaults to
            the analysed modules themselves.
    """
    keep = dependency.keep_by_id(masks)
    own = (lambda m: twin[id(m)]) if twin is not None else (lambda m: m)
    replacements = {}
    for name, rec in dependency.layers.items():
        target = copy.copy(rec)
        target.module = own(rec.module)
        new = slice_layer(target, dependency.mask_of(rec.in_ids, keep),
                          dependency.mask_of(rec.out_ids, keep))
        if new is not None:
            replacements[name] = new
    for prec in dependency.params.values():
        target = copy.copy(prec)
        target.owner = own(prec.owner)
        slice_param(target, dependency.mask_of(prec.ids.ravel(), keep))
    for name, new in replacements.items():
        parent_name, _, attr = name.rpartition('.')
        setattr(root.get_submodule(parent_name), attr, new)


class MaskHooks:
    """Forward hooks that make a model compute like its pruned version
    while keeping every weight (the *masked* model).

    Inputs of every layer are multiplied by the keep-mask of their channels
    and outputs too, so pruned channels never reach a kept one; layers whose
    statistics mix channels (LayerNorm, one-group GroupNorm) normalise over
    the kept channels only.
    """

    #: While > 0, every mask hook of every instance lets tensors through
    #: (a channel analysis must see the model's own computation, not the
    #: masks another pruner put on it).
    _suspended = 0

    @classmethod
    @contextlib.contextmanager
    def suspended(cls) -> Iterator[None]:
        """Let all masked models compute at full width meanwhile."""
        cls._suspended += 1
        try:
            yield
        finally:
            cls._suspended -= 1

    def __init__(self) -> None:
        self.handles: list = []
        self.masks: Dict[str, Tuple[np.ndarray, np.ndarray]] = {}
        self._cache: Dict[tuple, torch.Tensor] = {}
        self._changes: Optional[List[int]] = None
        self._seen = 0
        self._update: Optional[Callable[[], None]] = None

    def follow(self, changes: List[int], update: Callable[[], None]) -> None:
        """Call ``update`` before the next masked layer runs whenever the
        counter ``changes[0]`` moved since the last :meth:`set_masks`.

        Args:
            changes (list[int]): A counter the decisions increment.
            update (Callable): Recomputes the masks and calls
                :meth:`set_masks`.
        """
        self._changes, self._update = changes, update

    def set_masks(self,
                  masks: Dict[str, Tuple[np.ndarray, np.ndarray]]) -> None:
        """Replace the keep-masks (``name -> (in_keep, out_keep)``)."""
        self.masks = masks
        self._cache.clear()
        if self._changes is not None:
            self._seen = self._changes[0]

    def _tensor(self, name: str, side: int, x: torch.Tensor,
                dim: int) -> Optional[torch.Tensor]:
        keep = self.masks.get(name, (None, None))[side]
        if keep is None or keep.all():
            return None
        key = (name, side, x.device, x.dtype, x.dim(), dim)
        t = self._cache.get(key)
        if t is None:
            t = torch.from_numpy(keep.astype(np.float32)).to(
                device=x.device, dtype=x.dtype).reshape(
                    _shape_for(len(keep), x.dim(), dim))
            self._cache[key] = t
        return t

    def install(self, layers: Dict[str, LayerRecord]) -> None:
        """Register the hooks on every layer of ``layers``."""
        self.remove()
        for name, rec in layers.items():
            self.handles.append(
                rec.module.register_forward_pre_hook(self._pre(rec)))
            self.handles.append(
                rec.module.register_forward_hook(self._post(rec)))

    def remove(self) -> None:
        """Remove the hooks (the model computes with all channels)."""
        for h in self.handles:
            h.remove()
        self.handles = []

    def _pre(self, rec: LayerRecord):

        def hook(module, args):
            if MaskHooks._suspended:
                return None
            if self._changes is not None and \
                    self._changes[0] != self._seen:
                self._update()
            if not args or not isinstance(args[0], torch.Tensor):
                return None
            x = args[0]
            if x.dim() < 2 or x.shape[rec.in_dim] != len(rec.in_ids):
                return None
            m = self._tensor(rec.name, 0, x, rec.in_dim)
            if m is None:
                return None
            return (x * m, ) + tuple(args[1:])

        return hook

    def _post(self, rec: LayerRecord):

        def hook(module, args, out):
            if MaskHooks._suspended or not isinstance(
                    out, torch.Tensor) or out.dim() < 2:
                return None
            if out.shape[rec.out_dim] != len(rec.out_ids):
                return None
            keep = self.masks.get(rec.name, (None, None))[1]
            if keep is None or keep.all():
                return None
            if rec.masked_stats:
                return rec.handler.masked_forward(module, args[0], keep,
                                                  rec.in_dim)
            return out * self._tensor(rec.name, 1, out, rec.out_dim)

        return hook


def stale_attributes(model: nn.Module) -> List[str]:
    """Layers whose size attributes disagree with their weights (each
    layer's handler says what to check: ``in_channels``/``out_channels``/
    ``groups`` of convs, ``in_features``/``out_features`` of linears,
    ``num_features`` of norms, ...).

    Args:
        model (nn.Module): A (deployed) model.

    Returns:
        list[str]: ``'name: attr=value but weight says ...'`` per problem.
    """
    problems = []
    for name, m in model.named_modules():
        handler = handler_of(m)
        if handler is not None:
            problems.extend(f'{name}: {p}' for p in handler.stale(m))
    return problems


def dump_channel_cfg(cfg: Dict, path: str) -> None:
    """Write a channel config (older name of ``mmrazor.structures.
    dump_subnet(cfg, path, view='channel_cfg')``).

    Args:
        cfg (dict): As :meth:`StructurePruner.export_subnet` returns it.
        path (str): The destination (``.yaml`` or ``.json``).
    """
    dump_subnet(cfg, path, view='channel_cfg')


def load_channel_cfg(path: str) -> Dict:
    """Read a channel config file (older name of ``mmrazor.structures.
    load_subnet(path, view='channel_cfg')``).

    Args:
        path (str): A channel config file (``.yaml`` or ``.json``).

    Returns:
        dict: Layer name -> ``{in_channels, out_channels, ...}``.

    Raises:
        SubnetError: The file is not a channel config (a ``ValueError``).
    """
    return load_subnet(path, view='channel_cfg')
