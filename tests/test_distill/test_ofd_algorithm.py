"""OverhaulFeatureDistillation with OFDDistiller: the teacher connectors'
margins come from the teacher's batch norms."""
import math

import pytest
import torch
import torch.nn.functional as F
from mmengine.optim import OptimWrapper
from torch import nn

from mmrazor.models import OFDDistiller, OverhaulFeatureDistillation
from mmrazor.registry import MODELS

TEACHER_BN_WEIGHT = [1.0, -0.5, 2.0, 0.1]
# m / s = 5 on the last channel: almost no negative response -> -3 s
TEACHER_BN_BIAS = [0.0, 0.3, -1.0, 0.5]


class TinyNet(nn.Module):
    """``backbone.conv1 -> backbone.bn1 -> relu -> gap -> head.fc``; mode
    ``'loss'`` gives the cross entropy with the labels given as
    ``data_samples`` (a tensor)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.backbone = nn.Module()
        self.backbone.conv1 = nn.Conv2d(3, width, 3, padding=1, bias=False)
        self.backbone.bn1 = nn.BatchNorm2d(width)
        self.head = nn.Module()
        self.head.fc = nn.Linear(width, 3)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        x = F.relu(self.backbone.bn1(self.backbone.conv1(inputs)))
        logits = self.head.fc(x.mean(dim=(2, 3)))
        if mode == 'loss':
            return dict(loss=F.cross_entropy(logits, data_samples))
        return logits


def teacher() -> TinyNet:
    net = TinyNet(4)
    with torch.no_grad():
        net.backbone.bn1.weight.copy_(torch.tensor(TEACHER_BN_WEIGHT))
        net.backbone.bn1.bias.copy_(torch.tensor(TEACHER_BN_BIAS))
    return net


def ofd_distiller(teacher_source='backbone.bn1', distiller='OFDDistiller'):
    return dict(
        type=distiller,
        student_recorders=dict(
            bb_1=dict(type='ModuleOutputs', source='backbone.bn1')),
        teacher_recorders=dict(
            bb_1=dict(type='ModuleOutputs', source=teacher_source)),
        distill_losses=dict(loss_1=dict(type='L2Loss', loss_weight=0.5)),
        connectors=dict(
            loss_1_sfeat=dict(
                type='ConvModuleConnector',
                in_channel=2,
                out_channel=4,
                norm_cfg=dict(type='BN'),
                act_cfg=None),
            loss_1_tfeat=dict(type='OFDTeacherConnector')),
        loss_forward_mappings=dict(
            loss_1=dict(
                s_feature=dict(
                    from_student=True, recorder='bb_1',
                    connector='loss_1_sfeat'),
                t_feature=dict(
                    from_student=False, recorder='bb_1',
                    connector='loss_1_tfeat'))))


def build(**distiller_kwargs) -> OverhaulFeatureDistillation:
    torch.manual_seed(0)
    return MODELS.build(
        dict(
            type='OverhaulFeatureDistillation',
            architecture=TinyNet(2),
            teacher=teacher(),
            calculate_student_loss=True,
            student_trainable=True,
            distiller=ofd_distiller(**distiller_kwargs)))


def margin_by_hand(weight, bias):
    """E[x | x < 0] of N(bias, |weight|^2), or -3 |weight| where
    P(x < 0) <= 0.001, one channel at a time with math.erf."""
    margins = []
    for w, b in zip(weight, bias):
        s, m = abs(w), b
        cdf = 0.5 * (1 + math.erf((-m / s) / math.sqrt(2)))
        pdf = math.exp(-(m / s)**2 / 2) / math.sqrt(2 * math.pi)
        margins.append(m - s * pdf / cdf if cdf > 0.001 else -3 * s)
    return torch.tensor(margins)


def test_margins_equal_the_formula_on_the_teacher_bn():
    algo = build()
    margin = algo.distiller.connectors['loss_1_tfeat'].margin
    expected = margin_by_hand(TEACHER_BN_WEIGHT, TEACHER_BN_BIAS)
    torch.testing.assert_close(margin.flatten(), expected)
    assert expected[-1].item() == pytest.approx(-0.3)  # the -3 s branch


def test_init_weights_sets_the_margins_again():
    algo = build()
    bn = algo.teacher.backbone.bn1
    with torch.no_grad():  # e.g. a Pretrained init_cfg loading the teacher
        bn.weight.copy_(torch.tensor([0.5, 0.5, 1.5, 3.0]))
        bn.bias.copy_(torch.tensor([-0.2, 0.1, 0.4, 0.0]))
    algo.init_weights()
    torch.testing.assert_close(
        algo.distiller.connectors['loss_1_tfeat'].margin.flatten(),
        margin_by_hand([0.5, 0.5, 1.5, 3.0], [-0.2, 0.1, 0.4, 0.0]))


def test_loss_uses_the_margin_relu_of_the_teacher_feature():
    algo = build().eval()
    torch.manual_seed(2)
    inputs, labels = torch.randn(2, 3, 5, 5), torch.tensor([0, 2])
    with torch.no_grad():
        losses = algo.loss(inputs, labels)
        t_feat = algo.teacher.backbone.bn1(algo.teacher.backbone.conv1(inputs))
        s_feat = algo.student.backbone.bn1(algo.student.backbone.conv1(inputs))
        s_mapped = algo.distiller.connectors['loss_1_sfeat'](s_feat)
        margin = margin_by_hand(TEACHER_BN_WEIGHT, TEACHER_BN_BIAS)
        target = torch.maximum(t_feat, margin.view(1, 4, 1, 1))
        expected = 0.5 * ((s_mapped - target)**2).mean()
    torch.testing.assert_close(losses['loss_1'], expected)
    assert set(losses) == {'student.loss', 'loss_1'}


def test_one_step_trains_the_student_and_its_connector_not_the_teacher():
    algo = build()
    wrapper = OptimWrapper(torch.optim.SGD(algo.parameters(), lr=0.1))
    before = {k: v.detach().clone() for k, v in algo.named_parameters()}
    inputs = torch.randn(2, 3, 5, 5)
    algo.train_step(dict(inputs=inputs, data_samples=torch.tensor([0, 1])),
                    wrapper)
    after = dict(algo.named_parameters())
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    assert 'architecture.backbone.conv1.weight' in moved
    assert 'distiller.connectors.loss_1_sfeat.conv_module.conv.weight' in \
        moved
    assert not {k for k in moved if k.startswith('teacher.')}


def test_margin_needs_a_batch_norm_and_an_ofd_distiller():
    with pytest.raises(TypeError, match="'backbone.conv1'.*batch norm"):
        build(teacher_source='backbone.conv1')
    with pytest.raises(TypeError, match='OFDDistiller.*Configurable'):
        build(distiller='ConfigurableDistiller')
    assert isinstance(build().distiller, OFDDistiller)
