"""Each distillation loss against its paper's formula, written here in plain
torch (explicit softmax, logs and loops), independently of mmrazor."""
import math

import pytest
import torch
import torch.nn.functional as F

from mmrazor.registry import MODELS


@pytest.fixture(autouse=True)
def float64():
    """Compare in double precision; restore the default afterwards."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def softmax(z, tau=1.0, dim=1):
    e = torch.exp(z / tau - (z / tau).max(dim=dim, keepdim=True).values)
    return e / e.sum(dim=dim, keepdim=True)


def build(cfg):
    import mmrazor.models  # noqa: F401
    return MODELS.build(cfg)


@pytest.fixture
def logits():
    g = torch.Generator().manual_seed(0)
    s = torch.randn(6, 5, generator=g) * 3
    t = torch.randn(6, 5, generator=g) * 3
    y = torch.tensor([0, 1, 2, 3, 4, 1])
    return s, t, y


@pytest.mark.parametrize('tau', [1.0, 4.0])
def test_kl_divergence(logits, tau):
    s, t, _ = logits
    p_s, p_t = softmax(s, tau), softmax(t, tau)
    expect = 0.0
    for i in range(s.shape[0]):
        for c in range(s.shape[1]):
            expect += p_t[i, c] * math.log(p_t[i, c] / p_s[i, c])
    expect = tau**2 * expect / s.shape[0]
    loss = build(dict(type='KLDivergence', tau=tau, loss_weight=0.5))
    assert torch.allclose(loss(s, t), 0.5 * expect)
    # 'sum' and 'mean' reductions
    total = expect * s.shape[0]
    assert torch.allclose(
        build(dict(type='KLDivergence', tau=tau, reduction='sum'))(s, t),
        total)
    assert torch.allclose(
        build(dict(type='KLDivergence', tau=tau, reduction='mean'))(s, t),
        total / s.numel())


def test_kl_divergence_identical_is_zero(logits):
    s, _, _ = logits
    assert build(dict(type='KLDivergence', tau=2))(s, s.clone()).abs() < 1e-12


def test_kl_divergence_bad_reduction():
    with pytest.raises(ValueError, match='reduction'):
        build(dict(type='KLDivergence', reduction='avg'))


@pytest.mark.parametrize('tau', [1.0, 3.0])
def test_channel_wise_divergence(tau):
    g = torch.Generator().manual_seed(1)
    n, c, h, w = 2, 3, 4, 5
    s = torch.randn(n, c, h, w, generator=g)
    t = torch.randn(n, c, h, w, generator=g)
    expect = 0.0
    for i in range(n):
        for k in range(c):
            phi_s = softmax(s[i, k].flatten(), tau, dim=0)
            phi_t = softmax(t[i, k].flatten(), tau, dim=0)
            expect += (phi_t * torch.log(phi_t / phi_s)).sum()
    expect = tau**2 * expect / (n * c)
    loss = build(dict(type='ChannelWiseDivergence', tau=tau, loss_weight=2))
    assert torch.allclose(loss(s, t), 2 * expect)


@pytest.mark.parametrize('tau', [1.0, 2.0])
def test_wsld(logits, tau):
    s, t, y = logits
    n = s.shape[0]
    expect = 0.0
    for i in range(n):
        ce_s = -math.log(softmax(s[i:i + 1])[0, y[i]])
        ce_t = -math.log(softmax(t[i:i + 1])[0, y[i]])
        w = 1 - math.exp(-max(ce_s / (ce_t + 1e-7), 0.0))
        soft_ce = -(softmax(t[i:i + 1], tau) *
                    torch.log(softmax(s[i:i + 1], tau))).sum()
        expect += w * soft_ce
    expect = tau**2 * expect / n
    loss = build(dict(type='WSLD', tau=tau, num_classes=5, loss_weight=3))
    assert torch.allclose(loss(s, t, y), 3 * expect)


def test_wsld_weight_has_no_gradient(logits):
    """Only the soft cross entropy is differentiated, not the weight."""
    s, t, y = logits
    s = s.clone().requires_grad_()
    loss = build(dict(type='WSLD', tau=2, num_classes=5))
    loss(s, t, y).backward()
    w = []
    for i in range(s.shape[0]):
        ce_s = -math.log(softmax(s.detach()[i:i + 1])[0, y[i]])
        ce_t = -math.log(softmax(t[i:i + 1])[0, y[i]])
        w.append(1 - math.exp(-ce_s / (ce_t + 1e-7)))
    w = torch.tensor(w).unsqueeze(1)
    # d/ds of tau^2 * mean(w * CE(p_t, p_s)) = tau * w * (p_s - p_t) / N
    expect = 2 * w * (softmax(s.detach(), 2) - softmax(t, 2)) / s.shape[0]
    assert torch.allclose(s.grad, expect)


def test_wsld_checks_labels_and_classes(logits):
    s, t, y = logits
    with pytest.raises(ValueError, match='gt_labels'):
        build(dict(type='WSLD', num_classes=5))(s, t)
    with pytest.raises(ValueError, match='num_classes=1000'):
        build(dict(type='WSLD'))(s, t, y)


@pytest.mark.parametrize('tau,alpha,beta', [(1.0, 1.0, 8.0), (4.0, 0.5, 2.)])
def test_dkd(logits, tau, alpha, beta):
    s, t, y = logits
    n, c = s.shape
    tckd = nckd = 0.0
    for i in range(n):
        p_s, p_t = softmax(s[i:i + 1], tau)[0], softmax(t[i:i + 1], tau)[0]
        b_s = torch.stack([p_s[y[i]], 1 - p_s[y[i]]])
        b_t = torch.stack([p_t[y[i]], 1 - p_t[y[i]]])
        tckd += (b_t * torch.log(b_t / b_s)).sum()
        keep = [k for k in range(c) if k != y[i]]
        q_s = softmax(s[i:i + 1, keep], tau)[0]
        q_t = softmax(t[i:i + 1, keep], tau)[0]
        nckd += (q_t * torch.log(q_t / q_s)).sum()
    expect = tau**2 * (alpha * tckd + beta * nckd) / n
    loss = build(dict(type='DKDLoss', tau=tau, alpha=alpha, beta=beta))
    assert torch.allclose(loss(s, t, y), expect)


@pytest.mark.parametrize('reduction', ['batchmean', 'mean', 'sum'])
def test_dkd_reduction_as_kl_div_reduces(logits, reduction):
    """Each part reduced as F.kl_div(reduction=...) reduces its terms: the
    binary TCKD has 2 terms per sample, NCKD one per class (the target's
    term is 0)."""
    s, t, y = logits
    n, c = s.shape
    p_s, p_t = softmax(s), softmax(t)
    rows = torch.arange(n)
    b_s = torch.stack([p_s[rows, y], 1 - p_s[rows, y]], 1)
    b_t = torch.stack([p_t[rows, y], 1 - p_t[rows, y]], 1)
    target = F.one_hot(y, c).bool()
    q_s = softmax(s.masked_fill(target, float('-inf')))
    q_t = softmax(t.masked_fill(target, float('-inf')))
    log_q_s = torch.log(q_s.masked_fill(target, 1.0))
    tckd = F.kl_div(torch.log(b_s), b_t, reduction=reduction)
    nckd = F.kl_div(log_q_s, q_t, reduction=reduction)
    loss = build(dict(type='DKDLoss', beta=0.5, reduction=reduction))
    assert torch.allclose(loss(s, t, y), tckd + 0.5 * nckd, atol=1e-6)
    with pytest.raises(ValueError, match="reduction.*'none'"):
        build(dict(type='DKDLoss', reduction='none'))


def test_dkd_gradient_is_finite(logits):
    s, t, y = logits
    s = s.clone().requires_grad_()
    build(dict(type='DKDLoss', tau=2, beta=8))(s, t, y).backward()
    assert torch.isfinite(s.grad).all()


def test_dkd_equals_kd_when_alpha_beta_are_its_decomposition(logits):
    """The paper's identity: KD = TCKD + (1 - p_t^T) NCKD (per sample)."""
    s, t, y = logits
    for i in range(s.shape[0]):
        si, ti, yi = s[i:i + 1], t[i:i + 1], y[i:i + 1]
        kd = build(dict(type='KLDivergence'))(si, ti)
        p_t_target = softmax(ti)[0, yi[0]]
        tckd = build(dict(type='DKDLoss', alpha=1, beta=0))(si, ti, yi)
        nckd = build(dict(type='DKDLoss', alpha=0, beta=1))(si, ti, yi)
        assert torch.allclose(kd, tckd + (1 - p_t_target) * nckd)


def test_l2_fitnets(logits):
    g = torch.Generator().manual_seed(2)
    s = torch.randn(3, 4, 5, 5, generator=g)
    t = torch.randn(3, 4, 5, 5, generator=g)
    sq = sum(
        float((s[i, k, a, b] - t[i, k, a, b])**2) for i in range(3)
        for k in range(4) for a in range(5) for b in range(5))
    assert torch.allclose(
        build(dict(type='L2Loss'))(s, t), torch.tensor(sq / s.numel()))
    assert torch.allclose(
        build(dict(type='FitNetsLoss', reduction='batchmean'))(s, t),
        torch.tensor(sq / 3))
    # normalize=True compares unit vectors per sample
    ns = s.reshape(3, -1) / s.reshape(3, -1).norm(dim=1, keepdim=True)
    nt = t.reshape(3, -1) / t.reshape(3, -1).norm(dim=1, keepdim=True)
    assert torch.allclose(
        build(dict(type='L2Loss', normalize=True, reduction='sum'))(s, t),
        ((ns - nt)**2).sum())


def test_l2_1x_arguments():
    g = torch.Generator().manual_seed(5)
    s = torch.randn(3, 4, 5, generator=g)
    t = torch.randn(3, 4, 5, generator=g)
    sq = ((s - t)**2).sum()
    assert torch.allclose(
        build(dict(type='L2Loss', div_element=True))(s, t), sq / s.numel())
    assert torch.allclose(
        build(dict(type='L2Loss', div_element=False))(s, t), sq / 3)
    assert torch.allclose(build(dict(type='L2Loss', dist=True))(s, t),
                          sq.sqrt())
    ns = s.reshape(3, -1) / s.reshape(3, -1).norm(dim=1, keepdim=True)
    nt = t.reshape(3, -1) / t.reshape(3, -1).norm(dim=1, keepdim=True)
    assert torch.allclose(
        build(dict(type='L2Loss', normalize=True, mult=2.0,
                   div_element=False))(s, t),
        ((2 * ns - 2 * nt)**2).sum() / 3)
    with pytest.raises(ValueError, match='div_element'):
        build(dict(type='L2Loss', div_element=True, reduction='sum'))
    with pytest.raises(ValueError, match='dist'):
        build(dict(type='L2Loss', dist=True, reduction='mean'))


def test_attention_transfer_on_any_rank():
    at = build(dict(type='ATLoss'))
    for shape in ((5, 6), (5, 2, 3), (5, 2, 3, 3)):
        x = torch.randn(*shape)
        assert at(x, torch.randn(*shape)).numel() == 1
        assert at(x, x) == 0
    with pytest.raises(ValueError, match='ATLoss'):
        at(torch.randn(5), torch.randn(5))


def test_l2_shape_mismatch_points_to_align_module():
    with pytest.raises(ValueError, match='align_module'):
        build(dict(type='L2Loss'))(torch.zeros(2, 3), torch.zeros(2, 4))


def test_attention_transfer():
    g = torch.Generator().manual_seed(3)
    s = torch.randn(2, 3, 4, 4, generator=g)
    t = torch.randn(2, 7, 4, 4, generator=g)  # channels may differ
    expect = 0.0
    for i in range(2):
        q_s = sum(s[i, k].abs()**2 for k in range(3)).flatten()
        q_t = sum(t[i, k].abs()**2 for k in range(7)).flatten()
        expect += ((q_s / q_s.norm() - q_t / q_t.norm())**2).sum()
    expect = expect / (2 * 16)
    assert torch.allclose(build(dict(type='ATLoss'))(s, t), expect)


def huber(x, y):
    d = (x - y).abs()
    return torch.where(d < 1, 0.5 * d**2, d - 0.5)


def test_distance_wise_rkd():
    g = torch.Generator().manual_seed(4)
    s = torch.randn(5, 8, generator=g)
    t = torch.randn(5, 12, generator=g)

    def psi(x):
        x = x / x.norm(dim=1, keepdim=True)
        n = x.shape[0]
        d = torch.zeros(n, n)
        for i in range(n):
            for j in range(n):
                d[i, j] = (x[i] - x[j]).norm()
        mu = d.sum() / (n * (n - 1))
        return d / mu

    expect = huber(psi(s), psi(t)).mean()
    loss = build(dict(type='DistanceWiseRKD', loss_weight=1.0))
    assert torch.allclose(loss(s, t), expect)
    assert build(dict(type='DistanceWiseRKD')).loss_weight == 25.0


def test_angle_wise_rkd():
    g = torch.Generator().manual_seed(5)
    s = torch.randn(4, 6, generator=g)
    t = torch.randn(4, 9, generator=g)

    def psi(x):
        x = x / x.norm(dim=1, keepdim=True)
        n = x.shape[0]
        a = torch.zeros(n, n, n)
        for i in range(n):
            for j in range(n):
                for k in range(n):
                    if i == j or k == j:
                        continue  # undefined angle: contributes 0 vs 0
                    e_ij = (x[i] - x[j]) / (x[i] - x[j]).norm()
                    e_kj = (x[k] - x[j]) / (x[k] - x[j]).norm()
                    a[i, j, k] = (e_ij * e_kj).sum()
        return a

    expect = huber(psi(s), psi(t)).mean()
    loss = build(dict(type='AngleWiseRKD', loss_weight=1.0))
    assert torch.allclose(loss(s, t), expect)


def test_rkd_needs_a_batch():
    with pytest.raises(ValueError, match='batch'):
        build(dict(type='DistanceWiseRKD'))(torch.zeros(1, 3),
                                            torch.zeros(1, 3))


@pytest.mark.parametrize('tau', [1.0, 4.0])
def test_dist(logits, tau):
    s, t, _ = logits
    y_s, y_t = softmax(s, tau), softmax(t, tau)

    def pearson(u, v):
        u, v = u - u.mean(), v - v.mean()
        return (u * v).sum() / (u.norm() * v.norm())

    n, c = s.shape
    inter = sum(1 - pearson(y_s[i], y_t[i]) for i in range(n)) / n
    intra = sum(1 - pearson(y_s[:, j], y_t[:, j]) for j in range(c)) / c
    expect = tau**2 * (2.0 * inter + 0.5 * intra)
    loss = build(
        dict(
            type='DISTLoss',
            tau=tau,
            inter_loss_weight=2.0,
            intra_loss_weight=0.5))
    assert torch.allclose(loss(s, t), expect, atol=1e-7)


@pytest.mark.parametrize('cfg', [
    dict(type='KLDivergence', tau=2),
    dict(type='DISTLoss'),
    dict(type='L2Loss'),
])
def test_teacher_is_detached(cfg, logits):
    s, t, _ = logits
    s = s.clone().requires_grad_()
    t = t.clone().requires_grad_()
    build(cfg)(s, t).backward()
    assert t.grad is None and s.grad is not None
    t.grad = None
    build(dict(cfg, teacher_detach=False))(s, t).backward()
    assert t.grad is not None
