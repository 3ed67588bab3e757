"""Common base of the recorders: a context manager that records data."""
from types import TracebackType
from typing import Any, List, Optional, Type

from torch import nn


class BaseRecorder:
    """Records intermediate data of a forward pass while it is active.

    A recorder is a context manager. Whatever it records (module outputs,
    function inputs, ...) is appended to :attr:`data_buffer` only inside its
    ``with`` block; entering the block empties the buffer, so each block
    holds the data of one forward pass.

    Cost outside the block: none. The hooks or function patches a recorder
    needs are installed when the block is entered and removed when it is
    left (also when the block raises); between blocks the model and the
    patched modules are exactly as they were.

    Args:
        source (str): What to record: a module path (``'backbone.layer1'``),
            a parameter path, or the import path of a function or method.
    """

    #: whether ``source=''`` is meaningful (module recorders: the model
    #: itself, e.g. its positional inputs ``(inputs, data_samples)``)
    empty_source_allowed = False

    def __init__(self, source: str) -> None:
        if not isinstance(source, str) or not (
                source or self.empty_source_allowed):
            raise TypeError(f'{type(self).__name__}: `source` must be a '
                            f'non-empty string, got {source!r}')
        self.source = source
        self.data_buffer: List[Any] = []
        self._recording = False
        self._prepared = False

    # ------------------------------------------------------------ lifecycle
    def prepare_from_model(self, model: Optional[nn.Module] = None) -> None:
        """Find what to record; called once before recording.

        Args:
            model (nn.Module, optional): The model that module and parameter
                paths are relative to; function and method recorders do
                not need one.
        """
        self._prepared = True

    def initialize(self, model: Optional[nn.Module] = None) -> None:
        """The 1.x name of :meth:`prepare_from_model`.

        Args:
            model (nn.Module, optional): See :meth:`prepare_from_model`.
        """
        self.prepare_from_model(model)

    @property
    def recording(self) -> bool:
        """Whether the recorder is inside its ``with`` block."""
        return self._recording

    def start_recording(self) -> None:
        """Install the hooks or patches that record; called on entry."""

    def stop_recording(self) -> None:
        """Remove what :meth:`start_recording` installed; called on exit."""

    def __enter__(self) -> 'BaseRecorder':
        if not self._prepared:
            raise RuntimeError(
                f'{type(self).__name__}({self.source!r}) is not prepared: '
                'call prepare_from_model(model) before recording')
        if self._recording:
            raise RuntimeError(f'{type(self).__name__}({self.source!r}) is '
                               'already recording; recorders do not nest')
        self.reset_data()
        self.start_recording()
        self._recording = True
        return self

    def __exit__(self, exc_type: Optional[Type[BaseException]],
                 exc: Optional[BaseException],
                 traceback: Optional[TracebackType]) -> None:
        self._recording = False
        self.stop_recording()

    # ----------------------------------------------------------------- data
    def reset_data(self) -> None:
        """Forget everything recorded (and the graphs it holds)."""
        self.data_buffer = []

    def get_record_data(self,
                        record_idx: int = 0,
                        data_idx: Optional[int] = None) -> Any:
        """One recorded item.

        Args:
            record_idx (int): Which record, in call order: a module or
                function called twice in one forward records twice.
                Defaults to 0.
            data_idx (int, optional): For a record holding several values
                (the inputs of a call, a tuple output), which of them.
                Defaults to None: the whole record.

        Returns:
            Any: The record, or its ``data_idx``-th value.
        """
        name = f'{type(self).__name__}({self.source!r})'
        if not self.data_buffer:
            raise RuntimeError(
                f'{name} recorded nothing: it records only inside its '
                '`with` block, and only what the forward pass really calls')
        if not -len(self.data_buffer) <= record_idx < len(self.data_buffer):
            raise IndexError(
                f'{name}: record_idx={record_idx} is out of range; it '
                f'recorded {len(self.data_buffer)} time(s) in this forward')
        record = self.data_buffer[record_idx]
        if data_idx is None:
            return record
        if not isinstance(record, (tuple, list)):
            raise TypeError(
                f'{name}: data_idx={data_idx} given, but record '
                f'{record_idx} is a {type(record).__name__}, not a tuple or '
                'list of values')
        if not -len(record) <= data_idx < len(record):
            raise IndexError(f'{name}: data_idx={data_idx} is out of range; '
                             f'record {record_idx} holds {len(record)} '
                             'value(s)')
        return record[data_idx]

    def __repr__(self) -> str:
        return f'{type(self).__name__}(source={self.source!r})'
