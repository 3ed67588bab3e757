"""Recorder of a parameter of a model."""
from typing import Optional

from torch import nn

from mmrazor.registry import TASK_UTILS
from .base_recorder import BaseRecorder


@TASK_UTILS.register_module(name=['Parameter', 'ParameterRecorder'])
class ParameterRecorder(BaseRecorder):
    """Records a parameter (the tensor itself, not a copy) when its
    ``with`` block is entered, so that ``get_record_data()`` inside or after
    the block returns it; nothing is hooked.

    Args:
        source (str): The parameter path, e.g. ``'head.fc.weight'``.
    """

    def __init__(self, source: str) -> None:
        super().__init__(source)
        self.param: Optional[nn.Parameter] = None

    def prepare_from_model(self, model: Optional[nn.Module] = None) -> None:
        """Find the parameter at :attr:`source` in ``model``.

        Args:
            model (nn.Module): The model.
        """
        if not isinstance(model, nn.Module):
            raise TypeError(f'ParameterRecorder({self.source!r}) needs the '
                            'model to find the parameter in, got '
                            f'{type(model).__name__}')
        params = dict(model.named_parameters())
        if self.source not in params:
            owner = self.source.rpartition('.')[0]
            near = [n for n in params if n.startswith(owner + '.')] if owner \
                else list(params)
            raise KeyError(f'ParameterRecorder: the model '
                           f'({type(model).__name__}) has no parameter '
                           f'{self.source!r}; parameters there: '
                           f'{", ".join(near[:20]) or "none"}')
        self.param = params[self.source]
        super().prepare_from_model(model)

    def start_recording(self) -> None:
        self.data_buffer.append(self.param)
