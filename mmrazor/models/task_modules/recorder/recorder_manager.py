"""Several recorders, built from configs and used as one."""
import contextlib
from types import TracebackType
from typing import Dict, Optional, Type, Union

from torch import nn

from mmrazor.registry import TASK_UTILS
from .base_recorder import BaseRecorder


class RecorderManager:
    """Builds named recorders and records with all of them at once.

    Args:
        recorders (dict, optional): Name -> recorder config (e.g.
            ``dict(type='ModuleOutputs', source='head.fc')``) or recorder.
    """

    def __init__(self,
                 recorders: Optional[Dict[str,
                                          Union[dict,
                                                BaseRecorder]]] = None
                 ) -> None:
        if recorders is not None and not isinstance(recorders, dict):
            raise TypeError('RecorderManager: `recorders` must be a dict of '
                            'name -> recorder config, got '
                            f'{type(recorders).__name__}')
        self._recorders: Dict[str, BaseRecorder] = {}
        for name, cfg in (recorders or {}).items():
            self._recorders[name] = self.build_recorder(name, cfg)
        self._stack: Optional[contextlib.ExitStack] = None

    @staticmethod
    def build_recorder(name: str, cfg: Union[dict,
                                             BaseRecorder]) -> BaseRecorder:
        """Build one recorder.

        Args:
            name (str): Its name, for messages.
            cfg (dict | BaseRecorder): Its config, or the recorder.

        Returns:
            BaseRecorder: The recorder.
        """
        if isinstance(cfg, BaseRecorder):
            return cfg
        if not isinstance(cfg, dict) or 'type' not in cfg:
            raise TypeError(f'recorder {name!r} must be a config dict with '
                            f'`type` and `source`, got {cfg!r}')
        recorder = TASK_UTILS.build(dict(cfg))
        if not isinstance(recorder, BaseRecorder):
            raise TypeError(f'recorder {name!r}: type {cfg["type"]!r} is not '
                            'a recorder')
        return recorder

    @property
    def recorders(self) -> Dict[str, BaseRecorder]:
        """Name -> recorder."""
        return self._recorders

    def get_recorder(self, name: str) -> BaseRecorder:
        """The recorder called ``name``.

        Args:
            name (str): Its name.

        Returns:
            BaseRecorder: The recorder.
        """
        if name not in self._recorders:
            raise KeyError(f'no recorder named {name!r}; recorders: '
                           f'{sorted(self._recorders) or "none"}')
        return self._recorders[name]

    def prepare_from_model(self, model: Optional[nn.Module] = None) -> None:
        """Prepare every recorder from ``model``.

        Args:
            model (nn.Module, optional): The model.
        """
        for recorder in self._recorders.values():
            recorder.prepare_from_model(model)

    def initialize(self, model: Optional[nn.Module] = None) -> None:
        """The 1.x name of :meth:`prepare_from_model`."""
        self.prepare_from_model(model)

    def reset_data(self) -> None:
        """Forget what every recorder recorded."""
        for recorder in self._recorders.values():
            recorder.reset_data()

    def __enter__(self) -> 'RecorderManager':
        stack = contextlib.ExitStack()
        with stack:
            for recorder in self._recorders.values():
                stack.enter_context(recorder)
            self._stack = stack.pop_all()
        return self

    def __exit__(self, exc_type: Optional[Type[BaseException]],
                 exc: Optional[BaseException],
                 traceback: Optional[TracebackType]) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            stack.close()

    def __len__(self) -> int:
        return len(self._recorders)
