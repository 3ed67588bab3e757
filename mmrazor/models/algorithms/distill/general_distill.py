"""Knowledge-distillation algorithms."""
from typing import Any, Dict, List, Optional, Union

import torch
from torch import nn

from mmrazor.registry import MODELS
from ..base import BaseAlgorithm


def add_prefix(losses: Dict[str, Any], prefix: str) -> Dict[str, Any]:
    """Prefix every key of ``losses`` with ``'{prefix}.'``.

    Args:
        losses (dict): Loss dict.
        prefix (str): The prefix.

    Returns:
        dict: A new dict.
    """
    return {f'{prefix}.{k}': v for k, v in losses.items()}


@MODELS.register_module()
class GeneralDistill(BaseAlgorithm):
    """Knowledge distillation of the ``architecture`` (the student) by a
    ``distiller`` that holds the teacher.

    One training step (``forward(mode='loss')``, so mmengine's
    ``train_step``, AMP, gradient accumulation and DDP apply unchanged):
    the teacher runs (under ``no_grad`` when frozen) and the outputs of its
    component modules are recorded; the student runs and its component
    outputs are recorded; the distiller's losses are computed from the
    recorded pairs. Validation and prediction use the student alone.

    Args:
        architecture (dict | nn.Module): The student, e.g.
            ``dict(type='MMClsArchitecture', model=dict(...))``.
        distiller (dict | nn.Module): The distiller, e.g.
            ``dict(type='SingleTeacherDistiller', teacher=...,
            components=...)``.
        with_student_loss (bool): Add the student's own task losses
            (prefixed ``student.``). Defaults to True.
        with_teacher_loss (bool): Add the teacher's task losses (prefixed
            ``teacher.``; only meaningful for a trainable teacher).
            Defaults to False.
        data_preprocessor (dict | nn.Module, optional): Defaults to the
            architecture's.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 architecture: Union[dict, nn.Module],
                 distiller: Union[dict, nn.Module],
                 with_student_loss: bool = True,
                 with_teacher_loss: bool = False,
                 data_preprocessor: Optional[Union[dict, nn.Module]] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(architecture, data_preprocessor, init_cfg)
        if isinstance(distiller, dict):
            distiller = MODELS.build(distiller)
        elif not isinstance(distiller, nn.Module):
            raise TypeError(f'{type(self).__name__}: `distiller` must be a '
                            f'config dict or an nn.Module, got '
                            f'{type(distiller)}')
        self.distiller = distiller
        self.distiller.prepare_from_student(self.architecture)
        self.with_student_loss = with_student_loss
        self.with_teacher_loss = with_teacher_loss

    @property
    def student(self) -> nn.Module:
        """The student (the architecture)."""
        return self.architecture

    #: Run the student's forward before the teacher's.
    student_first: bool = False

    def loss(self,
             inputs: torch.Tensor,
             data_samples: Optional[List[Any]] = None
             ) -> Dict[str, torch.Tensor]:
        """Losses of one distillation step: both forwards (teacher first,
        unless :attr:`student_first`), then the distillation losses.

        Args:
            inputs (Tensor): Preprocessed inputs.
            data_samples (list, optional): Annotations.

        Returns:
            dict[str, Tensor]: ``teacher.*`` (optional), ``student.*``
            (optional) and ``distiller.*`` losses.
        """
        outputs: Dict[str, Any] = {}

        def teacher() -> None:
            outputs['teacher'] = self.distiller.exec_teacher_forward(
                inputs, data_samples, with_loss=self.with_teacher_loss)

        def student() -> None:
            outputs['student'] = self.distiller.exec_student_forward(
                self.architecture,
                inputs,
                data_samples,
                with_loss=self.with_student_loss)

        try:
            for run in ((student, teacher) if self.student_first else
                        (teacher, student)):
                run()
        except BaseException:
            self.distiller.reset_outputs()
            raise
        losses: Dict[str, torch.Tensor] = {}
        if self.with_teacher_loss:
            losses.update(add_prefix(outputs['teacher'], 'teacher'))
        if self.with_student_loss:
            losses.update(add_prefix(outputs['student'], 'student'))
        losses.update(
            add_prefix(
                self.distiller.compute_distill_loss(data_samples),
                'distiller'))
        return losses


@MODELS.register_module()
class AlignMethodDistill(GeneralDistill):
    """Distillation for methods whose teacher forward comes after the
    student's (e.g. the teacher consumes what the student produced, or the
    align modules must see the student first): the student runs first, then
    the teacher, then the distillation losses are computed.

    Args are those of :class:`GeneralDistill`.
    """

    student_first = True
