"""Validation of a distillation run: the student, and optionally the
teacher (MMRazor 1.x's ``SingleTeacherDistillValLoop``)."""
from typing import Dict, List, Union

import torch
from mmengine.evaluator import Evaluator
from mmengine.model import is_model_wrapper
from mmengine.runner import ValLoop
from torch import nn
from torch.utils.data import DataLoader

from mmrazor.registry import LOOPS


@LOOPS.register_module()
class SingleTeacherDistillValLoop(ValLoop):
    """Validate the student of a distillation algorithm and, with
    ``evaluate_teacher``, its teacher too.

    The student's metrics keep their names (``accuracy/top1``), so hooks
    such as ``CheckpointHook(save_best=...)`` see the student; the
    teacher's are added prefixed ``teacher.`` (``teacher.accuracy/top1``),
    as MMRazor 1.x logged them. The teacher sees the inputs as the
    algorithm's data preprocessor prepares them.

    Args:
        runner (Runner): The runner.
        dataloader (DataLoader | dict): The validation loader.
        evaluator (Evaluator | dict | list): The evaluator.
        fp16 (bool): Validate with autocast. Defaults to False.
        evaluate_teacher (bool): Also evaluate the teacher (one more pass
            over the validation set). Defaults to True, as in 1.x.
    """

    def __init__(self,
                 runner,
                 dataloader: Union[DataLoader, Dict],
                 evaluator: Union[Evaluator, Dict, List],
                 fp16: bool = False,
                 evaluate_teacher: bool = True) -> None:
        super().__init__(runner, dataloader, evaluator, fp16)
        self.evaluate_teacher = evaluate_teacher

    def run(self) -> dict:
        """Validate the student (and the teacher).

        Returns:
            dict: The metrics.
        """
        if not self.evaluate_teacher:
            return super().run()
        self.runner.call_hook('before_val')
        self.runner.call_hook('before_val_epoch')
        self.runner.model.eval()
        self.val_loss.clear()
        for idx, data_batch in enumerate(self.dataloader):
            self.run_iter(idx, data_batch)
        metrics = self.evaluator.evaluate(len(self.dataloader.dataset))
        metrics.update(self.teacher_metrics())
        self.runner.call_hook('after_val_epoch', metrics=metrics)
        self.runner.call_hook('after_val')
        return metrics

    @torch.no_grad()
    def teacher_metrics(self) -> Dict[str, float]:
        """Evaluate the teacher on the validation set.

        Returns:
            dict: Its metrics, prefixed ``teacher.``.
        """
        model = self.runner.model
        algorithm = model.module if is_model_wrapper(model) else model
        teacher = getattr(algorithm, 'teacher', None)
        if not isinstance(teacher, nn.Module):
            raise TypeError(
                'SingleTeacherDistillValLoop(evaluate_teacher=True): the '
                f'model ({type(algorithm).__name__}) has no `teacher`; set '
                'evaluate_teacher=False or use mmengine\'s ValLoop')
        for data_batch in self.dataloader:
            data = algorithm.data_preprocessor(data_batch, False)
            with torch.autocast(
                    device_type=data['inputs'].device.type,
                    enabled=self.fp16):
                outputs = teacher(**data, mode='predict')
            self.evaluator.process(data_samples=outputs, data_batch=data_batch)
        metrics = self.evaluator.evaluate(len(self.dataloader.dataset))
        return {f'teacher.{k}': v for k, v in metrics.items()}
