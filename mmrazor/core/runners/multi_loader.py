"""Training from several data loaders at once (e.g. DARTS: one loader for
weights, one for architecture parameters).

Each step gives ``model.train_step`` one batch of every loader, as a list
(or a dict when the loaders are given as a dict). The first loader sets the
epoch length; the others are cycled.
"""
import os
import os.path as osp
from typing import Any, Dict, Iterator, List, Optional, Sequence, Union

from mmengine.dist import is_main_process
from mmengine.model import is_model_wrapper
from mmengine.runner import EpochBasedTrainLoop, IterBasedTrainLoop, Runner
from mmengine.runner.loops import _InfiniteDataloaderIterator
from torch.utils.data import DataLoader

from mmrazor.registry import LOOPS, RUNNERS
from mmrazor.structures import dump_subnet

Loaders = Union[Sequence[Any], Dict[str, Any]]


def _build_loaders(runner: Runner,
                   dataloaders: Loaders) -> Union[List, Dict[str, Any]]:
    if isinstance(dataloaders, dict) and 'dataset' in dataloaders:
        dataloaders = [dataloaders]  # one loader config
    if isinstance(dataloaders, dict):
        return {
            k: v if isinstance(v, DataLoader) else runner.build_dataloader(
                v, seed=runner.seed)
            for k, v in dataloaders.items()
        }
    if not isinstance(dataloaders, (list, tuple)) or not dataloaders:
        raise TypeError('multi-loader training needs a non-empty list or dict'
                        f' of dataloaders, got {type(dataloaders).__name__}')
    return [
        d if isinstance(d, DataLoader) else runner.build_dataloader(
            d, seed=runner.seed) for d in dataloaders
    ]


def _first(loaders: Union[List, Dict[str, Any]]) -> Any:
    return next(iter(loaders.values())) if isinstance(loaders,
                                                      dict) else loaders[0]


class _ZipCycle:
    """Yields one batch of every loader, restarting exhausted ones."""

    def __init__(self, loaders: Union[List, Dict[str, Any]]) -> None:
        self.loaders = loaders
        self.iterators = ({k: _InfiniteDataloaderIterator(v)
                           for k, v in loaders.items()}
                          if isinstance(loaders, dict) else
                          [_InfiniteDataloaderIterator(v) for v in loaders])

    def __iter__(self) -> Iterator:
        return self

    def __next__(self) -> Union[List, Dict[str, Any]]:
        if isinstance(self.iterators, dict):
            return {k: next(it) for k, it in self.iterators.items()}
        return [next(it) for it in self.iterators]


@LOOPS.register_module()
class MultiLoaderEpochBasedTrainLoop(EpochBasedTrainLoop):
    """Epoch-based training where each step reads every loader.

    Args:
        runner (Runner): The runner.
        dataloader (list | dict): Loaders or their configs.
        max_epochs (int): Training epochs.
        val_begin (int): First epoch to validate. Defaults to 1.
        val_interval (int): Validation period in epochs. Defaults to 1.
    """

    def __init__(self,
                 runner: Runner,
                 dataloader: Loaders,
                 max_epochs: int,
                 val_begin: int = 1,
                 val_interval: int = 1) -> None:
        self.dataloaders = _build_loaders(runner, dataloader)
        super().__init__(runner, _first(self.dataloaders), max_epochs,
                         val_begin, val_interval)

    def run_epoch(self) -> None:
        """Iterate over the first loader, pairing each batch with batches
        of the other loaders."""
        self.runner.call_hook('before_train_epoch')
        self.runner.model.train()
        others = _ZipCycle(self.dataloaders)
        for idx in range(len(self.dataloader)):
            self.run_iter(idx, next(others))
        self.runner.call_hook('after_train_epoch')
        self._epoch += 1


@LOOPS.register_module()
class MultiLoaderIterBasedTrainLoop(IterBasedTrainLoop):
    """Iteration-based training where each step reads every loader.

    Args:
        runner (Runner): The runner.
        dataloader (list | dict): Loaders or their configs.
        max_iters (int): Training iterations.
        val_begin (int): First iteration to validate. Defaults to 1.
        val_interval (int): Validation period. Defaults to 1000.
    """

    def __init__(self,
                 runner: Runner,
                 dataloader: Loaders,
                 max_iters: int,
                 val_begin: int = 1,
                 val_interval: int = 1000) -> None:
        self.dataloaders = _build_loaders(runner, dataloader)
        super().__init__(runner, _first(self.dataloaders), max_iters,
                         val_begin, val_interval)
        self.dataloader_iterator = _ZipCycle(self.dataloaders)


class _MultiLoaderRunnerMixin:
    """Runner behaviour shared by the multi-loader runners."""

    default_loop: str = ''

    def build_train_loop(self, loop):
        if isinstance(loop, dict) and 'type' not in loop:
            loop = dict(loop)
            loop.pop('by_epoch', None)  # implied by the runner's loop
            loop = dict(type=self.default_loop, **loop)
        return super().build_train_loop(loop)

    def search_subnet(self,
                      out_dir: Optional[str] = None,
                      filename_tmpl: str = 'epoch_{}.yaml',
                      create_symlink: bool = True) -> dict:
        """Write the model's currently preferred subnet to YAML
        (``{key: {chosen: v}}``).

        Args:
            out_dir (str, optional): Folder; defaults to the work dir.
            filename_tmpl (str): File name, formatted with the epoch.
            create_symlink (bool): Point ``latest.yaml`` at the file.

        Returns:
            dict: The subnet.
        """
        model = self.model.module if is_model_wrapper(
            self.model) else self.model
        search = getattr(model, 'search_subnet', None)
        if search is None:
            search = model.mutator.search_subnet
        subnet = search()
        if is_main_process():
            out_dir = out_dir or self.work_dir
            name = filename_tmpl.format(self.epoch)
            path = osp.join(out_dir, name)
            dump_subnet(subnet, path, view='chosen')
            if create_symlink:
                link = osp.join(out_dir, 'latest.yaml')
                if osp.lexists(link):
                    os.remove(link)
                os.symlink(name, link)
        return subnet


@RUNNERS.register_module()
class MultiLoaderEpochBasedRunner(_MultiLoaderRunnerMixin, Runner):
    """mmengine Runner whose ``train_dataloader`` may be a list or dict of
    loaders, trained by :class:`MultiLoaderEpochBasedTrainLoop`."""

    default_loop = 'mmrazor.MultiLoaderEpochBasedTrainLoop'


@RUNNERS.register_module()
class MultiLoaderIterBasedRunner(_MultiLoaderRunnerMixin, Runner):
    """mmengine Runner whose ``train_dataloader`` may be a list or dict of
    loaders, trained by :class:`MultiLoaderIterBasedTrainLoop`."""

    default_loop = 'mmrazor.MultiLoaderIterBasedTrainLoop'
