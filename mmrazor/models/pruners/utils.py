"""Masking and physical slicing of layers found by the channel analysis."""
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mmrazor.models.task_modules.channel_analysis import (LayerRecord,
                                                          ParamRecord)
from mmrazor.structures import dump_subnet, load_subnet
from .switchable_bn import SwitchableBatchNorm2d


def _index(keep: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(np.flatnonzero(keep)).to(device)


def _take(t: Optional[torch.Tensor], keep: np.ndarray,
          dim: int = 0) -> Optional[torch.Tensor]:
    if t is None:
        return None
    return t.index_select(dim, _index(keep, t.device)).clone()


def _set_param(module: nn.Module, attr: str,
               value: Optional[torch.Tensor]) -> None:
    if value is None:
        return
    old = getattr(module, attr)
    if isinstance(old, nn.Parameter):
        setattr(module, attr,
                nn.Parameter(value, requires_grad=old.requires_grad))
    else:
        module._buffers[attr] = value


def _whole_rows(keep: np.ndarray, rows: int, what: str) -> np.ndarray:
    table = keep.reshape(rows, -1)
    whole = table.all(1) | ~table.any(1)
    if not whole.all():
        raise RuntimeError(f'{what}: every group must be kept or pruned '
                           'as a whole')
    return table.all(1)


def slice_layer(rec: LayerRecord, in_keep: np.ndarray,
                out_keep: np.ndarray) -> Optional[nn.Module]:
    """Physically remove the pruned channels of one layer, in place.

    Args:
        rec (LayerRecord): The layer (from the channel analysis).
        in_keep (np.ndarray): Keep-flags of its input channels.
        out_keep (np.ndarray): Keep-flags of its output channels.

    Returns:
        nn.Module | None: A replacement module when the layer must be
        swapped for a plain one (a :class:`SwitchableBatchNorm2d`), else
        None.
    """
    m = rec.module
    if in_keep.all() and out_keep.all() and \
            not isinstance(m, SwitchableBatchNorm2d):
        return None
    where = f'{rec.name} ({type(m).__name__})'
    if rec.kind == 'conv':
        groups = m.groups
        if groups == 1:
            weight = _take(_take(m.weight, out_keep, 0), in_keep, 1)
            new_groups = 1
        else:
            kept_in = _whole_rows(in_keep, groups, where)
            kept_out = _whole_rows(out_keep, groups, where)
            if not np.array_equal(kept_in, kept_out):
                raise RuntimeError(f'{where}: input and output groups '
                                   'disagree')
            weight = _take(m.weight, out_keep, 0)
            new_groups = int(kept_in.sum())
        _set_param(m, 'weight', weight)
        _set_param(m, 'bias', _take(m.bias, out_keep))
        m.in_channels = int(in_keep.sum())
        m.out_channels = int(out_keep.sum())
        m.groups = new_groups
    elif rec.kind == 'linear':
        _set_param(m, 'weight', _take(_take(m.weight, out_keep, 0), in_keep,
                                      1))
        _set_param(m, 'bias', _take(m.bias, out_keep))
        m.in_features = int(in_keep.sum())
        m.out_features = int(out_keep.sum())
    elif rec.kind in ('norm', 'layernorm'):
        keep = out_keep
        if isinstance(m, SwitchableBatchNorm2d):
            bn = m.active_bn
            _slice_norm(bn, keep)
            return bn
        _slice_norm(m, keep, where)
    else:
        raise RuntimeError(f'{where}: cannot slice a {rec.kind!r} layer')
    return None


def _slice_norm(m: nn.Module, keep: np.ndarray, where: str = '') -> None:
    count = int(keep.sum())
    if isinstance(m, nn.PReLU):
        _set_param(m, 'weight', _take(m.weight, keep))
        m.num_parameters = count
        return
    for attr in ('weight', 'bias', 'running_mean', 'running_var'):
        t = getattr(m, attr, None)
        if isinstance(t, torch.Tensor) and t.dim() >= 1:
            _set_param(m, attr, _take(t, keep))
    if isinstance(m, nn.LayerNorm):
        m.normalized_shape = (count, )
    elif isinstance(m, nn.GroupNorm):
        if 1 < m.num_groups < m.num_channels:
            m.num_groups = int(_whole_rows(keep, m.num_groups, where).sum())
        elif m.num_groups == m.num_channels:
            m.num_groups = count
        m.num_channels = count
    else:
        m.num_features = count


def slice_param(rec: ParamRecord, keep: np.ndarray) -> None:
    """Slice a directly used parameter (e.g. a layer scale) in place.

    Args:
        rec (ParamRecord): The parameter.
        keep (np.ndarray): Keep-flags of its channels (flattened ids).
    """
    if keep.all():
        return
    dim = [d for d, s in enumerate(rec.ids.shape) if s > 1][0]
    t = getattr(rec.owner, rec.attr)
    _set_param(rec.owner, rec.attr, _take(t.data if isinstance(
        t, nn.Parameter) else t, keep, dim))


def _shape_for(n: int, ndim: int, dim: int) -> List[int]:
    shape = [1] * ndim
    shape[dim % ndim] = n
    return shape


class MaskHooks:
    """Forward hooks that make a model compute like its pruned version
    while keeping every weight (the *masked* model).

    Inputs of every layer are multiplied by the keep-mask of their channels
    and outputs too, so pruned channels never reach a kept one; layers whose
    statistics mix channels (LayerNorm, one-group GroupNorm) normalise over
    the kept channels only.
    """

    def __init__(self) -> None:
        self.handles: list = []
        self.masks: Dict[str, Tuple[np.ndarray, np.ndarray]] = {}
        self._cache: Dict[tuple, torch.Tensor] = {}

    def set_masks(self,
                  masks: Dict[str, Tuple[np.ndarray, np.ndarray]]) -> None:
        """Replace the keep-masks (``name -> (in_keep, out_keep)``)."""
        self.masks = masks
        self._cache.clear()

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
            if not isinstance(out, torch.Tensor) or out.dim() < 2:
                return None
            if out.shape[rec.out_dim] != len(rec.out_ids):
                return None
            keep = self.masks.get(rec.name, (None, None))[1]
            if keep is None or keep.all():
                return None
            if rec.masked_stats:
                return _masked_norm(module, args[0], keep, rec.in_dim)
            return out * self._tensor(rec.name, 1, out, rec.out_dim)

        return hook


def _masked_norm(module: nn.Module, x: torch.Tensor, keep: np.ndarray,
                 dim: int) -> torch.Tensor:
    """A LayerNorm / one-group GroupNorm over the kept channels only (zeros
    elsewhere)."""
    idx = _index(keep, x.device)
    weight = None if module.weight is None else module.weight[idx]
    bias = None if module.bias is None else module.bias[idx]
    out = torch.zeros_like(x)
    if isinstance(module, nn.GroupNorm):
        y = F.group_norm(x.index_select(1, idx), 1, weight, bias,
                         module.eps)
        out.index_copy_(1, idx, y)
        return out
    xd = x.movedim(dim, -1)
    y = F.layer_norm(
        xd.index_select(-1, idx), (len(idx), ), weight, bias, module.eps)
    od = out.movedim(dim, -1)
    od.index_copy_(od.dim() - 1, idx, y)
    return out


def stale_attributes(model: nn.Module) -> List[str]:
    """Modules whose size attributes disagree with their weights.

    Checks convs (``in_channels``, ``out_channels``, ``groups``), linears,
    BatchNorm/InstanceNorm (``num_features``), GroupNorm (``num_channels``)
    and LayerNorm (``normalized_shape``).

    Args:
        model (nn.Module): A (deployed) model.

    Returns:
        list[str]: ``'name: attr=value but weight says ...'`` per problem.
    """
    problems = []
    for name, m in model.named_modules():
        w = getattr(m, 'weight', None)
        if not isinstance(w, torch.Tensor):
            continue
        if isinstance(m, nn.modules.conv._ConvNd) and not m.transposed:
            if m.out_channels != w.shape[0]:
                problems.append(f'{name}: out_channels={m.out_channels} '
                                f'but weight has {w.shape[0]}')
            if m.in_channels != w.shape[1] * m.groups:
                problems.append(
                    f'{name}: in_channels={m.in_channels} but weight has '
                    f'{w.shape[1]} x groups={m.groups}')
        elif isinstance(m, nn.Linear):
            if (m.out_features, m.in_features) != tuple(w.shape):
                problems.append(
                    f'{name}: in/out_features=({m.in_features}, '
                    f'{m.out_features}) but weight is {tuple(w.shape)}')
        elif isinstance(m, nn.modules.batchnorm._NormBase):
            if m.num_features != w.shape[0]:
                problems.append(f'{name}: num_features={m.num_features} '
                                f'but weight has {w.shape[0]}')
        elif isinstance(m, nn.GroupNorm):
            if m.num_channels != w.shape[0] or \
                    m.num_channels % m.num_groups:
                problems.append(f'{name}: num_channels={m.num_channels}, '
                                f'num_groups={m.num_groups} but weight has '
                                f'{w.shape[0]}')
        elif isinstance(m, nn.LayerNorm):
            if tuple(m.normalized_shape) != tuple(w.shape):
                problems.append(
                    f'{name}: normalized_shape={tuple(m.normalized_shape)}'
                    f' but weight is {tuple(w.shape)}')
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
