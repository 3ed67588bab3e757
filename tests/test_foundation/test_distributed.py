"""A 2-process gloo training run launched like users launch it."""
import os.path as osp
import textwrap

import torch
from launch import launch
from mmengine import Config

from tiny_config import tiny_cfg

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _write_config(tmp_path) -> str:
    (tmp_path / 'dump_weights_hook.py').write_text(
        textwrap.dedent('''
        import os.path as osp
        import torch
        from mmengine.dist import get_rank
        from mmengine.hooks import Hook
        from mmengine.model import is_model_wrapper
        from mmrazor.registry import HOOKS

        @HOOKS.register_module()
        class DumpWeightsHook(Hook):
            def after_run(self, runner):
                model = runner.model
                if is_model_wrapper(model):
                    model = model.module
                import torch.distributed as dist
                torch.save(dict(weights=model.state_dict(),
                                backend=dist.get_backend(),
                                world_size=dist.get_world_size()),
                           osp.join(runner.work_dir, f'rank{get_rank()}.pth'))
        '''))
    cfg = Config(
        tiny_cfg(str(tmp_path / 'work'), max_epochs=2, num_train=256,
                 custom_imports=dict(imports=['dump_weights_hook']),
                 custom_hooks=[dict(type='DumpWeightsHook')]))
    path = tmp_path / 'tiny_dist.py'
    cfg.dump(str(path))
    cfg = path
    return str(cfg)


def _train(tmp_path, launcher: str) -> None:
    cfg = _write_config(tmp_path)
    launch(['tools/train.py', cfg, '--launcher', 'pytorch'],
           launcher=launcher, cwd=REPO,
           env=dict(PYTHONPATH=str(tmp_path), CUDA_VISIBLE_DEVICES=''))


def _assert_identical_ranks(tmp_path):
    dumps = [torch.load(tmp_path / 'work' / f'rank{r}.pth') for r in (0, 1)]
    for dump in dumps:
        assert dump['backend'] == 'gloo' and dump['world_size'] == 2
    rank0, rank1 = dumps[0]['weights'], dumps[1]['weights']
    assert rank0.keys() == rank1.keys() and len(rank0) > 0
    for k in rank0:
        assert torch.equal(rank0[k], rank1[k]), k
    init = torch.nn.Conv2d(1, 6, 5).weight.abs().mean()
    assert rank0['backbone.features.0.weight'].abs().mean() != init


def test_torchrun_two_gloo_processes_end_with_identical_weights(tmp_path):
    _train(tmp_path, 'torch.distributed.run')
    _assert_identical_ranks(tmp_path)


def test_torch_distributed_launch_use_env(tmp_path):
    _train(tmp_path, 'torch.distributed.launch')
    _assert_identical_ranks(tmp_path)
