"""Mutators: sampling, shared decisions, masks, YAML, DARTS selection."""
import pytest
import torch
import torch.nn as nn

from mmrazor.models.mutables import (DiffChoiceRoute, DiffMutableOP,
                                     OneShotMutableOP)
from mmrazor.models.mutators import (DartsMutator, DiffModuleMutator,
                                     OneShotModuleMutator, OneShotMutator)
from mmrazor.registry import MODELS
from mmrazor.structures import SubnetError


class Scale(nn.Module):

    def __init__(self, k: float) -> None:
        super().__init__()
        self.k = nn.Parameter(torch.tensor(float(k)))

    def forward(self, x):
        return self.k * x


def scales(**ks):
    return nn.ModuleDict({n: Scale(k) for n, k in ks.items()})


class TinySpace(nn.Module):
    """Two ops sharing alias 'shared' and one op of its own."""

    def __init__(self) -> None:
        super().__init__()
        self.first = OneShotMutableOP(scales(a=1, b=2, c=3), alias='shared')
        self.second = OneShotMutableOP(scales(a=1, b=2, c=3), alias='shared')
        self.third = OneShotMutableOP(scales(x=10, y=20))

    def forward(self, x):
        return self.third(self.second(self.first(x)))


def test_shared_alias_is_one_decision():
    model = TinySpace()
    mutator = MODELS.build(dict(type='OneShotModuleMutator'))
    mutator.prepare_from_supernet(model)
    assert list(mutator.search_groups) == ['shared', 'third']
    assert len(mutator.search_groups['shared']) == 2
    for _ in range(10):
        mutator.set_choices(mutator.sample_choices())
        assert model.first.current_choice == model.second.current_choice
    mutator.set_choices({'shared': 'c', 'third': 'y'})
    assert torch.equal(model(torch.ones(1)), torch.tensor([3. * 3 * 20]))
    with pytest.raises(SubnetError, match='bogus'):
        mutator.set_choices({'shared': 'c', 'third': 'y', 'bogus': 'a'})
    with pytest.raises(SubnetError, match='third'):
        mutator.set_choices({'shared': 'c'})
    with pytest.raises(SubnetError, match="'q'"):
        mutator.set_choices({'shared': 'q', 'third': 'y'})


def test_mutator_yaml_round_trip(tmp_path):
    model = TinySpace()
    mutator = OneShotModuleMutator()
    mutator.prepare_from_supernet(model)
    mutator.set_choices({'shared': 'b', 'third': 'x'})
    path = tmp_path / 'subnet.yaml'
    dumped = mutator.dump_subnet(path)
    assert dumped == {'shared': {'chosen': 'b'}, 'third': {'chosen': 'x'}}
    other = TinySpace()
    mutator2 = OneShotModuleMutator()
    mutator2.prepare_from_supernet(other)
    mutator2.load_subnet(path)
    assert mutator2.current_choices == {'shared': 'b', 'third': 'x'}
    assert other.second.current_choice == 'b'


def test_one_shot_mutator_mask_api():
    model = TinySpace()
    mutator = OneShotMutator()
    mutator.prepare_from_supernet(model)
    spaces = mutator.search_spaces
    assert spaces['shared']['choice_names'] == ['a', 'b', 'c']
    assert len(spaces['shared']['modules']) == 2
    mask = mutator.get_random_mask(dict(choice_names=list('abcd'),
                                        num_chosen=2), searching=True)
    assert mask.dtype == torch.bool and int(mask.sum()) == 2
    subnet = mutator.sample_subnet()
    assert set(subnet) == {'shared', 'third'}
    assert all(int(m.sum()) == 1 for m in subnet.values())
    mutator.set_subnet(subnet)
    chosen = ['a', 'b', 'c'][int(subnet['shared'].nonzero())]
    assert model.first.current_choice == model.second.current_choice == chosen
    assert model.first.candidates[chosen].in_subnet
    assert sum(not m.in_subnet for m in model.first.candidates.values()) == 2
    assert all(
        torch.equal(mutator.current_subnet[k], subnet[k]) for k in subnet)
    assert mutator.mutation(subnet, prob=0.0).keys() == subnet.keys()
    assert all(
        torch.equal(a, b) for a, b in zip(
            mutator.mutation(subnet, prob=0.0).values(), subnet.values()))
    mutated = mutator.mutation(subnet, prob=1.0)
    assert all(int(m.sum()) == 1 for m in mutated.values())
    other = mutator.sample_subnet()
    child = mutator.crossover(subnet, other)
    for k in child:
        assert torch.equal(child[k], subnet[k]) or torch.equal(
            child[k], other[k])
    mutator.set_chosen_subnet({'shared': {'chosen': ['a']},
                               'third': {'chosen': ['y']}})
    assert model.second.current_choice == 'a'
    mutator.reset_in_subnet(model, False)
    assert not any(m.in_subnet for m in model.modules())


def test_mutator_is_generic_over_value_mutables():
    from mmrazor.models.mutables import OneShotMutableValue

    class WithValue(nn.Module):

        def __init__(self):
            super().__init__()
            self.kernel = OneShotMutableValue([3, 5, 7], alias='kernel')
            self.twice = self.kernel * 2  # derived: not searched
            self.op = OneShotMutableOP(scales(a=1, b=2))

    model = WithValue()
    mutator = OneShotMutator()
    mutator.prepare_from_supernet(model)
    assert set(mutator.search_groups) == {'kernel', 'op'}
    mutator.set_subnet({'kernel': torch.tensor([0, 0, 1]), 'op': 'b'})
    assert model.kernel.current_choice == 7
    assert model.twice.current_choice == 14
    assert mutator.current_choices == {'kernel': 7, 'op': 'b'}


class DiffSpace(nn.Module):
    """A two-node DARTS-like cell with hand-settable weights."""

    def __init__(self, cls=DiffMutableOP) -> None:
        super().__init__()
        names = ('zero', 'one', 'two')

        def op(alias):
            return DiffMutableOP(
                nn.ModuleDict({n: Scale(i)
                               for i, n in enumerate(names)}),
                alias=alias)

        self.op_a1 = op('n_p0')
        self.op_a2 = op('n_p0')  # same space, shared parameter
        self.route = DiffChoiceRoute(
            nn.ModuleDict(dict(p0=op('n_p0x'), p1=op('n_p1'), p2=op('n_p2'))),
            alias='n')

    def forward(self, x):
        return self.route([self.op_a1(x), self.op_a2(x), x])


def test_differentiable_mutator_shares_one_param_per_space():
    model = DiffSpace()
    mutator = DiffModuleMutator()
    mutator.prepare_from_supernet(model)
    assert sorted(mutator.arch_params) == ['n_p0', 'n_p0x', 'n_p1', 'n_p2']
    assert model.op_a1.arch_param is model.op_a2.arch_param
    assert model.op_a1.arch_param is mutator.arch_param_of('n_p0')
    # the supernet does not own the architecture parameters
    assert not any(p is mutator.arch_params['n_p0']
                   for p in model.parameters())
    model(torch.ones(1)).sum().backward()
    assert mutator.arch_params['n_p0'].grad is not None


def test_darts_mutator_picks_strongest_non_zero_and_top2_edges():
    model = DiffSpace()
    mutator = MODELS.build(dict(type='DartsMutator'))
    assert isinstance(mutator, DartsMutator)
    mutator.prepare_from_supernet(model)
    with torch.no_grad():
        # zero dominates everywhere, then the named op
        mutator.arch_params['n_p0'].copy_(torch.tensor([9., 1., 3.]))
        mutator.arch_params['n_p0x'].copy_(torch.tensor([9., 0.5, 0.]))
        mutator.arch_params['n_p1'].copy_(torch.tensor([9., 2., 4.]))
        mutator.arch_params['n_p2'].copy_(torch.tensor([0., 3., 1.]))
    subnet = mutator.search_subnet()
    assert subnet['n_p0'] == 'two'
    assert subnet['n_p0x'] == 'one'
    assert subnet['n_p1'] == 'two'
    assert subnet['n_p2'] == 'one'
    # edge strength = largest non-zero softmax weight: p2 > p1 > p0x
    assert subnet['n'] == ['p2', 'p1']
    assert DiffModuleMutator(ignore_choices=()).__class__ is not DartsMutator
    plain = DiffModuleMutator()
    plain.prepare_from_supernet(DiffSpace())
    with torch.no_grad():
        plain.arch_params['n_p0'].copy_(torch.tensor([9., 1., 3.]))
    assert plain.search_subnet()['n_p0'] == 'zero'
    # dump / load of the searched subnet
    dumped = mutator.dump_subnet()
    assert dumped['n'] == {'chosen': ['p2', 'p1']}


def test_darts_backbone_search_then_export():
    from mmrazor.models.ops import DartsDilConv, DartsSepConv
    from mmrazor.structures import export_fix_subnet
    model = MODELS.build(
        dict(type='DartsBackbone', base_channels=4, num_layers=3,
             num_nodes=2, stem_multiplier=2))
    mutator = DartsMutator()
    mutator.prepare_from_supernet(model)
    names = model.cells[0].nodes[0].candidates['normal_n2_p0'].choices
    with torch.no_grad():
        for key in mutator.search_groups:
            param = mutator.arch_param_of(key)
            if param is None:
                continue
            param.zero_()
            param[names.index('zero')] = 5.  # ignored by DARTS
            favourite = 'dil_conv_3x3' if key.endswith('p1') else \
                'sep_conv_3x3'
            param[names.index(favourite)] = 1. + int(key[-1])
    subnet = mutator.search_subnet()
    assert subnet['normal_n2_p0'] == 'sep_conv_3x3'
    assert subnet['reduce_n3_p1'] == 'dil_conv_3x3'
    # strength grows with the input index: the two latest inputs win
    assert subnet['normal_n3'] == ['normal_n3_p2', 'normal_n3_p1']
    mutator.set_choices(subnet)
    exported, static = export_fix_subnet(model, slice_weight=True)
    assert exported['normal_n3'] == {
        'chosen': ['normal_n3_p2', 'normal_n3_p1']
    }
    node = static.cells[2].nodes[1]
    assert sorted(node.candidates) == ['reduce_n3_p1', 'reduce_n3_p2']
    assert isinstance(node.candidates['reduce_n3_p1'], DartsDilConv)
    assert isinstance(node.candidates['reduce_n3_p2'], DartsSepConv)
    assert static(torch.randn(1, 3, 8, 8))[0].shape == (1, 32, 2, 2)
