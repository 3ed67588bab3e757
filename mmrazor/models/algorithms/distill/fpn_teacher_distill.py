"""``FpnTeacherDistill``: MMRazor 1.x's distillation of detectors whose
teacher only runs up to its neck (the FPN)."""
from typing import Any, Dict, List, Optional

import torch
from torch import nn

from mmrazor.registry import MODELS
from .single_teacher_distill import SingleTeacherDistill


def extract_features(teacher: nn.Module, inputs: torch.Tensor) -> Any:
    """Run a detector's backbone and neck (``extract_feat``).

    Args:
        teacher (nn.Module): The teacher detector.
        inputs (Tensor): Preprocessed inputs.

    Returns:
        Any: The detector's features (a tuple of FPN levels).

    Raises:
        TypeError: The teacher has no ``extract_feat``.
    """
    if not callable(getattr(teacher, 'extract_feat', None)):
        raise TypeError(
            'FpnTeacherDistill: the teacher '
            f'({type(teacher).__name__}) has no extract_feat(inputs); use '
            'SingleTeacherDistill, which runs the whole teacher')
    return teacher.extract_feat(inputs)


@MODELS.register_module()
class FpnTeacherDistill(SingleTeacherDistill):
    """:class:`SingleTeacherDistill` whose teacher runs only its backbone and
    neck (``teacher.extract_feat``): the distillation losses of these configs
    read the teacher's neck (FPN outputs, e.g. CWD on the FPN levels), so its
    heads and losses are skipped.

    Takes the arguments of :class:`SingleTeacherDistill`; the teacher's
    recorders must record modules of the backbone or the neck, and
    ``teacher_trainable=True`` is refused (the teacher computes no loss).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if kwargs.get('teacher_trainable', False):
            raise ValueError('FpnTeacherDistill: teacher_trainable=True is '
                             'not supported (the teacher runs only up to '
                             'its neck and has no loss)')
        super().__init__(*args, **kwargs)

    def teacher_pass(self,
                     inputs: torch.Tensor,
                     data_samples: Optional[List[Any]] = None
                     ) -> Dict[str, torch.Tensor]:
        """Run the teacher's backbone and neck only, without gradients (its
        recorders are recording).

        Args:
            inputs (Tensor): Preprocessed inputs.
            data_samples (list, optional): Unused.

        Returns:
            dict: ``{}`` (the teacher computes no loss).
        """
        with torch.no_grad():
            extract_features(self.teacher, inputs)
        return {}
