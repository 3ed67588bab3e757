import pytest

from mmrazor.models.mutables import (DerivedMutable, MutableFixedError,
                                     MutableValue, OneShotMutableValue)
from mmrazor.registry import MODELS


def test_mutable_value_choices_and_default():
    m = MutableValue([3, 5, 7])
    assert m.choices == [3, 5, 7]
    assert m.current_choice == 3
    assert m.num_choices == 3
    m = MutableValue([3, 5, 7], default_value=5, alias='k')
    assert m.current_choice == 5 and m.alias == 'k'
    m.current_choice = 7
    dumped = m.dump_chosen()
    assert dumped.chosen == 7 and dumped.meta == {'all_choices': [3, 5, 7]}
    assert dumped == {'chosen': 7}  # reads as its subnet-file form
    assert (m.min_choice, m.max_choice) == (3, 7)


@pytest.mark.parametrize('kwargs, error, text', [
    (dict(value_list=[]), ValueError, 'empty'),
    (dict(value_list=[3, 3]), ValueError, 'repeats 3'),
    (dict(value_list='357'), TypeError, 'list or tuple'),
    (dict(value_list=[3, 5], default_value=4), ValueError, '4'),
    (dict(value_list=[3, 5.0]), TypeError, 'mixes types'),
])
def test_mutable_value_bad_arguments(kwargs, error, text):
    with pytest.raises(error, match=text):
        MutableValue(**kwargs)


def test_mutable_value_invalid_choice_named():
    m = MutableValue([1, 2], alias='depth')
    with pytest.raises(ValueError, match=r"3 is not a choice of .*'depth'"):
        m.current_choice = 3


def test_mutable_value_fix_chosen():
    m = MutableValue([3, 5, 7])
    m.fix_chosen(5)
    assert m.is_fixed and m.choices == [5] and m.current_choice == 5
    m.current_choice = 5  # setting the same value is harmless
    with pytest.raises(MutableFixedError):
        m.current_choice = 3
    with pytest.raises(MutableFixedError, match='already fixed'):
        m.fix_chosen(5)
    with pytest.raises(ValueError):
        MutableValue([3, 5]).fix_chosen(4)


def test_derived_values_follow_source():
    kernel = OneShotMutableValue([3, 5, 7])
    padding = kernel // (2, 1)  # divisor 1: plain k // 2
    rounded = kernel // 2  # the default divisor 8: make_divisible(k // 2, 8)
    doubled = kernel * 2
    plus = kernel + 1
    assert isinstance(padding, DerivedMutable)
    for k in kernel.choices:
        kernel.current_choice = k
        assert padding.current_choice == k // 2
        assert rounded.current_choice == 8
        assert doubled.current_choice == 2 * k
        assert plus.current_choice == k + 1
    assert padding.source_mutables == {kernel}
    assert sorted(padding.choices) == [1, 2, 3]
    assert padding.num_choices == 1  # no search space of its own
    assert not padding.is_fixed
    kernel.fix_chosen(5)
    assert padding.is_fixed and padding.current_choice == 2


def test_derived_from_two_values():
    a = MutableValue([2, 4])
    b = MutableValue([3, 6])
    product = a * b
    assert product.current_choice == 6
    b.current_choice = 6
    a.current_choice = 4
    assert product.current_choice == 24
    assert set(product.source_mutables) == {a, b}
    with pytest.raises(MutableFixedError):
        product.current_choice = 12


def test_one_shot_sample_and_registry():
    m = MODELS.build(
        dict(type='OneShotMutableValue', value_list=[1, 2, 3, 4]))
    assert isinstance(m, OneShotMutableValue)
    samples = {m.sample_choice() for _ in range(200)}
    assert samples == {1, 2, 3, 4}
    assert m.current_choice == 4  # the largest by default; sampling does
    # not apply
    assert OneShotMutableValue([6, 2, 4]).choices == [2, 4, 6]  # sorted
    m2 = MODELS.build(
        dict(type='MutableValue', value_list=[0.5, 1.0], default_value=1.0))
    assert m2.current_choice == 1.0
