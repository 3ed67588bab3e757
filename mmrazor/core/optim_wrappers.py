"""Optimizer wrappers."""
from contextlib import contextmanager
from typing import Iterator, Union

import torch
from mmengine.optim import OptimWrapper
from torch import nn

from mmrazor.registry import OPTIM_WRAPPERS


@OPTIM_WRAPPERS.register_module()
class CPUAmpOptimWrapper(OptimWrapper):
    """Mixed precision on the CPU: forward passes under bfloat16 autocast.

    mmengine's ``AmpOptimWrapper`` only runs on accelerators; ``--amp`` on a
    CPU-only machine uses this wrapper instead. bfloat16 keeps float32's
    exponent range, so no loss scaling is needed.

    Args:
        dtype (str | torch.dtype): ``'bfloat16'`` (default) or
            ``'float16'``.
        **kwargs: Arguments of :class:`mmengine.optim.OptimWrapper`.
    """

    def __init__(self,
                 dtype: Union[str, torch.dtype] = 'bfloat16',
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if isinstance(dtype, str):
            if dtype not in ('bfloat16', 'float16'):
                raise ValueError(f'CPUAmpOptimWrapper dtype must be '
                                 f"'bfloat16' or 'float16', got {dtype!r}")
            dtype = getattr(torch, dtype)
        self.cast_dtype = dtype

    @contextmanager
    def optim_context(self, model: nn.Module) -> Iterator[None]:
        """Gradient-accumulation context of the parent, under autocast.

        Args:
            model (nn.Module): The trained model.
        """
        with super().optim_context(model), torch.autocast(
                device_type='cpu', dtype=self.cast_dtype):
            yield
