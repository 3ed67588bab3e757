"""The 1.x distillation losses (L1, AB, OFD, FT, PKD, MGD, FBKD, soft CE and
the DAFL generator losses), each against its formula written out here with
loops and plain torch / math operations, and built by the
ConfigurableDistiller with the argument names of the 1.x configs."""
import math

import pytest
import torch
from torch import nn

from mmrazor.models import ConfigurableDistiller
from mmrazor.registry import MODELS


@pytest.fixture(autouse=True)
def float64():
    """Compare in double precision; restore the default afterwards."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def build(cfg):
    import mmrazor.models  # noqa: F401
    return MODELS.build(cfg)


def randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def close(value, expect, **kwargs):
    return torch.allclose(torch.as_tensor(value),
                          torch.as_tensor(expect, dtype=torch.float64),
                          **kwargs)


def softmax_row(row, tau=1.0):
    exps = [math.exp(float(v) / tau) for v in row]
    return [e / sum(exps) for e in exps]


# ------------------------------------------------------------------- L1Loss
def test_l1_loss_reductions_and_legacy_flags():
    s, t = randn(3, 4, 2, seed=1), randn(3, 4, 2, seed=2)
    total = sum(abs(float(a) - float(b))
                for a, b in zip(s.flatten(), t.flatten()))
    assert close(build(dict(type='L1Loss'))(s, t), total / 24)
    assert close(build(dict(type='L1Loss', reduction='sum'))(s, t), total)
    assert close(
        build(dict(type='L1Loss', reduction='batchmean',
                   loss_weight=2))(s, t), 2 * total / 3)
    # torch's deprecated flags override `reduction`, as in F.l1_loss
    assert close(
        build(dict(type='L1Loss', size_average=False))(s, t), total)
    elementwise = build(dict(type='L1Loss', reduce=False,
                             reduction='sum'))(s, t)
    assert elementwise.shape == s.shape
    assert close(elementwise[2, 3, 1], abs(float(s[2, 3, 1] - t[2, 3, 1])))
    with pytest.raises(ValueError, match="'avg'"):
        build(dict(type='L1Loss', reduction='avg'))
    with pytest.raises(ValueError, match=r'\(3, 4, 2\).*\(3, 8\)'):
        build(dict(type='L1Loss'))(s, torch.zeros(3, 8))


def test_l1_loss_keeps_the_teacher_gradient_as_dfad_needs():
    """DFAD's generator maximises the L1 distance through both networks."""
    s = randn(2, 3, seed=1).requires_grad_()
    t = randn(2, 3, seed=2).requires_grad_()
    build(dict(type='L1Loss', loss_weight=-1.0))(s, t).backward()
    # d/dt of -mean|s - t| = sign(s - t) / 6
    assert close(t.grad, torch.sign(s.detach() - t.detach()) / 6)


# ------------------------------------------------------------------- ABLoss
@pytest.mark.parametrize('margin', [1.0, 0.5])
def test_ab_loss(margin):
    s, t = randn(2, 3, 2, 2, seed=3), randn(2, 3, 2, 2, seed=4)
    total = 0.0
    for a, b in zip(s.flatten().tolist(), t.flatten().tolist()):
        if b > 0 and a < margin:  # teacher active: student must pass +m
            total += (a - margin)**2
        elif b <= 0 and a > -margin:  # teacher inactive: below -m
            total += (a + margin)**2
    expect = total / 2 / 1000 * 3
    loss = build(dict(type='ABLoss', loss_weight=0.5, margin=margin))
    assert close(loss(s, t), 0.5 * expect)


def test_ab_loss_is_zero_past_the_margin():
    t = torch.tensor([[1.0, -1.0, 0.0]])
    s = torch.tensor([[1.5, -2.0, -1.0]])
    assert build(dict(type='ABLoss'))(s, t) == 0
    with pytest.raises(ValueError, match='margin'):
        build(dict(type='ABLoss', margin=-1))


# ------------------------------------------------------------------ OFDLoss
def test_ofd_loss_skips_positions_below_a_negative_teacher():
    s, t = randn(2, 3, 2, 2, seed=5), randn(2, 3, 2, 2, seed=6)
    total = 0.0
    for a, b in zip(s.flatten().tolist(), t.flatten().tolist()):
        if b <= 0 and a <= b:
            continue  # both are zero after the ReLU
        total += (a - b)**2
    loss = build(dict(type='OFDLoss', loss_weight=0.25))
    assert close(loss(s, t), 0.25 * total / 2 / 1000)
    assert close(
        build(dict(type='OFDLoss', mul_factor=1))(s, t), total / 2)
    with pytest.raises(ValueError, match='mul_factor'):
        build(dict(type='OFDLoss', mul_factor=0))


def test_ofd_loss_by_hand():
    # (s, t): (-1, 0) skipped, (2, 1) -> 1, (-3, -2) skipped, (0.5, -1) ->
    # 2.25
    s = torch.tensor([[-1.0, 2.0, -3.0, 0.5]])
    t = torch.tensor([[0.0, 1.0, -2.0, -1.0]])
    assert close(build(dict(type='OFDLoss', mul_factor=1))(s, t), 3.25)


# ------------------------------------------------------------------- FTLoss
def test_factor_transfer_loss():
    s, t = randn(3, 2, 2, 2, seed=7), randn(3, 2, 2, 2, seed=8)
    total = 0.0
    for n in range(3):
        fs, ft = s[n].flatten().tolist(), t[n].flatten().tolist()
        ns = math.sqrt(sum(v * v for v in fs))
        nt = math.sqrt(sum(v * v for v in ft))
        total += sum(abs(a / ns - b / nt) for a, b in zip(fs, ft))
    loss = build(dict(type='FTLoss', loss_weight=2.0))
    assert close(loss(s, t), 2.0 * total / (3 * 8))
    # only the direction of each sample's factor counts
    assert close(build(dict(type='FTLoss'))(5 * s, t), total / 24)
    with pytest.raises(ValueError, match=r'\(3, 2, 2, 2\).*\(2, 8\)'):
        build(dict(type='FTLoss'))(s, torch.zeros(2, 8))


# ------------------------------------------------------------------ PKDLoss
def standardized_by_hand(x):
    """(x - mean_c) / (std_c + 1e-6) per channel over N, H, W (loops)."""
    n, c, h, w = x.shape
    out = torch.zeros_like(x)
    for k in range(c):
        vals = [float(x[i, k, a, b]) for i in range(n) for a in range(h)
                for b in range(w)]
        mean = sum(vals) / len(vals)
        std = math.sqrt(sum((v - mean)**2 for v in vals) / (len(vals) - 1))
        out[:, k] = (x[:, k] - mean) / (std + 1e-6)
    return out


def test_pkd_loss_one_level_and_tuples():
    s0, t0 = randn(2, 3, 3, 2, seed=9), randn(2, 3, 3, 2, seed=10) * 4 + 1
    s1, t1 = randn(2, 3, 2, 2, seed=11), randn(2, 3, 2, 2, seed=12)

    def level(s, t):
        d = standardized_by_hand(s) - standardized_by_hand(t)
        return float((d**2).sum()) / d.numel() / 2

    loss = build(dict(type='PKDLoss', loss_weight=6))
    assert close(loss(s0, t0), 6 * level(s0, t0))
    assert close(loss((s0, s1), (t0, t1)), 6 * (level(s0, t0) +
                                                level(s1, t1)))
    # invariant to a per-channel affine change of either map
    scale = torch.tensor([2.0, 0.5, 3.0]).view(1, 3, 1, 1)
    assert close(loss(s0 * scale + 7, t0), 6 * level(s0, t0), atol=1e-6)


def test_pkd_loss_is_one_minus_pearson():
    """With one channel, 1/(2M) sum (s^ - t^)^2 = (M-1)/M (1 - r)."""
    s, t = randn(2, 1, 3, 3, seed=13), randn(2, 1, 3, 3, seed=14)
    a, b = s.flatten().tolist(), t.flatten().tolist()
    m = len(a)
    ma, mb = sum(a) / m, sum(b) / m
    cov = sum((x - ma) * (y - mb) for x, y in zip(a, b))
    r = cov / math.sqrt(sum((x - ma)**2 for x in a) *
                        sum((y - mb)**2 for y in b))
    assert close(build(dict(type='PKDLoss'))(s, t), (m - 1) / m * (1 - r),
                 atol=1e-5)


def test_pkd_loss_resizes_and_checks():
    s, t = randn(2, 3, 2, 2, seed=15), randn(2, 3, 4, 4, seed=16)
    up = torch.nn.functional.interpolate(
        s, size=(4, 4), mode='bilinear', align_corners=False)
    down = torch.nn.functional.interpolate(
        t, size=(2, 2), mode='bilinear', align_corners=False)
    ref = build(dict(type='PKDLoss'))
    assert close(ref(s, t), ref(up, t))
    assert close(build(dict(type='PKDLoss', resize_stu=False))(s, t),
                 ref(s, down))
    with pytest.raises(ValueError, match='2 student levels but 1'):
        ref((s, s), (t, ))
    with pytest.raises(ValueError, match=r'\(2, 3, 2, 2\).*\(2, 5, 2, 2\)'):
        ref(s, torch.zeros(2, 5, 2, 2))


# ------------------------------------------------------------------ MGDLoss
def test_mgd_loss():
    s, t = randn(2, 3, 2, 2, seed=17), randn(2, 3, 2, 2, seed=18)
    total = sum((a - b)**2 for a, b in zip(s.flatten().tolist(),
                                           t.flatten().tolist()))
    assert close(build(dict(type='MGDLoss', alpha_mgd=0.00002))(s, t),
                 0.00002 * total / 2)
    assert build(dict(type='MGDLoss')).alpha_mgd == 0.00002
    with pytest.raises(ValueError, match='MGDLoss'):
        build(dict(type='MGDLoss'))(s, t[:1])


# ----------------------------------------------------------------- FBKDLoss
def fbkd_inputs(n=2, c=3, h=2, w=3):
    s = tuple(
        randn(*shape, seed=20 + i) for i, shape in enumerate(
            [(n, 1, h, w), (n, c, 1, 1), (n, c), (n, 1, h, w), (n, c, h, w),
             (n, c, h, w)]))
    t = tuple(
        randn(*shape, seed=40 + i) for i, shape in enumerate(
            [(n, 1, h, w), (n, c, 1, 1), (n, 1, h, w), (n, c, h, w),
             (n, c, h, w)]))
    # attention masks are positive (softmax times the number of entries)
    s = (s[0].exp(), s[1].exp()) + s[2:]
    t = (t[0].exp(), t[1].exp()) + t[2:]
    return s, t


def test_fbkd_loss_terms():
    s, t = fbkd_inputs()
    s_sp, _, s_ch_pool, s_sp_pool, s_rel, s_feat = s
    t_sp, _, t_sp_pool, t_rel, t_feat = t
    n, c, h, w = t_feat.shape
    feat = chan = spat = rel = 0.0
    for i in range(n):
        for k in range(c):
            mean_t = sum(float(t_feat[i, k, a, b]) for a in range(h)
                         for b in range(w)) / (h * w)
            chan += (mean_t - float(s_ch_pool[i, k]))**2
            for a in range(h):
                for b in range(w):
                    mask = (float(s_sp[i, 0, a, b]) +
                            float(t_sp[i, 0, a, b])) / 2
                    feat += mask * float(t_feat[i, k, a, b] -
                                         s_feat[i, k, a, b])**2
                    rel += float(t_rel[i, k, a, b] - s_rel[i, k, a, b])**2
        for a in range(h):
            for b in range(w):
                spat += float(t_sp_pool[i, 0, a, b] -
                              s_sp_pool[i, 0, a, b])**2
    weights = dict(mask_l2_weight=1.0, channel_weight=2.0,
                   spatial_weight=3.0, nonloacl_weight=4.0, loss_weight=0.5)
    expect = 0.5 * (math.sqrt(feat) + 2 * math.sqrt(chan) +
                    3 * math.sqrt(spat) + 4 * math.sqrt(rel))
    assert close(build(dict(type='FBKDLoss', **weights))(s, t), expect)
    default = 7e-5 * math.sqrt(feat) + 4e-3 * math.sqrt(chan) + \
        4e-3 * math.sqrt(spat) + 7e-5 * math.sqrt(rel)
    assert close(build(dict(type='FBKDLoss'))(s, t), default)


def test_fbkd_loss_gradients_and_checks():
    s, t = fbkd_inputs()
    s = tuple(x.clone().requires_grad_() for x in s)
    t = tuple(x.clone().requires_grad_() for x in t)
    build(dict(type='FBKDLoss'))(s, t).backward()
    assert s[0].grad is None and t[0].grad is None  # the mask is detached
    assert s[1].grad is None  # the channel mask is not used
    assert all(x.grad is not None for x in s[2:])
    assert t[3].grad is not None  # the teacher non-local block is trained
    loss = build(dict(type='FBKDLoss'))
    with pytest.raises(ValueError, match='s_input must be a tuple of 6'):
        loss(s[:5], t)
    with pytest.raises(ValueError, match='t_input must be a tuple of 5'):
        loss(s, t[0])
    bad = s[:4] + (torch.zeros(2, 3, 4, 4), ) + s[5:]
    with pytest.raises(ValueError,
                       match=r's_relation_adapt.*\(2, 3, 4, 4\).*'
                       r't_relation.*\(2, 3, 2, 3\)'):
        loss(bad, t)


# ------------------------------------------------------------- KDSoftCELoss
@pytest.mark.parametrize('tau', [1.0, 3.0])
def test_kd_soft_ce_loss(tau):
    s, t = randn(4, 5, seed=50) * 2, randn(4, 5, seed=51) * 2
    per_sample = []
    for i in range(4):
        p_t = softmax_row(t[i], tau)
        p_s = softmax_row(s[i], tau)
        per_sample.append(-sum(a * math.log(b) for a, b in zip(p_t, p_s)))
    loss = build(dict(type='KDSoftCELoss', tau=tau, loss_weight=0.5))
    assert close(loss(s, t), 0.5 * tau**2 * sum(per_sample) / 4)
    no_square = build(dict(type='KDSoftCELoss', tau=tau,
                           mult_tem_square=False, reduction='sum'))
    assert close(no_square(s, t), sum(per_sample))
    weight = torch.tensor([1.0, 0.0, 2.0, 0.5])
    weighted = [w * v for w, v in zip(weight.tolist(), per_sample)]
    plain = build(dict(type='KDSoftCELoss', tau=tau, mult_tem_square=False))
    assert close(plain(s, t, weight=weight), sum(weighted) / 4)
    assert close(plain(s, t, weight=weight, avg_factor=2.5),
                 sum(weighted) / 2.5)
    assert close(plain(s, t, reduction_override='none'),
                 torch.tensor(per_sample))


def test_kd_soft_ce_loss_gradient_and_checks():
    s = randn(3, 4, seed=52).requires_grad_()
    t = randn(3, 4, seed=53).requires_grad_()
    build(dict(type='KDSoftCELoss', tau=2.0))(s, t).backward()
    # d/ds of tau^2 * mean CE(p_t, softmax(s/tau)) = tau (p_s - p_t) / N
    p_s = torch.tensor([softmax_row(r, 2.0) for r in s.detach()])
    p_t = torch.tensor([softmax_row(r, 2.0) for r in t.detach()])
    assert close(s.grad, 2.0 * (p_s - p_t) / 3)
    assert t.grad is None
    loss = build(dict(type='KDSoftCELoss'))
    with pytest.raises(ValueError, match="reduction='batchmean'"):
        build(dict(type='KDSoftCELoss', reduction='batchmean'))
    with pytest.raises(ValueError, match='avg_factor'):
        loss(s, t, avg_factor=2, reduction_override='sum')
    with pytest.raises(ValueError, match=r'\(3, 4\).*\(3, 5\)'):
        loss(s, torch.zeros(3, 5))


# ------------------------------------------------------- DAFL (data-free)
def test_onehot_like_loss():
    t = randn(4, 5, seed=60) * 2
    expect = 0.0
    for row in t:
        probs = softmax_row(row)
        expect += -math.log(max(probs))
    assert close(build(dict(type='OnehotLikeLoss', loss_weight=0.05))(t),
                 0.05 * expect / 4)


def test_information_entropy_loss():
    t = randn(4, 5, seed=61) * 2
    rows = [softmax_row(r) for r in t]
    mean = [sum(r[c] for r in rows) / 4 for c in range(5)]
    expect = sum(p * math.log10(p) for p in mean)
    loss = build(dict(type='InformationEntropyLoss', loss_weight=5))
    assert close(loss(t), 5 * expect)
    # a batch covering the classes evenly reaches the minimum -log10(C)
    assert close(build(dict(type='InformationEntropyLoss'))(
        torch.eye(5) * 3), -math.log10(5))
    assert build(dict(type='InformationEntropyLoss')).gather is True


def test_information_entropy_loss_trains_through_the_teacher():
    t = randn(3, 4, seed=62).requires_grad_()
    build(dict(type='InformationEntropyLoss'))(t).backward()
    assert t.grad is not None and t.grad.abs().sum() > 0


@pytest.mark.parametrize('norm_type', ['abs', 'norm'])
def test_activation_loss(norm_type):
    f = randn(3, 4, 2, seed=63)
    vals = f.flatten().tolist()
    if norm_type == 'abs':
        expect = -sum(abs(v) for v in vals) / len(vals)
    else:
        expect = -math.sqrt(sum(v * v for v in vals))
    loss = build(dict(type='ActivationLoss', loss_weight=0.01,
                      norm_type=norm_type))
    assert close(loss(f), 0.01 * expect)


def test_data_free_losses_check_their_input():
    with pytest.raises(ValueError, match="norm_type.*'l1'"):
        build(dict(type='ActivationLoss', norm_type='l1'))
    with pytest.raises(ValueError, match=r'OnehotLikeLoss.*\(4, 5, 1\)'):
        build(dict(type='OnehotLikeLoss'))(torch.zeros(4, 5, 1))


# ------------------------------------------- ConfigurableDistiller, 1.x names
class TinyNet(nn.Module):

    def __init__(self) -> None:
        super().__init__()
        self.feat = nn.Conv2d(1, 3, 1)
        self.fc = nn.Linear(3, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.feat(x).mean((2, 3)))


RECORDERS = dict(
    fc=dict(type='ModuleOutputs', source='fc'),
    feat=dict(type='ModuleOutputs', source='feat'))


def distiller_for(loss_cfg, mapping):
    return ConfigurableDistiller(
        student_recorders=RECORDERS,
        teacher_recorders=RECORDERS,
        distill_losses=dict(loss_x=loss_cfg),
        loss_forward_mappings=dict(loss_x=mapping))


def pair(s_arg, t_arg, recorder='feat'):
    return {
        s_arg: dict(from_student=True, recorder=recorder),
        t_arg: dict(from_student=False, recorder=recorder)
    }


# (loss, argument names of the 1.x configs: abloss, ofd, factor_transfer,
# dfad, pkd, mgd, fbkd, dafl)
CONFIG_MAPPINGS = [
    (dict(type='ABLoss', loss_weight=1.0), pair('s_feature', 't_feature')),
    (dict(type='OFDLoss', loss_weight=0.25), pair('s_feature', 't_feature')),
    (dict(type='FTLoss', loss_weight=1.0), pair('s_feature', 't_feature')),
    (dict(type='L1Loss', loss_weight=-1.0),
     pair('s_feature', 't_feature', 'fc')),
    (dict(type='PKDLoss', loss_weight=6), pair('preds_S', 'preds_T')),
    (dict(type='MGDLoss', alpha_mgd=0.00002), pair('preds_S', 'preds_T')),
    (dict(type='KDSoftCELoss', tau=2), pair('preds_S', 'preds_T', 'fc')),
    (dict(type='FBKDLoss'), pair('s_input', 't_input')),
    (dict(type='OnehotLikeLoss', loss_weight=0.05),
     dict(preds_T=dict(from_student=False, recorder='fc'))),
    (dict(type='InformationEntropyLoss', loss_weight=5),
     dict(preds_T=dict(from_student=False, recorder='fc'))),
    (dict(type='ActivationLoss', loss_weight=0.01),
     dict(feat_T=dict(from_student=False, recorder='feat'))),
]


@pytest.mark.parametrize('loss_cfg,mapping', CONFIG_MAPPINGS,
                         ids=[c['type'] for c, _ in CONFIG_MAPPINGS])
def test_distiller_accepts_the_1x_argument_names(loss_cfg, mapping):
    distiller = distiller_for(loss_cfg, mapping)
    if loss_cfg['type'] == 'FBKDLoss':
        return  # its inputs are the FBKD connectors' tuples
    torch.manual_seed(0)
    student, teacher, x = TinyNet(), TinyNet(), torch.randn(4, 1, 3, 3)
    distiller.prepare_from_student(student)
    distiller.prepare_from_teacher(teacher)
    with distiller.teacher_recorders:
        teacher(x)
    with distiller.student_recorders:
        student(x)
    loss = distiller.compute_distill_losses()['loss_x']
    # the same loss called directly on the same outputs
    direct = build(loss_cfg)
    args = {}
    for name, spec in mapping.items():
        model = student if spec['from_student'] else teacher
        module = getattr(model, spec['recorder'])
        args[name] = module(x) if spec['recorder'] == 'feat' else model(x)
    if 'feat_T' in args:
        expect = direct(args['feat_T'])
    elif len(args) == 1:
        expect = direct(args['preds_T'])
    else:
        s_arg, t_arg = list(mapping)
        expect = direct(args[s_arg], args[t_arg])
    assert close(loss, expect)


def test_distiller_rejects_a_wrong_argument_name():
    with pytest.raises(KeyError, match="'preds_S'.*feat_T"):
        distiller_for(dict(type='ActivationLoss'),
                      dict(preds_S=dict(from_student=True, recorder='fc')))
    with pytest.raises(KeyError, match='t_input'):
        distiller_for(dict(type='FBKDLoss'),
                      dict(s_input=dict(from_student=True, recorder='fc')))


def test_distill_cross_entropy_uses_the_teacher_classes():
    """1.x's distillation ``CrossEntropyLoss`` (DeiT): the student's
    cross-entropy against the teacher's argmax, built for that name inside
    a ConfigurableDistiller only."""
    import math

    from mmrazor.models.distillers import ConfigurableDistiller
    from mmrazor.models.losses import DistillCrossEntropyLoss
    s = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]])
    t = torch.tensor([[0.0, 4.0, 1.0], [9.0, 0.0, 0.0]])
    # teacher classes 1 and 0; -log softmax by hand
    row0 = -(0.0 - math.log(math.exp(2) + 1 + math.exp(-1)))
    row1 = -(0.5 - math.log(2 * math.exp(0.5) + math.exp(3)))
    loss = DistillCrossEntropyLoss(loss_weight=0.5)(s, t)
    assert abs(float(loss) - 0.5 * (row0 + row1) / 2) < 1e-6
    fc = dict(type='ModuleOutputs', source='fc')
    distiller = ConfigurableDistiller(
        student_recorders=dict(fc=fc),
        teacher_recorders=dict(fc=fc),
        distill_losses=dict(
            loss_distill=dict(type='CrossEntropyLoss', loss_weight=0.5)),
        loss_forward_mappings=dict(
            loss_distill=dict(
                preds_S=dict(from_student=True, recorder='fc'),
                preds_T=dict(from_student=False, recorder='fc'))))
    assert type(distiller.distill_losses['loss_distill']) is \
        DistillCrossEntropyLoss
    with pytest.raises(ValueError, match=r'\(2, 3\) and \(2, 4\)'):
        DistillCrossEntropyLoss()(s, torch.zeros(2, 4))
