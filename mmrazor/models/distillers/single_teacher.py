"""Distillation from one separate teacher model."""
from contextlib import nullcontext
from typing import Any, Dict, List, Optional, Sequence, Union

import torch
from mmengine.runner import load_checkpoint
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from mmrazor.registry import MODELS
from .base import BaseDistiller, call_model, find_module, record_outputs


@MODELS.register_module()
class SingleTeacherDistiller(BaseDistiller):
    """Distil a student from one teacher.

    The teacher is built from a config of any registry scope (``type=
    'mmcls.ImageClassifier'``, ``'mmpretrain.ImageClassifier'``, an mmrazor
    architecture, ...) or given as a module, and its weights are loaded from
    ``teacher_ckpt`` (or from the teacher's own ``init_cfg=dict(type=
    'Pretrained', ...)`` when the runner initialises the model).

    A frozen teacher (``teacher_trainable=False``) is always in eval mode,
    its parameters do not require gradients, and it runs under
    ``torch.no_grad()``; the optimizer never changes it.

    Args:
        teacher (dict | nn.Module): The teacher or its config.
        teacher_trainable (bool): Train the teacher too. Defaults to False.
        teacher_norm_eval (bool): For a trainable teacher, keep its
            normalisation layers in eval mode. Defaults to True.
        components (Sequence[dict]): Student/teacher module pairs and their
            losses; see :class:`BaseDistiller`.
        teacher_ckpt (str, optional): Checkpoint of the teacher (a plain
            model checkpoint, loaded strictly and safely). Defaults to None.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 teacher: Union[dict, nn.Module],
                 teacher_trainable: bool = False,
                 teacher_norm_eval: bool = True,
                 components: Sequence[dict] = (),
                 teacher_ckpt: Optional[str] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(components=components, init_cfg=init_cfg)
        if isinstance(teacher, dict):
            teacher = MODELS.build(teacher)
        elif not isinstance(teacher, nn.Module):
            raise TypeError('SingleTeacherDistiller: `teacher` must be a '
                            'config dict or an nn.Module, got '
                            f'{type(teacher)}')
        self.teacher = teacher
        self.teacher_trainable = teacher_trainable
        self.teacher_norm_eval = teacher_norm_eval
        for path in self.teacher_paths:
            find_module(self.teacher, path, 'teacher')
        if teacher_ckpt is not None:
            load_checkpoint(
                self.teacher, teacher_ckpt, map_location='cpu', strict=True)
            # The runner's init_weights() must not re-initialise it.
            self.teacher._is_init = True
        if not teacher_trainable:
            self.teacher.requires_grad_(False)
        self.train(self.training)

    def train(self, mode: bool = True) -> 'SingleTeacherDistiller':
        """Set train/eval mode; a frozen teacher stays in eval mode.

        Args:
            mode (bool): Train mode if True.

        Returns:
            SingleTeacherDistiller: self.
        """
        super().train(mode)
        if not self.teacher_trainable:
            self.teacher.eval()
        elif mode and self.teacher_norm_eval:
            for module in self.teacher.modules():
                if isinstance(module,
                              (_BatchNorm, nn.GroupNorm, nn.LayerNorm)):
                    module.eval()
        return self

    def exec_teacher_forward(self,
                             inputs: torch.Tensor,
                             data_samples: Optional[List[Any]] = None,
                             with_loss: bool = False) -> Dict[str, Any]:
        """Run the teacher (under ``no_grad`` when frozen) and record the
        outputs of the teacher modules of the components.

        Args:
            inputs (Tensor): Preprocessed inputs.
            data_samples (list, optional): Annotations.
            with_loss (bool): Run in ``'loss'`` mode and return the teacher's
                losses (they carry no gradient when the teacher is frozen).

        Returns:
            dict: The teacher's losses, empty unless ``with_loss``.
        """
        self._teacher_outputs = {}
        grad = nullcontext() if self.teacher_trainable else torch.no_grad()
        with grad, record_outputs(self.teacher, self.teacher_paths,
                                  self._teacher_outputs, 'teacher'):
            out = call_model(self.teacher, inputs, data_samples,
                             'loss' if with_loss else 'tensor')
        return out if with_loss else {}
