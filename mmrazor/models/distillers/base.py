"""Shared machinery of distillers: components, recording hooks, losses."""
import contextlib
import difflib
from typing import Any, Dict, Iterator, List, Optional, Sequence, Union

import torch
from mmengine.model import BaseModel, BaseModule
from torch import nn

from mmrazor.registry import MODELS

#: Keys a distillation component may hold.
COMPONENT_KEYS = ('student_module', 'teacher_module', 'losses', 'align_module')

Outputs = Dict[str, List[Any]]


def student_root(student: nn.Module) -> nn.Module:
    """The module that student module paths are relative to.

    For a task wrapper (``MMClsArchitecture``) paths name modules of the
    wrapped model (``'head.fc'``, not ``'model.head.fc'``), as in the
    published configs; for any other module, paths are relative to it.

    Args:
        student (nn.Module): The student (architecture or plain model).

    Returns:
        nn.Module: The root of student module paths.
    """
    from mmrazor.models.architectures import BaseArchitecture
    if isinstance(student, BaseArchitecture):
        return student.model
    return student


def find_module(root: nn.Module, path: str, role: str) -> nn.Module:
    """Look up ``path`` in ``root`` with a helpful error when it is missing.

    Args:
        root (nn.Module): The model.
        path (str): A module path such as ``'backbone.layer4.1.conv2'``.
        role (str): ``'student'`` or ``'teacher'``, for the message.

    Returns:
        nn.Module: The module at ``path``.

    Raises:
        KeyError: No module of ``root`` has that path; the message lists
            the closest paths and the children of the deepest existing
            parent.
    """
    # every path, also the second one of a module shared by two parents
    # (e.g. the layers the fake-quant graphs of MMArchitectureQuant share)
    modules = dict(root.named_modules(remove_duplicate=False))
    if isinstance(path, str) and path in modules:
        return modules[path]
    names = [n for n in modules if n]
    near = difflib.get_close_matches(str(path), names, n=5, cutoff=0.5)
    parent = str(path)
    children: List[str] = []
    while '.' in parent:
        parent = parent.rsplit('.', 1)[0]
        if parent in modules:
            children = [
                f'{parent}.{c}' for c, _ in modules[parent].named_children()
            ]
            break
    if not children:
        children = [c for c, _ in root.named_children()]
    hint = f' Closest paths: {", ".join(near)}.' if near else ''
    raise KeyError(
        f'The {role} module path {path!r} does not exist in the {role} '
        f'({type(root).__name__}).{hint} Modules there: '
        f'{", ".join(children[:20])}.')


@contextlib.contextmanager
def record_outputs(root: nn.Module,
                   paths: Sequence[str],
                   store: Outputs,
                   role: str = 'model') -> Iterator[Outputs]:
    """Record the outputs of the modules at ``paths`` while in the block.

    The recording is done by ``ModuleOutputs`` recorders (the recorders of
    :class:`ConfigurableDistiller`, one implementation): their hooks are
    registered on entry and removed on exit (also when the block raises),
    so nothing stays attached to the model.

    Args:
        root (nn.Module): The model holding the modules.
        paths (Sequence[str]): Module paths; each output is appended to
            ``store[path]`` (a module called twice records twice).
        store (dict): Where outputs go (filled when the block is left).
        role (str): ``'student'`` or ``'teacher'``, for error messages.

    Yields:
        dict: ``store``.
    """
    from mmrazor.models.task_modules.recorder import ModuleOutputsRecorder
    recorders = {}
    for path in dict.fromkeys(paths):
        recorder = ModuleOutputsRecorder(path)
        recorder.prepare_from_model(root, role)
        recorders[path] = recorder
    with contextlib.ExitStack() as stack:
        for recorder in recorders.values():
            stack.enter_context(recorder)
        try:
            yield store
        finally:
            for path, recorder in recorders.items():
                store.setdefault(path, []).extend(recorder.data_buffer)
                recorder.reset_data()


def call_model(model: nn.Module, inputs: torch.Tensor,
               data_samples: Optional[List[Any]], mode: str) -> Any:
    """Run ``model`` the way mmengine models run.

    Args:
        model (nn.Module): An mmengine ``BaseModel`` (called with ``mode``)
            or a plain module (called with ``inputs`` only).
        inputs (Tensor): Preprocessed inputs.
        data_samples (list, optional): Annotations.
        mode (str): ``'loss'`` or ``'tensor'``.

    Returns:
        The model's output.
    """
    if isinstance(model, BaseModel):
        return model(inputs, data_samples, mode=mode)
    if mode == 'loss':
        raise TypeError(f'{type(model).__name__} is not an mmengine '
                        'BaseModel and cannot compute its own losses')
    return model(inputs)


def gt_labels_of(data_samples: Optional[List[Any]]) -> torch.Tensor:
    """Class labels of a batch of mmpretrain data samples.

    Args:
        data_samples (list): Samples with a ``gt_label`` field.

    Returns:
        Tensor: Labels of shape ``(N, )``.
    """
    if not data_samples:
        raise ValueError('a distillation loss needs ground-truth labels, but '
                         'no data samples were given')
    labels = []
    for i, sample in enumerate(data_samples):
        label = getattr(sample, 'gt_label', None)
        if label is None:
            raise ValueError(f'data sample {i} has no `gt_label`, which the '
                             'distillation loss needs')
        labels.append(torch.as_tensor(label).reshape(-1)[:1])
    return torch.cat(labels).long()


def build_align_module(cfg: Union[dict, nn.Module], where: str) -> nn.Module:
    """Build the module that maps a student output onto the teacher's shape.

    Args:
        cfg (dict | nn.Module): ``dict(type='conv2d', student_channels=...,
            teacher_channels=...)`` (a 1x1 convolution), ``dict(type=
            'linear', ...)``, any registered module config, or a module.
        where (str): The component it belongs to, for error messages.

    Returns:
        nn.Module: The align module.
    """
    if isinstance(cfg, nn.Module):
        return cfg
    if not isinstance(cfg, dict) or 'type' not in cfg:
        raise TypeError(f'{where}: `align_module` must be a config dict with '
                        f'a `type` or an nn.Module, got {cfg!r}')
    kind = cfg['type']
    if isinstance(kind, str) and kind.lower() in ('conv2d', 'linear'):
        extra = set(cfg) - {'type', 'student_channels', 'teacher_channels'}
        missing = {'student_channels', 'teacher_channels'} - set(cfg)
        if extra or missing:
            raise KeyError(
                f'{where}: align_module of type {kind!r} takes '
                '`student_channels` and `teacher_channels`' +
                (f'; unknown keys: {sorted(extra)}' if extra else '') +
                (f'; missing keys: {sorted(missing)}' if missing else ''))
        s, t = int(cfg['student_channels']), int(cfg['teacher_channels'])
        if kind.lower() == 'conv2d':
            return nn.Conv2d(s, t, kernel_size=1, stride=1, padding=0)
        return nn.Linear(s, t)
    return MODELS.build(cfg)


class BaseDistiller(BaseModule):
    """Base class of distillers.

    A distiller holds *components*; each pairs a student module with a
    teacher module (by module path), names the losses between their outputs
    and, optionally, an align module applied to the student output first::

        components=[
            dict(student_module='head.fc', teacher_module='head.fc',
                 losses=[dict(type='KLDivergence', name='loss_kd', tau=4)]),
            dict(student_module='backbone.layer3',
                 teacher_module='backbone.layer3',
                 align_module=dict(type='conv2d', student_channels=64,
                                   teacher_channels=256),
                 losses=[dict(type='L2Loss', name='loss_fitnet')]),
        ]

    Outputs are recorded by forward hooks that only exist during
    :meth:`exec_teacher_forward` / :meth:`exec_student_forward`, and the
    recorded outputs are dropped by :meth:`compute_distill_loss`, so no hook
    or tensor outlives a training step.

    Args:
        components (Sequence[dict]): The components.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 components: Sequence[dict] = (),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if isinstance(components,
                      dict) or not isinstance(components, (list, tuple)):
            raise TypeError('`components` must be a list of dicts, got '
                            f'{type(components).__name__}')
        self.components: List[Dict[str, Any]] = []
        self.distill_losses = nn.ModuleDict()
        self.align_modules = nn.ModuleDict()
        for idx, component in enumerate(components):
            self.components.append(self._parse_component(idx, component))
        self._student_outputs: Outputs = {}
        self._teacher_outputs: Outputs = {}

    # ------------------------------------------------------------------
    # configuration
    # ------------------------------------------------------------------
    def _parse_component(self, idx: int, component: dict) -> Dict[str, Any]:
        where = f'components[{idx}]'
        if not isinstance(component, dict):
            raise TypeError(f'{where} must be a dict, got {component!r}')
        unknown = set(component) - set(COMPONENT_KEYS)
        if unknown:
            raise KeyError(f'{where} has unknown keys {sorted(unknown)}; '
                           f'allowed keys are {list(COMPONENT_KEYS)}')
        for key in ('student_module', 'teacher_module'):
            if not isinstance(component.get(key), str):
                raise KeyError(f'{where} needs `{key}`, a module path such '
                               f'as "head.fc"; got {component.get(key)!r}')
        losses = component.get('losses')
        if not losses or not isinstance(losses, (list, tuple)):
            raise KeyError(f'{where} needs `losses`, a non-empty list of loss '
                           f'configs; got {losses!r}')
        loss_names = []
        for j, loss_cfg in enumerate(losses):
            if not isinstance(loss_cfg, dict) or 'type' not in loss_cfg:
                raise TypeError(f'{where}.losses[{j}] must be a config dict '
                                f'with a `type`, got {loss_cfg!r}')
            loss_cfg = dict(loss_cfg)
            name = loss_cfg.pop('name', None)
            if name is None:
                kind = loss_cfg['type']
                kind = kind if isinstance(kind, str) else kind.__name__
                name = f'loss_{kind.split(".")[-1].lower()}_{idx}'
                if j:
                    name = f'{name}_{j}'
            if not isinstance(name, str) or '.' in name or not name:
                raise ValueError(f'{where}.losses[{j}].name must be a '
                                 f'non-empty string without dots, got '
                                 f'{name!r}')
            if 'loss' not in name:
                raise ValueError(
                    f'{where}.losses[{j}].name={name!r} must contain "loss" '
                    '(mmengine only adds outputs named "loss..." to the '
                    'total loss), e.g. "loss_kd"')
            if name in self.distill_losses:
                raise ValueError(f'{where}.losses[{j}]: the loss name '
                                 f'{name!r} is used twice')
            self.distill_losses[name] = MODELS.build(loss_cfg)
            loss_names.append(name)
        align_key = None
        if component.get('align_module') is not None:
            align_key = component['student_module'].replace('.', '_')
            if align_key in self.align_modules:
                align_key = f'{align_key}_{idx}'
            self.align_modules[align_key] = build_align_module(
                component['align_module'], where)
        return dict(
            student_module=component['student_module'],
            teacher_module=component['teacher_module'],
            losses=loss_names,
            align_module=align_key)

    @property
    def student_paths(self) -> List[str]:
        """Student module paths of all components."""
        return [c['student_module'] for c in self.components]

    @property
    def teacher_paths(self) -> List[str]:
        """Teacher module paths of all components."""
        return [c['teacher_module'] for c in self.components]

    def prepare_from_student(self, student: nn.Module) -> None:
        """Check that every student module path exists in ``student``.

        Args:
            student (nn.Module): The student architecture.
        """
        root = student_root(student)
        for path in self.student_paths:
            find_module(root, path, 'student')

    # ------------------------------------------------------------------
    # forward passes
    # ------------------------------------------------------------------
    def exec_teacher_forward(self,
                             inputs: torch.Tensor,
                             data_samples: Optional[List[Any]] = None,
                             with_loss: bool = False) -> Dict[str, Any]:
        """Run the teacher and record its component outputs.

        Args:
            inputs (Tensor): Preprocessed inputs.
            data_samples (list, optional): Annotations.
            with_loss (bool): Return the teacher's own losses.

        Returns:
            dict: The teacher's losses (empty unless ``with_loss``).
        """
        raise NotImplementedError

    def exec_student_forward(self,
                             student: nn.Module,
                             inputs: torch.Tensor,
                             data_samples: Optional[List[Any]] = None,
                             with_loss: bool = True) -> Any:
        """Run the student and record its component outputs.

        Args:
            student (nn.Module): The student architecture.
            inputs (Tensor): Preprocessed inputs.
            data_samples (list, optional): Annotations.
            with_loss (bool): Run in ``'loss'`` mode and return the losses;
                otherwise ``'tensor'`` mode.

        Returns:
            dict | Tensor: The student's losses, or its raw outputs.
        """
        self._student_outputs = {}
        mode = 'loss' if with_loss else 'tensor'
        with record_outputs(
                student_root(student), self.student_paths,
                self._student_outputs, 'student'):
            return call_model(student, inputs, data_samples, mode)

    def get_teacher_outputs(self) -> Outputs:
        """The teacher outputs recorded since the last teacher forward.

        Returns:
            dict[str, list]: Module path → outputs (one per call).
        """
        return self._teacher_outputs

    def get_student_outputs(self) -> Outputs:
        """The student outputs recorded since the last student forward.

        Returns:
            dict[str, list]: Module path → outputs (one per call).
        """
        return self._student_outputs

    def reset_outputs(self) -> None:
        """Drop all recorded outputs (and the graphs they hold)."""
        self._student_outputs = {}
        self._teacher_outputs = {}

    # ------------------------------------------------------------------
    # losses
    # ------------------------------------------------------------------
    def compute_distill_loss(
            self,
            data_samples: Optional[List[Any]] = None
    ) -> Dict[str, torch.Tensor]:
        """Apply each component's losses to the recorded outputs.

        The recorded outputs are dropped afterwards (also on error).

        Args:
            data_samples (list, optional): Annotations; needed by losses that
                use ground-truth labels (WSLD, DKD).

        Returns:
            dict[str, Tensor]: One entry per loss name.
        """
        try:
            return self._compute(data_samples)
        finally:
            self.reset_outputs()

    def _compute(self,
                 data_samples: Optional[List[Any]]) -> Dict[str, torch.Tensor]:
        losses: Dict[str, torch.Tensor] = {}
        gt_labels = None
        for idx, comp in enumerate(self.components):
            s_outs = self._student_outputs.get(comp['student_module'])
            t_outs = self._teacher_outputs.get(comp['teacher_module'])
            for role, outs, path in (('student', s_outs,
                                      comp['student_module']),
                                     ('teacher', t_outs,
                                      comp['teacher_module'])):
                if not outs:
                    raise RuntimeError(
                        f'components[{idx}]: the {role} module {path!r} '
                        f'produced no output during the {role} forward; '
                        'run exec_teacher_forward and exec_student_forward '
                        'first, and name a module that the forward pass '
                        'really calls')
            if len(s_outs) != len(t_outs):
                raise RuntimeError(
                    f'components[{idx}]: student module '
                    f'{comp["student_module"]!r} ran {len(s_outs)} times but '
                    f'teacher module {comp["teacher_module"]!r} ran '
                    f'{len(t_outs)} times; outputs are paired call by call')
            pairs = []
            for s, t in zip(s_outs, t_outs):
                for role, out, path in (('student', s, comp['student_module']),
                                        ('teacher', t,
                                         comp['teacher_module'])):
                    if not isinstance(out, torch.Tensor):
                        raise TypeError(
                            f'components[{idx}]: the {role} module {path!r} '
                            f'outputs a {type(out).__name__}, not a tensor; '
                            'name a sub-module that outputs a tensor')
                if comp['align_module'] is not None:
                    s = self.align_modules[comp['align_module']](s)
                pairs.append((s, t))
            for name in comp['losses']:
                loss_module = self.distill_losses[name]
                if getattr(loss_module, 'needs_gt_labels', False):
                    if gt_labels is None:
                        gt_labels = gt_labels_of(data_samples).to(
                            pairs[0][0].device)
                    values = [loss_module(s, t, gt_labels) for s, t in pairs]
                else:
                    values = [loss_module(s, t) for s, t in pairs]
                losses[name] = sum(values[1:], values[0])
        return losses
