"""Model wrappers for distributed training."""
from typing import Any, List, Optional

from mmengine.model import MMDistributedDataParallel
from torch import nn

from mmrazor.registry import MODEL_WRAPPERS


@MODEL_WRAPPERS.register_module()
class RazorDistributedDataParallel(MMDistributedDataParallel):
    """mmengine's DDP wrapper that also works for models on the CPU.

    mmengine's Runner always passes ``device_ids=[LOCAL_RANK]``; PyTorch
    requires ``device_ids=None`` for CPU modules (gloo). This wrapper drops
    ``device_ids`` when the module's parameters live on the CPU, so the same
    config trains with NCCL on GPUs and with gloo on CPU-only machines.

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
