"""Channel-wise distillation (CWD) of dense predictors.

* :class:`ChannelWiseDivergence` against a hand computation in plain Python
  (float64), its gradient against the closed form, and the properties that
  make it *channel-wise* (a spatial, not a class, softmax);
* one distillation step of the small CWD segmentation config
  (``configs/distill/cwd/cwd_logits_pspnet_r50-d8_pspnet_r18-d8_fashion-mnist-dense.py``)
  on a real batch of the generated Fashion-MNIST dense data: the losses, the
  teacher that stays frozen and the student that learns;
* one step of the small CWD detection config (RetinaNet, FPN + logits).
"""
import copy
import math
import os.path as osp
from typing import List

import pytest
import torch
from det_seg_utils import DENSE_ROOT, REPO

from mmrazor.registry import MODELS

CWD_DIR = osp.join(REPO, 'configs', 'distill', 'cwd')
SEG_CFG = osp.join(
    CWD_DIR, 'cwd_logits_pspnet_r50-d8_pspnet_r18-d8_fashion-mnist-dense.py')
DET_CFG = osp.join(CWD_DIR,
                   'cwd_fpn_retina_r50_retina_r18_fashion-mnist-dense.py')


def hand_cwd(student: List, teacher: List, tau: float) -> float:
    """CWD of Shu et al. (2021) written out with Python floats.

    ``student`` / ``teacher`` are nested lists ``[n][c][i]`` (``i`` the
    flattened spatial location). For every (n, c) the map is turned into a
    distribution over locations, ``phi_i = exp(y_i / tau) / sum_j exp(y_j /
    tau)``, and ``sum_i phi^T_i log(phi^T_i / phi^S_i)`` is accumulated; the
    sum is scaled by ``tau^2 / (N C)``.
    """
    n_maps = 0
    total = 0.0
    for s_img, t_img in zip(student, teacher):
        for s_map, t_map in zip(s_img, t_img):
            n_maps += 1
            zs = sum(math.exp(v / tau) for v in s_map)
            zt = sum(math.exp(v / tau) for v in t_map)
            for vs, vt in zip(s_map, t_map):
                ps = math.exp(vs / tau) / zs
                pt = math.exp(vt / tau) / zt
                total += pt * math.log(pt / ps)
    return tau**2 * total / n_maps


def as_lists(x: torch.Tensor) -> List:
    """``(N, C, H, W)`` tensor as nested lists ``[n][c][h * w]``."""
    n, c = x.shape[:2]
    return x.reshape(n, c, -1).double().tolist()


# ----------------------------------------------------------------------
# the loss
# ----------------------------------------------------------------------
@pytest.mark.parametrize('tau,weight', [(1.0, 1.0), (4.0, 3.0)])
def test_cwd_equals_hand_computation(tau, weight):
    g = torch.Generator().manual_seed(7)
    s = torch.randn(2, 3, 2, 3, generator=g, dtype=torch.float64) * 2
    t = torch.randn(2, 3, 2, 3, generator=g, dtype=torch.float64) * 2
    loss = MODELS.build(
        dict(type='ChannelWiseDivergence', tau=tau, loss_weight=weight))
    expect = weight * hand_cwd(as_lists(s), as_lists(t), tau)
    got = loss(s, t)
    assert got.dim() == 0
    assert got.item() == pytest.approx(expect, rel=1e-10, abs=1e-12)
    assert got.item() > 0


def test_cwd_gradient_is_closed_form():
    """d/d y^S of tau^2/(NC) sum KL = tau (phi^S - phi^T) / (N C); the
    teacher map gets no gradient."""
    tau, n, c = 2.0, 2, 4
    g = torch.Generator().manual_seed(3)
    s = torch.randn(n, c, 3, 3, generator=g, dtype=torch.float64)
    t = torch.randn(n, c, 3, 3, generator=g, dtype=torch.float64)
    s.requires_grad_()
    t.requires_grad_()
    MODELS.build(dict(type='ChannelWiseDivergence', tau=tau))(s, t).backward()
    phi_s = torch.softmax(s.detach().reshape(n, c, -1) / tau, dim=-1)
    phi_t = torch.softmax(t.detach().reshape(n, c, -1) / tau, dim=-1)
    expect = (tau * (phi_s - phi_t) / (n * c)).reshape(s.shape)
    assert torch.allclose(s.grad, expect, atol=1e-12)
    assert t.grad is None


def test_cwd_is_a_spatial_softmax_per_channel():
    g = torch.Generator().manual_seed(11)
    s = torch.randn(2, 3, 4, 4, generator=g, dtype=torch.float64)
    t = torch.randn(2, 3, 4, 4, generator=g, dtype=torch.float64)
    loss = MODELS.build(dict(type='ChannelWiseDivergence', tau=1.0))
    base = loss(s, t)
    # A constant added to one whole channel map changes nothing ...
    shift = torch.zeros(2, 3, 1, 1, dtype=torch.float64)
    shift[0, 1] = 5.0
    shift[1, 2] = -3.0
    assert torch.allclose(loss(s + shift, t), base, atol=1e-12)
    # ... but a constant added to one location of every channel (what a
    # softmax over channels would ignore) does.
    spot = torch.zeros(1, 1, 4, 4, dtype=torch.float64)
    spot[..., 1, 2] = 5.0
    assert not torch.allclose(loss(s + spot, t), base)
    # Identical maps give zero.
    assert loss(t.clone(), t).abs().item() < 1e-12


def test_cwd_errors_name_the_problem():
    loss = MODELS.build(dict(type='ChannelWiseDivergence'))
    with pytest.raises(ValueError, match=r'\(2, 3, 4, 4\).*\(2, 5, 4, 4\)'):
        loss(torch.zeros(2, 3, 4, 4), torch.zeros(2, 5, 4, 4))
    with pytest.raises(ValueError, match=r'\(2, 3\)'):
        loss(torch.zeros(2, 3), torch.zeros(2, 3))
    with pytest.raises(ValueError, match='tau'):
        MODELS.build(dict(type='ChannelWiseDivergence', tau=0))


# ----------------------------------------------------------------------
# a distillation step on real data
# ----------------------------------------------------------------------
def _build_algorithm(cfg_path: str, tmp_path, num_batch: int):
    """The config's algorithm, with its teacher loaded from a checkpoint
    of random weights written to ``tmp_path``, and a real batch."""
    from mmengine.config import Config

    cfg = Config.fromfile(cfg_path)
    torch.manual_seed(0)
    teacher = MODELS.build(copy.deepcopy(cfg.model.distiller.teacher))
    ckpt = str(tmp_path / 'teacher.pth')
    torch.save({'state_dict': teacher.state_dict()}, ckpt)
    cfg.model.distiller.teacher_ckpt = ckpt
    algo = MODELS.build(cfg.model)
    algo.train()
    return algo, teacher, config_batch(cfg, num_batch)


def config_batch(cfg, num: int) -> dict:
    """The first ``num`` training samples through the config's own
    pipeline (random flips off), collated as its dataloader does."""
    from mmengine.dataset import pseudo_collate

    from mmrazor.registry import DATASETS
    dataset_cfg = copy.deepcopy(cfg.train_dataloader.dataset)
    dataset_cfg.data_root = DENSE_ROOT
    for step in dataset_cfg.pipeline:
        if step['type'].endswith('RandomFlip'):
            step['prob'] = 0.0
    dataset = DATASETS.build(dataset_cfg)
    return pseudo_collate([dataset[i] for i in range(num)])


def test_cwd_segmentation_step(tmp_path):
    algo, saved_teacher, batch = _build_algorithm(SEG_CFG, tmp_path, 4)
    distiller = algo.distiller
    teacher = distiller.teacher
    student = algo.architecture.model
    # The teacher holds the checkpoint's weights, is frozen and in eval mode.
    for key, value in saved_teacher.state_dict().items():
        assert torch.equal(teacher.state_dict()[key], value), key
    assert not teacher.training and student.training
    assert not any(p.requires_grad for p in teacher.parameters())
    teacher_before = copy.deepcopy(teacher.state_dict())
    student_before = copy.deepcopy(student.state_dict())

    data = algo.data_preprocessor(batch, True)
    inputs = data['inputs']
    assert inputs.shape == (4, 3, 64, 64)
    torch.manual_seed(123)
    losses = algo(**data, mode='loss')
    assert set(losses) >= {
        'student.decode.loss_ce', 'student.aux.loss_ce',
        'distiller.loss_cwd_logits'
    }
    cwd = losses['distiller.loss_cwd_logits']
    assert cwd.requires_grad and cwd.item() > 0

    # The same value from the two networks' logits computed independently:
    # the teacher in eval mode, the student with the same dropout draw.
    with torch.no_grad():
        t_logits = teacher.decode_head(teacher.extract_feat(inputs))
        torch.manual_seed(123)
        s_logits = student.decode_head(student.extract_feat(inputs))
    assert s_logits.shape == t_logits.shape == (4, 11, 8, 8)
    expect = 3.0 * hand_cwd(as_lists(s_logits), as_lists(t_logits), 1.0)
    assert cwd.item() == pytest.approx(expect, rel=1e-4)

    # The distillation loss reaches the student's decode head, not its
    # auxiliary head, and nothing of the teacher.
    cwd.backward(retain_graph=True)
    assert student.decode_head.conv_seg.weight.grad.abs().sum() > 0
    aux_grad = student.auxiliary_head.conv_seg.weight.grad
    assert aux_grad is None or aux_grad.abs().sum() == 0
    assert all(p.grad is None for p in teacher.parameters())

    # A full optimisation step changes the student only (BN statistics of
    # the teacher included).
    algo.zero_grad()
    optimizer = torch.optim.SGD(
        [p for p in algo.parameters() if p.requires_grad], lr=0.1)
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    optimizer.step()
    assert all(p.grad is None for p in teacher.parameters())
    for key, value in teacher.state_dict().items():
        assert torch.equal(value, teacher_before[key]), key
    changed = [
        k for k, v in student.state_dict().items()
        if not torch.equal(v, student_before[k])
    ]
    assert 'decode_head.conv_seg.weight' in changed
    assert 'backbone.stem.0.weight' in changed
    assert any(k.endswith('running_mean') for k in changed)
    # No hook or recorded output outlives the step.
    assert distiller.get_teacher_outputs() == {}
    assert not teacher.decode_head.conv_seg._forward_hooks
    assert not student.decode_head.conv_seg._forward_hooks


def test_cwd_detection_step(tmp_path):
    algo, _, batch = _build_algorithm(DET_CFG, tmp_path, 2)
    teacher = algo.distiller.teacher
    student = algo.architecture.model
    teacher_before = copy.deepcopy(teacher.state_dict())
    losses = algo(**algo.data_preprocessor(batch, True), mode='loss')
    cwd_names = [f'distiller.loss_cwd_fpn{i}'
                 for i in range(4)] + ['distiller.loss_cwd_cls']
    assert set(losses) >= {'student.loss_cls', 'student.loss_bbox',
                           *cwd_names}
    for name in cwd_names:
        assert losses[name].requires_grad and losses[name].item() > 0, name
    total = 0
    for k, v in losses.items():
        if 'loss' in k:
            total = total + (sum(v) if isinstance(v, list) else v)
    total.backward()
    assert student.bbox_head.retina_cls.weight.grad.abs().sum() > 0
    assert student.neck.fpn_convs[3].conv.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in teacher.parameters())
    for key, value in teacher.state_dict().items():
        assert torch.equal(value, teacher_before[key]), key


# ----------------------------------------------------------------------
# the configs for Cityscapes and COCO (built and run forward, untrained)
# ----------------------------------------------------------------------
@pytest.mark.parametrize('name,shape,expect', [
    ('cwd_logits_pspnet_r101-d8_pspnet_r18-d8_4xb2-80k_cityscapes-512x1024',
     (1, 3, 32, 64), {'decode_head.conv_seg': [(1, 19, 4, 8)]}),
    ('cwd_fpn_retina_r101_retina_r50_1x_coco', (1, 3, 64, 64), {
        **{f'neck.fpn_convs.{i}.conv': [(1, 256, 8 >> i, 8 >> i)]
           for i in range(4)},
        'neck.fpn_convs.4.conv': [(1, 256, 1, 1)],
        'bbox_head.retina_cls': [(1, 720, 8 >> i, 8 >> i)
                                 for i in range(4)] + [(1, 720, 1, 1)],
    }),
    ('cwd_cls_head_gfl_r101_fpn_gfl_r50_fpn_1x_coco', (1, 3, 64, 64), {
        'bbox_head.gfl_cls': [(1, 80, 8 >> i, 8 >> i)
                              for i in range(4)] + [(1, 80, 1, 1)]
    }),
])
def test_classic_configs_pair_equal_shapes(name, shape, expect):
    """The full-size configs build (without their teacher checkpoint,
    which is downloaded) and every distilled student output has the shape
    of its teacher output, so no align module is needed."""
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(CWD_DIR, f'{name}.py'))
    assert cfg.model.distiller.teacher_ckpt.startswith('https://')
    cfg.model.distiller.teacher_ckpt = None
    algo = MODELS.build(cfg.model)
    algo.eval()
    distiller = algo.distiller
    torch.manual_seed(0)
    x = torch.randn(shape)
    with torch.no_grad():
        distiller.exec_teacher_forward(x)
        distiller.exec_student_forward(
            algo.architecture, x, None, with_loss=False)
        got_s = distiller.get_student_outputs()
        got_t = distiller.get_teacher_outputs()
        assert {p: [tuple(o.shape) for o in outs]
                for p, outs in got_s.items()} == expect
        assert {p: [tuple(o.shape) for o in outs]
                for p, outs in got_t.items()} == expect
        losses = distiller.compute_distill_loss()
    assert set(losses) == {
        name
        for comp in distiller.components for name in comp['losses']
    }
    assert all(torch.isfinite(v) for v in losses.values())
