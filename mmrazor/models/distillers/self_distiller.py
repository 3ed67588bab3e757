"""Self-distillation: teacher and student are parts of one model."""
from typing import Any, Dict, List, Optional

import torch
from torch import nn

from mmrazor.registry import MODELS
from .base import (BaseDistiller, call_model, find_module, record_outputs,
                   student_root)


@MODELS.register_module()
class SelfDistiller(BaseDistiller):
    """Distil knowledge from some modules of a model into others of the same
    model (e.g. from the last stage into an earlier one).

    Both ``student_module`` and ``teacher_module`` of each component are
    paths in the student; both are recorded during the student forward, and
    the teacher side is detached by the losses (``teacher_detach=True``).

    Args:
        components (Sequence[dict]): Module pairs and their losses; see
            :class:`BaseDistiller`.
        init_cfg (dict, optional): Initialisation config.
    """

    def prepare_from_student(self, student: nn.Module) -> None:
        """Check that every module path exists in ``student``.

        Args:
            student (nn.Module): The model.
        """
        root = student_root(student)
        for path in self.student_paths + self.teacher_paths:
            find_module(root, path, 'student')

    def exec_teacher_forward(self,
                             inputs: torch.Tensor,
                             data_samples: Optional[List[Any]] = None,
                             with_loss: bool = False) -> Dict[str, Any]:
        """Nothing to run: the teacher modules run in the student forward.

        Returns:
            dict: Always empty.
        """
        if with_loss:
            raise ValueError('SelfDistiller has no separate teacher with its '
                             'own losses; set with_teacher_loss=False')
        return {}

    def exec_student_forward(self,
                             student: nn.Module,
                             inputs: torch.Tensor,
                             data_samples: Optional[List[Any]] = None,
                             with_loss: bool = True) -> Any:
        """Run the model once, recording both sides of every component.

        Args:
            student (nn.Module): The model.
            inputs (Tensor): Preprocessed inputs.
            data_samples (list, optional): Annotations.
            with_loss (bool): Return the model's losses (``'loss'`` mode).

        Returns:
            dict | Tensor: The model's losses or raw outputs.
        """
        self._student_outputs = {}
        self._teacher_outputs = {}
        root = student_root(student)
        with record_outputs(root, self.student_paths, self._student_outputs,
                            'student'), \
                record_outputs(root, self.teacher_paths,
                               self._teacher_outputs, 'student'):
            return call_model(student, inputs, data_samples,
                              'loss' if with_loss else 'tensor')
