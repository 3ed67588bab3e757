"""Setting learning rates of a runner's optimizers."""
from typing import Dict, Iterable, List, Sequence, Union

from mmengine.optim import OptimWrapper, OptimWrapperDict


def set_lr(runner,
           lr_groups: Union[Sequence[float], Dict[str, Sequence[float]]],
           freeze_optimizers: Iterable[str] = ()) -> None:
    """Set the learning rate of every param group; frozen optimizers get 0.

    Args:
        runner: An mmengine Runner (``runner.optim_wrapper``), or an object
            with ``optim_wrapper`` / ``optimizer``.
        lr_groups (list[float] | dict[str, list[float]]): One lr per param
            group; a dict (keyed by optimizer name) for several optimizers.
        freeze_optimizers (Iterable[str]): Names of optimizers whose lr is
            set to 0 (they stop learning without being removed).
    """
    frozen = set(freeze_optimizers)
    wrapper = getattr(runner, 'optim_wrapper', None)
    if isinstance(wrapper, OptimWrapperDict):
        optimizers = {k: w.optimizer for k, w in wrapper.items()}
    elif isinstance(wrapper, OptimWrapper):
        optimizers = wrapper.optimizer
    else:
        optimizers = getattr(runner, 'optimizer', wrapper)
    if isinstance(optimizers, dict):
        if not isinstance(lr_groups, dict):
            raise TypeError('the runner has several optimizers '
                            f'({sorted(optimizers)}): lr_groups must be a '
                            'dict keyed by their names')
        unknown = (set(lr_groups) | frozen) - set(optimizers)
        if unknown:
            raise KeyError(f'set_lr: unknown optimizers {sorted(unknown)}; '
                           f'the runner has {sorted(optimizers)}')
        for name, optimizer in optimizers.items():
            if name in lr_groups or name in frozen:
                _apply(optimizer, lr_groups.get(name, []), name in frozen)
        return
    if isinstance(lr_groups, dict):
        raise TypeError('the runner has one optimizer: lr_groups must be a '
                        'list of learning rates')
    _apply(optimizers, lr_groups, False)


def _apply(optimizer, lrs: Sequence[float], frozen: bool) -> None:
    groups: List[dict] = optimizer.param_groups
    if not frozen and len(lrs) != len(groups):
        raise ValueError(f'{len(lrs)} learning rates given for '
                         f'{len(groups)} param groups')
    for i, group in enumerate(groups):
        group['lr'] = 0.0 if frozen else lrs[i]
