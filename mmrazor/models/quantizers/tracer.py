"""``CustomTracer``: torch.ao's FX ``QuantizationTracer`` with leaf methods.

OpenMMLab models mix traceable tensor code with code that FX cannot trace
(loops over data samples, ``DataSample`` bookkeeping). The 1.x configs name
such methods in ``skipped_methods``; while tracing, each call of one of them
on a module of the traced model becomes a single ``call_function`` node (the
bound method of that module), so its inputs are traced and its body is
run, not traced, at execution time. ``skipped_functions`` do the same for
module-level functions.

Besides, the tracer knows the data-sample bookkeeping of the imported
OpenMMLab codebases that 1.x left to a patched fork of mmdet (its
quantization guide's ``for_mmrazor`` branch): :data:`DATA_SAMPLE_LEAF_METHODS` and
:data:`DATA_SAMPLE_LEAF_FUNCTIONS` become leaves, and each method of
:data:`DATA_SAMPLE_TWINS` is traced through a twin that does the same with
its loop over the data samples a leaf. The detector's tensors (backbone,
neck, head convolutions) stay traced, hence quantized, in every forward
mode.
"""
import importlib
import sys
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch import fx, nn
from torch.ao.quantization.fx.tracer import QuantizationTracer

from mmrazor.models.task_modules.recorder.patching import (AttributePatch,
                                                           resolve_function)
from mmrazor.registry import TASK_UTILS

#: 1.x configs name the classification codebase ``mmcls``; here it is
#: mmpretrain.
MODULE_PREFIX_ALIASES = {'mmcls': 'mmpretrain'}


def _aliased(path: str) -> str:
    """``path`` with a leading ``mmcls.`` read as ``mmpretrain.``."""
    head, dot, rest = path.partition('.')
    return MODULE_PREFIX_ALIASES.get(head, head) + dot + rest


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
    parts = _aliased(path).split('.')
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
        parts = _aliased(cls_or_path).split('.')
        module = importlib.import_module('.'.join(parts[:-1]))
        cls = getattr(module, parts[-1], None)
        if isinstance(cls, type):
            return cls
    raise ValueError('skipped_module_classes: each entry must be a class or '
                     f'its import path, got {cls_or_path!r}')


def _defining_class(cls: type, name: str) -> type:
    """The class of ``cls``'s MRO whose body defines ``name``."""
    return next(c for c in cls.__mro__ if name in vars(c))


def holds_proxy(value: Any) -> bool:
    """Whether ``value`` (or a list / tuple / dict inside it) holds an FX
    proxy."""
    found = []
    fx.node.map_aggregate(
        value, lambda v: found.append(v) if isinstance(v, fx.Proxy) else v)
    return bool(found)


@fx.wrap
def data_sample_metainfos(data_samples: Sequence[Any]) -> List[dict]:
    """The ``metainfo`` of each data sample (a leaf of every FX trace).

    Args:
        data_samples (Sequence): Data samples, e.g. ``DetDataSample``.

    Returns:
        list[dict]: Their metainfo, in order.
    """
    return [sample.metainfo for sample in data_samples]


def traceable_dense_head_predict(self, x: Tuple[torch.Tensor, ...],
                                 batch_data_samples: Sequence[Any],
                                 rescale: bool = False) -> Any:
    """mmdet's ``BaseDenseHead.predict`` (the head's forward, then
    ``predict_by_feat`` with the images' metainfo), with the metainfo list a
    leaf, so that FX need not iterate the data samples.

    Args:
        x (tuple[Tensor]): The neck's features.
        batch_data_samples (list[DetDataSample]): The data samples.
        rescale (bool): Rescale the boxes to the original image size.

    Returns:
        list[InstanceData]: ``predict_by_feat``'s detections.
    """
    batch_img_metas = data_sample_metainfos(batch_data_samples)
    outs = self(x)
    return self.predict_by_feat(
        *outs, batch_img_metas=batch_img_metas, rescale=rescale)


#: OpenMMLab methods that only move data samples around (FX cannot iterate
#: them): leaves of every trace whose codebase is installed.
DATA_SAMPLE_LEAF_METHODS = (
    'mmdet.models.detectors.base.BaseDetector.add_pred_to_datasample', )
#: Module-level functions on data samples, named in the module whose code
#: calls them: leaves of every trace whose codebase is installed.
DATA_SAMPLE_LEAF_FUNCTIONS = (
    'mmdet.models.dense_heads.base_dense_head.unpack_gt_instances', )
#: Methods that iterate the data samples in their own body, and the twin
#: traced in their place (same computation, the iteration a leaf).
DATA_SAMPLE_TWINS = {
    'mmdet.models.dense_heads.base_dense_head.BaseDenseHead.predict':
    traceable_dense_head_predict,
}


def imported(path: str, depth: int) -> bool:
    """Whether the module of an import path is imported already.

    Args:
        path (str): ``package.module.function`` (``depth=1``) or
            ``package.module.Class.method`` (``depth=2``).
        depth (int): How many trailing names are not the module's.

    Returns:
        bool: A model of a codebase can only be traced once the codebase is
        imported, so code of a codebase not imported needs no patching (nor
        the import, which may fail where the codebase is unusable).
    """
    return path.rsplit('.', depth)[0] in sys.modules


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
        skipped_functions (Sequence[str]): Import paths
            ``package.module.function`` of module-level functions kept as
            leaf calls wherever an argument is traced; ``package.module`` is
            the module whose code calls the function (its global name there
            is patched), not necessarily where it is defined.
        data_sample_leaves (bool): Also apply :data:`DATA_SAMPLE_LEAF_METHODS`,
            :data:`DATA_SAMPLE_LEAF_FUNCTIONS` and :data:`DATA_SAMPLE_TWINS`
            of the codebases imported when :meth:`trace` runs. Defaults to
            True.

    Attributes:
        skipped_calls (list[str]): ``'<module path>.<method>'`` of each
            leaf method call recorded by the latest :meth:`trace`.
        leaf_functions (set): The functions whose calls are leaf nodes
            (``call_function`` targets that are not tensor ops).
    """

    def __init__(self,
                 skipped_methods: Sequence[str] = (),
                 skipped_module_names: Sequence[str] = (),
                 skipped_module_classes: Sequence[Any] = (),
                 skipped_functions: Sequence[str] = (),
                 data_sample_leaves: bool = True) -> None:
        super().__init__(
            list(skipped_module_names),
            [_resolve_class(c) for c in skipped_module_classes])
        if isinstance(skipped_methods, str) or isinstance(
                skipped_functions, str):
            raise TypeError('skipped_methods / skipped_functions must be '
                            'sequences of import paths, got '
                            f'{skipped_methods!r} / {skipped_functions!r}')
        self.skipped_methods = [resolve_method(p) for p in skipped_methods]
        self.skipped_functions = [
            self._resolve_function(p) for p in skipped_functions
        ]
        self.data_sample_leaves = data_sample_leaves
        self.skipped_calls: List[str] = []
        self.leaf_functions = {data_sample_metainfos} | {
            func
            for _, _, func in self.skipped_functions
        }

    @staticmethod
    def _resolve_function(path: str) -> Tuple[Any, str, Callable]:
        if not isinstance(path, str) or path.count('.') < 1:
            raise ValueError('skipped_functions: each entry must be an '
                             'import path "package.module.function", got '
                             f'{path!r}')
        return resolve_function(_aliased(path))

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

    def _leaf_function(self, original: Callable) -> Callable:
        tracer = self

        def leaf_call(*args, **kwargs):
            if not holds_proxy((args, kwargs)):
                return original(*args, **kwargs)
            return tracer.create_proxy('call_function', original, args,
                                       kwargs)

        return leaf_call

    def _patch(self, root: nn.Module, patches: List[AttributePatch]) -> None:
        """Patch the skipped methods and functions and the twins (a
        skipped method is not replaced by its twin), appending each patch to
        ``patches``."""
        paths = self._module_paths(root)
        methods, functions = self.skipped_methods, self.skipped_functions
        twins: List[Tuple[type, str, Callable]] = []
        if self.data_sample_leaves:
            methods = methods + [
                resolve_method(p) for p in DATA_SAMPLE_LEAF_METHODS
                if imported(p, 2)
            ]
            functions = functions + [
                self._resolve_function(p) for p in DATA_SAMPLE_LEAF_FUNCTIONS
                if imported(p, 1)
            ]
            twins = [(*resolve_method(p), twin)
                     for p, twin in DATA_SAMPLE_TWINS.items()
                     if imported(p, 2)]
        self.leaf_functions.update(func for _, _, func in functions)
        leaves = set()
        for cls, name in methods:
            owner = _defining_class(cls, name)
            if (owner, name) in leaves:
                continue
            leaves.add((owner, name))
            original = vars(owner)[name]
            patches.append(
                AttributePatch(owner, name,
                               self._leaf_method(original, name, paths)))
        for module, name, original in functions:
            patches.append(
                AttributePatch(module, name, self._leaf_function(original)))
        for cls, name, twin in twins:
            if (_defining_class(cls, name), name) not in leaves:
                patches.append(AttributePatch(cls, name, twin))

    def trace(self,
              root: nn.Module,
              concrete_args: Optional[Dict[str, Any]] = None
              ) -> torch.fx.Graph:
        """Trace ``root`` with the skipped methods and functions as leaf
        calls (and the data-sample leaves and twins, see the module
        docstring).

        Args:
            root (nn.Module): The model.
            concrete_args (dict, optional): Arguments fixed while tracing,
                e.g. ``{'mode': 'tensor'}``.

        Returns:
            torch.fx.Graph: The graph.
        """
        self.skipped_calls = []
        patches: List[AttributePatch] = []
        try:
            self._patch(root, patches)
            return super().trace(root, concrete_args)
        finally:
            for patch in reversed(patches):
                patch.restore()
