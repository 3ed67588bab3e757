"""``learn_rounding`` in a 2-process (gloo) run, each process with its own
calibration images: the gradients of the relaxed rounding are averaged, so
both processes end with the same weights."""
import textwrap

import pytest
import torch

from launch import launch

pytestmark = pytest.mark.multiprocess

SCRIPT = textwrap.dedent('''
    import copy
    import sys
    import torch
    import torch.distributed as dist
    from torch import nn
    dist.init_process_group('gloo')
    rank = dist.get_rank()
    sys.path.insert(0, sys.argv[2])
    from qconfigs import native_qconfig
    from mmrazor.core.loops.quantization_loops import calibrate_prepared
    from mmrazor.models.quantizers import AcademicQuantizer, learn_rounding

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 4, 3), nn.ReLU(), nn.Flatten(),
                          nn.Linear(4 * 5 * 5, 3)).eval()
    shared = [torch.randn(8, 2, 7, 7)]
    prepared = calibrate_prepared(
        AcademicQuantizer(native_qconfig(w_bit=3)).prepare(model), shared)
    torch.manual_seed(100 + rank)  # each process its own images
    own = [torch.randn(8, 2, 7, 7) for _ in range(2)]
    learn_rounding(prepared, lambda: [prepared(x) for x in own], iters=60,
                   batch_size=8)
    torch.save({k: v for k, v in prepared.state_dict().items()
                if k.endswith('.weight')}, sys.argv[1] + f'/rank{rank}.pt')
    from mmrazor.utils import close_distributed
    assert close_distributed()
''')


def test_processes_learn_the_same_rounding(tmp_path):
    import os.path as osp
    script = tmp_path / 'run.py'
    script.write_text(SCRIPT)
    tests_dir = osp.dirname(osp.dirname(osp.abspath(__file__)))
    launch([script, tmp_path, tests_dir], timeout=300)
    r0 = torch.load(tmp_path / 'rank0.pt')
    r1 = torch.load(tmp_path / 'rank1.pt')
    assert sorted(r0) == ['0.weight', '3.weight']
    for key in r0:
        assert torch.equal(r0[key], r1[key]), key
