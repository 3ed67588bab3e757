"""``SingleTeacherDistill``: the distillation algorithm of MMRazor 1.x
configs (a student, one teacher, a ``ConfigurableDistiller``)."""
import os.path as osp
from typing import Any, Dict, List, Optional, Union

import torch
from mmengine.runner import load_checkpoint
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from mmrazor.models.distillers import ConfigurableDistiller
from mmrazor.models.distillers.base import student_root
from mmrazor.registry import MODELS
from ..base import BaseAlgorithm
from .general_distill import add_prefix


def build_model(cfg: Union[dict, nn.Module], role: str) -> nn.Module:
    """Build the student or the teacher.

    Args:
        cfg (dict | nn.Module): A model config (any registry scope; the
            config loader has already turned 1.x ``dict(cfg_path=...)``
            into one) or a model.
        role (str): ``'architecture'`` or ``'teacher'``, for messages.

    Returns:
        nn.Module: The model.
    """
    if isinstance(cfg, nn.Module):
        return cfg
    if isinstance(cfg, dict):
        if 'cfg_path' in cfg:
            raise ValueError(
                f'SingleTeacherDistill: `{role}` is still a '
                f'dict(cfg_path={cfg["cfg_path"]!r}); load the config with '
                'mmrazor.apis.config_compat.load_config (tools/train.py '
                'does), which turns it into the model config')
        return MODELS.build(cfg)
    raise TypeError(f'SingleTeacherDistill: `{role}` must be a config dict '
                    f'or an nn.Module, got {type(cfg)}')


def load_teacher_checkpoint(teacher: nn.Module, path: str) -> None:
    """Load a local teacher checkpoint (strictly).

    Args:
        teacher (nn.Module): The teacher.
        path (str): A local file.

    Raises:
        ValueError: ``path`` is a URL: nothing is downloaded.
        FileNotFoundError: There is no such file.
    """
    if not isinstance(path, str):
        raise TypeError(f'teacher_ckpt must be a path, got {path!r}')
    if '://' in path:
        raise ValueError(
            f'teacher_ckpt={path!r} is a URL; mmrazor downloads nothing. '
            'Download the checkpoint yourself and pass its local path, e.g. '
            '`--cfg-options model.teacher_ckpt=/path/to/teacher.pth`')
    if not osp.isfile(path):
        raise FileNotFoundError(f'teacher_ckpt {path!r}: no such file')
    load_checkpoint(teacher, path, map_location='cpu', strict=True)
    # the runner's init_weights() must not re-initialise (or download) it
    teacher._is_init = True


@MODELS.register_module()
class SingleTeacherDistill(BaseAlgorithm):
    """Distil the ``architecture`` (the student) from one ``teacher``,
    through a :class:`ConfigurableDistiller` (MMRazor 1.x configs).

    One training step (``forward(mode='loss')``): the teacher runs in
    ``'loss'`` mode under ``no_grad`` (unless trainable) inside the teacher
    recorders, the student in ``'loss'`` mode inside the student recorders,
    and the distiller computes its losses from the records. Returned
    losses, named as MMRazor 1.x logged them: the student's own prefixed
    ``student.`` (``student.loss``; if ``calculate_student_loss``), a
    trainable teacher's prefixed ``teacher.``, and the distillation losses
    under their names (``loss_kl``). Validation and prediction use the
    student alone.

    Args:
        architecture (dict | nn.Module): The student.
        teacher (dict | nn.Module): The teacher.
        distiller (dict): The ``ConfigurableDistiller`` config.
        teacher_ckpt (str, optional): A local checkpoint of the teacher,
            loaded strictly; a URL is refused (nothing is downloaded).
        teacher_trainable (bool): Train the teacher too. Defaults to False.
        teacher_norm_eval (bool): Keep the teacher's norm layers in eval
            mode while training (a frozen teacher is then wholly in eval
            mode). Defaults to True.
        student_trainable (bool): Train the student; if False its parameters
            are frozen and it runs under ``no_grad`` (only connectors
            learn). Defaults to True.
        calculate_student_loss (bool): Add the student's own task losses.
            Defaults to True.
        teacher_module_inplace (bool): Keep in-place operations (``ReLU(
            inplace=True)``) of the teacher; if False they are made
            out-of-place, so that a recorded output is not overwritten later
            in the forward. Defaults to False.
        data_preprocessor (dict | nn.Module, optional): Defaults to the
            student's.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 architecture: Union[dict, nn.Module],
                 teacher: Union[dict, nn.Module],
                 distiller: Union[dict, ConfigurableDistiller],
                 teacher_ckpt: Optional[str] = None,
                 teacher_trainable: bool = False,
                 teacher_norm_eval: bool = True,
                 student_trainable: bool = True,
                 calculate_student_loss: bool = True,
                 teacher_module_inplace: bool = False,
                 data_preprocessor: Optional[Union[dict, nn.Module]] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(
            build_model(architecture, 'architecture'), data_preprocessor,
            init_cfg)
        self.teacher = build_model(teacher, 'teacher')
        if teacher_ckpt is not None:
            load_teacher_checkpoint(self.teacher, teacher_ckpt)
        if isinstance(distiller, dict):
            distiller = MODELS.build(distiller)
        if not isinstance(distiller, ConfigurableDistiller):
            raise TypeError('SingleTeacherDistill: `distiller` must be a '
                            'ConfigurableDistiller (or its config), got '
                            f'{type(distiller).__name__}')
        self.distiller = distiller
        self.distiller.prepare_from_student(student_root(self.architecture))
        self.distiller.prepare_from_teacher(self.teacher)

        self.teacher_trainable = teacher_trainable
        self.teacher_norm_eval = teacher_norm_eval
        self.student_trainable = student_trainable
        self.calculate_student_loss = calculate_student_loss
        self.teacher_module_inplace = teacher_module_inplace
        if not teacher_trainable:
            self.teacher.requires_grad_(False)
        if not student_trainable:
            self.architecture.requires_grad_(False)
        if not teacher_module_inplace:
            set_inplace_false(self.teacher)
        self.train(self.training)

    @property
    def student(self) -> nn.Module:
        """The student (the architecture)."""
        return self.architecture

    def train(self, mode: bool = True) -> 'SingleTeacherDistill':
        """Set train/eval mode, keeping the teacher's norm layers (all of a
        frozen teacher) in eval mode when ``teacher_norm_eval``.

        Args:
            mode (bool): Train mode if True.

        Returns:
            SingleTeacherDistill: self.
        """
        super().train(mode)
        if mode and self.teacher_norm_eval:
            if not self.teacher_trainable:
                self.teacher.eval()
            else:
                for module in self.teacher.modules():
                    if isinstance(module, _BatchNorm):
                        module.eval()
        return self

    def loss(self,
             inputs: torch.Tensor,
             data_samples: Optional[List[Any]] = None
             ) -> Dict[str, torch.Tensor]:
        """Losses of one distillation step.

        Args:
            inputs (Tensor): Preprocessed inputs.
            data_samples (list, optional): Annotations.

        Returns:
            dict[str, Tensor]: ``student.*`` (if ``calculate_student_loss``),
            ``teacher.*`` (if ``teacher_trainable``) and the distillation
            losses.
        """
        losses: Dict[str, torch.Tensor] = {}
        distiller = self.distiller
        try:
            with distiller.teacher_recorders, distiller.deliveries:
                distiller.set_deliveries(override_data=False)
                losses.update(self.teacher_pass(inputs, data_samples))
            student_grad = torch.enable_grad() if self.student_trainable \
                else torch.no_grad()
            with distiller.student_recorders, distiller.deliveries, \
                    student_grad:
                distiller.set_deliveries(override_data=True)
                student_losses = self.architecture(
                    inputs, data_samples, mode='loss')
            if self.calculate_student_loss:
                losses.update(add_prefix(student_losses, 'student'))
            losses.update(distiller.compute_distill_losses())
        finally:
            distiller.reset_data()
        return losses

    def teacher_pass(self,
                     inputs: torch.Tensor,
                     data_samples: Optional[List[Any]] = None
                     ) -> Dict[str, torch.Tensor]:
        """Run the teacher (its recorders are recording) and return the
        teacher losses to log: ``teacher.*`` when it is trained, else none.

        The teacher runs in 'loss' mode, as in MMRazor 1.x, so that
        recorders may hook what only the loss computation calls (e.g. the
        labels given to ``head.loss_module``).

        Args:
            inputs (Tensor): Preprocessed inputs.
            data_samples (list, optional): Annotations.

        Returns:
            dict[str, Tensor]: The teacher's losses, prefixed, or ``{}``.
        """
        grad = torch.enable_grad() if self.teacher_trainable \
            else torch.no_grad()
        with grad:
            teacher_losses = self.teacher(inputs, data_samples, mode='loss')
        if not self.teacher_trainable:
            return {}
        return add_prefix(teacher_losses, 'teacher')


def set_inplace_false(model: nn.Module) -> None:
    """Make every in-place operation of ``model`` (``inplace=True``
    attributes, e.g. of ``nn.ReLU``) out-of-place.

    Args:
        model (nn.Module): The model, changed in place.
    """
    for module in model.modules():
        if getattr(module, 'inplace', False) is True:
            module.inplace = False
