"""Linearly increase the drop-path probability over training."""
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmrazor.registry import HOOKS


@HOOKS.register_module()
class DropPathProbHook(Hook):
    """Set the drop-path probability to ``max_prob * progress``.

    Progress is ``epoch / max_epochs`` (or ``iter / max_iters`` when
    ``by_epoch=False``). Modules holding an attribute ``drop_path_prob``
    (DARTS cells) or ``drop_prob`` (``DropPath`` layers) are updated.

    Args:
        max_prob (float): Probability at the end of training.
        interval (int): Update every ``interval`` epochs/iterations; values
            below 1 update every epoch/iteration. Defaults to -1.
        by_epoch (bool): Update per epoch rather than per iteration.
    """

    priority = 'NORMAL'

    def __init__(self, max_prob: float, interval: int = -1,
                 by_epoch: bool = True) -> None:
        if not 0.0 <= max_prob <= 1.0:
            raise ValueError(f'max_prob must be in [0, 1], got {max_prob}')
        self.max_prob = max_prob
        self.interval = max(1, interval)
        self.by_epoch = by_epoch

    def _apply(self, runner, progress: float) -> None:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        prob = self.max_prob * progress
        for module in model.modules():
            if hasattr(module, 'drop_path_prob'):
                module.drop_path_prob = prob
            elif type(module).__name__ == 'DropPath' and hasattr(
                    module, 'drop_prob'):
                module.drop_prob = prob

    def before_train_epoch(self, runner) -> None:
        if self.by_epoch and runner.epoch % self.interval == 0:
            self._apply(runner, runner.epoch / max(1, runner.max_epochs))

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        if not self.by_epoch and runner.iter % self.interval == 0:
            self._apply(runner, runner.iter / max(1, runner.max_iters))
