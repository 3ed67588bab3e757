"""``CustomTracer``: torch.ao's FX ``QuantizationTracer`` with leaf methods.

OpenMMLab models mix traceable tensor code with code that FX cannot trace
(loops over data samples, ``DataSample`` bookkeeping). The 1.x configs name
such methods in ``skipped_methods``; while tracing, each call of one of them
on a module of the traced model becomes a single ``call_function`` node (the
bound method of that module), so its inputs are traced and its body is
run, not traced, at execution time.
"""
import importlib
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn
from torch.ao.quantization.fx.tracer import QuantizationTracer

from mmrazor.registry import TASK_UTILS

#: 1.x configs name the classification codebase ``mmcls``; here it is
#: mmpretrain.
MODULE_PREFIX_ALIASES = {'mmcls': 'mmpretrain'}


def resolve_method(path: str) -> Tuple[type, str]:
    """The class and method name of an import path such as
    ``'mmcls.models.heads.ClsHead._get_loss'``.

    Args:
        path (str): ``package.module.Class.method``; a leading ``mmcls.`` is
            read as ``mmpretrain.``.

    Returns:
        tuple[type, str]: The class and the method name.
    """
    if not isinstance(path, str) or path.count('.') < 2:
        raise ValueError('skipped_methods: each entry must be an import '
                         'path "package.module.Class.method", got '
                         f'{path!r}')
    parts = path.split('.')
    if parts[0] in MODULE_PREFIX_ALIASES:
        parts[0] = MODULE_PREFIX_ALIASES[parts[0]]
    module_path, class_name, method_name = (
        '.'.join(parts[:-2]), parts[-2], parts[-1])
    try:
        module = importlib.import_module(module_path)
    except ImportError as err:
        raise ImportError(f'skipped_methods: cannot import {module_path!r} '
                          f'(from {path!r}): {err}') from err
    cls = getattr(module, class_name, None)
    if not isinstance(cls, type):
        raise AttributeError(f'skipped_methods: {module_path!r} has no '
                             f'class {class_name!r} (from {path!r})')
    if not callable(getattr(cls, method_name, None)):
        raise AttributeError(f'skipped_methods: class {class_name} has no '
                             f'method {method_name!r} (from {path!r})')
    return cls, method_name


def _resolve_class(cls_or_path: Any) -> type:
    if isinstance(cls_or_path, type):
        return cls_or_path
    if isinstance(cls_or_path, str) and '.' in cls_or_path:
        parts = cls_or_path.split('.')
        if parts[0] in MODULE_PREFIX_ALIASES:
            parts[0] = MODULE_PREFIX_ALIASES[parts[0]]
        module = importlib.import_module('.'.join(parts[:-1]))
        cls = getattr(module, parts[-1], None)
        if isinstance(cls, type):
            return cls
    raise ValueError('skipped_module_classes: each entry must be a class or '
                     f'its import path, got {cls_or_path!r}')


@TASK_UTILS.register_module()
class CustomTracer(QuantizationTracer):
    """FX tracer for OpenMMLab models (the 1.x ``CustomTracer``).

    Args:
        skipped_methods (Sequence[str]): Import paths of methods kept as
            leaf calls, e.g. ``'mmcls.models.heads.ClsHead._get_loss'``
            (``mmcls.`` is read as ``mmpretrain.``). Subclasses that inherit
            the method unchanged are covered; a subclass's override is not.
        skipped_module_names (Sequence[str]): Qualified names of submodules
            kept as leaf modules (not traced into, not quantized inside).
        skipped_module_classes (Sequence[type | str]): Module classes kept
            as leaf modules.

    Attributes:
        skipped_calls (list[str]): ``'<module path>.<method>'`` of each
            leaf method call recorded by the latest :meth:`trace`.
    """

    def __init__(self,
                 skipped_methods: Sequence[str] = (),
                 skipped_module_names: Sequence[str] = (),
                 skipped_module_classes: Sequence[Any] = ()) -> None:
        super().__init__(
            list(skipped_module_names),
            [_resolve_class(c) for c in skipped_module_classes])
        self.skipped_methods = [resolve_method(p) for p in skipped_methods]
        self.skipped_calls: List[str] = []

    def _module_paths(self, root: nn.Module) -> Dict[int, str]:
        return {id(m): name for name, m in root.named_modules()}

    def _leaf_method(self, original: Callable, method_name: str,
                     paths: Dict[int, str]) -> Callable:
        tracer = self

        def leaf_call(module_self, *args, **kwargs):
            path = paths.get(id(module_self))
            if path is None:  # not part of the traced model: trace it
                return original(module_self, *args, **kwargs)
            tracer.skipped_calls.append(
                f'{path}.{method_name}' if path else method_name)
            bound = original.__get__(module_self, type(module_self))
            return tracer.create_proxy('call_function', bound, args, kwargs)

        return leaf_call

    def trace(self,
              root: nn.Module,
              concrete_args: Optional[Dict[str, Any]] = None
              ) -> torch.fx.Graph:
        """Trace ``root`` with the skipped methods as leaf calls.

        Args:
            root (nn.Module): The model.
            concrete_args (dict, optional): Arguments fixed while tracing,
                e.g. ``{'mode': 'tensor'}``.

        Returns:
            torch.fx.Graph: The graph.
        """
        self.skipped_calls = []
        paths = self._module_paths(root)
        patched = []
        try:
            for cls, name in self.skipped_methods:
                original = cls.__dict__.get(name)
                if original is None:  # inherited: patch where it is defined
                    owner = next(
                        c for c in cls.__mro__ if name in c.__dict__)
                    original = owner.__dict__[name]
                    cls = owner
                patched.append((cls, name, original))
                setattr(cls, name, self._leaf_method(original, name, paths))
            return super().trace(root, concrete_args)
        finally:
            for cls, name, original in reversed(patched):
                setattr(cls, name, original)
