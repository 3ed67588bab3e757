"""RazorDistributedDataParallel with an algorithm that runs two forward /
backward passes per step: gradients are synchronised correctly."""
import textwrap

import pytest
import torch

from launch import launch

pytestmark = pytest.mark.multiprocess

SCRIPT = textwrap.dedent('''
    import sys
    import torch
    import torch.distributed as dist
    from torch import nn
    from mmengine.optim import OptimWrapper
    dist.init_process_group('gloo')
    rank = dist.get_rank()
    from mmrazor.core import RazorDistributedDataParallel
    from mmrazor.models import BaseAlgorithm

    class TwoPass(BaseAlgorithm):
        """Two passes per step: a 'big' and a 'small' one (AutoSlim-like)."""

        def train_step(self, data, optim_wrapper):
            total = 0.0
            for i, scale in enumerate((1.0, 0.5)):
                loss = self._run_forward(
                    dict(inputs=data['inputs'] * scale), mode='loss',
                    sync_grads=(i == 1))['loss']
                optim_wrapper.backward(loss)
                total += loss.detach()
            optim_wrapper.step()
            optim_wrapper.zero_grad()
            return dict(loss=total)

    class Arch(nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.fc = nn.Linear(4, 1)
            self.unused = nn.Linear(4, 1)  # never used by the loss

        def forward(self, inputs, data_samples=None, mode='loss'):
            return dict(loss=(self.fc(inputs) ** 2).mean())

    algo = TwoPass(Arch())
    ddp = RazorDistributedDataParallel(algo, find_unused_parameters=True)
    wrapper = OptimWrapper(torch.optim.SGD(algo.parameters(), lr=0.1))
    torch.manual_seed(100 + rank)
    data = dict(inputs=torch.randn(8, 4))
    ddp.train_step(data, wrapper)
    torch.save(dict(data=data['inputs'],
                    weights={k: v for k, v in algo.state_dict().items()}),
               sys.argv[1] + f'/rank{rank}.pt')
    del ddp  # the wrapper holds the process group
    from mmrazor.utils import close_distributed
    assert close_distributed()
''')


def test_two_pass_algorithm_synchronises_like_one_big_batch(tmp_path):
    script = tmp_path / 'run.py'
    script.write_text(SCRIPT)
    launch([script, tmp_path], timeout=300)
    r0 = torch.load(tmp_path / 'rank0.pt')
    r1 = torch.load(tmp_path / 'rank1.pt')
    for k in r0['weights']:
        assert torch.equal(r0['weights'][k], r1['weights'][k]), k

    # Independent reference: plain autograd, gradients of both passes of
    # both ranks averaged over ranks, one SGD step.
    torch.manual_seed(0)
    fc = torch.nn.Linear(4, 1)
    grads = [torch.zeros_like(p) for p in fc.parameters()]
    for x in (r0['data'], r1['data']):
        for scale in (1.0, 0.5):
            loss = (fc(x * scale)**2).mean()
            for g, p in zip(grads, torch.autograd.grad(loss,
                                                       list(fc.parameters()))):
                g += p / 2
    with torch.no_grad():
        expected_w = fc.weight - 0.1 * grads[0]
        expected_b = fc.bias - 0.1 * grads[1]
    torch.testing.assert_close(r0['weights']['architecture.fc.weight'],
                               expected_w)
    torch.testing.assert_close(r0['weights']['architecture.fc.bias'],
                               expected_b)
