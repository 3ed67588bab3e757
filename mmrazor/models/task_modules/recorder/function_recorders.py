"""Recorders of the inputs and outputs of functions and methods."""
import functools
import inspect
from typing import Any, Callable, Optional, Tuple

from torch import nn

from mmrazor.registry import TASK_UTILS
from .base_recorder import BaseRecorder
from .patching import (AttributePatch, resolve_function, resolve_method,
                       unwrap_descriptor)


def bound_inputs(func: Callable, args: Tuple, kwargs: dict) -> Tuple:
    """The arguments of one call, in the order of ``func``'s parameters.

    Args:
        func (Callable): The called function.
        args (tuple): Positional arguments of the call.
        kwargs (dict): Keyword arguments of the call.

    Returns:
        tuple: The values passed (defaults not filled in); for
        ``f(a, b, c=3)`` that is ``(a, b, 3)``.
    """
    if not kwargs:
        return tuple(args)
    try:
        bound = inspect.signature(func).bind(*args, **kwargs)
    except (TypeError, ValueError):
        return tuple(args) + tuple(kwargs.values())
    return tuple(bound.arguments.values())


class PatchingRecorder(BaseRecorder):
    """Base of the recorders that wrap a function or method while active.

    On entering the ``with`` block the target is replaced, where it is
    looked up (the module or class of :attr:`source`), by a wrapper that
    calls it and records; on leaving, the original is put back.

    Args:
        source (str): The import path of the function or method.
    """

    def __init__(self, source: str) -> None:
        super().__init__(source)
        self._patch: Optional[AttributePatch] = None
        self._original: Optional[Callable] = None

    def resolve(self) -> Tuple[Any, str, Callable]:
        """``(owner, name, original)`` of the target."""
        raise NotImplementedError

    def unwrap(self, original: Any) -> Tuple[Callable, Callable]:
        """The plain function of ``original`` and how to re-wrap one.

        Args:
            original (Any): What :meth:`resolve` found.

        Returns:
            tuple: ``(function, rewrap)``.
        """
        return original, (lambda f: f)

    def record(self, args: Tuple, kwargs: dict, output: Any) -> None:
        """Record one call."""
        raise NotImplementedError

    def prepare_from_model(self, model: Optional[nn.Module] = None) -> None:
        """Check that :attr:`source` can be found (the model is unused).

        Args:
            model (nn.Module, optional): Unused.
        """
        self.resolve()
        super().prepare_from_model(model)

    def start_recording(self) -> None:
        owner, name, found = self.resolve()
        original, rewrap = self.unwrap(found)
        recorder = self

        @functools.wraps(original)
        def recording_wrapper(*args: Any, **kwargs: Any) -> Any:
            output = original(*args, **kwargs)
            recorder.record(args, kwargs, output)
            return output

        self._original = original
        self._patch = AttributePatch(owner, name, rewrap(recording_wrapper))

    def stop_recording(self) -> None:
        if self._patch is not None:
            self._patch.restore()
            self._patch = None


@TASK_UTILS.register_module(
    name=['FunctionOutputs', 'FunctionOutputsRecorder'])
class FunctionOutputsRecorder(PatchingRecorder):
    """Records the return value of a module-level function, once per call.

    Args:
        source (str): ``'package.module.func'``, naming the module that
            *calls* the function (where it is looked up), e.g.
            ``'mmdet.models.dense_heads.anchor_head.anchor_inside_flags'``
            rather than the module defining it.
    """

    def resolve(self) -> Tuple[Any, str, Callable]:
        return resolve_function(self.source)

    def record(self, args: Tuple, kwargs: dict, output: Any) -> None:
        self.data_buffer.append(output)


@TASK_UTILS.register_module(name=['FunctionInputs', 'FunctionInputsRecorder'])
class FunctionInputsRecorder(FunctionOutputsRecorder):
    """Records the arguments of a module-level function, a tuple per call,
    in the order of the function's parameters (see :func:`bound_inputs`).

    Args:
        source (str): ``'package.module.func'`` (see
            :class:`FunctionOutputsRecorder`).
    """

    def record(self, args: Tuple, kwargs: dict, output: Any) -> None:
        self.data_buffer.append(bound_inputs(self._original, args, kwargs))


@TASK_UTILS.register_module(name=['MethodOutputs', 'MethodOutputsRecorder'])
class MethodOutputsRecorder(PatchingRecorder):
    """Records the return value of a method, once per call.

    The method is patched on its class, so calls on *every* instance are
    recorded while the recorder is active.

    Args:
        source (str): ``'package.module.Class.method'``.
    """

    _first_is_bound = True

    def resolve(self) -> Tuple[Any, str, Callable]:
        return resolve_method(self.source)

    def unwrap(self, original: Any) -> Tuple[Callable, Callable]:
        func, rewrap, self._first_is_bound = unwrap_descriptor(original)
        return func, rewrap

    def record(self, args: Tuple, kwargs: dict, output: Any) -> None:
        self.data_buffer.append(output)


@TASK_UTILS.register_module(name=['MethodInputs', 'MethodInputsRecorder'])
class MethodInputsRecorder(MethodOutputsRecorder):
    """Records the arguments of a method (without ``self`` or ``cls``), a
    tuple per call, in the order of its parameters.

    Args:
        source (str): ``'package.module.Class.method'``.
    """

    def record(self, args: Tuple, kwargs: dict, output: Any) -> None:
        inputs = bound_inputs(self._original, args, kwargs)
        self.data_buffer.append(inputs[1:] if self._first_is_bound else inputs)
