"""A 2-process gloo training run launched like users launch it."""
import os.path as osp
import textwrap

import pytest
import torch
from launch import launch
from mmengine import Config

from tiny_config import tiny_cfg

pytestmark = pytest.mark.multiprocess

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


# ------------------------------------------------------------ clean exit
# A fresh interpreter, one gloo rank: the threads the group starts are
# counted from /proc, and must all be gone after close_distributed().
TEARDOWN_SCRIPT = textwrap.dedent('''
    import os, sys, tempfile, warnings
    import torch.distributed as dist
    from mmrazor.utils import close_distributed

    def threads():
        return len(os.listdir('/proc/self/task'))

    before = threads()
    dist.init_process_group('gloo', rank=0, world_size=1,
                            init_method='file://' + tempfile.mktemp())
    started = threads() - before

    # What torch.distributed.nn.functional does when imported after
    # init_process_group: the default group becomes a default argument.
    def user_collective(group=dist.group.WORLD):
        return group

    held = dist.group.WORLD if sys.argv[1] == 'hold' else None
    gathered = [None]
    dist.all_gather_object(gathered, {'rank': 0})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        released = close_distributed()
    print(dict(started=started, left=threads() - before, released=released,
               default_kept=user_collective() is not None,
               warnings=[str(w.message) for w in caught]))
''')


def _teardown(tmp_path, mode: str) -> dict:
    import ast
    import subprocess
    import sys
    script = tmp_path / 'teardown.py'
    script.write_text(TEARDOWN_SCRIPT)
    proc = subprocess.run([sys.executable, str(script), mode], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return ast.literal_eval(proc.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not osp.isdir('/proc/self/task'),
                    reason='counts threads through /proc')
def test_close_distributed_joins_the_group_threads(tmp_path):
    """The group is destroyed while Python is alive, although a function
    defined after init keeps it as a default argument: its threads are
    joined, and that default becomes None (the current default group)."""
    result = _teardown(tmp_path, 'release')
    assert result['started'] >= 1  # gloo worker / transport threads
    assert result['released'] is True and result['warnings'] == []
    assert result['left'] == 0
    assert result['default_kept'] is False


@pytest.mark.skipif(not osp.isdir('/proc/self/task'),
                    reason='counts threads through /proc')
def test_close_distributed_names_what_still_holds_the_group(tmp_path):
    result = _teardown(tmp_path, 'hold')
    assert result['released'] is False
    assert result['left'] >= 1
    [message] = result['warnings']
    assert 'still referenced after destroy_process_group' in message
    assert 'dict' in message  # the module globals holding `held`


FAILING_RANK_SCRIPT = textwrap.dedent('''
    import os, signal, sys
    import torch.distributed as dist
    from mmrazor.utils import close_distributed
    dist.init_process_group('gloo')
    gathered = [None, None]
    dist.all_gather_object(gathered, dist.get_rank())
    if dist.get_rank() == 1:
        if sys.argv[1] == 'raise':
            raise RuntimeError('rank 1 fails')
        os.kill(os.getpid(), signal.SIGKILL)
    close_distributed()  # rank 0 waits here for a rank that is gone
''')


@pytest.mark.parametrize('failure', ['raise', 'sigkill'])
def test_a_failing_rank_fails_the_job_within_seconds(tmp_path, failure):
    """Rank 0 finished and waits in close_distributed(); rank 1 dies. The
    launcher ends the job non-zero at once, far below gloo's 30-minute
    collective timeout."""
    import time
    script = tmp_path / 'fail.py'
    script.write_text(FAILING_RANK_SCRIPT)
    start = time.monotonic()
    proc = launch([script, failure], cwd=REPO, timeout=120, check=False)
    elapsed = time.monotonic() - start
    assert proc.returncode != 0
    assert elapsed < 60, elapsed
    output = proc.stdout + proc.stderr
    if failure == 'raise':
        assert 'rank 1 fails' in output
    else:
        assert 'SIGKILL' in output
