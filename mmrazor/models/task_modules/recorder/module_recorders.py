"""Recorders of the inputs and outputs of an ``nn.Module``."""
from typing import Any, Optional, Tuple

from torch import nn
from torch.utils.hooks import RemovableHandle

from mmrazor.registry import TASK_UTILS
from .base_recorder import BaseRecorder


def module_at(model: nn.Module, path: str, role: str = 'model') -> nn.Module:
    """The sub-module of ``model`` at ``path``, with a helpful error.

    Args:
        model (nn.Module): The model.
        path (str): A module path such as ``'backbone.layer1'``.
        role (str): What the model is (``'student'``, ``'teacher'``), for
            the message. Defaults to ``'model'``.

    Returns:
        nn.Module: The module.
    """
    from mmrazor.models.distillers.base import find_module
    return find_module(model, path, role)


class ModuleRecorder(BaseRecorder):
    """Base of the recorders that hook one module of a model.

    The hook is registered on entering the ``with`` block and removed on
    leaving it.

    Args:
        source (str): The module path, relative to the model given to
            :meth:`prepare_from_model`; ``''`` is the model itself (1.x CRD
            records the data samples the student is called with).
    """

    empty_source_allowed = True

    def __init__(self, source: str) -> None:
        super().__init__(source)
        self.module: Optional[nn.Module] = None
        self._handle: Optional[RemovableHandle] = None

    def prepare_from_model(self,
                           model: Optional[nn.Module] = None,
                           role: str = 'model') -> None:
        """Find the module at :attr:`source` in ``model``.

        Args:
            model (nn.Module): The model.
            role (str): What the model is, for the error of a missing
                path. Defaults to ``'model'``.
        """
        if not isinstance(model, nn.Module):
            raise TypeError(f'{type(self).__name__}({self.source!r}) needs '
                            'the model to find the module in, got '
                            f'{type(model).__name__}')
        self.module = module_at(model, self.source, role)
        super().prepare_from_model(model)

    def register_hook(self, module: nn.Module) -> RemovableHandle:
        """Register the recording hook on ``module``."""
        raise NotImplementedError

    def start_recording(self) -> None:
        self._handle = self.register_hook(self.module)

    def stop_recording(self) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None


@TASK_UTILS.register_module(name=['ModuleOutputs', 'ModuleOutputsRecorder'])
class ModuleOutputsRecorder(ModuleRecorder):
    """Records the output of a module, once per call.

    Args:
        source (str): The module path, e.g. ``'head.fc'``.
    """

    def register_hook(self, module: nn.Module) -> RemovableHandle:
        """Register a forward hook appending the output."""

        def hook(mod: nn.Module, args: Tuple, output: Any) -> None:
            self.data_buffer.append(output)

        return module.register_forward_hook(hook)


@TASK_UTILS.register_module(name=['ModuleInputs', 'ModuleInputsRecorder'])
class ModuleInputsRecorder(ModuleRecorder):
    """Records the positional inputs of a module, a tuple per call.

    Keyword arguments of the call are not recorded (as in MMRazor 1.x): for
    ``loss_module(cls_score, target, avg_factor=n)``, ``data_idx=1`` selects
    ``target``.

    Args:
        source (str): The module path, e.g. ``'head.loss_module'``.
    """

    def register_hook(self, module: nn.Module) -> RemovableHandle:
        """Register a forward pre-hook appending the inputs."""

        def hook(mod: nn.Module, args: Tuple) -> None:
            self.data_buffer.append(args)

        return module.register_forward_pre_hook(hook)
