"""Validation of a self-distillation run (MMRazor 1.x's
``SelfDistillValLoop``)."""
from typing import Dict

from mmengine.runner import ValLoop

from mmrazor.registry import LOOPS

#: Prefix of the metrics, as MMRazor 1.x logged them.
STUDENT_PREFIX = 'student.'


@LOOPS.register_module()
class SelfDistillValLoop(ValLoop):
    """Validate the model of a self-distillation algorithm (``SelfDistill``),
    which is its own teacher: there is no separate teacher to evaluate.

    The metrics are those of mmengine's ``ValLoop``, renamed with the prefix
    ``student.`` (``student.accuracy/top1``), as MMRazor 1.x logged them;
    hooks (``CheckpointHook(save_best=...)``) see these names.

    Args:
        runner (Runner): The runner.
        dataloader (DataLoader | dict): The validation loader.
        evaluator (Evaluator | dict | list): The evaluator.
        fp16 (bool): Validate with autocast. Defaults to False.
    """

    def run(self) -> Dict[str, float]:
        """Validate the model.

        Returns:
            dict: The metrics, prefixed ``student.``.
        """
        self.runner.call_hook('before_val')
        self.runner.call_hook('before_val_epoch')
        self.runner.model.eval()
        self.val_loss.clear()
        for idx, data_batch in enumerate(self.dataloader):
            self.run_iter(idx, data_batch)
        metrics = self.evaluator.evaluate(len(self.dataloader.dataset))
        metrics = {f'{STUDENT_PREFIX}{k}': v for k, v in metrics.items()}
        self.runner.call_hook('after_val_epoch', metrics=metrics)
        self.runner.call_hook('after_val')
        return metrics
