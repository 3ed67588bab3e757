"""The distiller of MMRazor 1.x configs: recorders, connectors, losses and
the mappings between them, all named in the config."""
import contextlib
import inspect
import logging
from typing import Any, ContextManager, Dict, List, Optional, Union

import torch
from mmengine.logging import print_log
from mmengine.model import BaseModule
from torch import nn

from mmrazor.models.task_modules.recorder import RecorderManager
from mmrazor.registry import MODELS

#: Keys of one argument of ``loss_forward_mappings``.
MAPPING_KEYS = ('from_student', 'recorder', 'record_idx', 'data_idx',
                'connector')

#: Argument names of the 1.x losses -> those of mmrazor's losses
#: (``BaseDistillLoss.forward(student, teacher, gt_labels)``): 1.x named
#: them per loss (``KLDivergence(preds_S, preds_T)``, ``WSLD(student,
#: teacher, gt_labels)``, ``L2Loss(s_feature, t_feature)``, ...).
LOSS_ARG_ALIASES: Dict[str, str] = {
    'preds_S': 'student',
    'preds_T': 'teacher',
    's_feature': 'student',
    't_feature': 'teacher',
    'logits_S': 'student',  # DISTLoss in 1.x
    'logits_T': 'teacher',
}

#: Loss types that mean another class inside ``distill_losses``: 1.x
#: registered its distillation cross-entropy (student logits against the
#: teacher's predicted classes) as ``CrossEntropyLoss``, the name heads use
#: for mmpretrain's loss on labels.
DISTILL_LOSS_TYPES: Dict[str, str] = {
    'CrossEntropyLoss': 'DistillCrossEntropyLoss',
    'mmrazor.CrossEntropyLoss': 'DistillCrossEntropyLoss',
}

ModuleCfgs = Optional[Dict[str, Union[dict, nn.Module]]]


def forward_parameters(loss: nn.Module) -> Dict[str, inspect.Parameter]:
    """The named arguments of ``loss.forward``.

    Args:
        loss (nn.Module): A loss module.

    Returns:
        dict: Name -> parameter; ``'**'`` -> the var-keyword parameter if
        the loss takes ``**kwargs``.
    """
    params = {}
    for name, param in inspect.signature(loss.forward).parameters.items():
        if param.kind is param.VAR_KEYWORD:
            params['**'] = param
        elif param.kind is not param.VAR_POSITIONAL:
            params[name] = param
    return params


def build_named_modules(cfgs: ModuleCfgs, what: str) -> nn.ModuleDict:
    """Build ``name -> module`` from ``name -> config``.

    Args:
        cfgs (dict, optional): Name -> config dict (or module).
        what (str): ``'distill_losses'`` or ``'connectors'``, for messages.

    Returns:
        nn.ModuleDict: The modules.
    """
    modules = nn.ModuleDict()
    if cfgs is None:
        return modules
    if not isinstance(cfgs, dict):
        raise TypeError(f'ConfigurableDistiller: `{what}` must be a dict of '
                        f'name -> config, got {type(cfgs).__name__}')
    for name, cfg in cfgs.items():
        if not isinstance(name, str) or not name or '.' in name:
            raise ValueError(f'ConfigurableDistiller: {what} name {name!r} '
                             'must be a non-empty string without dots')
        if isinstance(cfg, nn.Module):
            modules[name] = cfg
        elif isinstance(cfg, dict) and 'type' in cfg:
            cfg = dict(cfg)
            if what == 'distill_losses':
                cfg['type'] = DISTILL_LOSS_TYPES.get(cfg['type'], cfg['type'])
            modules[name] = MODELS.build(cfg)
        else:
            raise TypeError(f'ConfigurableDistiller: {what}[{name!r}] must '
                            f'be a config dict with a `type`, got {cfg!r}')
    return modules


@MODELS.register_module()
class ConfigurableDistiller(BaseModule):
    """Distiller configured by name, as in MMRazor 1.x.

    Recorders collect what the student and the teacher compute
    (``student_recorders`` / ``teacher_recorders``, used as context managers
    around each forward pass); ``loss_forward_mappings`` says, for every
    argument of every distillation loss, which recorder of which side gives
    it (optionally which call, ``record_idx``, which value of that call,
    ``data_idx``, and a ``connector`` applied to it)::

        distiller=dict(
            type='ConfigurableDistiller',
            student_recorders=dict(fc=dict(type='ModuleOutputs',
                                           source='head.fc')),
            teacher_recorders=dict(fc=dict(type='ModuleOutputs',
                                           source='head.fc')),
            distill_losses=dict(loss_kl=dict(type='KLDivergence', tau=1)),
            loss_forward_mappings=dict(loss_kl=dict(
                preds_S=dict(from_student=True, recorder='fc'),
                preds_T=dict(from_student=False, recorder='fc'))))

    The mappings are checked when the distiller is built. The argument
    names of the 1.x losses (``preds_S``, ``s_feature``, ...) are accepted
    for mmrazor's losses (see :data:`LOSS_ARG_ALIASES`).

    Args:
        student_recorders (dict, optional): Name -> recorder config.
        teacher_recorders (dict, optional): Name -> recorder config.
        distill_deliveries (dict, optional): Not supported yet: must be
            empty (deliveries rewrite what the student computes, which
            would silently change training if ignored).
        connectors (dict, optional): Name -> connector config, e.g.
            ``dict(type='ConvModuleConnector', in_channel=512,
            out_channel=2048)``. An argument without a connector gets the
            recorded data unchanged.
        distill_losses (dict, optional): Name -> loss config; each name
            must contain ``'loss'`` (mmengine sums only such outputs). As
            in 1.x, ``type='CrossEntropyLoss'`` here is the distillation
            cross-entropy (:class:`DistillCrossEntropyLoss`, see
            :data:`DISTILL_LOSS_TYPES`); ``'mmpretrain.CrossEntropyLoss'``
            is mmpretrain's.
        loss_forward_mappings (dict, optional): Loss name -> argument name
            -> ``dict(from_student, recorder, record_idx=0, data_idx=None,
            connector=None)``. A loss without an entry is not computed (a
            warning names it), as in 1.x; no entry at all is an error.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 student_recorders: Optional[Dict[str, dict]] = None,
                 teacher_recorders: Optional[Dict[str, dict]] = None,
                 distill_deliveries: Optional[Dict[str, dict]] = None,
                 connectors: ModuleCfgs = None,
                 distill_losses: ModuleCfgs = None,
                 loss_forward_mappings: Optional[Dict[str, dict]] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if distill_deliveries:
            raise NotImplementedError(
                'ConfigurableDistiller: `distill_deliveries` '
                f'({sorted(distill_deliveries)}) are not supported yet; '
                'remove them only if the algorithm does not depend on them')
        self.student_recorders = RecorderManager(student_recorders)
        self.teacher_recorders = RecorderManager(teacher_recorders)
        self.connectors = build_named_modules(connectors, 'connectors')
        self.distill_losses = build_named_modules(distill_losses,
                                                  'distill_losses')
        for name in self.distill_losses:
            if 'loss' not in name:
                raise ValueError(
                    f'ConfigurableDistiller: distill_losses name {name!r} '
                    'must contain "loss" (mmengine only adds outputs named '
                    '"loss..." to the total loss), e.g. "loss_kd"')
        self.loss_forward_mappings = self._check_mappings(
            loss_forward_mappings or {})
        self._train_teacher_connectors(distill_losses or {})

    def _train_teacher_connectors(self, loss_cfgs: dict) -> None:
        """Let gradients reach trainable connectors on the teacher side.

        A loss whose teacher argument comes through a connector with
        trainable parameters (Factor Transfer's paraphraser, FBKD's
        teacher-side non-local block, CRD's teacher embedding) must not
        detach it, or the connector never learns (1.x losses did not
        detach). The teacher itself has no gradient either way when
        frozen. A loss config setting ``teacher_detach`` keeps its choice.

        Args:
            loss_cfgs (dict): The ``distill_losses`` as given.
        """
        for name, args in self.loss_forward_mappings.items():
            loss = self.distill_losses[name]
            cfg = loss_cfgs.get(name)
            if not hasattr(loss, 'teacher_detach') or (
                    isinstance(cfg, dict) and 'teacher_detach' in cfg):
                continue
            spec = args.get('teacher')
            if spec is None or spec['from_student'] or \
                    spec['connector'] is None:
                continue
            connector = self.connectors[spec['connector']]
            if any(p.requires_grad for p in connector.parameters()):
                loss.teacher_detach = False

    # ------------------------------------------------------------ checking
    def _check_mappings(self, mappings: Dict[str, dict]
                        ) -> Dict[str, Dict[str, Dict[str, Any]]]:
        """Validate ``loss_forward_mappings`` and normalise it.

        Args:
            mappings (dict): As in the config.

        Returns:
            dict: Loss name -> forward argument (mmrazor's name) -> the
            full mapping (every key of :data:`MAPPING_KEYS`).
        """
        if not isinstance(mappings, dict):
            raise TypeError('ConfigurableDistiller: `loss_forward_mappings` '
                            'must be a dict of loss name -> argument '
                            f'mappings, got {type(mappings).__name__}')
        for name in mappings:
            if name not in self.distill_losses:
                raise KeyError(
                    f'loss_forward_mappings names the loss {name!r}, which '
                    'is not in distill_losses '
                    f'({sorted(self.distill_losses) or "none"})')
        unmapped = [name for name in self.distill_losses
                    if name not in mappings]
        if unmapped and len(unmapped) == len(self.distill_losses):
            raise KeyError(
                f'distill losses {unmapped} have no entry in '
                'loss_forward_mappings: say where each of their arguments '
                'comes from')
        if unmapped:
            # as in 1.x: a config inheriting losses it no longer maps (e.g.
            # factor transfer's train stage keeps `loss_s4_pretrain`)
            print_log(
                f'ConfigurableDistiller: distill losses {unmapped} have no '
                'entry in loss_forward_mappings and are not computed',
                logger='current', level=logging.WARNING)
        return {
            name: self._check_loss_mapping(name, self.distill_losses[name],
                                           mapping)
            for name, mapping in mappings.items()
        }

    def _check_loss_mapping(self, name: str, loss: nn.Module,
                            mapping: dict) -> Dict[str, Dict[str, Any]]:
        where = f'loss_forward_mappings[{name!r}]'
        if not isinstance(mapping, dict):
            raise TypeError(f'{where} must be a dict of argument name -> '
                            f'dict(from_student, recorder), got {mapping!r}')
        params = forward_parameters(loss)
        aliases = LOSS_ARG_ALIASES if all(
            a in params for a in ('student', 'teacher')) else {}
        checked: Dict[str, Dict[str, Any]] = {}
        for arg, spec in mapping.items():
            param = aliases.get(arg, arg)
            if param not in params and '**' not in params:
                accepted = [p for p in params if p != '**']
                accepted += [a for a, p in aliases.items() if p in params]
                raise KeyError(
                    f'{where}: loss {name!r} ({type(loss).__name__}) has no '
                    f'forward argument {arg!r}; it takes '
                    f'{", ".join(sorted(accepted))}')
            if param in checked:
                raise KeyError(f'{where}: argument {arg!r} gives '
                               f'{type(loss).__name__}\'s {param!r} a second '
                               'time')
            checked[param] = self._check_arg_mapping(
                f'{where}[{arg!r}]', spec)
        missing = [
            p for p, par in params.items()
            if p != '**' and par.default is par.empty and p not in checked
        ]
        if getattr(loss, 'needs_gt_labels', False) and \
                'gt_labels' not in checked:
            missing.append('gt_labels')
        if missing:
            raise KeyError(
                f'{where}: loss {name!r} ({type(loss).__name__}) needs the '
                f'argument(s) {missing}, which the mapping does not give')
        return checked

    def _check_arg_mapping(self, where: str, spec: Any) -> Dict[str, Any]:
        if not isinstance(spec, dict):
            raise TypeError(f'{where} must be a dict(from_student=..., '
                            f'recorder=...), got {spec!r}')
        unknown = set(spec) - set(MAPPING_KEYS)
        if unknown:
            raise KeyError(f'{where} has unknown keys {sorted(unknown)}; '
                           f'allowed keys are {list(MAPPING_KEYS)}')
        if not isinstance(spec.get('from_student'), bool):
            raise KeyError(f'{where} needs `from_student` (True: a student '
                           'recorder, False: a teacher recorder), got '
                           f'{spec.get("from_student")!r}')
        side = 'student' if spec['from_student'] else 'teacher'
        recorders = (self.student_recorders if spec['from_student'] else
                     self.teacher_recorders).recorders
        recorder = spec.get('recorder')
        if recorder not in recorders:
            raise KeyError(f'{where}: recorder {recorder!r} is not one of '
                           f'the {side}_recorders '
                           f'({sorted(recorders) or "none"})')
        connector = spec.get('connector')
        if connector is not None and connector not in self.connectors:
            raise KeyError(f'{where}: connector {connector!r} is not one of '
                           f'the connectors '
                           f'({sorted(self.connectors) or "none"})')
        record_idx = spec.get('record_idx', 0)
        data_idx = spec.get('data_idx')
        if not isinstance(record_idx, int) or not (
                data_idx is None or isinstance(data_idx, int)):
            raise TypeError(f'{where}: record_idx must be an int and '
                            'data_idx an int or None, got '
                            f'{record_idx!r} and {data_idx!r}')
        return dict(
            from_student=spec['from_student'],
            recorder=recorder,
            record_idx=record_idx,
            data_idx=data_idx,
            connector=connector)

    # ------------------------------------------------------------ preparing
    def prepare_from_student(self, model: nn.Module) -> None:
        """Find the student's recorded modules.

        Args:
            model (nn.Module): The student.
        """
        self.student_recorders.prepare_from_model(model)

    def prepare_from_teacher(self, model: nn.Module) -> None:
        """Find the teacher's recorded modules.

        Args:
            model (nn.Module): The teacher.
        """
        self.teacher_recorders.prepare_from_model(model)

    @property
    def deliveries(self) -> ContextManager:
        """The deliveries' context: a no-op, as none are supported yet."""
        return contextlib.nullcontext()

    def set_deliveries(self, override_data: bool) -> None:
        """Switch the deliveries between recording (teacher) and overriding
        (student). A no-op: ``distill_deliveries`` must be empty for now.

        Args:
            override_data (bool): Unused.
        """

    def reset_data(self) -> None:
        """Forget everything recorded (and the graphs it holds)."""
        self.student_recorders.reset_data()
        self.teacher_recorders.reset_data()

    # --------------------------------------------------------------- losses
    def get_record(self,
                   recorder: str,
                   from_student: bool,
                   record_idx: int = 0,
                   data_idx: Optional[int] = None,
                   connector: Optional[str] = None) -> Any:
        """One recorded value, through its connector if one is named.

        Args:
            recorder (str): The recorder's name.
            from_student (bool): A student recorder (else a teacher one).
            record_idx (int): Which call. Defaults to 0.
            data_idx (int, optional): Which value of that call.
            connector (str, optional): The connector to apply.

        Returns:
            Any: The value.
        """
        manager = (self.student_recorders
                   if from_student else self.teacher_recorders)
        data = manager.get_recorder(recorder).get_record_data(
            record_idx, data_idx)
        if connector is not None:
            data = self.connectors[connector](data)
        return data

    def compute_distill_losses(self) -> Dict[str, torch.Tensor]:
        """Every distillation loss, on what the recorders recorded.

        Returns:
            dict[str, Tensor]: Loss name (e.g. ``'loss_kl'``) -> value.
        """
        losses: Dict[str, torch.Tensor] = {}
        for name, args in self.loss_forward_mappings.items():
            kwargs = {arg: self.get_record(**spec)
                      for arg, spec in args.items()}
            losses[name] = self.distill_losses[name](**kwargs)
        return losses

    @property
    def loss_names(self) -> List[str]:
        """Names of the distillation losses."""
        return list(self.distill_losses)
