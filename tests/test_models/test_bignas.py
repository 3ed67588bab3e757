"""BigNAS's sandwich step against the same step written out by hand."""
import copy

import pytest
import torch
import torch.nn.functional as F
from mmengine.optim import OptimWrapper
from mmpretrain.structures import DataSample
from torch import nn

from mmrazor.models.algorithms import BigNAS
from mmrazor.models.architectures import SearchableImageClassifier
from mmrazor.models.architectures.dynamic_ops import DynamicConv2d
from mmrazor.models.mutables import OneShotMutableChannel, OneShotMutableValue


class KernelWidthBackbone(nn.Module):
    """A 5x5 conv whose kernel (3 or 5) and width (4 or 8) are searched,
    then ReLU; it records the drop-path rates it was asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = DynamicConv2d(3, 8, 5, padding=2)
        self.kernel = OneShotMutableValue([3, 5], alias='backbone.kernel')
        self.last_mutable_channels = OneShotMutableChannel(
            8, [4, 8], candidate_mode='number', alias='backbone.width')
        self.conv.register_mutable_attr('kernel_size', self.kernel)
        self.conv.register_mutable_attr('out_channels',
                                        self.last_mutable_channels)
        self.dropout_calls = []

    def set_dropout(self, dropout_stages, drop_path_rate):
        self.dropout_calls.append((tuple(dropout_stages), drop_path_rate))

    def forward(self, x):
        return (F.relu(self.conv(x)), )


def build_supernet():
    torch.manual_seed(0)
    return SearchableImageClassifier(
        backbone=KernelWidthBackbone(),
        neck=dict(type='mmrazor.SqueezeMeanPoolingWithDropout',
                  drop_ratio=0.0),
        head=dict(type='mmrazor.DynamicLinearClsHead', num_classes=3,
                  in_channels=8, loss=dict(type='mmpretrain.CrossEntropyLoss')),
        input_resizer_cfg=dict(input_sizes=[[8, 8], [12, 12]]),
        connect_head=dict(
            connect_with_backbone='backbone.last_mutable_channels'),
        data_preprocessor=dict(type='mmpretrain.ClsDataPreprocessor'))


DISTILLER = dict(
    type='ConfigurableDistiller',
    teacher_recorders=dict(fc=dict(type='ModuleOutputs', source='head.fc')),
    student_recorders=dict(fc=dict(type='ModuleOutputs', source='head.fc')),
    distill_losses=dict(loss_kl=dict(type='KLDivergence', tau=1,
                                     loss_weight=1)),
    loss_forward_mappings=dict(loss_kl=dict(
        preds_S=dict(recorder='fc', from_student=True),
        preds_T=dict(recorder='fc', from_student=False))))


def batch():
    torch.manual_seed(1)
    inputs = torch.rand(4, 3, 12, 12) * 255
    labels = [0, 1, 2, 1]
    return dict(inputs=list(inputs),
                data_samples=[DataSample().set_gt_label(y) for y in labels])


def kl_by_hand(teacher, student):
    """KL(teacher || student) of the logits, batch mean (``KLDivergence``
    with tau 1) written out."""
    return (F.softmax(teacher, 1) * (F.log_softmax(teacher, 1) -
                                     F.log_softmax(student, 1))).sum(1).mean()


def logits_by_hand(net, x, size, kernel, width):
    """The supernet's logits for one subnet, with torch functions."""
    x = F.interpolate(x, size=(size, size), mode='bicubic',
                      align_corners=False)
    w = net.backbone.conv.weight[:width]
    crop = (5 - kernel) // 2
    w = w[:, :, crop:crop + kernel, crop:crop + kernel]
    y = F.relu(F.conv2d(x, w, net.backbone.conv.bias[:width],
                        padding=kernel // 2))
    fc = net.head.fc
    return y.mean((2, 3)) @ fc.weight[:, :width].t() + fc.bias


def test_sandwich_step_equals_the_step_written_out():
    algo = BigNAS(build_supernet(), distiller=DISTILLER,
                  num_random_samples=0, drop_path_rate=0.1,
                  backbone_dropout_stages=[1])
    reference = copy.deepcopy(algo.architecture)
    optim = OptimWrapper(torch.optim.SGD(algo.parameters(), lr=1.0))
    log = algo.train_step(batch(), optim)
    assert set(log) == {'max.loss', 'min.loss', 'loss'}

    # by hand: CE of the largest subnet + KL(min || max.detach())
    data = reference.data_preprocessor(batch(), True)
    x = data['inputs']
    y = torch.tensor([0, 1, 2, 1])
    big = logits_by_hand(reference, x, 12, 5, 8)
    small = logits_by_hand(reference, x, 8, 3, 4)
    teacher = big.detach()
    kl = kl_by_hand(teacher, small)
    total = F.cross_entropy(big, y) + kl
    total.backward()
    torch.testing.assert_close(log['max.loss'],
                               F.cross_entropy(big, y).detach())
    torch.testing.assert_close(log['min.loss'], kl.detach())
    for (name, p), (_, q) in zip(algo.architecture.named_parameters(),
                                 reference.named_parameters()):
        torch.testing.assert_close(p.detach(), (q - q.grad).detach(),
                                   msg=name)
    # drop-path only for the largest subnet, off after the step
    calls = algo.architecture.backbone.dropout_calls
    assert calls[:3] == [((1, ), 0.1), ((1, ), 0.0), ((1, ), 0.0)]
    # validation sees the largest subnet
    assert algo.architecture.input_resizer.active_shape == (12, 12)
    assert algo.architecture.backbone.kernel.current_choice == 5


def test_random_subnets_are_trained_and_logged():
    algo = BigNAS(build_supernet(), num_random_samples=2, drop_path_rate=0)
    optim = OptimWrapper(torch.optim.SGD(algo.parameters(), lr=0.1))
    log = algo.train_step(batch(), optim)
    assert set(log) == {'max.loss', 'random1.loss', 'random2.loss',
                        'min.loss', 'loss'}
    torch.testing.assert_close(
        log['loss'], log['max.loss'] + log['random1.loss'] +
        log['random2.loss'] + log['min.loss'])


def test_distiller_reading_another_layer_is_refused():
    bad = copy.deepcopy(DISTILLER)
    bad['teacher_recorders']['fc']['source'] = 'neck'
    bad['student_recorders']['fc']['source'] = 'neck'
    with pytest.raises(ValueError, match="reads 'neck'"):
        BigNAS(build_supernet(), distiller=bad)


def test_drop_path_needs_a_backbone_that_sets_it():
    supernet = build_supernet()
    supernet.backbone.set_dropout = None  # a backbone without it
    with pytest.raises(ValueError, match='set_dropout'):
        BigNAS(supernet, drop_path_rate=0.2)


def test_elastic_dims_keep_the_others_largest():
    # only the kernel varies: the smallest subnet keeps width 8 and 12px
    algo = BigNAS(build_supernet(), num_random_samples=0, drop_path_rate=0,
                  elastic_dims=['kernel'])
    reference = copy.deepcopy(algo.architecture)
    optim = OptimWrapper(torch.optim.SGD(algo.parameters(), lr=1.0))
    log = algo.train_step(batch(), optim)
    x = reference.data_preprocessor(batch(), True)['inputs']
    teacher = logits_by_hand(reference, x, 12, 5, 8).detach()
    small = logits_by_hand(reference, x, 12, 3, 8)
    kl = kl_by_hand(teacher, small)
    torch.testing.assert_close(log['min.loss'], kl.detach())
    with pytest.raises(ValueError, match="'depth'"):
        algo.set_elastic_dims(['depth'])


def test_attentive_sampling_trains_the_worst_candidate():
    import random
    algo = BigNAS(build_supernet(), num_random_samples=1, drop_path_rate=0,
                  attentive_sampling=dict(mode='worst', num_candidates=4))
    data = algo.data_preprocessor(batch(), True)
    labels = torch.tensor([0, 1, 2, 1])
    random.seed(3)
    picked = algo._attentive_choice(data)
    # the same candidates, scored by hand
    random.seed(3)
    candidates = [algo._choices('random') for _ in range(4)]
    net = algo.architecture

    def loss_of(choice):
        size = choice['input_shape'][0]
        return float(F.cross_entropy(logits_by_hand(
            net, data['inputs'], size, choice['backbone.kernel'],
            choice['backbone.width']), labels))

    assert picked == max(candidates, key=loss_of)
    with pytest.raises(ValueError, match="mode='random'"):
        BigNAS(build_supernet(), attentive_sampling=dict(mode='random'))


def test_progressive_shrinking_hook_sets_the_phase():
    from types import SimpleNamespace

    from mmrazor.core.hooks import ProgressiveShrinkingHook
    algo = BigNAS(build_supernet(), drop_path_rate=0)
    hook = ProgressiveShrinkingHook(phases=[
        dict(begin_epoch=0, elastic_dims=[]),
        dict(begin_epoch=2, elastic_dims=['kernel']),
        dict(begin_epoch=4, elastic_dims=['kernel', 'width']),
    ])
    seen = []
    for epoch in range(5):
        hook.before_train_epoch(SimpleNamespace(model=algo, epoch=epoch))
        seen.append(algo.elastic_dims)
    assert seen == [(), (), ('kernel', ), ('kernel', ),
                    ('kernel', 'width')]
    # phase 0: every subnet of a step is the largest
    hook.before_train_epoch(SimpleNamespace(model=algo, epoch=0))
    assert algo._choices('min') == algo._choices('max')
    with pytest.raises(ValueError, match='epoch 0'):
        ProgressiveShrinkingHook(
            phases=[dict(begin_epoch=1, elastic_dims=[])])


def fresh_message_hub(name, epoch=None):
    """A new, current ``MessageHub`` holding ``epoch`` (if not None)."""
    from mmengine.logging import MessageHub
    hub = MessageHub.get_instance(name)
    if epoch is not None:
        hub.update_info('epoch', epoch)
    return hub


def record_fc_widths(algo):
    """Record the input width of the logits layer at every forward pass:
    one entry per subnet run (8: the largest width, 4: the smallest)."""
    widths = []
    algo.architecture.head.fc.register_forward_hook(
        lambda module, inputs, output: widths.append(inputs[0].shape[1]))
    return widths


def test_max_subnet_warmup_trains_only_the_largest_first():
    algo = BigNAS(build_supernet(), num_random_samples=1, drop_path_rate=0,
                  max_subnet_warmup_epochs=2)
    reference = copy.deepcopy(algo.architecture)
    widths = record_fc_widths(algo)
    optim = OptimWrapper(torch.optim.SGD(algo.parameters(), lr=1.0))
    hub = fresh_message_hub('test_bignas_warmup', epoch=1)
    log = algo.train_step(batch(), optim)
    assert widths == [8]
    assert set(log) == {'max.loss', 'loss'}
    # the step is plain SGD on the largest subnet's cross-entropy
    x = reference.data_preprocessor(batch(), True)['inputs']
    ce = F.cross_entropy(logits_by_hand(reference, x, 12, 5, 8),
                         torch.tensor([0, 1, 2, 1]))
    ce.backward()
    torch.testing.assert_close(log['loss'], ce.detach())
    for (name, p), (_, q) in zip(algo.architecture.named_parameters(),
                                 reference.named_parameters()):
        expected = q if q.grad is None else q - q.grad
        torch.testing.assert_close(p.detach(), expected.detach(), msg=name)

    # from epoch 2 on: the sandwich (largest, one random, smallest)
    widths.clear()
    hub.update_info('epoch', 2)
    log = algo.train_step(batch(), optim)
    assert len(widths) == 3 and widths[0] == 8 and widths[-1] == 4
    assert set(log) == {'max.loss', 'random1.loss', 'min.loss', 'loss'}


def test_max_subnet_warmup_needs_the_epoch():
    algo = BigNAS(build_supernet(), drop_path_rate=0,
                  max_subnet_warmup_epochs=1)
    optim = OptimWrapper(torch.optim.SGD(algo.parameters(), lr=0.1))
    fresh_message_hub('test_bignas_warmup_no_epoch')
    with pytest.raises(RuntimeError, match="'epoch'"):
        algo.train_step(batch(), optim)
    # without warm-up the epoch is not needed: the sandwich at once
    algo = BigNAS(build_supernet(), num_random_samples=0, drop_path_rate=0)
    assert set(algo.train_step(batch(), optim)) == {
        'max.loss', 'min.loss', 'loss'}


@pytest.mark.parametrize('max_epochs', [1, 2])
def test_max_subnet_warmup_refuses_a_warmup_as_long_as_the_run(max_epochs):
    """An iteration-based loop stays at epoch 0 of ``max_epochs=1``: a
    warm-up of >= max_epochs epochs would never end."""
    algo = BigNAS(build_supernet(), drop_path_rate=0,
                  max_subnet_warmup_epochs=2)
    optim = OptimWrapper(torch.optim.SGD(algo.parameters(), lr=0.1))
    hub = fresh_message_hub(f'test_bignas_warmup_run_{max_epochs}', epoch=0)
    hub.update_info('max_epochs', max_epochs)
    with pytest.raises(RuntimeError,
                       match=f'warmup_epochs=2.*max_epochs={max_epochs}'):
        algo.train_step(batch(), optim)
    # a run longer than the warm-up trains the largest subnet first
    hub.update_info('max_epochs', 3)
    widths = record_fc_widths(algo)
    algo.train_step(batch(), optim)
    assert widths == [8]


@pytest.mark.parametrize('weight', [0.0, 0.5])
def test_label_loss_weight_adds_the_labels_to_distillation(weight):
    algo = BigNAS(build_supernet(), num_random_samples=0, drop_path_rate=0,
                  label_loss_weight=weight)
    reference = copy.deepcopy(algo.architecture)
    optim = OptimWrapper(torch.optim.SGD(algo.parameters(), lr=1.0))
    log = algo.train_step(batch(), optim)

    x = reference.data_preprocessor(batch(), True)['inputs']
    y = torch.tensor([0, 1, 2, 1])
    big = logits_by_hand(reference, x, 12, 5, 8)
    small = logits_by_hand(reference, x, 8, 3, 4)
    teacher = big.detach()
    kl = kl_by_hand(teacher, small)
    small_loss = kl + weight * F.cross_entropy(small, y)
    torch.testing.assert_close(log['min.loss'], small_loss.detach())
    (F.cross_entropy(big, y) + small_loss).backward()
    for (name, p), (_, q) in zip(algo.architecture.named_parameters(),
                                 reference.named_parameters()):
        torch.testing.assert_close(p.detach(), (q - q.grad).detach(),
                                   msg=name)


@pytest.mark.parametrize('kwargs, match', [
    (dict(max_subnet_warmup_epochs=-1), 'max_subnet_warmup_epochs.*-1'),
    (dict(max_subnet_warmup_epochs=1.5), 'max_subnet_warmup_epochs.*1.5'),
    (dict(max_subnet_warmup_epochs='2'), "max_subnet_warmup_epochs.*'2'"),
    (dict(max_subnet_warmup_epochs=True), 'max_subnet_warmup_epochs.*True'),
    (dict(label_loss_weight=-0.5), 'label_loss_weight.*-0.5'),
    (dict(label_loss_weight='1'), "label_loss_weight.*'1'"),
    (dict(label_loss_weight=float('nan')), 'label_loss_weight.*nan'),
    (dict(label_loss_weight=None), 'label_loss_weight.*None'),
])
def test_bad_recipe_arguments_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        BigNAS(build_supernet(), drop_path_rate=0, **kwargs)
