"""Module mutables: one-shot, differentiable, routes and the older names."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmrazor.models.mutables import (DiffChoiceRoute, DifferentiableEdge,
                                     DifferentiableOP, DiffMutableOP,
                                     GumbelChoiceRoute, GumbelOP,
                                     MutableFixedError, MutableModule,
                                     OneShotMutableOP, OneShotOP,
                                     OneShotProbMutableOP)
from mmrazor.registry import MODELS


class Scale(nn.Module):
    """y = k * x: candidates whose outputs are easy to predict."""

    def __init__(self, k: float) -> None:
        super().__init__()
        self.k = nn.Parameter(torch.tensor(float(k)))

    def forward(self, x):
        return self.k * x


def scales(**ks):
    return nn.ModuleDict({n: Scale(k) for n, k in ks.items()})


def test_one_shot_op_from_configs_and_candidates_dict():
    op = OneShotMutableOP(
        candidates=dict(
            k3=dict(type='ShuffleBlock', kernel_size=3),
            xc=dict(type='ShuffleXception')),
        module_kwargs=dict(in_channels=8, out_channels=8))
    assert isinstance(op.candidates, nn.ModuleDict)
    assert list(op.candidates) == ['k3', 'xc'] == op.choices
    assert op.num_choices == 2 and op.current_choice is None
    x = torch.randn(2, 8, 6, 6)
    op.eval()
    both = op(x)  # no choice yet: all candidates summed
    expect = op.candidates['k3'](x) + op.candidates['xc'](x)
    assert torch.allclose(both, expect, atol=1e-6)
    op.current_choice = 'xc'
    assert torch.equal(op(x), op.candidates['xc'](x))
    assert isinstance(MODELS.build(dict(
        type='OneShotMutableOP', candidates=scales(a=1, b=2))),
        OneShotMutableOP)


def test_one_shot_op_choice_errors_and_fix():
    op = OneShotMutableOP(scales(a=1, b=2, c=3), alias='blk')
    with pytest.raises(ValueError, match="'zz'"):
        op.current_choice = 'zz'
    op.current_choice = 'b'
    op.fix_chosen('c')
    assert op.is_fixed and op.choices == ['c'] and list(op.candidates) == [
        'c'
    ]
    assert op.dump_chosen().chosen == 'c'
    assert op.dump_chosen().meta == {'all_choices': ['c']}
    x = torch.ones(3)
    assert torch.equal(op(x), 3 * x)
    with pytest.raises(MutableFixedError, match='already fixed'):
        op.fix_chosen('c')
    with pytest.raises(MutableFixedError, match='already fixed'):
        op.is_fixed = True
    with pytest.raises(ValueError, match="'a'"):
        OneShotMutableOP(scales(a=1, b=2)).fix_chosen(['a', 'b'])
    with pytest.raises(ValueError, match="'nope'"):
        OneShotMutableOP(scales(a=1, b=2)).fix_chosen('nope')


def test_one_shot_sample_and_prob_sampling():
    op = OneShotMutableOP(scales(a=1, b=2, c=3))
    seen = {op.sample_choice() for _ in range(60)}
    assert seen == {'a', 'b', 'c'}
    prob = OneShotProbMutableOP(
        scales(a=1, b=2, c=3), choice_probs=[0.0, 1.0, 0.0])
    assert {prob.sample_choice() for _ in range(20)} == {'b'}
    with pytest.raises(ValueError, match='sum to'):
        OneShotProbMutableOP(scales(a=1, b=2), choice_probs=[0.5, 0.6])


def test_older_mutable_module_api():
    op = MODELS.build(
        dict(
            type='OneShotOP',
            space_id='s0',
            num_chosen=2,
            choices=dict(
                a=dict(type='DartsSkipConnect'),
                b=dict(type='DartsZero'),
                c=dict(type='DartsPoolBN', pool_type='avg')),
            choice_args=dict(in_channels=4, out_channels=4, stride=1)))
    assert isinstance(op, OneShotOP) and isinstance(op, MutableModule)
    assert op.space_id == op.alias == 's0'
    assert op.choice_names == ['a', 'b', 'c']
    assert len(op.choice_modules) == 3
    assert op.build_choice_mask().tolist() == [True, True, True]
    op.set_choice_mask(torch.tensor([1, 1, 0]))
    assert op.current_choice == ['a', 'b']
    assert op.build_choice_mask().tolist() == [True, True, False]
    x = torch.randn(1, 4, 5, 5)
    assert torch.equal(op(x), x)  # skip + zero
    op.export(['a', 'b'])
    assert op.is_fixed and op.choice_names == ['a', 'b']
    with pytest.raises(MutableFixedError):
        op.export(['a', 'b'])
    with pytest.raises(ValueError, match='differ'):
        OneShotOP(choices=scales(a=1), space_id='x', alias='y')


def test_diff_op_weighted_sum_and_strongest():
    op = DiffMutableOP(scales(a=1, b=2, c=5))
    x = torch.ones(2)
    alpha = torch.tensor([0.1, 2.0, -1.0])
    w = torch.exp(alpha) / torch.exp(alpha).sum()
    expect = (w[0] * 1 + w[1] * 2 + w[2] * 5) * x
    assert torch.allclose(op(x, alpha), expect)
    op.set_arch_param(alpha)
    assert torch.allclose(op(x), expect)
    assert op.strongest_choice() == 'b'
    assert op.strongest_choice(ignore=('b', )) == 'a'
    assert op.dump_chosen().chosen == 'b'
    assert op.sample_choice(alpha) == 'b'
    assert op.build_arch_param().shape == (3, )
    assert len(list(op.parameters())) == 3  # the arch param is not owned
    op.fix_chosen('c')
    assert torch.equal(op(x, alpha), 5 * x)


def test_diff_op_fix_threshold_and_is_fixed():
    op = DiffMutableOP(scales(a=1, b=2), fix_threshold=0.9)
    x = torch.ones(1)
    op(x, torch.tensor([0.0, 0.1]))
    assert not op.is_fixed
    op(x, torch.tensor([0.0, 5.0]))
    assert op.is_fixed and op.choices == ['b']
    fixed = DiffMutableOP(scales(a=3), is_fixed=True)
    assert fixed.is_fixed and fixed.dump_chosen().chosen == 'a'
    with pytest.raises(ValueError, match='is_fixed'):
        DiffMutableOP(scales(a=1, b=2), is_fixed=True)


def test_gumbel_op_and_older_differentiable_op():
    op = MODELS.build(
        dict(
            type='GumbelOP',
            choices=scales(a=1, b=10),
            tau=1.0,
            hard=True,
            space_id='g'))
    assert isinstance(op, DifferentiableOP)
    op.set_temperature(0.5)
    assert op.tau == 0.5
    alpha = torch.tensor([0.0, 0.0], requires_grad=True)
    op.train()
    out = op(torch.ones(1), alpha)
    assert out.item() in (1.0, 10.0)  # hard: exactly one op
    out.sum().backward()
    assert alpha.grad is not None
    op.eval()
    assert torch.allclose(op(torch.ones(1), alpha.detach()),
                          torch.tensor([5.5]))
    plain = DifferentiableOP(choices=scales(a=1, b=2), with_arch_param=False)
    assert plain.build_arch_param() is None
    assert torch.allclose(
        plain.compute_arch_probs(torch.zeros(2)), torch.tensor([0.5, 0.5]))


def test_choice_route():
    route = DiffChoiceRoute(scales(p0=1, p1=2, p2=3), with_arch_param=True)
    inputs = [torch.full((1, ), v) for v in (1., 10., 100.)]
    assert torch.allclose(route(inputs), torch.tensor([321.]))
    alpha = torch.tensor([0., 1., 2.])
    w = F.softmax(alpha, -1)
    assert torch.allclose(
        route(inputs, alpha), w[0] * 1 + w[1] * 20 + w[2] * 300)
    assert route.sample_choice(alpha) == ['p2', 'p1']  # keeps 2 by default
    # Without its own architecture parameter a route ignores one.
    plain = DiffChoiceRoute(scales(p0=1, p1=2, p2=3))
    assert torch.allclose(plain(inputs, alpha), torch.tensor([321.]))
    route.current_choice = ['p2', 'p0']
    assert torch.allclose(route(inputs), torch.tensor([301.]))
    route.fix_chosen(['p2', 'p0'])
    assert sorted(route.candidates) == ['p0', 'p2']
    assert torch.allclose(route(inputs), torch.tensor([301.]))
    # a fixed route also takes just the inputs of its kept edges
    assert torch.allclose(
        route.forward_fixed([inputs[0], inputs[2]]), torch.tensor([301.]))
    with pytest.raises(ValueError, match='keeps 2'):
        DiffChoiceRoute(scales(p0=1, p1=2), num_chosen=2).fix_chosen('p0')
    any_number = DiffChoiceRoute(scales(p0=1, p1=2, p2=3))
    any_number.fix_chosen('p1')  # num_chosen=None: any non-empty subset
    assert any_number.dump_chosen().chosen == ['p1']

    gumbel = GumbelChoiceRoute(scales(p0=1, p1=2), num_chosen=1, tau=0.5)
    gumbel.set_temperature(0.2)
    assert gumbel.build_arch_param() is not None
    edge = MODELS.build(
        dict(type='DifferentiableEdge', choices=scales(p0=1, p1=2),
             space_id='n2'))
    assert isinstance(edge, DifferentiableEdge) and edge.alias == 'n2'
    assert torch.allclose(edge(inputs[:2]), torch.tensor([21.]))
