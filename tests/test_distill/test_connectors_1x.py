"""The 1.x connectors, each against its computation written out here in
plain torch (weights copied from the module, layers applied by hand)."""
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
    torch.manual_seed(0)
    yield
    torch.set_default_dtype(old)


def build(cfg):
    import mmrazor.models  # noqa: F401
    return MODELS.build(cfg)


def randomize(module):
    """Give every parameter and BN statistic a random value."""
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn_like(p) * 0.5)
        for name, b in module.named_buffers():
            if name.endswith('running_var'):
                b.copy_(torch.rand_like(b) + 0.5)
            elif name.endswith('running_mean'):
                b.copy_(torch.randn_like(b) * 0.1)


def bn_eval(x, bn):
    """Batch norm in eval mode, by hand."""
    shape = (1, -1, 1, 1)
    out = (x - bn.running_mean.view(shape)) / torch.sqrt(
        bn.running_var.view(shape) + bn.eps)
    if bn.weight is not None:
        out = out * bn.weight.view(shape) + bn.bias.view(shape)
    return out


def max_pool(x, k):
    n, c, h, w = x.shape
    return x.reshape(n, c, h // k, k, w // k, k).amax(dim=(3, 5))


def softmax(z, dim):
    e = torch.exp(z - z.max(dim=dim, keepdim=True).values)
    return e / e.sum(dim=dim, keepdim=True)


# ----------------------------------------------------------------- CRD
def test_crd_connector():
    conn = build(dict(type='CRDConnector', dim_in=12, dim_out=5))
    x = torch.randn(3, 3, 2, 2)
    out = conn(x)
    for i in range(3):
        z = [sum(conn.linear.weight[o, j] * x[i].flatten()[j]
                 for j in range(12)) + conn.linear.bias[o] for o in range(5)]
        norm = math.sqrt(sum(float(v)**2 for v in z))
        for o in range(5):
            assert out[i, o].item() == pytest.approx(float(z[o]) / norm)
    with pytest.raises(ValueError, match=r'\(3, 5\).*dim_in=12'):
        conn(torch.randn(3, 5))


# --------------------------------------------------------- torch by name
def test_torch_functional_connector():
    conn = build(
        dict(type='TorchFunctionalConnector', function_name='avg_pool2d',
             func_args=dict(kernel_size=2)))
    x = torch.randn(2, 3, 4, 4)
    expect = x.reshape(2, 3, 2, 2, 2, 2).mean(dim=(3, 5))
    assert torch.allclose(conn(x), expect)
    up = build(
        dict(type='TorchFunctionalConnector', function_name='interpolate',
             func_args=dict(scale_factor=2, mode='nearest')))
    expect = x.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    assert torch.equal(up(x), expect)
    with pytest.raises(ValueError, match="function_name='conv2d'"):
        build(dict(type='TorchFunctionalConnector', function_name='conv2d'))


def test_torch_nn_connector():
    conn = build(
        dict(type='TorchNNConnector', module_name='Linear',
             module_args=dict(in_features=4, out_features=2)))
    x = torch.randn(3, 4)
    w, b = conn.func.weight, conn.func.bias
    expect = torch.tensor([[sum(w[o, j] * x[i, j] for j in range(4)) + b[o]
                            for o in range(2)] for i in range(3)])
    assert torch.allclose(conn(x), expect)
    relu = build(dict(type='TorchNNConnector', module_name='ReLU'))
    assert torch.equal(relu(x), x.clamp(min=0))
    with pytest.raises(ValueError, match="module_name='LSTM'"):
        build(dict(type='TorchNNConnector', module_name='LSTM'))


# ----------------------------------------------------------------- OFD
def normal_cdf(z):
    return 0.5 * (1 + math.erf(z / math.sqrt(2)))


def normal_pdf(z):
    return math.exp(-z * z / 2) / math.sqrt(2 * math.pi)


def test_ofd_margin_formula():
    from mmrazor.models.distillers import ofd_margin
    weight = torch.tensor([1.0, -2.0, 0.5, 0.1])
    bias = torch.tensor([0.0, 1.0, -0.3, 1.0])
    margin = ofd_margin(weight, bias)
    assert margin.shape == (1, 4, 1, 1)
    for c in range(4):
        s, m = abs(weight[c].item()), bias[c].item()
        if normal_cdf(-m / s) > 1e-3:
            expect = m - s * normal_pdf(m / s) / normal_cdf(-m / s)
        else:
            expect = -3 * s
        assert margin[0, c, 0, 0].item() == pytest.approx(expect, rel=1e-9)
    # channel 0: N(0, 1) -> E[x | x < 0] = -sqrt(2 / pi)
    assert margin[0, 0, 0, 0].item() == pytest.approx(-math.sqrt(2 / math.pi))
    # channel 3: m / s = 10, negatives too rare -> -3 s
    assert margin[0, 3, 0, 0].item() == pytest.approx(-0.3)
    with pytest.raises(ValueError, match=r'\(4,\) and \(3,\)'):
        ofd_margin(weight, bias[:3])


def test_ofd_teacher_connector():
    conn = build(dict(type='OFDTeacherConnector'))
    x = torch.randn(2, 3, 2, 2, requires_grad=True)
    with pytest.raises(RuntimeError, match='init_margin'):
        conn(x)
    conn.init_margin(torch.tensor([-0.5, 0.0, -2.0]))
    out = conn(x)
    margins = [-0.5, 0.0, -2.0]
    for idx in torch.cartesian_prod(*[torch.arange(s) for s in x.shape]):
        n, c, h, w = idx.tolist()
        assert out[n, c, h, w].item() == max(x[n, c, h, w].item(), margins[c])
    assert not out.requires_grad
    assert 'margin' not in conn.state_dict()
    with pytest.raises(ValueError, match=r'\(2, 4, 2, 2\)'):
        conn(torch.randn(2, 4, 2, 2))
    bn = torch.nn.BatchNorm2d(3)
    randomize(bn)
    conn.init_margin_from_bn(bn)
    from mmrazor.models.distillers import ofd_margin
    assert torch.equal(conn.margin, ofd_margin(bn.weight, bn.bias))
    with pytest.raises(TypeError, match='Conv2d'):
        conn.init_margin_from_bn(torch.nn.Conv2d(3, 3, 1))


# ----------------------------------------------------------------- MGD
@pytest.mark.parametrize('student_channels', [3, 4])
def test_mgd_connector(student_channels):
    conn = build(
        dict(type='MGDConnector', student_channels=student_channels,
             teacher_channels=4, lambda_mgd=0.4))
    x = torch.randn(2, student_channels, 5, 5)
    torch.manual_seed(7)
    out = conn(x)
    torch.manual_seed(7)
    keep = (torch.rand(2, 1, 5, 5) <= 0.6).double()
    if student_channels != 4:
        a = conn.align
        x = torch.einsum('oc,nchw->nohw', a.weight[:, :, 0, 0], x) + \
            a.bias.view(1, -1, 1, 1)
    else:
        assert conn.align is None
    c1, c2 = conn.generation[0], conn.generation[2]
    hidden = F.conv2d(x * keep, c1.weight, c1.bias, padding=1).clamp(min=0)
    expect = F.conv2d(hidden, c2.weight, c2.bias, padding=1)
    assert torch.allclose(out, expect)


def test_mgd_mask_ratio():
    conn = build(dict(type='MGDConnector', student_channels=2,
                      teacher_channels=2, lambda_mgd=0.65))
    mask = conn.random_mask(torch.zeros(4, 2, 50, 50))
    assert mask.shape == (4, 1, 50, 50)
    assert set(mask.unique().tolist()) <= {0.0, 1.0}
    assert abs(1 - mask.mean().item() - 0.65) < 0.03
    with pytest.raises(ValueError, match=r'\(N, 2, H, W\).*\(1, 3, 4, 4\)'):
        conn(torch.randn(1, 3, 4, 4))


# ---------------------------------------------------------------- BYOT
def sep_conv_by_hand(x, sep, stride):
    """DARTS separable conv: (ReLU, depthwise 3x3, 1x1, BN) x 2."""
    convs = [m for m in sep.modules() if isinstance(m, torch.nn.Conv2d)]
    bns = [m for m in sep.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for rep in range(2):
        dw, pw = convs[2 * rep], convs[2 * rep + 1]
        x = F.conv2d(x.clamp(min=0), dw.weight, stride=stride if rep == 0
                     else 1, padding=1, groups=x.shape[1])
        x = bn_eval(torch.einsum('oc,nchw->nohw', pw.weight[:, :, 0, 0], x),
                    bns[rep])
    return x


def test_byot_connector():
    conn = build(
        dict(type='BYOTConnector', in_channel=4, out_channel=8,
             num_classes=3, expansion=1, kernel_size=3, stride=2,
             pool_size=2))
    randomize(conn)
    conn.eval()
    x = torch.randn(2, 4, 4, 4)
    feat, logits = conn(x)
    att = sep_conv_by_hand(x, conn.attention[0], 2)
    att = bn_eval(att, conn.attention[1]).clamp(min=0)
    att = torch.sigmoid(
        F.interpolate(att, scale_factor=2, mode='bilinear'))
    y = sep_conv_by_hand(att * x, conn.scala[0], 2)  # (2, 8, 2, 2)
    expect_feat = y.mean(dim=(2, 3))
    assert feat.shape == (2, 8, 1, 1)  # as a global-pooling neck's gap
    assert torch.allclose(feat.flatten(1), expect_feat)
    expect_logits = expect_feat @ conn.fc.weight.T + conn.fc.bias
    assert torch.allclose(logits, expect_logits)
    with pytest.raises(ValueError, match='out_channel=12, in_channel=4'):
        build(dict(type='BYOTConnector', in_channel=4, out_channel=12,
                   num_classes=3))
    with pytest.raises(ValueError, match=r'\(N, 4, H, W\).*\(2, 3, 4, 4\)'):
        conn(torch.randn(2, 3, 4, 4))


# ---------------------------------------------------------------- FBKD
def masks_by_hand(x, t_s, t_c):
    n, c, h, w = x.shape
    spatial = torch.zeros(n, 1, h, w)
    channel = torch.zeros(n, c, 1, 1)
    for i in range(n):
        a = x[i].abs().mean(dim=0).flatten() / t_s
        spatial[i, 0] = (softmax(a, 0) * h * w).reshape(h, w)
        b = x[i].abs().mean(dim=(1, 2)) / t_c
        channel[i, :, 0, 0] = softmax(b, 0) * c
    return spatial, channel


def non_local_by_hand(x, block, stride):
    """Dot-product non-local block with keys/values pooled by 2 * stride."""
    def conv1x1(m, z):
        conv = m.conv
        out = torch.einsum('oc,nchw->nohw', conv.weight[:, :, 0, 0], z)
        return out if conv.bias is None else out + conv.bias.view(1, -1, 1,
                                                                  1)
    n, c, h, w = x.shape
    theta = conv1x1(block.theta, x).flatten(2).transpose(1, 2)  # n, hw, c'
    phi = max_pool(max_pool(conv1x1(block.phi[0][0], x), 2), stride)
    g = max_pool(max_pool(conv1x1(block.g[0][0], x), 2), stride)
    phi, g = phi.flatten(2), g.flatten(2).transpose(1, 2)
    pairwise = theta @ phi / phi.shape[-1]
    y = (pairwise @ g).transpose(1, 2).reshape(n, -1, h, w)
    return x + bn_eval(conv1x1(block.conv_out, y), block.conv_out.bn)


def test_fbkd_connectors():
    cfg = dict(in_channels=4, reduction=2, mode='dot_product',
               sub_sample=True, maxpool_stride=2, spatial_T=0.5,
               channel_T=0.7)
    student = build(dict(type='FBKDStudentConnector', **cfg))
    teacher = build(dict(type='FBKDTeacherConnector', **cfg))
    for m in (student, teacher):
        randomize(m)
        m.eval()
    x = torch.randn(2, 4, 8, 8)
    s_out = student(x)
    t_out = teacher(x)
    assert len(s_out) == 6 and len(t_out) == 5
    spatial, channel = masks_by_hand(x, 0.5, 0.7)
    for out in (s_out, t_out):
        assert torch.allclose(out[0], spatial)
        assert torch.allclose(out[1], channel)
    lin = student.channel_wise_adaptation
    assert torch.allclose(s_out[2],
                          x.mean(dim=(2, 3)) @ lin.weight.T + lin.bias)
    sp = student.spatial_wise_adaptation
    assert torch.allclose(
        s_out[3], F.conv2d(x.mean(dim=1, keepdim=True), sp.weight, sp.bias,
                           padding=1))
    nla = student.non_local_adaptation
    relation = non_local_by_hand(x, student.student_non_local, 2)
    assert torch.allclose(
        s_out[4], F.conv2d(relation, nla.weight, nla.bias))
    ada = student.adaptation_layers
    assert torch.allclose(s_out[5], F.conv2d(x, ada.weight, ada.bias))
    assert torch.allclose(t_out[2], x.mean(dim=1, keepdim=True))
    assert torch.allclose(
        t_out[3], non_local_by_hand(x, teacher.teacher_non_local, 2))
    assert t_out[4] is x
    with pytest.raises(ValueError, match=r'\(N, 4, H, W\).*\(2, 3, 8, 8\)'):
        teacher(torch.randn(2, 3, 8, 8))


def test_fbkd_layout_fits_fbkd_loss():
    loss = build(dict(type='FBKDLoss'))
    cfg = dict(in_channels=4, mode='dot_product', sub_sample=True)
    student = build(dict(type='FBKDStudentConnector', **cfg))
    teacher = build(dict(type='FBKDTeacherConnector', **cfg))
    x = torch.randn(2, 4, 8, 8)
    value = loss(student(x), teacher(x + 1))
    assert value.dim() == 0 and torch.isfinite(value)


# ------------------------------------------------------ factor transfer
def encoder_by_hand(x, convs, bns=None, transpose=False):
    for i, conv in enumerate(convs):
        op = F.conv_transpose2d if transpose else F.conv2d
        x = op(x, conv.weight, conv.bias, padding=1)
        if bns is not None:
            x = bn_eval(x, bns[i])
        x = torch.where(x > 0, x, 0.1 * x)
    return x


def test_paraphraser():
    conn = build(dict(type='Paraphraser', in_channel=4, out_channel=2))
    x = torch.randn(2, 4, 3, 3)
    enc = [conn.encoder[i] for i in (0, 3, 6)]
    dec = [conn.decoder[i] for i in (0, 3, 6)]
    factor = encoder_by_hand(x, enc)
    recon = encoder_by_hand(factor, dec, transpose=True)
    out = conn(x)
    assert out.shape == (2, 4, 3, 3)
    assert torch.allclose(out, recon)
    assert out.requires_grad
    conn.phase = 'train'
    out = conn(x)
    assert torch.allclose(out, factor) and not out.requires_grad
    # 1.x checkpoint layout: conv, (BN), LeakyReLU triplets.
    keys = set(conn.state_dict())
    assert {'encoder.0.weight', 'encoder.3.weight', 'encoder.6.bias',
            'decoder.0.weight', 'decoder.6.bias'} <= keys
    with pytest.raises(ValueError, match="phase='finetune'"):
        build(dict(type='Paraphraser', in_channel=4, out_channel=2,
                   phase='finetune'))


def test_translator():
    conn = build(dict(type='Translator', in_channel=3, out_channel=5))
    randomize(conn)
    conn.eval()
    x = torch.randn(2, 3, 4, 4)
    convs = [conn.encoder[i] for i in (0, 3, 6)]
    bns = [conn.encoder[i] for i in (1, 4, 7)]
    assert torch.allclose(conn(x), encoder_by_hand(x, convs, bns))
    assert 'encoder.1.running_mean' in conn.state_dict()
    with pytest.raises(ValueError, match=r'\(N, 3, H, W\).*\(2, 4, 4, 4\)'):
        conn(torch.randn(2, 4, 4, 4))
