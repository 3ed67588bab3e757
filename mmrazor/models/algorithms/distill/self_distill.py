"""``SelfDistill``: a model distilled by itself (MMRazor 1.x's algorithm of
the BYOT config)."""
from typing import Any, Dict, List, Optional, Union

import torch
from torch import nn

from mmrazor.models.distillers import ConfigurableDistiller
from mmrazor.registry import MODELS
from ..base import BaseAlgorithm
from .general_distill import add_prefix
from .single_teacher_distill import build_model


def detach_record(record: Any) -> Any:
    """``record`` with every tensor in it detached.

    Args:
        record (Any): A recorded value: a tensor, or a tuple / list / dict
            of them.

    Returns:
        Any: The same structure, detached.
    """
    if isinstance(record, torch.Tensor):
        return record.detach()
    if isinstance(record, (tuple, list)):
        return type(record)(detach_record(r) for r in record)
    if isinstance(record, dict):
        return {k: detach_record(v) for k, v in record.items()}
    return record


def detach_records(distiller: ConfigurableDistiller) -> None:
    """Detach everything the teacher recorders of ``distiller`` recorded.

    Args:
        distiller (ConfigurableDistiller): The distiller.
    """
    for recorder in distiller.teacher_recorders.recorders.values():
        recorder.data_buffer = [detach_record(r) for r in recorder.data_buffer]


@MODELS.register_module()
class SelfDistill(BaseAlgorithm):
    """Self-distillation: the teacher and the student are parts of one model
    (e.g. BYOT, where the deepest classifier teaches classifiers attached
    to the shallow stages by the distiller's connectors).

    One training step runs the model once in ``'loss'`` mode with both the
    student and the teacher recorders of the ``distiller`` recording (they
    name modules of the same model). The teacher records are then detached,
    as a separate teacher's would be, so the distillation losses train the
    shallow parts (and the connectors) without pulling the teacher parts
    towards them. Returned losses: the model's own, prefixed ``student.``
    (if ``calculate_student_loss``), and the distillation losses under their
    names. Validation and prediction use the model unchanged.

    Args:
        architecture (dict | nn.Module): The model.
        distiller (dict | ConfigurableDistiller): The distiller, e.g.
            ``dict(type='BYOTDistiller', ...)``.
        student_trainable (bool): Train the model; if False its parameters
            are frozen and it runs without gradients (only connectors
            learn). Defaults to True.
        calculate_student_loss (bool): Add the model's own task losses.
            Defaults to True.
        data_preprocessor (dict | nn.Module, optional): Defaults to the
            model's.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 architecture: Union[dict, nn.Module],
                 distiller: Union[dict, ConfigurableDistiller],
                 student_trainable: bool = True,
                 calculate_student_loss: bool = True,
                 data_preprocessor: Optional[Union[dict, nn.Module]] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(
            build_model(architecture, 'architecture'), data_preprocessor,
            init_cfg)
        if isinstance(distiller, dict):
            distiller = MODELS.build(distiller)
        if not isinstance(distiller, ConfigurableDistiller):
            raise TypeError('SelfDistill: `distiller` must be a '
                            'ConfigurableDistiller (or its config), got '
                            f'{type(distiller).__name__}')
        self.distiller = distiller
        self.distiller.prepare_from_student(self.architecture)
        self.distiller.prepare_from_teacher(self.architecture)
        self.student_trainable = student_trainable
        self.calculate_student_loss = calculate_student_loss
        if not student_trainable:
            self.architecture.requires_grad_(False)

    @property
    def student(self) -> nn.Module:
        """The model (student and teacher at once)."""
        return self.architecture

    def loss(self,
             inputs: torch.Tensor,
             data_samples: Optional[List[Any]] = None
             ) -> Dict[str, torch.Tensor]:
        """Losses of one self-distillation step.

        Args:
            inputs (Tensor): Preprocessed inputs.
            data_samples (list, optional): Annotations.

        Returns:
            dict[str, Tensor]: ``student.*`` (if ``calculate_student_loss``)
            and the distillation losses.
        """
        losses: Dict[str, torch.Tensor] = {}
        distiller = self.distiller
        grad = torch.enable_grad() if self.student_trainable \
            else torch.no_grad()
        try:
            with distiller.student_recorders, distiller.teacher_recorders, \
                    distiller.deliveries, grad:
                student_losses = self.architecture(
                    inputs, data_samples, mode='loss')
            detach_records(distiller)
            if self.calculate_student_loss:
                losses.update(add_prefix(student_losses, 'student'))
            losses.update(distiller.compute_distill_losses())
        finally:
            distiller.reset_data()
        return losses
