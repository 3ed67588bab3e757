import re

import pytest
import torch

from mmrazor.models.mutables import (DerivedMutable, MutableFixedError,
                                     MutableValue, OneShotMutableChannel,
                                     OneShotMutableValue,
                                     SimpleMutableChannel,
                                     SquentialMutableChannel,
                                     concat_channel_mutables)
from mmrazor.registry import MODELS


def first(n, k):
    return torch.tensor([i < k for i in range(n)])


def test_sequential_channel_int_and_ratio():
    m = SquentialMutableChannel(8)
    assert m.current_choice == 8 and m.current_mask.all()
    m.current_choice = 3
    assert torch.equal(m.current_mask, first(8, 3))
    assert m.activated_channels == 3
    m.current_choice = 0.5
    assert m.current_choice == 4
    assert torch.equal(m.current_mask, first(8, 4))
    assert m.current_mask.dtype == torch.bool
    for bad in (0, 9, 1.5, 0.0, '4'):
        with pytest.raises((ValueError, TypeError)):
            m.current_choice = bad
    with pytest.raises(ValueError, match='positive int'):
        SquentialMutableChannel(0)


def test_one_shot_channel_modes():
    m = OneShotMutableChannel(64, [0.25, 0.5, 1.0])
    assert m.choices == [16, 32, 64]
    assert m.current_choice == 64
    assert (m.min_choice, m.max_choice) == (16, 32 * 2)
    m.current_choice = 0.25
    assert m.current_choice == 16
    with pytest.raises(ValueError, match='20'):
        m.current_choice = 20
    n = OneShotMutableChannel(10, [2, 6, 10], candidate_mode='number')
    assert n.choices == [2, 6, 10]
    assert {n.sample_choice() for _ in range(100)} == {2, 6, 10}
    with pytest.raises(ValueError, match='candidate_mode'):
        OneShotMutableChannel(10, [2], candidate_mode='other')
    with pytest.raises(ValueError, match='candidate number 11'):
        OneShotMutableChannel(10, [11], candidate_mode='number')
    with pytest.raises(ValueError, match='candidate ratio 2'):
        OneShotMutableChannel(10, [2], candidate_mode='ratio')


def test_one_shot_channel_from_config_and_fix():
    m = MODELS.build(
        dict(
            type='OneShotMutableChannel',
            num_channels=32,
            candidate_choices=[8, 16, 32],
            candidate_mode='number',
            alias='w'))
    m.fix_chosen(16)
    assert m.is_fixed and m.choices == [16] and m.dump_chosen().chosen == 16
    with pytest.raises(MutableFixedError, match='already fixed'):
        m.fix_chosen(16)
    with pytest.raises(MutableFixedError):
        m.current_choice = 8


def test_simple_channel_masks():
    m = SimpleMutableChannel(6)
    mask = torch.tensor([1, 0, 1, 1, 0, 0], dtype=torch.bool)
    m.current_choice = mask
    assert m.current_choice == 3
    assert torch.equal(m.current_mask, mask)
    assert m.dump_chosen().chosen == mask.tolist()
    m.current_choice = 2  # a count keeps the first channels
    assert torch.equal(m.current_mask, first(6, 2))
    with pytest.raises(ValueError, match='at least one'):
        m.set_mask(torch.zeros(6, dtype=torch.bool))
    with pytest.raises(ValueError, match='does not fit'):
        m.set_mask(torch.ones(5, dtype=torch.bool))
    m.fix_chosen(mask.tolist())
    assert torch.equal(m.current_mask, mask)
    with pytest.raises(MutableFixedError):
        m.set_mask(first(6, 1))
    with pytest.raises(MutableFixedError):
        m.fix_chosen()


def test_derived_channel_multiply_int():
    m = SimpleMutableChannel(4)
    m.set_mask(torch.tensor([True, False, True, False]))
    times = m * 2
    assert isinstance(times, DerivedMutable)
    assert times.current_choice == 4
    assert torch.equal(
        times.current_mask,
        torch.tensor([1, 1, 0, 0, 1, 1, 0, 0], dtype=torch.bool))


def test_derived_channel_expand_ratio_follows_sources():
    channels = OneShotMutableChannel(16, [0.5, 1.0])
    ratio = OneShotMutableValue([3, 6])
    hidden = channels * ratio
    assert set(hidden.source_mutables) == {channels, ratio}
    for c in channels.choices:
        for r in ratio.choices:
            channels.current_choice = c
            ratio.current_choice = r
            assert hidden.current_choice == c * r
            # Mask over the widest hidden layer (16 * 6).
            assert torch.equal(hidden.current_mask, first(96, c * r))


def test_derived_channel_divide():
    m = OneShotMutableChannel(32, [8, 16, 32], candidate_mode='number')
    half = m // (2, 1)  # divisor 1: plain c // 2
    rounded = m // (4, 8)  # make_divisible(c / 4, 8)
    default = m // 4  # the default divisor is 8: make_divisible(c / 4, 8)
    m.current_choice = 16
    assert default.current_choice == 8 and len(default.current_mask) == 8
    assert half.current_choice == 8
    assert torch.equal(half.current_mask, first(16, 8))
    assert rounded.current_choice == 8
    assert len(rounded.current_mask) == 8
    m.current_choice = 8
    assert half.current_choice == 4
    assert torch.equal(half.current_mask, first(16, 4))


def test_derived_same_mutable_keeps_mask():
    m = SimpleMutableChannel(3)
    m.set_mask(torch.tensor([False, True, True]))
    same = m.derive_same_mutable()
    assert torch.equal(same.current_mask, m.current_mask)


def test_concat_channel_mutables():
    a = SquentialMutableChannel(4)
    b = SimpleMutableChannel(3)
    c = OneShotMutableChannel(2, [1, 2], candidate_mode='number')
    cat = concat_channel_mutables([a, b * 1, c])
    a.current_choice = 2
    b.set_mask(torch.tensor([False, True, False]))
    c.current_choice = 1
    assert cat.current_choice == 2 + 1 + 1
    expected = torch.tensor([1, 1, 0, 0, 0, 1, 0, 1, 0], dtype=torch.bool)
    assert torch.equal(cat.current_mask, expected)
    assert set(cat.source_mutables) == {a, b, c}
    with pytest.raises(ValueError, match='at least one'):
        concat_channel_mutables([])
    with pytest.raises(TypeError, match='mutables\\[0\\]'):
        concat_channel_mutables([MutableValue([1, 2])])


def test_value_only_derivation_has_no_mask():
    m = SquentialMutableChannel(4)
    plus = m + 1
    assert plus.current_choice == 5
    with pytest.raises(RuntimeError, match='no channel mask'):
        plus.current_mask


def test_deepcopy_derived_follows_copied_sources():
    import copy

    from torch import nn
    holder = nn.Module()
    holder.channels = OneShotMutableChannel(8, [4, 8], 'number')
    holder.ratio = OneShotMutableValue([2, 3], default_value=2)
    holder.hidden = holder.channels * holder.ratio
    clone = copy.deepcopy(holder)
    clone.channels.current_choice = 4
    assert clone.hidden.current_choice == 8
    assert int(clone.hidden.current_mask.sum()) == 8
    assert holder.hidden.current_choice == 16
    assert clone.hidden.ordered_source_mutables[0] is clone.channels
    assert clone.hidden.source_mutables == {clone.channels, clone.ratio}


def test_chained_channel_derivations_keep_masks():
    from mmrazor.models.mutables import DerivedChannelMutable
    width = OneShotMutableChannel(16, [8, 16], candidate_mode='number')
    ratio = OneShotMutableValue([3, 6])
    hidden = width * ratio
    squeezed = hidden // (4, 8)  # an SE width: make_divisible(h / 4, 8)
    doubled = (width // (2, 1)) * 2
    assert isinstance(squeezed, DerivedChannelMutable)
    assert set(squeezed.source_mutables) == {width, ratio}
    assert squeezed.num_channels == 24  # make_divisible(96 / 4, 8)
    width.current_choice, ratio.current_choice = 8, 3
    assert squeezed.current_choice == 8
    assert torch.equal(squeezed.current_mask, first(24, 8))
    assert doubled.current_choice == 8
    assert torch.equal(doubled.current_mask, first(16, 8))
    cat = concat_channel_mutables([hidden, squeezed])
    assert cat.current_choice == 24 + 8 and cat.num_channels == 96 + 24


# ---------------------------------------------------- MutableChannelUnit
def test_channel_unit_choices_forms_and_guard_rails():
    from mmrazor.models.mutables import MutableChannelUnit
    from mmrazor.structures import MutableFixedError
    unit = MutableChannelUnit('layer1.conv', 8, choices=[2, 4, 6, 8])
    assert unit.alias == 'layer1.conv' and unit.num_channels == 8
    assert unit.current_choice == 8 and unit.current_mask.all()
    unit.current_choice = 6  # a count keeps the leading units
    assert unit.current_mask.tolist() == [True] * 6 + [False] * 2
    assert unit.dump_chosen().chosen == 6
    unit.current_choice = 0.3  # 2.4 units: nearest allowed count is 2
    assert unit.current_choice == 2
    unit.current_choice = 0.625  # 5 units: a tie, the larger wins
    assert unit.current_choice == 6
    mask = [False, True] * 4
    unit.current_choice = {'chosen': mask}
    assert unit.current_mask.tolist() == mask
    assert unit.dump_chosen().chosen == mask  # not leading: dumped as a mask
    unit.current_choice = torch.tensor([1, 1, 0, 0, 0, 0, 0, 0])
    assert unit.dump_chosen().chosen == 2
    for bad, words in [(3, 'breaks its guard-rails'), (9, 'not in [1, 8]'),
                       (0.0, 'not in (0, 1]'), ([True] * 3, 'needs 8 flags'),
                       ('half', 'invalid choice'), (True, 'invalid choice'),
                       ({'x': 1}, 'chosen')]:
        with pytest.raises(ValueError, match=re.escape(words)):
            unit.current_choice = bad
    assert unit.dump_chosen().chosen == 2  # a refused choice changes nothing
    seen = {unit.sample_choice() for _ in range(200)}
    assert seen == {2, 4, 6, 8}
    unit.fix_chosen(unit.dump_chosen())  # fixing what was dumped
    assert unit.is_fixed and unit.choices == [2]
    assert unit.dump_chosen().meta == dict(all_choices=[2])
    with pytest.raises(MutableFixedError):
        unit.current_choice = 4
    with pytest.raises(MutableFixedError):
        unit.fix_chosen(2)


def test_sequential_channel_ratio_mode_and_1x_contracts():
    from mmrazor.models.mutables import InvalidChoiceError
    m = SquentialMutableChannel(10, choice_mode='ratio')
    m.current_choice = 2  # an int is a count in either mode
    assert m.current_choice == 0.2 and m.activated_channels == 2
    m.current_choice = 0.5
    assert m.current_choice == 0.5 and torch.equal(m.current_mask,
                                                   first(10, 5))
    assert repr(m) == ('SquentialMutableChannel(num_channels=10, '
                       'activated_channels=5)')
    with pytest.raises(ValueError, match='choice_mode'):
        SquentialMutableChannel(10, choice_mode='other')
    n = SquentialMutableChannel(16)
    n.current_choice = 12.  # an integral float above 1 is a count
    assert n.current_choice == 12
    with pytest.raises(InvalidChoiceError):  # also an AssertionError
        n.current_choice = 1.5
    # a channel is multiplied by a one-shot ratio, not a plain value
    with pytest.raises(TypeError, match='OneShotMutableValue'):
        n * MutableValue([1, 2])
    with pytest.raises(TypeError, match='OneShotMutableValue'):
        MutableValue([1, 2]) * n
    ratio = OneShotMutableValue([1, 2])
    assert torch.equal((n * ratio).current_mask, (ratio * n).current_mask)
    n.fix_chosen(n.dump_chosen())  # a DumpChosen is accepted
    for error in (RuntimeError, AttributeError):  # MutableFixedError
        with pytest.raises(error, match='already fixed'):
            n.fix_chosen(12)
        with pytest.raises(error, match='already fixed'):
            n.is_fixed = True
    concat = DerivedMutable.derive_concat_mutable([n, n * 1])
    assert concat.current_choice == 24
    with pytest.raises(RuntimeError, match='mask'):
        DerivedMutable.derive_concat_mutable([n, ratio])
