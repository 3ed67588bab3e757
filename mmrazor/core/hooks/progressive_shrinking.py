"""Once-for-All's progressive shrinking (Cai et al., ICLR 2020): the
dimensions a weight-sharing supernet varies grow phase by phase."""
from typing import Any, Dict, List, Optional, Sequence

from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

from mmrazor.registry import HOOKS


def _check_phases(phases: Sequence[Dict[str, Any]]) -> List[Dict[str, Any]]:
    checked = []
    for i, phase in enumerate(phases):
        if not isinstance(phase, dict) or set(phase) != {
                'begin_epoch', 'elastic_dims'}:
            raise ValueError(
                f'ProgressiveShrinkingHook phases[{i}] = {phase!r} must be '
                "dict(begin_epoch=int, elastic_dims=[...])")
        begin = phase['begin_epoch']
        if not isinstance(begin, int) or begin < 0:
            raise ValueError(f'ProgressiveShrinkingHook phases[{i}]'
                             f'.begin_epoch={begin!r} must be an int >= 0')
        if checked and begin <= checked[-1]['begin_epoch']:
            raise ValueError('ProgressiveShrinkingHook phases must begin at '
                             f'increasing epochs; phases[{i}] begins at '
                             f'{begin}')
        checked.append(dict(begin_epoch=begin,
                            elastic_dims=list(phase['elastic_dims'])))
    if not checked or checked[0]['begin_epoch'] != 0:
        raise ValueError('ProgressiveShrinkingHook needs a first phase that '
                         'begins at epoch 0')
    return checked


@HOOKS.register_module()
class ProgressiveShrinkingHook(Hook):
    """Set the elastic dimensions of a ``BigNAS`` algorithm per epoch.

    Once-for-All first trains the largest network, then lets kernel sizes
    vary, then depths, then widths (expand ratios), each phase keeping the
    earlier dimensions elastic; the dimensions not yet elastic stay at
    their largest choice in every subnet of a step.

    Args:
        phases (Sequence[dict]): ``dict(begin_epoch, elastic_dims)`` in
            increasing ``begin_epoch``, the first at 0; ``elastic_dims``
            as ``BigNAS.elastic_dims`` (last parts of subnet keys; ``[]``:
            only the largest subnet).

    Example:
        >>> custom_hooks = [dict(type='ProgressiveShrinkingHook', phases=[
        ...     dict(begin_epoch=0, elastic_dims=[]),
        ...     dict(begin_epoch=5, elastic_dims=['kernel_size']),
        ...     dict(begin_epoch=10, elastic_dims=['kernel_size', 'depth']),
        ...     dict(begin_epoch=15, elastic_dims=[
        ...         'kernel_size', 'depth', 'expand_ratio'])])]
    """

    priority = 'NORMAL'

    def __init__(self, phases: Sequence[Dict[str, Any]]) -> None:
        self.phases = _check_phases(phases)
        self._current: Optional[List[str]] = None

    def phase_at(self, epoch: int) -> Dict[str, Any]:
        """The phase in force at ``epoch`` (0-based)."""
        return [p for p in self.phases if p['begin_epoch'] <= epoch][-1]

    def before_train_epoch(self, runner: Any) -> None:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        if not hasattr(model, 'set_elastic_dims'):
            raise TypeError('ProgressiveShrinkingHook needs an algorithm with '
                            f'set_elastic_dims (BigNAS), got '
                            f'{type(model).__name__}')
        dims = self.phase_at(runner.epoch)['elastic_dims']
        if dims != self._current:
            model.set_elastic_dims(dims)
            self._current = dims
            print_log(f'progressive shrinking: epoch {runner.epoch + 1}, '
                      f'elastic dimensions {dims or "none (largest only)"}',
                      logger='current')
