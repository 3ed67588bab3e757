"""Convolutions of the BigNAS / AttentiveNAS and Once-for-All supernets."""
from typing import Any, Dict, List, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from mmrazor.models.mutables import BaseMutable
from mmrazor.registry import MODELS
from .dynamic_conv import DynamicConv2d


def _same_padding(kernel_size: int, dilation: Tuple[int, ...]
                  ) -> Tuple[int, ...]:
    """Padding keeping the spatial size at stride 1 (odd kernels)."""
    return tuple(d * (kernel_size - 1) // 2 for d in dilation)


@MODELS.register_module()
class BigNasConv2d(DynamicConv2d):
    """The conv of BigNAS / AttentiveNAS supernets.

    A :class:`DynamicConv2d` whose smaller kernels are centre crops of the
    largest one and whose padding is always 'same' for the kernel in use
    (``dilation * (k - 1) // 2``), whatever ``padding`` it was built with.
    Build it with the arguments of ``nn.Conv2d`` (square, odd kernel).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.kernel_size[0] != self.kernel_size[1] or \
                self.kernel_size[0] % 2 == 0:
            raise ValueError(f'{type(self).__name__} needs a square odd '
                             f'kernel, got kernel_size={self.kernel_size}')
        if self.padding_mode != 'zeros':
            raise ValueError(f'{type(self).__name__} needs zero padding, '
                             f'got padding_mode={self.padding_mode!r}')
        self.padding = _same_padding(self.kernel_size[0], self.dilation)

    @property
    def active_padding(self) -> Tuple[int, ...]:
        """'Same' padding of the kernel in use."""
        return _same_padding(self.active_kernel_size[0], self.dilation)


@MODELS.register_module()
class OFAConv2d(BigNasConv2d):
    """The conv of Once-for-All supernets: kernel transformation.

    As in OFA (Cai et al., 2020, "elastic kernel size"), a smaller kernel is
    not the plain centre crop of the largest kernel: going down the kernel
    choices from the largest (e.g. 7 -> 5 -> 3), each step crops the centre
    of the current kernel and maps its ``k * k`` values through a learned
    linear transformation, shared by all channels (one matrix per step,
    initialised to the identity).

    The matrices are created when a kernel-size mutable is registered
    (they depend on its choices) and stored in ``trans_matrix``
    (``nn.ParameterDict``, keys ``'{K}to{k}'``). :meth:`to_static_op`
    bakes the transformed kernel into a plain ``nn.Conv2d``.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.trans_matrix = nn.ParameterDict()
        self._kernel_chain: List[int] = [self.kernel_size[0]]

    def register_mutable_attr(self, attr: str,
                              mutable: BaseMutable) -> 'OFAConv2d':
        """See :meth:`DynamicConv2d.register_mutable_attr`; a kernel-size
        mutable also creates the transformation matrices of its choices.
        """
        super().register_mutable_attr(attr, mutable)
        if self.mutable_attr_aliases.get(attr, attr) == 'kernel_size':
            full = self.kernel_size[0]
            smaller = sorted({k for k in mutable.choices if k < full},
                             reverse=True)
            self._kernel_chain = [full] + smaller
            matrices: Dict[str, nn.Parameter] = {}
            for src, dst in zip(self._kernel_chain, self._kernel_chain[1:]):
                matrices[f'{src}to{dst}'] = nn.Parameter(
                    torch.eye(dst * dst, device=self.weight.device,
                              dtype=self.weight.dtype))
            self.trans_matrix = nn.ParameterDict(matrices)
        return self

    def _active_kernel(self, weight: torch.Tensor) -> torch.Tensor:
        k = self.active_kernel_size[0]
        if k == self.kernel_size[0]:
            return weight
        if k not in self._kernel_chain:
            raise RuntimeError(f'OFAConv2d: kernel size {k} is not one of '
                               f'the registered choices {self._kernel_chain}')
        out_c, in_c = weight.shape[:2]
        for src, dst in zip(self._kernel_chain, self._kernel_chain[1:]):
            start = (src - dst) // 2
            cropped = weight[:, :, start:start + dst, start:start + dst]
            weight = F.linear(
                cropped.reshape(-1, dst * dst),
                self.trans_matrix[f'{src}to{dst}']).reshape(
                    out_c, in_c, dst, dst)
            if dst == k:
                break
        return weight
