"""Importance criteria and ImportancePruner, checked against sums written
out by hand on a small residual model."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mmrazor.models.pruners import ImportancePruner, StructurePruner
from mmrazor.models.task_modules import (BNScaleImportance,
                                         GroupFisherImportance, L1Importance,
                                         L2Importance, RandomImportance,
                                         TaylorImportance)
from mmrazor.registry import MODELS, TASK_UTILS

SHAPE = (1, 3, 8, 8)
HW = 8 * 8


class ResidualNet(nn.Module):
    """stem-bn-relu, then conv1-bn1-relu-conv2-bn2 added to the stem's
    output, pooled into a linear classifier.

    Channel groups: ``stem`` (stem, stem_bn, conv1's input, conv2's output,
    bn2, fc's input: the residual add ties them) and ``conv1`` (conv1,
    bn1, conv2's input).
    """

    def __init__(self, width: int = 8, mid: int = 6) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, width, 3, padding=1)
        self.stem_bn = nn.BatchNorm2d(width)
        self.conv1 = nn.Conv2d(width, mid, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, width, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(width)
        self.fc = nn.Linear(width, 5)

    def parts(self, x: torch.Tensor):
        """The forward pass, returning the producing layers' outputs."""
        s = self.stem(x)
        y = F.relu(self.stem_bn(s))
        c1 = self.conv1(y)
        c2 = self.conv2(F.relu(self.bn1(c1)))
        out = self.fc(F.relu(y + self.bn2(c2)).mean((2, 3)))
        return out, dict(stem=s, conv1=c1, conv2=c2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.parts(x)[0]


def make_model(seed: int = 0) -> ResidualNet:
    torch.manual_seed(seed)
    model = ResidualNet()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            nn.init.uniform_(m.weight, -1, 1)
            nn.init.uniform_(m.bias, -0.5, 0.5)
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    return model.eval()


def prepared(importance='L1Importance', **kwargs):
    model = make_model()
    pruner = ImportancePruner(
        importance=importance, except_start_keys=['fc'], **kwargs)
    pruner.prepare_from_supernet(model, input_shape=SHAPE)
    return model, pruner


def hand_flops(width: int, mid: int) -> int:
    """MACs per sample: three 3x3 convs at 8x8 and the classifier."""
    return HW * 9 * (3 * width + width * mid + mid * width) + width * 5


def hand_terms(m: ResidualNet, op):
    """Per group, per unit: ``op`` applied to every weight slice that
    follows the unit, summed."""
    stem = [
        op(m.stem.weight[j]) + op(m.stem.bias[j]) + op(m.stem_bn.weight[j]) +
        op(m.stem_bn.bias[j]) + op(m.conv1.weight[:, j]) +
        op(m.conv2.weight[j]) + op(m.conv2.bias[j]) + op(m.bn2.weight[j]) +
        op(m.bn2.bias[j]) + op(m.fc.weight[:, j]) for j in range(8)
    ]
    mid = [
        op(m.conv1.weight[i]) + op(m.conv1.bias[i]) + op(m.bn1.weight[i]) +
        op(m.bn1.bias[i]) + op(m.conv2.weight[:, i]) for i in range(6)
    ]
    as_np = [float(v) for v in stem], [float(v) for v in mid]
    return dict(stem=np.array(as_np[0]), conv1=np.array(as_np[1]))


def hand_l1(m):
    with torch.no_grad():
        return hand_terms(m, lambda t: t.abs().sum())


def test_groups_of_the_model():
    _, pruner = prepared()
    groups = pruner.channel_groups
    assert list(groups) == ['stem', 'conv1']
    assert set(groups['stem'].layer_names()) == {
        'stem', 'stem_bn', 'conv1', 'conv2', 'bn2', 'fc'
    }
    assert set(groups['conv1'].layer_names()) == {'conv1', 'bn1', 'conv2'}


def test_criteria_are_registered():
    for name in ('L1Importance', 'L2Importance', 'BNScaleImportance',
                 'TaylorImportance', 'RandomImportance'):
        assert type(TASK_UTILS.build(dict(type=name))).__name__ == name
    assert MODELS.get('ImportancePruner') is ImportancePruner


def test_l1_scores_by_hand():
    model, pruner = prepared(dict(type='L1Importance', normalize='none'))
    scores = pruner.unit_scores()
    for name, expected in hand_l1(model).items():
        np.testing.assert_allclose(scores[name], expected, rtol=1e-6)


def test_l2_scores_by_hand():
    model, pruner = prepared(dict(type='L2Importance', normalize='none'))
    with torch.no_grad():
        squares = hand_terms(model, lambda t: t.double().pow(2).sum())
    scores = pruner.unit_scores()
    for name, expected in squares.items():
        np.testing.assert_allclose(scores[name], np.sqrt(expected),
                                   rtol=1e-6)


def test_bn_scale_by_hand():
    model, pruner = prepared('BNScaleImportance')
    scores = pruner.unit_scores()
    with torch.no_grad():
        stem = (model.stem_bn.weight.abs() + model.bn2.weight.abs()).numpy()
        mid = model.bn1.weight.abs().numpy()
    np.testing.assert_allclose(scores['stem'], stem, rtol=1e-6)
    np.testing.assert_allclose(scores['conv1'], mid, rtol=1e-6)


@pytest.mark.parametrize('mode,scale', [
    ('mean', np.mean), ('max', np.max), ('sum', np.sum),
    ('none', lambda v: 1.0)
])
def test_normalisation(mode, scale):
    model, pruner = prepared(dict(type='L1Importance', normalize=mode))
    normalised = pruner.unit_scores(normalize=True)
    for name, raw in hand_l1(model).items():
        np.testing.assert_allclose(normalised[name], raw / scale(raw),
                                   rtol=1e-6)


def hand_taylor(model, batches, loss_fn):
    """|sum over positions of a * g| per sample and channel, summed over
    samples and batches, with plain autograd."""
    total = dict(stem=np.zeros(8), conv1=np.zeros(6))
    for x in batches:
        out, parts = model.parts(x)
        for t in parts.values():
            t.retain_grad()
        loss_fn(out).backward()
        per = {
            k: (t * t.grad).detach().sum((2, 3)).abs().sum(0).double().numpy()
            for k, t in parts.items()
        }
        total['stem'] += per['stem'] + per['conv2']
        total['conv1'] += per['conv1']
    model.zero_grad()
    return total


def test_taylor_by_hand():
    # the default measure_at: 'sources'
    model, pruner = prepared(dict(type='TaylorImportance', normalize='none'))
    torch.manual_seed(1)
    batches = [torch.randn(4, 3, 8, 8), torch.randn(3, 3, 8, 8)]
    target = torch.tensor([1, 2, 0, 4])

    def loss_fn(out):
        return F.cross_entropy(out, target[:len(out)])

    criterion = pruner.importance
    with pytest.raises(RuntimeError, match='no gradients'):
        pruner.unit_scores()
    losses = [criterion.accumulate(model, x, loss_fn) for x in batches]
    assert criterion.num_batches == 2
    assert all(p.grad is None for p in model.parameters())
    expected = hand_taylor(model, batches, loss_fn)
    scores = pruner.unit_scores()
    for name in expected:
        np.testing.assert_allclose(scores[name], expected[name], rtol=1e-5)
    assert all(np.isfinite(losses))
    # the same with a backward pass of one's own inside observe()
    criterion.reset()
    with criterion.observe():
        for x in batches:
            loss_fn(model(x)).backward()
    model.zero_grad()
    for name in expected:
        np.testing.assert_allclose(
            pruner.unit_scores()[name], expected[name], rtol=1e-5)


@pytest.mark.parametrize('reduction', ['mean', 'normalized_mean'])
def test_taylor_layer_reductions_by_hand(reduction):
    """Per producing layer |sum a * g| written out, then averaged per unit
    (and with 'normalized_mean' each layer divided by its own mean first):
    the stem group has two producers (stem, conv2), conv1 one."""
    model, pruner = prepared(
        dict(type='TaylorImportance', normalize='none',
             layer_reduction=reduction, measure_at='sources'))
    torch.manual_seed(2)
    batches = [torch.randn(5, 3, 8, 8)]
    target = torch.tensor([0, 3, 1, 4, 2])

    def loss_fn(out):
        return F.cross_entropy(out, target)

    per_layer = dict(stem=np.zeros(8), conv1=np.zeros(6), conv2=np.zeros(8))
    for x in batches:
        out, parts = model.parts(x)
        for t in parts.values():
            t.retain_grad()
        loss_fn(out).backward()
        for k, t in parts.items():
            per_layer[k] += (t * t.grad).detach().sum(
                (2, 3)).abs().sum(0).double().numpy()
    model.zero_grad()
    if reduction == 'normalized_mean':
        per_layer = {k: v / v.mean() for k, v in per_layer.items()}
    expected = dict(stem=(per_layer['stem'] + per_layer['conv2']) / 2,
                    conv1=per_layer['conv1'])
    for x in batches:
        pruner.importance.accumulate(model, x, loss_fn)
    scores = pruner.unit_scores()
    for name in expected:
        np.testing.assert_allclose(scores[name], expected[name], rtol=1e-5)
    with pytest.raises(ValueError, match="'median'"):
        TaylorImportance(layer_reduction='median')


def test_taylor_at_norm_outputs_by_hand():
    """With measure_at='norm_outputs' the activations and gradients are
    read after the BatchNorms (stem_bn and bn2 for the stem group, bn1
    for conv1's); every conv here is followed by one, so no conv is read.
    Written out with plain autograd on the BN outputs."""
    model, pruner = prepared(
        dict(type='TaylorImportance', normalize='none',
             measure_at='norm_outputs'))
    torch.manual_seed(3)
    x = torch.randn(4, 3, 8, 8)
    target = torch.tensor([4, 0, 2, 1])

    def loss_fn(out):
        return F.cross_entropy(out, target)

    m = model
    y0 = m.stem_bn(m.stem(x))
    y1 = m.bn1(m.conv1(F.relu(y0)))
    y2 = m.bn2(m.conv2(F.relu(y1)))
    out = m.fc(F.relu(F.relu(y0) + y2).mean((2, 3)))
    grads = torch.autograd.grad(loss_fn(out), [y0, y1, y2])

    def taylor(a, g):
        return (a * g).detach().sum((2, 3)).abs().sum(0).double().numpy()

    expected = dict(
        stem=taylor(y0, grads[0]) + taylor(y2, grads[2]),
        conv1=taylor(y1, grads[1]))
    pruner.importance.accumulate(model, x, loss_fn)
    scores = pruner.unit_scores()
    for name in expected:
        np.testing.assert_allclose(scores[name], expected[name], rtol=1e-5)
    # not what the convs' outputs give (the BN shifts count here)
    at_sources = hand_taylor(model, [x], loss_fn)
    assert not np.allclose(scores['conv1'], at_sources['conv1'], rtol=1e-2)
    with pytest.raises(ValueError, match="'bn'"):
        TaylorImportance(measure_at='bn')


def hand_group_fisher(model, batches, loss_fn):
    """Per sample, the gradient of the loss with respect to a mask on each
    unit (summed over the tied layers before squaring), squared and summed
    over samples: written with an explicit mask tensor and autograd."""
    total = dict(stem=np.zeros(8), conv1=np.zeros(6))
    for x in batches:
        for n in range(len(x)):
            m_stem = torch.ones(8, requires_grad=True)
            m_mid = torch.ones(6, requires_grad=True)
            xs = x[n:n + 1]
            s = model.stem(xs) * m_stem.view(1, -1, 1, 1)
            y = F.relu(model.stem_bn(s))
            c1 = model.conv1(y) * m_mid.view(1, -1, 1, 1)
            c2 = model.conv2(F.relu(model.bn1(c1))) * m_stem.view(1, -1, 1, 1)
            out = model.fc(F.relu(y + model.bn2(c2)).mean((2, 3)))
            # the loss of one sample, as the batch loss attributes it
            loss = loss_fn(out, n, len(x))
            g_stem, g_mid = torch.autograd.grad(loss, [m_stem, m_mid])
            total['stem'] += g_stem.double().numpy()**2
            total['conv1'] += g_mid.double().numpy()**2
    return total


def test_group_fisher_by_hand():
    model, pruner = prepared('GroupFisherImportance')
    assert isinstance(pruner.importance, GroupFisherImportance)
    torch.manual_seed(2)
    batches = [torch.randn(4, 3, 8, 8), torch.randn(3, 3, 8, 8)]
    target = torch.tensor([1, 2, 0, 4])

    def batch_loss(out):  # a sum over samples: per-sample terms separate
        return F.cross_entropy(out, target[:len(out)], reduction='sum')

    def sample_loss(out, n, size):
        return F.cross_entropy(out, target[n:n + 1], reduction='sum')

    criterion = pruner.importance
    for x in batches:
        criterion.accumulate(model, x, batch_loss)
    expected = hand_group_fisher(model, batches, sample_loss)
    scores = pruner.unit_scores()
    for name in expected:
        np.testing.assert_allclose(scores[name], expected[name], rtol=1e-6)
    # the tied stem/conv2 channels are summed before squaring: the score
    # differs from the sum of the two layers' squares
    assert not np.allclose(scores['stem'], hand_taylor_squares(
        model, batches, batch_loss))
    # own passes inside observe(): one pass per forward + backward
    criterion.reset()
    with criterion.observe():
        for x in batches:
            batch_loss(model(x)).backward()
    model.zero_grad()
    for name in expected:
        np.testing.assert_allclose(
            pruner.unit_scores()[name], expected[name], rtol=1e-6)


def test_group_fisher_at_norm_outputs_by_hand():
    """Masks after the BatchNorms (one per unit, shared by stem_bn and bn2
    in the stem group), per-sample mask gradients squared and summed."""
    model, pruner = prepared(
        dict(type='GroupFisherImportance', measure_at='norm_outputs'))
    torch.manual_seed(4)
    x = torch.randn(3, 3, 8, 8)
    target = torch.tensor([2, 0, 3])
    m = model
    expected = dict(stem=np.zeros(8), conv1=np.zeros(6))
    for n in range(len(x)):
        m_stem = torch.ones(8, requires_grad=True)
        m_mid = torch.ones(6, requires_grad=True)
        y0 = m.stem_bn(m.stem(x[n:n + 1])) * m_stem.view(1, -1, 1, 1)
        y1 = m.bn1(m.conv1(F.relu(y0))) * m_mid.view(1, -1, 1, 1)
        y2 = m.bn2(m.conv2(F.relu(y1))) * m_stem.view(1, -1, 1, 1)
        out = m.fc(F.relu(F.relu(y0) + y2).mean((2, 3)))
        loss = F.cross_entropy(out, target[n:n + 1], reduction='sum')
        g_stem, g_mid = torch.autograd.grad(loss, [m_stem, m_mid])
        expected['stem'] += g_stem.double().numpy()**2
        expected['conv1'] += g_mid.double().numpy()**2
    pruner.importance.accumulate(
        model, x, lambda out: F.cross_entropy(out, target, reduction='sum'))
    scores = pruner.unit_scores()
    for name in expected:
        np.testing.assert_allclose(scores[name], expected[name], rtol=1e-6)


def hand_taylor_squares(model, batches, loss_fn):
    """Per-layer squares of sum(a * g), summed over the stem's layers."""
    total = np.zeros(8)
    for x in batches:
        out, parts = model.parts(x)
        for t in parts.values():
            t.retain_grad()
        loss_fn(out).backward()
        for k in ('stem', 'conv2'):
            t = parts[k]
            total += ((t * t.grad).detach().sum((2, 3))**2).sum(0).numpy()
    model.zero_grad()
    return total


def test_taylor_hooks_are_removed():
    model, pruner = prepared('TaylorImportance')
    before = {n: len(m._forward_hooks) for n, m in model.named_modules()}
    pruner.importance.accumulate(model, torch.randn(2, 3, 8, 8),
                                 lambda out: out.pow(2).mean())
    after = {n: len(m._forward_hooks) for n, m in model.named_modules()}
    assert before == after


def test_random_is_seeded():
    _, pruner = prepared(dict(type='RandomImportance', seed=3))
    first = pruner.unit_scores()
    again = RandomImportance(seed=3)
    again.prepare(pruner.dependency)
    other = RandomImportance(seed=4)
    other.prepare(pruner.dependency)
    for name, values in again.scores(normalize=False).items():
        np.testing.assert_array_equal(values, first[name])
        assert not np.array_equal(other.scores(normalize=False)[name],
                                  values)


def top_k(values, k):
    return set(np.argsort(-values)[:k].tolist())


def test_prune_by_ratio_keeps_top_units():
    model, pruner = prepared()
    expected = hand_l1(model)
    kept = pruner.prune_by_ratio(0.5)
    assert kept == dict(stem=4, conv1=3)
    for name, unit in pruner.units.items():
        assert set(np.flatnonzero(unit.current_mask).tolist()) == top_k(
            expected[name], kept[name])
    # only the named group changes
    pruner.prune_by_ratio(1.0, groups=['conv1'])
    assert pruner.current_subnet() == dict(stem=4, conv1=6)


def test_prune_by_ratio_respects_guard_rails():
    model, pruner = prepared(round_to=4, min_ratio=0.25)
    expected = hand_l1(model)
    assert pruner.choices_of('stem') == [4, 8]
    assert pruner.choices_of('conv1') == [4, 6]
    kept = pruner.prune_by_ratio(0.3)
    assert kept == dict(stem=4, conv1=4)
    for name, unit in pruner.units.items():
        assert set(np.flatnonzero(unit.current_mask).tolist()) == top_k(
            expected[name], kept[name])


def expected_global_removal(raw, budget):
    """Remove units in ascending order of score / group mean (each group's
    best unit is never removed) until the hand-counted FLOPs fit."""
    normalised = {k: v / v.mean() for k, v in raw.items()}
    candidates = sorted((float(v[j]), name, j)
                        for name, v in normalised.items()
                        for j in np.argsort(v)[:-1])
    keep = {k: np.ones(len(v), dtype=bool) for k, v in raw.items()}
    for _, name, j in candidates:
        if hand_flops(keep['stem'].sum(), keep['conv1'].sum()) <= budget:
            break
        keep[name][j] = False
    return keep


def test_prune_to_target_flops_by_hand():
    model, pruner = prepared()
    base = hand_flops(8, 6)
    assert pruner.estimate_subnet()['flops'] == base
    report = pruner.prune_to_target(flops=0.5)
    masks = {k: u.current_mask for k, u in pruner.units.items()}
    width, mid = int(masks['stem'].sum()), int(masks['conv1'].sum())
    assert report['flops'] == hand_flops(width, mid) <= 0.5 * base
    assert report['base_flops'] == base
    assert report['flops_ratio'] == pytest.approx(report['flops'] / base)
    assert report['kept_units'] == dict(stem=width, conv1=mid)
    expected = expected_global_removal(hand_l1(model), 0.5 * base)
    for name in masks:
        np.testing.assert_array_equal(masks[name], expected[name])
    # lower-scored units went first, within each group
    for name, raw in hand_l1(model).items():
        removed, kept = raw[~masks[name]], raw[masks[name]]
        assert removed.size and removed.max() <= kept.min()


def test_prune_to_target_params_and_both():
    _, pruner = prepared()
    base = pruner.estimate_subnet()
    report = pruner.prune_to_target(params=0.6)
    assert report['params'] <= 0.6 * base['params']
    assert report == {**report, **pruner.estimate_subnet()}
    report = pruner.prune_to_target(flops=0.7, params=0.4)
    assert report['flops'] <= 0.7 * base['flops']
    assert report['params'] <= 0.4 * base['params']


def test_prune_to_target_guard_rails_and_non_empty_groups():
    _, pruner = prepared(round_to=2, min_ratio=0.5)
    pruner.prune_to_target(flops=0.6)
    for name, count in pruner.current_subnet().items():
        assert count in pruner.choices_of(name)
    with pytest.raises(ValueError, match='cannot be reached'):
        pruner.prune_to_target(flops=0.1)
    _, pruner = prepared()
    report = pruner.prune_to_target(flops=0.05)
    assert report['flops'] == hand_flops(1, 1)
    assert all(k >= 1 for k in pruner.current_subnet().values())


def deploy_matches_masked(model, pruner):
    x = torch.randn(3, 3, 8, 8)
    with torch.no_grad():
        masked = model(x)
    cfg = pruner.export_subnet()
    twin = make_model()  # the same weights, without the pruner's hooks
    pruner.deploy_subnet(model)
    with torch.no_grad():
        torch.testing.assert_close(model(x), masked, atol=1e-5, rtol=1e-5)
    # the exported config (with kept_units) deploys a fresh copy alike
    plain = StructurePruner(except_start_keys=['fc'])
    plain.prepare_from_supernet(twin, input_shape=SHAPE)
    plain.deploy_subnet(twin, cfg)
    with torch.no_grad():
        torch.testing.assert_close(twin(x), masked, atol=1e-5, rtol=1e-5)
    return cfg


def test_deployed_equals_masked_after_prune_to_target():
    model, pruner = prepared()
    report = pruner.prune_to_target(flops=0.5)
    cfg = deploy_matches_masked(model, pruner)
    width, mid = report['kept_units']['stem'], report['kept_units']['conv1']
    assert model.stem.weight.shape == (width, 3, 3, 3)
    assert model.conv2.weight.shape == (width, mid, 3, 3)
    assert model.fc.weight.shape == (5, width)
    assert any('kept_units' in entry for entry in cfg.values())


@pytest.mark.parametrize('importance', [
    'L2Importance', 'BNScaleImportance',
    dict(type='RandomImportance', seed=1)
])
def test_deployed_equals_masked_after_prune_by_ratio(importance):
    model, pruner = prepared(importance)
    stem = model.stem.weight.detach().clone()
    kept = pruner.prune_by_ratio(0.5)
    keep_stem = torch.from_numpy(pruner.units['stem'].current_mask)
    deploy_matches_masked(model, pruner)
    # the deployed stem holds exactly the kept filters (not the first ones)
    assert int(keep_stem.sum()) == kept['stem'] == model.stem.weight.shape[0]
    torch.testing.assert_close(model.stem.weight.detach(), stem[keep_stem])


def test_bn_scale_leaves_groups_without_norm_unpruned():

    class NoNorm(nn.Module):

        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 6, 3, padding=1)
            self.bn = nn.BatchNorm2d(6)
            self.mid = nn.Conv2d(6, 4, 1)
            self.fc = nn.Linear(4, 2)

        def forward(self, x):
            x = self.mid(F.relu(self.bn(self.conv(x))))
            return self.fc(x.mean((2, 3)))

    model = NoNorm().eval()
    pruner = ImportancePruner(
        importance='BNScaleImportance', except_start_keys=['fc'])
    pruner.prepare_from_supernet(model, input_shape=SHAPE)
    assert set(pruner.unit_scores()) == {'conv'}
    assert pruner.prune_by_ratio(0.5) == dict(conv=3)
    assert pruner.current_subnet() == dict(conv=3, mid=4)
    with pytest.raises(ValueError, match="'mid'"):
        pruner.prune_by_ratio(0.5, groups=['mid'])


def test_unit_of_several_channels_sums_them():

    class Flat(nn.Module):

        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, stride=2, padding=1)
            self.fc = nn.Linear(4 * 16, 2)

        def forward(self, x):
            return self.fc(self.conv(x).flatten(1))

    torch.manual_seed(0)
    model = Flat().eval()
    crit = L1Importance(normalize='none')
    pruner = ImportancePruner(importance=crit, except_start_keys=['fc'])
    pruner.prepare_from_supernet(model, input_shape=SHAPE)
    with torch.no_grad():
        expected = [
            float(model.conv.weight[j].abs().sum() + model.conv.bias[j].abs()
                  + model.fc.weight[:, 16 * j:16 * (j + 1)].abs().sum())
            for j in range(4)
        ]
    np.testing.assert_allclose(pruner.unit_scores()['conv'], expected,
                               rtol=1e-6)


def test_bad_arguments_name_the_value():
    with pytest.raises(ValueError, match='FooImportance'):
        ImportancePruner(importance=dict(type='FooImportance'))
    with pytest.raises(ValueError, match='bogus'):
        L1Importance(normalize='bogus')
    with pytest.raises(RuntimeError, match='prepare'):
        L2Importance().scores()
    _, pruner = prepared()
    for bad in (0, 1.5, -0.2):
        with pytest.raises(ValueError, match=repr(bad).replace('.', r'\.')):
            pruner.prune_to_target(flops=bad)
    with pytest.raises(ValueError, match='params=2'):
        pruner.prune_to_target(params=2)
    with pytest.raises(ValueError, match='flops, params and/or latency'):
        pruner.prune_to_target()
    with pytest.raises(ValueError, match='ratio=0'):
        pruner.prune_by_ratio(0)
    with pytest.raises(Exception, match='nope'):
        pruner.prune_by_ratio(0.5, groups=['nope'])


def test_criteria_work_without_a_pruner():
    model = make_model()
    pruner = StructurePruner(except_start_keys=['fc'])
    pruner.prepare_from_supernet(model, input_shape=SHAPE)
    crit = BNScaleImportance(normalize='none')
    crit.prepare(pruner.dependency)
    with torch.no_grad():
        np.testing.assert_allclose(crit.scores(['conv1'])['conv1'],
                                   model.bn1.weight.abs().numpy(),
                                   rtol=1e-6)
    taylor = TaylorImportance()
    taylor.prepare(pruner.dependency)
    taylor.accumulate(model, torch.randn(2, 3, 8, 8),
                      lambda out: out.sum())
    assert set(taylor.scores()) == {'stem', 'conv1'}


def hand_unit_flops(width: int, mid: int) -> dict:
    """FLOPs one more unit of each group costs at the given widths."""
    return dict(stem=hand_flops(width, mid) - hand_flops(width - 1, mid),
                conv1=hand_flops(width, mid) - hand_flops(width, mid - 1))


def test_prune_step_removes_least_important_per_flop():
    model, pruner = prepared(dict(type='L1Importance', normalize='none'),
                             cost_normalization='flops')
    raw = hand_l1(model)
    kept = dict(stem=np.ones(8, bool), conv1=np.ones(6, bool))
    for _ in range(5):
        per_unit = hand_unit_flops(int(kept['stem'].sum()),
                                   int(kept['conv1'].sum()))
        # the weakest kept unit per FLOP over both groups, by hand
        candidates = [(raw[g][i] / per_unit[g], g, i) for g in raw
                      for i in np.flatnonzero(kept[g])]
        _, group, index = min(candidates)
        assert pruner.prune_step() == [(group, 1)]
        kept[group][index] = False
        for g in raw:
            np.testing.assert_array_equal(pruner.units[g].current_mask,
                                          kept[g])


def test_act_cost_is_positions_of_producers():
    model, pruner = prepared(dict(type='L1Importance', normalize='none'),
                             cost_normalization='act')
    raw = hand_l1(model)
    # a stem unit occupies the stem's and conv2's output maps, a conv1
    # unit conv1's: 2 * HW against HW
    per_unit = dict(stem=2.0 * HW, conv1=1.0 * HW)
    candidates = [(raw[g][i] / per_unit[g], g, i) for g in raw
                  for i in range(len(raw[g]))]
    _, group, index = min(candidates)
    assert pruner.prune_step() == [(group, 1)]
    assert not pruner.units[group].current_mask[index]
    with pytest.raises(ValueError, match='bytes'):
        ImportancePruner(cost_normalization='bytes')


def test_prune_step_stops_at_guard_rails():
    _, pruner = prepared(min_ratio=0.5)
    removed = pruner.prune_step(num_chunks=100)
    assert sum(n for _, n in removed) == (8 - 4) + (6 - 3)
    assert pruner.prune_step() == []


def test_latency_target_with_own_latency_fn():
    _, pruner = prepared()

    def fake_ms(masks):  # proportional to the FLOPs, written out
        return hand_flops(int(masks['stem'].sum()),
                          int(masks['conv1'].sum())) / 1e4

    report = pruner.prune_to_target(latency=0.5, latency_fn=fake_ms)
    full = fake_ms(dict(stem=np.ones(8), conv1=np.ones(6)))
    kept = report['kept_units']
    assert report['base_latency'] == pytest.approx(full)
    assert report['latency'] == pytest.approx(
        hand_flops(kept['stem'], kept['conv1']) / 1e4)
    assert report['latency_ratio'] <= 0.5
    # one unit fewer removed would miss the target: both groups' next
    # larger widths are above it
    assert hand_flops(kept['stem'] + 1, kept['conv1']) / 1e4 > 0.5 * full \
        or hand_flops(kept['stem'], kept['conv1'] + 1) / 1e4 > 0.5 * full


def test_pruned_copy_equals_masked_model_and_is_timed():
    model, pruner = prepared()
    pruner.prune_by_ratio(0.5)
    x = torch.randn(2, *SHAPE[1:])
    with torch.no_grad():
        masked = model(x)
    from mmrazor.models.pruners.pruning_costs import pruned_copy
    pruner.remove_masks()
    clone = pruned_copy(model, pruner.dependency, pruner._masks)
    with torch.no_grad():
        np.testing.assert_allclose(clone(x).numpy(), masked.numpy(),
                                   rtol=1e-5, atol=1e-6)
    assert clone.conv1.out_channels == 3 and clone.stem.out_channels == 4
    assert model.conv1.out_channels == 6  # the model itself is untouched
    _, pruner = prepared()
    assert pruner.latency_of(runs=2) > 0


def test_analysis_ignores_masks_of_another_pruner():
    """A model masked by one pruner (or a deep copy of it, hooks and all)
    is analysed as the model itself."""
    import copy
    model, first = prepared()
    first.prune_by_ratio(0.5)
    groups = {n: g.num_units for n, g in first.channel_groups.items()}
    second = ImportancePruner(except_start_keys=['fc'])
    second.prepare_from_supernet(copy.deepcopy(model), input_shape=SHAPE)
    assert {n: g.num_units
            for n, g in second.channel_groups.items()} == groups
    second.set_subnet(first.export_subnet())
    for name, unit in second.units.items():
        np.testing.assert_array_equal(unit.current_mask,
                                      first.units[name].current_mask)


def test_layer_mean_of_slice_norms_by_hand():
    model, _ = prepared()
    # biases counted: stem units: 10 slices (stem w/b, stem_bn w/b, conv1
    # in-slice, conv2 w/b, bn2 w/b, fc in-slice); conv1 units: 5 (conv1
    # w/b, bn1 w/b, conv2 in-slice)
    counts = dict(stem=10, conv1=5)
    with torch.no_grad():
        l2 = hand_terms(model, lambda t: t.pow(2).sum().sqrt())
        l1 = hand_terms(model, lambda t: t.abs().sum())
    for criterion, expected in (('L2Importance', l2), ('L1Importance', l1)):
        _, pruner = prepared(dict(type=criterion, normalize='none',
                                  layer_reduction='mean', bias=True))
        scores = pruner.unit_scores()
        for name in expected:
            np.testing.assert_allclose(scores[name],
                                       expected[name] / counts[name],
                                       rtol=1e-6)
    with torch.no_grad():
        l2sq = hand_terms(model, lambda t: t.pow(2).sum())
    _, pruner = prepared(dict(type='L2Importance', normalize='none',
                              layer_reduction='mean', squared=True,
                              bias=True))
    scores = pruner.unit_scores()
    for name in l2sq:
        np.testing.assert_allclose(scores[name], l2sq[name] / counts[name],
                                   rtol=1e-6)
    with pytest.raises(ValueError, match='max'):
        L1Importance(layer_reduction='max')
    with pytest.raises(ValueError, match="bias='yes'"):
        L2Importance(bias='yes')


class InvertedResidual(nn.Module):
    """A MobileNetV2 block after a stem: ``stem`` (with a bias) - BN -
    ReLU6, then expand 1x1 - BN - ReLU6 - depthwise 3x3 - BN - ReLU6 -
    project 1x1 - BN added to the stem's output, pooled into ``fc``.

    Channel groups: ``stem`` (stem, stem_bn, expand's input, project's
    output, project_bn, fc's input) and ``expand`` (expand, expand_bn, the
    depthwise conv, dw_bn, project's input).
    """

    def __init__(self, width: int = 4, hidden: int = 12) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, width, 3, padding=1)
        self.stem_bn = nn.BatchNorm2d(width)
        self.expand = nn.Conv2d(width, hidden, 1, bias=False)
        self.expand_bn = nn.BatchNorm2d(hidden)
        self.dw = nn.Conv2d(
            hidden, hidden, 3, padding=1, groups=hidden, bias=False)
        self.dw_bn = nn.BatchNorm2d(hidden)
        self.project = nn.Conv2d(hidden, width, 1, bias=False)
        self.project_bn = nn.BatchNorm2d(width)
        self.fc = nn.Linear(width, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu6(self.stem_bn(self.stem(x)))
        h = F.relu6(self.expand_bn(self.expand(y)))
        h = F.relu6(self.dw_bn(self.dw(h)))
        y = y + self.project_bn(self.project(h))
        return self.fc(y.mean((2, 3)))


def test_layer_mean_leaves_biases_out_like_torch_pruning():
    """``L2Importance(layer_reduction='mean', squared=True)``: per unit,
    the squared L2 norm of every layer side's slice (conv / linear weight
    rows or columns, BN scales; no biases, no BN shifts), averaged over the
    group's layer sides, divided by the group's mean."""
    torch.manual_seed(0)
    m = InvertedResidual()
    for bn in (m.stem_bn, m.expand_bn, m.dw_bn, m.project_bn):
        nn.init.uniform_(bn.weight, -1, 1)
        nn.init.uniform_(bn.bias, -2, 2)  # large: they must not count
    m.eval()

    def sq(t: torch.Tensor) -> float:
        return float(t.double().pow(2).sum())

    with torch.no_grad():
        stem = np.array([[
            sq(m.stem.weight[j]), sq(m.stem_bn.weight[j]),
            sq(m.expand.weight[:, j]), sq(m.project.weight[j]),
            sq(m.project_bn.weight[j]), sq(m.fc.weight[:, j])
        ] for j in range(4)]).mean(1)
        expand = np.array([[
            sq(m.expand.weight[i]), sq(m.expand_bn.weight[i]),
            sq(m.dw.weight[i]), sq(m.dw_bn.weight[i]),
            sq(m.project.weight[:, i])
        ] for i in range(12)]).mean(1)
        stem_shifts = np.array([
            sq(m.stem.bias[j]) + sq(m.stem_bn.bias[j]) +
            sq(m.project_bn.bias[j]) for j in range(4)
        ])
        expand_shifts = np.array([
            sq(m.expand_bn.bias[i]) + sq(m.dw_bn.bias[i]) for i in range(12)
        ])

    def scores(**kwargs):
        pruner = ImportancePruner(
            importance=dict(type='L2Importance', layer_reduction='mean',
                            squared=True, **kwargs),
            except_start_keys=['fc'])
        pruner.prepare_from_supernet(m, input_shape=SHAPE)
        return pruner

    pruner = scores(normalize='none')
    assert set(pruner.channel_groups['expand'].layer_names()) == {
        'expand', 'expand_bn', 'dw', 'dw_bn', 'project'
    }
    raw = pruner.unit_scores()
    np.testing.assert_allclose(raw['stem'], stem, rtol=1e-6)
    np.testing.assert_allclose(raw['expand'], expand, rtol=1e-6)
    normed = scores().unit_scores(normalize=True)
    np.testing.assert_allclose(normed['stem'], stem / stem.mean(), rtol=1e-6)
    np.testing.assert_allclose(normed['expand'], expand / expand.mean(),
                               rtol=1e-6)
    # with the biases: three more slices per stem unit, two per expand unit
    raw = scores(normalize='none', bias=True).unit_scores()
    np.testing.assert_allclose(raw['stem'], (stem * 6 + stem_shifts) / 9,
                               rtol=1e-6)
    np.testing.assert_allclose(raw['expand'],
                               (expand * 5 + expand_shifts) / 7, rtol=1e-6)


def test_normalized_layer_mean_by_hand():
    """``L1Importance(layer_reduction='normalized_mean')``: per unit, the
    L1 norm of its slice in every layer side divided by that layer side's
    mean over the group, averaged over the layer sides (no biases, no BN
    shifts)."""
    torch.manual_seed(1)
    m = InvertedResidual()
    for bn in (m.stem_bn, m.expand_bn, m.dw_bn, m.project_bn):
        nn.init.uniform_(bn.weight, -1, 1)
        nn.init.uniform_(bn.bias, -2, 2)
    with torch.no_grad():
        m.dw.weight.mul_(1000)  # a layer of large weights counts no more
    m.eval()

    def relative(sizes):
        sizes = np.array(sizes, dtype=np.float64)
        return sizes / sizes.mean()

    def l1(t: torch.Tensor) -> float:
        return float(t.double().abs().sum())

    with torch.no_grad():
        stem = np.mean([
            relative([l1(m.stem.weight[j]) for j in range(4)]),
            relative([l1(m.stem_bn.weight[j]) for j in range(4)]),
            relative([l1(m.expand.weight[:, j]) for j in range(4)]),
            relative([l1(m.project.weight[j]) for j in range(4)]),
            relative([l1(m.project_bn.weight[j]) for j in range(4)]),
            relative([l1(m.fc.weight[:, j]) for j in range(4)]),
        ], axis=0)
        expand = np.mean([
            relative([l1(m.expand.weight[i]) for i in range(12)]),
            relative([l1(m.expand_bn.weight[i]) for i in range(12)]),
            relative([l1(m.dw.weight[i]) for i in range(12)]),
            relative([l1(m.dw_bn.weight[i]) for i in range(12)]),
            relative([l1(m.project.weight[:, i]) for i in range(12)]),
        ], axis=0)
    pruner = ImportancePruner(
        importance=dict(type='L1Importance', normalize='none',
                        layer_reduction='normalized_mean'),
        except_start_keys=['fc'])
    pruner.prepare_from_supernet(m, input_shape=SHAPE)
    raw = pruner.unit_scores()
    np.testing.assert_allclose(raw['stem'], stem, rtol=1e-6)
    np.testing.assert_allclose(raw['expand'], expand, rtol=1e-6)
    # the plain layer mean is dominated by the scaled depthwise conv
    plain = ImportancePruner(
        importance=dict(type='L1Importance', normalize='none',
                        layer_reduction='mean'),
        except_start_keys=['fc'])
    plain.prepare_from_supernet(m, input_shape=SHAPE)
    dw = np.array([l1(m.dw.weight[i]) for i in range(12)])
    assert np.argsort(plain.unit_scores()['expand']).tolist() == \
        np.argsort(dw).tolist()
    with pytest.raises(ValueError, match='normalized_mean'):
        L1Importance(layer_reduction='normalised')


@pytest.mark.parametrize('shape', ['quadratic', 'steps', 'linear', 'cliff'])
def test_smallest_fitting_count_equals_a_scan(shape):
    """The interpolating search finds what a scan over every count finds
    (the first count whose cost is at most the limit), with few
    evaluations, for falling costs of several shapes."""
    from mmrazor.models.pruners.importance_pruning import (
        excess, smallest_fitting_count)
    rng = np.random.default_rng(0)
    n = 5000
    r = np.arange(n + 1) / n
    costs = {
        'quadratic': 100 * (1 - 0.9 * r)**2,
        'steps': 100 - np.floor(r * 37) * 2.5,
        'linear': 100 - 95 * r,
        'cliff': np.where(r < 0.97, 100 - r, 5.0),
    }[shape]
    costs = np.minimum.accumulate(costs + rng.uniform(0, 1e-3, n + 1))
    for limit in rng.uniform(costs[-1], costs[0], 25):
        scan = int(np.argmax(costs <= limit))
        calls = []

        def evaluate(count):
            calls.append(count)
            return dict(flops=costs[count])

        found = smallest_fitting_count(
            n, dict(flops=costs[0]), dict(flops=costs[n]), evaluate,
            lambda c: c['flops'] <= limit,
            lambda c: excess(c['flops'], limit))
        assert found == scan, (shape, limit)
        assert len(calls) <= 3 * int(np.ceil(np.log2(n))) + 2
    # nothing to remove when the unpruned costs already fit
    assert smallest_fitting_count(n, dict(flops=1.0), dict(flops=0.5),
                                  None, lambda c: c['flops'] <= 1.0,
                                  lambda c: 0.0) == 0
    assert excess(4.0, 1.0) == 1.0 and excess(0.0, 0.0) == 0.0
    assert excess(1.0, 0.0) == float('inf')
