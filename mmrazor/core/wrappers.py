"""Model wrappers for distributed training."""
import contextlib
from typing import Any, Dict, Iterator, List, Optional, Union

from mmengine.model import BaseModel, MMDistributedDataParallel
from mmengine.optim import OptimWrapper
from torch import nn

from mmrazor.models.algorithms.base import DDP_WRAPPER_ATTR
from mmrazor.registry import MODEL_WRAPPERS

def has_custom_train_step(module: nn.Module) -> bool:
    """Whether ``module`` defines its own ``train_step`` (several forward /
    backward passes per step, e.g. AutoSlim, DARTS).

    Args:
        module (nn.Module): The wrapped model.

    Returns:
        bool: True if its ``train_step`` differs from mmengine's.
    """
    step = getattr(type(module), 'train_step', None)
    return step is not None and step is not BaseModel.train_step


@contextlib.contextmanager
def routed_through(module: nn.Module, wrapper: nn.Module) -> Iterator[None]:
    """Let ``module`` run its forward passes through ``wrapper`` meanwhile
    (read by :meth:`mmrazor.models.BaseAlgorithm._run_forward`).

    Args:
        module (nn.Module): The algorithm.
        wrapper (nn.Module): Its DDP wrapper.
    """
    module.__dict__[DDP_WRAPPER_ATTR] = wrapper
    try:
        yield
    finally:
        module.__dict__.pop(DDP_WRAPPER_ATTR, None)


@MODEL_WRAPPERS.register_module()
class RazorDistributedDataParallel(MMDistributedDataParallel):
    """mmengine's DDP wrapper for CPU and GPU models and for algorithms with
    their own multi-pass ``train_step``.

    * mmengine's Runner always passes ``device_ids=[LOCAL_RANK]``; PyTorch
      requires ``device_ids=None`` for CPU modules (gloo). They are dropped
      when the module's parameters live on the CPU.
    * mmengine's wrapper runs one forward pass per step and ignores the
      module's ``train_step``. When the module defines its own, this wrapper
      calls it, and the module's passes reach DDP through
      :meth:`mmrazor.models.BaseAlgorithm._run_forward`.

    Args:
        module (nn.Module): The model to wrap.
        device_ids (list[int], optional): CUDA devices; ignored on CPU.
        **kwargs: Passed to :class:`torch.nn.parallel.DistributedDataParallel`.
    """

    def __init__(self,
                 module: nn.Module,
                 device_ids: Optional[List[int]] = None,
                 **kwargs: Any) -> None:
        first = next(module.parameters(), None)
        if first is None or first.device.type == 'cpu':
            device_ids = None
            kwargs.pop('output_device', None)
        super().__init__(module=module, device_ids=device_ids, **kwargs)

    def train_step(self, data: Union[dict, tuple, list],
                   optim_wrapper: OptimWrapper) -> Dict[str, Any]:
        """The module's own ``train_step`` if it has one, else mmengine's.

        Args:
            data (dict | tuple | list): A batch (or batches) from the loop.
            optim_wrapper (OptimWrapper): The optimizer wrapper(s).

        Returns:
            dict: The log variables.
        """
        if not has_custom_train_step(self.module):
            return super().train_step(data, optim_wrapper)
        with routed_through(self.module, self):
            return self.module.train_step(data, optim_wrapper)
