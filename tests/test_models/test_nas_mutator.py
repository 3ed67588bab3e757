"""NasMutator: one mutator over module, value and differentiable mutables."""
import copy

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmrazor.models.mutables import (DiffMutableOP, OneShotMutableOP,
                                     OneShotMutableValue)
from mmrazor.models.mutators import NasMutator
from mmrazor.structures import load_fix_subnet


def conv_choices():
    return nn.ModuleDict({
        'k1': nn.Conv2d(4, 4, 1),
        'k3': nn.Conv2d(4, 4, 3, padding=1),
    })


class TinySpace(nn.Module):
    """Two one-shot ops, a differentiable op and a searchable scale."""

    def __init__(self) -> None:
        super().__init__()
        self.first = OneShotMutableOP(candidates=conv_choices())
        self.second = OneShotMutableOP(candidates=conv_choices())
        self.diff = DiffMutableOP(candidates=conv_choices())
        self.scale = OneShotMutableValue(value_list=[1, 2, 3])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.second(self.first(x))
        return self.diff(x) * self.scale.current_choice


def prepared(**kwargs):
    model = TinySpace()
    mutator = NasMutator(**kwargs)
    mutator.prepare_from_supernet(model)
    return model, mutator


def test_decisions_and_arch_params():
    model, mutator = prepared()
    assert list(mutator.search_groups) == ['first', 'second', 'diff', 'scale']
    # only the differentiable op has an architecture parameter, of one
    # entry per candidate
    assert list(mutator.arch_params.keys()) == ['diff']
    assert mutator.arch_params['diff'].shape == (2, )
    assert model.diff.arch_param is mutator.arch_params['diff']


def test_max_min_and_strongest():
    model, mutator = prepared()
    with torch.no_grad():
        mutator.arch_params['diff'].copy_(torch.tensor([0.0, 5.0]))
    assert mutator.max_choices['scale'] == 3
    assert mutator.min_choices['scale'] == 1
    # the differentiable decision follows its parameter, whatever the kind
    assert mutator.sample_choices()['diff'] == 'k3'
    mutator.set_max_choices()
    assert model.scale.current_choice == 3
    with pytest.raises(ValueError, match='kind'):
        mutator.sample_choices('largest')


def test_custom_group_shares_one_choice_and_dumps_each_key(tmp_path):
    model, mutator = prepared(custom_groups=[['first', 'second']])
    assert list(mutator.search_groups) == ['first', 'diff', 'scale']
    for choice in ('k1', 'k3'):
        mutator.set_choices(dict(first=choice, diff='k1', scale=2))
        assert model.first.current_choice == choice
        assert model.second.current_choice == choice
    subnet = mutator.dump_subnet(tmp_path / 'subnet.yaml')
    assert subnet['first'] == subnet['second'] == {'chosen': 'k3'}

    # the file fixes a copy of the supernet to the same function: compare
    # with the chosen plain convolutions run by hand
    fixed = copy.deepcopy(model)
    load_fix_subnet(fixed, tmp_path / 'subnet.yaml')
    assert fixed.first.is_fixed and fixed.scale.is_fixed
    x = torch.randn(2, 4, 6, 6)
    c1 = model.first.candidates['k3']
    c2 = model.second.candidates['k3']
    c3 = model.diff.candidates['k1']
    expected = F.conv2d(
        F.conv2d(F.conv2d(x, c1.weight, c1.bias, padding=1), c2.weight,
                 c2.bias, padding=1), c3.weight, c3.bias) * 2
    torch.testing.assert_close(fixed(x), expected)


def test_bad_custom_groups():
    with pytest.raises(KeyError, match='nowhere'):
        prepared(custom_groups=[['first', 'nowhere']])
    with pytest.raises(ValueError, match='different choices'):
        prepared(custom_groups=[['first', 'scale']])
    with pytest.raises(ValueError, match="custom_groups 0 and 1"):
        prepared(custom_groups=[['first', 'second'], ['second', 'diff']])
    with pytest.raises(TypeError, match='custom_groups'):
        NasMutator(custom_groups=['first'])
