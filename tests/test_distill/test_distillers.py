"""Distillers and distillation algorithms: frozen teachers, gradients,
hooks, align modules, errors."""
import copy

import pytest
import torch
from distill_helpers import classifier_cfg, distill_cfg, make_batch
from mmengine.optim import OptimWrapper

from mmrazor.models import (AlignMethodDistill, GeneralDistill,
                            MMClsArchitecture, SelfDistiller,
                            SingleTeacherDistiller)
from mmrazor.registry import MODELS


def build(cfg):
    import mmrazor.models  # noqa: F401
    return MODELS.build(copy.deepcopy(cfg))


@pytest.fixture
def batch():
    return make_batch()


def sgd(model, **kw):
    params = [p for p in model.parameters() if p.requires_grad]
    return OptimWrapper(torch.optim.SGD(params, lr=0.1, momentum=0.9, **kw))


def hook_count(model):
    return sum(
        len(m._forward_hooks) + len(m._forward_pre_hooks)
        for m in model.modules())


def test_build_from_config_any_scope():
    alg = build(distill_cfg())
    assert isinstance(alg, GeneralDistill)
    assert isinstance(alg.architecture, MMClsArchitecture)
    assert isinstance(alg.distiller, SingleTeacherDistiller)
    assert type(alg.distiller.teacher).__name__ == 'ImageClassifier'
    # The data preprocessor is the student's.
    assert alg.data_preprocessor is alg.architecture.model.data_preprocessor


def test_frozen_teacher_unchanged_and_without_gradients(batch):
    alg = build(distill_cfg())
    teacher = alg.distiller.teacher
    before = copy.deepcopy(teacher.state_dict())
    student_before = copy.deepcopy(alg.architecture.state_dict())
    align = alg.distiller.align_modules['backbone_layer3']
    align_before = align.weight.detach().clone()
    # The optimizer is given *all* parameters, weight decay included: a
    # frozen teacher must not move anyway.
    optim = OptimWrapper(
        torch.optim.SGD(
            alg.parameters(), lr=0.5, momentum=0.9, weight_decay=0.1))
    alg.train()
    assert not teacher.training
    assert all(not m.training for m in teacher.modules())
    for _ in range(2):
        log_vars = alg.train_step(batch, optim)
    assert {'student.loss', 'distiller.loss_kd',
            'distiller.loss_fitnet'} <= set(log_vars)
    for p in teacher.parameters():
        assert not p.requires_grad and p.grad is None
    after = teacher.state_dict()
    for key, value in before.items():
        assert torch.equal(value, after[key]), key  # BN stats included
    changed = [
        k for k, v in alg.architecture.state_dict().items()
        if v.is_floating_point() and not torch.equal(v, student_before[k])
    ]
    assert changed, 'the student should have been trained'
    # The align module is trained as well.
    assert not torch.equal(align.weight, align_before)


def test_teacher_runs_under_no_grad(batch):
    alg = build(distill_cfg())
    seen = []
    alg.distiller.teacher.backbone.register_forward_hook(
        lambda m, i, o: seen.append(torch.is_grad_enabled()))
    data = alg.data_preprocessor(batch, True)
    alg(**data, mode='loss')
    assert seen == [False]
    recorded = []
    # Teacher outputs carry no graph.
    alg.distiller.exec_teacher_forward(data['inputs'])
    recorded = alg.distiller.get_teacher_outputs()['head.fc']
    assert not recorded[0].requires_grad
    alg.distiller.reset_outputs()


def test_distill_loss_matches_manual_computation(batch):
    alg = build(distill_cfg())
    alg.eval()  # deterministic BN for the comparison
    data = alg.data_preprocessor(batch, False)
    losses = alg.loss(**data)
    with torch.no_grad():
        t_logits = alg.distiller.teacher(data['inputs'], mode='tensor')
        s_logits = alg.architecture.model(data['inputs'], mode='tensor')
    p_t = torch.softmax(t_logits / 4, 1)
    log_p_s = torch.log_softmax(s_logits / 4, 1)
    expect = 16 * (p_t * (torch.log(p_t) - log_p_s)).sum() / len(p_t)
    assert torch.allclose(losses['distiller.loss_kd'], expect, atol=1e-5)


def test_hooks_do_not_leak(batch):
    alg = build(distill_cfg())
    optim = sgd(alg)
    assert hook_count(alg) == 0
    for _ in range(3):
        alg.train_step(batch, optim)
        assert hook_count(alg) == 0
        assert alg.distiller.get_teacher_outputs() == {}
        assert alg.distiller.get_student_outputs() == {}
    # Validation does not record anything.
    alg.val_step(batch)
    assert alg.distiller.get_student_outputs() == {}
    assert hook_count(alg) == 0


def test_hooks_removed_when_forward_fails(batch):
    alg = build(distill_cfg())
    data = alg.data_preprocessor(batch, True)

    def boom(module, args, output):
        raise RuntimeError('boom')

    handle = alg.architecture.model.neck.register_forward_hook(boom)
    with pytest.raises(RuntimeError, match='boom'):
        alg(**data, mode='loss')
    handle.remove()
    assert hook_count(alg) == 0
    assert alg.distiller.get_teacher_outputs() == {}


def test_step_results_do_not_depend_on_previous_steps():
    """Recording restarts every step: a step on batch B gives the same
    losses whether or not another batch ran before."""
    alg = build(distill_cfg())
    alg.eval()
    b1, b2 = make_batch(seed=1), make_batch(seed=2)
    d2 = alg.data_preprocessor(b2, False)
    ref = {k: v.detach() for k, v in alg.loss(**d2).items()}
    alg.loss(**alg.data_preprocessor(b1, False))
    again = alg.loss(**d2)
    for k, v in ref.items():
        assert torch.allclose(v, again[k].detach()), k


def test_trainable_teacher_gets_trained_with_norm_eval(batch):
    alg = build(
        dict(
            distill_cfg(teacher_trainable=True, teacher_norm_eval=True),
            with_teacher_loss=True))
    teacher = alg.distiller.teacher
    alg.train()
    assert teacher.training and not teacher.backbone.bn1.training
    before = teacher.head.fc.weight.detach().clone()
    log_vars = alg.train_step(batch, sgd(alg))
    assert 'teacher.loss' in log_vars
    assert not torch.equal(before, teacher.head.fc.weight)


def test_teacher_loaded_from_checkpoint(tmp_path):
    teacher = build(classifier_cfg(4))
    for p in teacher.parameters():
        torch.nn.init.normal_(p)
    ckpt = tmp_path / 'teacher.pth'
    torch.save(dict(state_dict=teacher.state_dict(), meta=dict()), ckpt)
    alg = build(distill_cfg(teacher_ckpt=str(ckpt)))
    loaded = alg.distiller.teacher
    alg.init_weights()  # must not re-initialise the loaded teacher
    for k, v in teacher.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k]), k


def test_unknown_module_path_is_named_with_near_matches():
    cfg = distill_cfg()
    cfg['distiller']['components'][0]['student_module'] = 'head.fcc'
    with pytest.raises(KeyError) as err:
        build(cfg)
    msg = str(err.value)
    assert "'head.fcc'" in msg and 'head.fc' in msg and 'student' in msg
    cfg = distill_cfg()
    cfg['distiller']['components'][1]['teacher_module'] = 'backbone.layer9'
    with pytest.raises(KeyError) as err:
        build(cfg)
    msg = str(err.value)
    assert "'backbone.layer9'" in msg and 'teacher' in msg
    assert 'backbone.layer3' in msg


def test_bad_component_keys_are_named():
    cfg = distill_cfg()
    cfg['distiller']['components'][0]['loss'] = []
    with pytest.raises(KeyError, match="'loss'"):
        build(cfg)
    cfg = distill_cfg()
    cfg['distiller']['components'][0]['losses'][0]['name'] = 'kd'
    with pytest.raises(ValueError, match="name='kd'"):
        build(cfg)
    cfg = distill_cfg()
    cfg['distiller']['components'][1]['losses'][0]['name'] = 'loss_kd'
    with pytest.raises(ValueError, match='used twice'):
        build(cfg)


def test_shape_mismatch_without_align_module(batch):
    cfg = distill_cfg()
    del cfg['distiller']['components'][1]['align_module']
    alg = build(cfg)
    data = alg.data_preprocessor(batch, True)
    with pytest.raises(ValueError, match='align_module'):
        alg(**data, mode='loss')
    assert hook_count(alg) == 0


def test_wsld_and_dkd_get_labels(batch):
    cfg = distill_cfg()
    cfg['distiller']['components'] = [
        dict(
            student_module='head.fc',
            teacher_module='head.fc',
            losses=[
                dict(type='WSLD', name='loss_wsld', tau=2, num_classes=10),
                dict(type='DKDLoss', name='loss_dkd', tau=2, beta=2)
            ])
    ]
    alg = build(cfg)
    log_vars = alg.train_step(batch, sgd(alg))
    assert torch.isfinite(log_vars['distiller.loss_wsld'])
    assert torch.isfinite(log_vars['distiller.loss_dkd'])


def test_align_method_distill_runs_student_first(batch):
    cfg = dict(distill_cfg(), type='AlignMethodDistill')
    alg = build(cfg)
    assert isinstance(alg, AlignMethodDistill)
    order = []
    alg.architecture.model.backbone.register_forward_hook(
        lambda *a: order.append('student'))
    alg.distiller.teacher.backbone.register_forward_hook(
        lambda *a: order.append('teacher'))
    alg.train_step(batch, sgd(alg))
    assert order == ['student', 'teacher']


def test_general_distill_runs_teacher_first(batch):
    alg = build(distill_cfg())
    order = []
    alg.architecture.model.backbone.register_forward_hook(
        lambda *a: order.append('student'))
    alg.distiller.teacher.backbone.register_forward_hook(
        lambda *a: order.append('teacher'))
    alg.train_step(batch, sgd(alg))
    assert order == ['teacher', 'student']


def test_self_distiller(batch):
    cfg = dict(
        type='GeneralDistill',
        architecture=dict(type='MMClsArchitecture', model=classifier_cfg(2)),
        distiller=dict(
            type='SelfDistiller',
            components=[
                dict(
                    student_module='backbone.layer4.0',
                    teacher_module='backbone.layer4',
                    losses=[dict(type='ATLoss', name='loss_at')])
            ]))
    alg = build(cfg)
    assert isinstance(alg.distiller, SelfDistiller)
    log_vars = alg.train_step(batch, sgd(alg))
    assert log_vars['distiller.loss_at'] >= 0
    assert hook_count(alg) == 0


def test_plain_modules_as_student_and_teacher():
    """Distillers accept plain nn.Modules (no mmengine BaseModel)."""
    student = torch.nn.Sequential(torch.nn.Linear(4, 3))
    teacher = torch.nn.Sequential(torch.nn.Linear(4, 3))
    distiller = SingleTeacherDistiller(
        teacher=teacher,
        components=[
            dict(
                student_module='0',
                teacher_module='0',
                losses=[dict(type='KLDivergence', name='loss_kd')])
        ])
    distiller.prepare_from_student(student)
    x = torch.randn(5, 4)
    distiller.exec_teacher_forward(x)
    distiller.exec_student_forward(student, x, with_loss=False)
    loss = distiller.compute_distill_loss()['loss_kd']
    expect = torch.nn.functional.kl_div(
        torch.log_softmax(student(x), 1),
        torch.softmax(teacher(x), 1),
        reduction='batchmean')
    assert torch.allclose(loss, expect)


def test_module_not_called_is_reported(batch):
    cfg = distill_cfg()
    # head.loss_module is never called in 'tensor' mode of the teacher.
    cfg['distiller']['components'] = [
        dict(
            student_module='head.fc',
            teacher_module='head.loss_module',
            losses=[dict(type='KLDivergence', name='loss_kd')])
    ]
    alg = build(cfg)
    data = alg.data_preprocessor(batch, True)
    with pytest.raises(RuntimeError, match="'head.loss_module'"):
        alg(**data, mode='loss')


def test_architecture_passes_through(batch):
    arch = build(dict(type='MMClsArchitecture', model=classifier_cfg(2)))
    data = arch.data_preprocessor(batch, True)
    losses = arch(**data, mode='loss')
    assert set(losses) == {'loss'}
    arch.eval()
    logits = arch.forward_dummy(data['inputs'])
    assert logits.shape == (8, 10)
    assert torch.allclose(logits, arch.model(data['inputs'], mode='tensor'))
    pseudo = arch.cal_pseudo_loss(torch.randn(2, 1, 12, 12))
    assert pseudo.dim() == 0 and pseudo.requires_grad
    preds = arch(**data, mode='predict')
    assert len(preds) == 8 and hasattr(preds[0], 'pred_label')


def test_base_algorithm_delegates(batch):
    alg = build(
        dict(
            type='BaseAlgorithm',
            architecture=dict(
                type='MMClsArchitecture', model=classifier_cfg(2))))
    log_vars = alg.train_step(batch, sgd(alg))
    assert set(log_vars) == {'loss'}
    assert len(alg.val_step(batch)) == 8
    with pytest.raises(RuntimeError, match='Invalid mode'):
        alg(torch.zeros(1, 1, 12, 12), mode='foo')
    with pytest.raises(TypeError, match='architecture'):
        GeneralDistill(architecture=3, distiller=dict())


def test_without_student_loss(batch):
    alg = build(dict(distill_cfg(), with_student_loss=False))
    log_vars = alg.train_step(batch, sgd(alg))
    assert 'student.loss' not in log_vars
    assert {'distiller.loss_kd', 'distiller.loss_fitnet'} <= set(log_vars)


def test_ddp_every_trainable_parameter_gets_a_gradient(batch, tmp_path):
    """Under DDP with find_unused_parameters=False, a step fails if any
    parameter that requires grad (student, align modules) gets none; the
    frozen teacher must not count."""
    import torch.distributed as dist

    from mmrazor.core import RazorDistributedDataParallel
    if dist.is_initialized():
        pytest.skip('a process group already exists in this process')
    dist.init_process_group(
        'gloo', init_method=f'file://{tmp_path}/pg', rank=0, world_size=1)
    try:
        alg = build(distill_cfg())
        ddp = RazorDistributedDataParallel(
            alg, broadcast_buffers=False, find_unused_parameters=False)
        optim = sgd(alg)
        teacher_before = copy.deepcopy(alg.distiller.teacher.state_dict())
        for _ in range(2):
            log_vars = ddp.train_step(batch, optim)
        assert torch.isfinite(log_vars['loss'])
        for k, v in alg.distiller.teacher.state_dict().items():
            assert torch.equal(v, teacher_before[k]), k
    finally:
        dist.destroy_process_group()
