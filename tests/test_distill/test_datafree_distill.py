"""Data-free distillation: the generators, DataFreeDistillation (DFAD /
ZSKT) and DAFLDataFreeDistillation, on tiny models."""
import copy

import pytest
import torch
import torch.nn.functional as F
from mmengine.optim import OptimWrapper, OptimWrapperDict
from torch import nn

from mmrazor.models import (DAFLDataFreeDistillation, DAFLGenerator,
                            DataFreeDistillation, ZSKTGenerator)
from mmrazor.registry import MODELS

NUM_CLASSES = 5
IMG_SIZE = 8


class TinyClassifier(nn.Module):
    """``backbone`` (conv, BN, ReLU), ``neck.gap``, ``head.fc``; called as
    mmengine models are (``mode='tensor'`` gives the logits)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.backbone = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU())
        self.neck = nn.Module()
        self.neck.gap = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Module()
        self.head.fc = nn.Linear(width, NUM_CLASSES)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        assert mode == 'tensor', mode
        feat = self.neck.gap(self.backbone(inputs)).flatten(1)
        return self.head.fc(feat)


@MODELS.register_module(name='TestTeacherArgmaxCE', force=True)
class TeacherArgmaxCE(nn.Module):
    """A DAFL-like generator loss on the teacher logits only: cross entropy
    with the teacher's own argmax (the one-hot loss)."""

    def forward(self, preds_T):
        return F.cross_entropy(preds_T, preds_T.argmax(dim=1))


def kd_distiller(student_recorders=True, loss_weight=1.0, **loss_kwargs):
    cfg = dict(
        type='ConfigurableDistiller',
        teacher_recorders=dict(t_fc=dict(type='ModuleOutputs',
                                         source='res.head.fc')),
        distill_losses=dict(
            loss_kl=dict(
                type='KLDivergence', tau=2, loss_weight=loss_weight,
                **loss_kwargs)),
        loss_forward_mappings=dict(
            loss_kl=dict(
                preds_S=dict(from_student=True, recorder='fc'),
                preds_T=dict(from_student=False, recorder='t_fc'))))
    cfg['student_recorders'] = dict(
        fc=dict(type='ModuleOutputs', source='head.fc'))
    return cfg


def dafl_generator_distiller():
    return dict(
        type='ConfigurableDistiller',
        teacher_recorders=dict(
            t_fc=dict(type='ModuleOutputs', source='res.head.fc')),
        distill_losses=dict(loss_oh=dict(type='TestTeacherArgmaxCE')),
        loss_forward_mappings=dict(
            loss_oh=dict(preds_T=dict(from_student=False, recorder='t_fc'))))


def build(cls=DataFreeDistillation, generator='DAFLGenerator', **kwargs):
    torch.manual_seed(0)
    args = dict(
        architecture=TinyClassifier(2),
        teachers=dict(res=TinyClassifier(4)),
        generator=dict(
            type=generator, img_size=IMG_SIZE, latent_dim=6,
            hidden_channels=4),
        distiller=kd_distiller(),
        generator_distiller=kd_distiller(
            loss_weight=-1.0, teacher_detach=False))
    args.update(kwargs)
    return cls(**args)


def wrappers(algo, lr=0.1):
    return OptimWrapperDict(
        architecture=OptimWrapper(
            torch.optim.SGD(algo.architecture.parameters(), lr=lr)),
        generator=OptimWrapper(
            torch.optim.SGD(algo.generator.parameters(), lr=lr)))


def params(module):
    return {k: v.detach().clone() for k, v in module.named_parameters()}


def changed(before, module):
    after = dict(module.named_parameters())
    return {k for k, v in before.items() if not torch.equal(v, after[k])}


def trainable(generator_params):
    """The generator parameters a loss can move: the biases of the convs
    followed by a batch norm in train mode get no gradient (up to
    rounding)."""
    return set(generator_params) - {'stage1.1.bias', 'stage2.1.bias'}


def batch(n=4):
    return dict(inputs=[torch.zeros(3, IMG_SIZE, IMG_SIZE)] * n)


# ------------------------------------------------------------- generators
@pytest.mark.parametrize('cls', [DAFLGenerator, ZSKTGenerator])
def test_generated_images_have_the_configured_shape(cls):
    gen = cls(img_size=16, latent_dim=7, hidden_channels=6)
    assert gen(batch_size=3).shape == (3, 3, 16, 16)
    assert gen(torch.randn(2, 7)).shape == (2, 3, 16, 16)
    assert gen.sample_batch(5).shape == (5, 7)
    gen4 = cls(img_size=32, latent_dim=7, hidden_channels=6, scale_factor=4)
    assert gen4(batch_size=2).shape == (2, 3, 32, 32)
    grey = cls(img_size=28, latent_dim=7, hidden_channels=6, img_channels=1)
    assert grey(batch_size=2).shape == (2, 1, 28, 28)


def test_generators_refuse_bad_arguments():
    gen = DAFLGenerator(img_size=8, latent_dim=7, hidden_channels=4)
    with pytest.raises(ValueError, match=r'latent_dim=7.*\(2, 5\)'):
        gen(torch.randn(2, 5))
    with pytest.raises(ValueError, match='img_size \\(10\\).*multiple'):
        DAFLGenerator(img_size=10, latent_dim=7, hidden_channels=4)
    with pytest.raises(ValueError, match='hidden_channels.*even'):
        ZSKTGenerator(img_size=8, latent_dim=7, hidden_channels=5)
    with pytest.raises(ValueError, match='latent_dim must be.*0'):
        ZSKTGenerator(img_size=8, latent_dim=0, hidden_channels=4)


def stage_by_hand(x, conv, bn, slope, scale):
    x = F.interpolate(x, scale_factor=scale, mode='nearest')
    x = F.conv2d(x, conv.weight, conv.bias, padding=1)
    x = (x - bn.running_mean[None, :, None, None]) / torch.sqrt(
        bn.running_var[None, :, None, None] + bn.eps)
    x = x * bn.weight[None, :, None, None] + bn.bias[None, :, None, None]
    return torch.where(x > 0, x, slope * x)


def test_dafl_generator_equals_the_paper_network_written_by_hand():
    torch.manual_seed(0)
    gen = DAFLGenerator(
        img_size=8, latent_dim=5, hidden_channels=4, leaky_slope=0.1)
    for module in gen.modules():  # non-trivial running statistics
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    gen.eval()
    z = torch.randn(3, 5)
    x = (z @ gen.linear.weight.T + gen.linear.bias).view(3, 4, 2, 2)
    bn0 = gen.bn0
    x = (x - bn0.running_mean[None, :, None, None]) / torch.sqrt(
        bn0.running_var[None, :, None, None] + 1e-5)
    x = x * bn0.weight[None, :, None, None] + bn0.bias[None, :, None, None]
    assert gen.stage1[2].eps == 0.8  # DAFL's BatchNorm2d(C, 0.8)
    x = stage_by_hand(x, gen.stage1[1], gen.stage1[2], 0.1, 2)
    x = stage_by_hand(x, gen.stage2[1], gen.stage2[2], 0.1, 2)
    x = torch.tanh(F.conv2d(x, gen.to_image.weight, gen.to_image.bias,
                            padding=1))
    last = gen.image_output[1]
    assert last.weight is None  # no affine parameters
    expected = (x - last.running_mean[None, :, None, None]) / torch.sqrt(
        last.running_var[None, :, None, None] + last.eps)
    with torch.no_grad():
        torch.testing.assert_close(gen(z), expected)


def test_zskt_generator_ends_with_an_affine_batch_norm():
    gen = ZSKTGenerator(img_size=8, latent_dim=5, hidden_channels=4)
    assert isinstance(gen.image_output, nn.BatchNorm2d)
    assert gen.image_output.affine
    assert gen.stage1[2].eps == 1e-5
    with torch.no_grad():
        gen.image_output.weight.fill_(2.0)
        gen.image_output.bias.fill_(3.0)
        images = gen(batch_size=6)  # train mode: batch statistics
    # per channel over the batch: mean = bias, std = weight
    torch.testing.assert_close(
        images.mean(dim=(0, 2, 3)), torch.full((3, ), 3.0))
    torch.testing.assert_close(
        images.var(dim=(0, 2, 3), unbiased=False),
        torch.full((3, ), 4.0),
        rtol=1e-3,
        atol=1e-3)


# ---------------------------------------------------- DataFreeDistillation
def test_student_phase_trains_only_the_student():
    algo = build()
    student, teacher = params(algo.architecture), params(algo.teachers)
    generator = params(algo.generator)
    log = algo.train_student(4, wrappers(algo)['architecture'])
    assert changed(student, algo.architecture) == set(student)
    assert not changed(teacher, algo.teachers)
    assert not changed(generator, algo.generator)
    assert set(log) == {'distill.loss', 'distill.loss_kl'}


def test_generator_phase_trains_only_the_generator():
    algo = build()
    student, teacher = params(algo.architecture), params(algo.teachers)
    generator = params(algo.generator)
    images = algo.generate(4)
    log = algo.train_generator(images, wrappers(algo)['generator'])
    assert changed(generator, algo.generator) >= trainable(generator)
    assert not changed(student, algo.architecture)
    assert not changed(teacher, algo.teachers)
    # the student took part (its logits) but kept no gradient
    assert all(p.grad is None for p in algo.architecture.parameters())
    assert all(p.requires_grad for p in algo.architecture.parameters())
    assert set(log) == {'generator.loss', 'generator.loss_kl'}


def test_generator_loss_is_the_negative_kl_between_teacher_and_student():
    algo = build().eval()  # eval: deterministic forward passes
    torch.manual_seed(3)
    images = torch.randn(4, 3, IMG_SIZE, IMG_SIZE)
    losses = algo.generator_losses(images)
    with torch.no_grad():
        z_s = algo.architecture(images)
        z_t = algo.teachers['res'](images)
    p_t = torch.softmax(z_t / 2, dim=1)
    kl = (p_t * (torch.log(p_t) - torch.log_softmax(z_s / 2, dim=1))).sum()
    expected = -1.0 * 4 * kl / 4  # weight -1, tau ** 2 = 4, batchmean
    torch.testing.assert_close(losses['loss_kl'].detach(), expected)


def test_train_step_updates_student_and_generator_not_the_teacher():
    algo = build(student_iter=2, student_train_first=True)
    student, teacher = params(algo.architecture), params(algo.teachers)
    generator = params(algo.generator)
    log = algo.train_step(batch(4), wrappers(algo))
    assert changed(student, algo.architecture) == set(student)
    assert changed(generator, algo.generator) >= trainable(generator)
    assert not changed(teacher, algo.teachers)
    assert {'distill.loss_kl', 'generator.loss_kl'} <= set(log)
    assert all(not p.requires_grad for p in algo.teachers.parameters())


def test_phase_order_and_number_of_student_updates():
    algo = build(student_iter=3, student_train_first=False)
    calls = []
    algo.student_update = lambda images, wrapper: calls.append(
        ('student', images.shape[0])) or {}
    algo.train_generator = lambda images, wrapper: calls.append(
        ('generator', images.shape[0])) or {}
    algo.train_step(batch(5), wrappers(algo))
    assert calls == [('generator', 5)] + [('student', 5)] * 3


def test_teachers_stay_in_eval_mode():
    algo = build()
    algo.train()
    assert not algo.teachers['res'].training
    assert algo.architecture.training and algo.generator.training


def test_bad_arguments_are_named():
    with pytest.raises(KeyError, match=r"teachers\['res'\].*\['bad'\]"):
        build(teachers=dict(res=dict(build_cfg={}, bad=1)))
    with pytest.raises(ValueError, match='teacher_ckpt=.*URL'):
        build(teachers=dict(res=dict(
            build_cfg=TinyClassifier(4), ckpt_path='https://x/y.pth')))
    with pytest.raises(ValueError, match='student_iter.*0'):
        build(student_iter=0)
    algo = build()
    with pytest.raises(KeyError, match="'architecture', 'generator'"):
        algo.train_step(batch(), OptimWrapperDict(
            architecture=wrappers(algo)['architecture']))
    with pytest.raises(ValueError, match='empty'):
        algo.train_step(dict(inputs=[]), wrappers(algo))


# ------------------------------------------------------------------- DAFL
def test_dafl_step_trains_generator_on_teacher_losses_then_student():
    algo = build(
        DAFLDataFreeDistillation,
        generator_distiller=dafl_generator_distiller())
    student, teacher = params(algo.architecture), params(algo.teachers)
    generator = params(algo.generator)
    made, seen = [], []
    generate, update = algo.generate, algo.student_update

    def spy_generate(batch_size):
        made.append(generate(batch_size))
        return made[-1]

    def spy_update(images, wrapper):
        seen.append(images)
        return update(images, wrapper)

    algo.generate, algo.student_update = spy_generate, spy_update
    log = algo.train_step(batch(4), wrappers(algo))
    assert changed(generator, algo.generator) >= trainable(generator)
    assert changed(student, algo.architecture) == set(student)
    assert not changed(teacher, algo.teachers)
    # one batch generated; the student learns on it, detached
    assert len(made) == 1 and len(seen) == 1
    assert not seen[0].requires_grad
    torch.testing.assert_close(seen[0], made[0].detach())
    assert {'generator.loss_oh', 'distill.loss_kl'} <= set(log)


def test_dafl_refuses_student_first():
    with pytest.raises(ValueError, match='student_train_first'):
        build(DAFLDataFreeDistillation, student_train_first=True,
              generator_distiller=dafl_generator_distiller())


def test_dafl_config_builds_from_the_1x_structure():
    """The model part of the 1.x DAFL config (models given as modules)."""
    distiller = copy.deepcopy(dafl_generator_distiller())
    algo = MODELS.build(
        dict(
            type='DAFLDataFreeDistillation',
            architecture=TinyClassifier(2),
            teachers=dict(res=dict(build_cfg=TinyClassifier(4))),
            generator=dict(
                type='DAFLGenerator', img_size=8, latent_dim=10,
                hidden_channels=4),
            distiller=kd_distiller(),
            generator_distiller=distiller))
    assert isinstance(algo, DAFLDataFreeDistillation)
    assert algo.generate(2).shape == (2, 3, 8, 8)
