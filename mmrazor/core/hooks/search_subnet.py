"""Write the subnet an algorithm currently prefers, during training."""
import glob
import os
import os.path as osp
from typing import Optional

from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmrazor.registry import HOOKS
from mmrazor.structures import dump_subnet


@HOOKS.register_module()
class SearchSubnetHook(Hook):
    """Save ``algorithm.search_subnet()`` as YAML (``{key: {chosen: v}}``)
    every ``interval`` epochs (or iterations), e.g. the genotype DARTS
    derives from its arch params.

    Files are ``epoch_{N}.yaml`` (``iter_{N}.yaml``) in ``out_dir`` (default:
    ``work_dir/subnets``), with ``latest.yaml`` always holding the newest.

    Args:
        interval (int): Save period; below 1 means every epoch/iteration.
        by_epoch (bool): Count epochs rather than iterations.
        out_dir (str, optional): Folder of the YAML files.
        max_keep_ckpts (int): Keep only the newest files (-1: all).
        save_last (bool): Also save at the end of training.
    """

    priority = 'LOW'

    def __init__(self,
                 interval: int = -1,
                 by_epoch: bool = True,
                 out_dir: Optional[str] = None,
                 max_keep_ckpts: int = -1,
                 save_last: bool = True) -> None:
        self.interval = max(1, interval)
        self.by_epoch = by_epoch
        self.out_dir = out_dir
        self.max_keep_ckpts = max_keep_ckpts
        self.save_last = save_last

    def _save(self, runner, name: str) -> None:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        search = getattr(model, 'search_subnet', None)
        if search is None and hasattr(model, 'mutator'):
            search = model.mutator.search_subnet
        if search is None:
            raise AttributeError(f'SearchSubnetHook: {type(model).__name__} '
                                 'has no search_subnet()')
        subnet = search()
        if not is_main_process():
            return
        out_dir = self.out_dir or osp.join(runner.work_dir, 'subnets')
        dump_subnet(subnet, osp.join(out_dir, name), view='chosen')
        dump_subnet(subnet, osp.join(out_dir, 'latest.yaml'), view='chosen')
        if self.max_keep_ckpts > 0:
            prefix = 'epoch_' if self.by_epoch else 'iter_'
            files = sorted(
                glob.glob(osp.join(out_dir, f'{prefix}*.yaml')),
                key=lambda p: int(osp.basename(p)[len(prefix):-5]))
            for old in files[:-self.max_keep_ckpts]:
                os.remove(old)

    def after_train_epoch(self, runner) -> None:
        done = runner.epoch + 1
        if self.by_epoch and (done % self.interval == 0 or
                              (self.save_last and done == runner.max_epochs)):
            self._save(runner, f'epoch_{done}.yaml')

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        done = runner.iter + 1
        if not self.by_epoch and (done % self.interval == 0 or
                                  (self.save_last
                                   and done == runner.max_iters)):
            self._save(runner, f'iter_{done}.yaml')
