"""Reshuffle distributed samplers of every training loader each epoch."""
from typing import Any, Iterable

from mmengine.hooks import Hook

from mmrazor.registry import HOOKS


def _loaders(obj: Any) -> Iterable:
    if isinstance(obj, dict):
        for v in obj.values():
            yield from _loaders(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _loaders(v)
    elif obj is not None:
        yield obj


@HOOKS.register_module()
class DistSamplerSeedHook(Hook):
    """Set the epoch of the samplers of all training loaders.

    Like mmengine's hook of the same name, but aware of loops that train
    from several loaders at once (``train_loop.dataloaders``), so each
    loader reshuffles differently every epoch under DDP.
    """

    priority = 'NORMAL'

    def before_train_epoch(self, runner) -> None:
        loop = runner.train_loop
        found = getattr(loop, 'dataloaders', None) or loop.dataloader
        for loader in _loaders(found):
            for attr in ('sampler', 'batch_sampler'):
                sampler = getattr(loader, attr, None)
                if hasattr(sampler, 'set_epoch'):
                    sampler.set_epoch(runner.epoch)
                inner = getattr(sampler, 'sampler', None)
                if hasattr(inner, 'set_epoch'):
                    inner.set_epoch(runner.epoch)
