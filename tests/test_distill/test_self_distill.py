"""Self-distillation: SelfDistill with BYOTDistiller (the 1.x BYOT config on
a tiny ResNet) and SelfDistillValLoop."""
import types

import pytest
import torch
import torch.nn.functional as F
from mmengine.evaluator import BaseMetric, Evaluator
from mmengine.optim import OptimWrapper
from torch.utils.data import DataLoader

from mmrazor.core.loops import SelfDistillValLoop
from mmrazor.models import BYOTDistiller, SelfDistill
from mmrazor.registry import LOOPS, MODELS

NUM_CLASSES = 4
WIDTH = 2  # channels of layer1; layer4 has 8 * WIDTH
SIZE = 8


def tiny_resnet() -> dict:
    return dict(
        type='mmpretrain.ImageClassifier',
        backbone=dict(
            type='ResNet_CIFAR',
            depth=18,
            in_channels=3,
            stem_channels=WIDTH,
            base_channels=WIDTH,
            out_indices=(3, ),
            style='pytorch'),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(
            type='LinearClsHead',
            num_classes=NUM_CLASSES,
            in_channels=8 * WIDTH,
            loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))


def byot_distiller(fet_weight=0.03) -> dict:
    """The distiller of the 1.x BYOT config, for the tiny ResNet."""
    losses, connectors, mappings, recorders = {}, {}, {}, {}
    for i in (1, 2, 3):
        recorders[f'bb_s{i}'] = dict(
            type='ModuleOutputs', source=f'backbone.layer{i}.1.relu')
        losses[f'loss_fet_{i}'] = dict(
            type='L2Loss', normalize=False, loss_weight=fet_weight,
            dist=True)
        losses[f'loss_label_{i}'] = dict(
            type='mmcls.CrossEntropyLoss', loss_weight=0.7)
        losses[f'loss_softl_{i}'] = dict(
            type='KLDivergence', tau=3, loss_weight=0.3)
        connectors[f'loss_s{i}_sfeat'] = dict(
            type='BYOTConnector',
            in_channel=WIDTH * 2**(i - 1),
            out_channel=8 * WIDTH,
            expansion=1,
            kernel_size=3,
            stride=2,
            pool_size=1,
            num_classes=NUM_CLASSES)

        def shallow(idx, i=i):
            return dict(recorder=f'bb_s{i}', from_student=True,
                        connector=f'loss_s{i}_sfeat', connector_idx=idx)

        mappings[f'loss_fet_{i}'] = dict(
            s_feature=shallow(0),
            t_feature=dict(recorder='neck_gap', from_student=False))
        mappings[f'loss_label_{i}'] = dict(
            cls_score=shallow(1),
            label=dict(recorder='gt_labels', from_student=False, data_idx=1))
        mappings[f'loss_softl_{i}'] = dict(
            preds_S=shallow(1),
            preds_T=dict(recorder='fc', from_student=False))
    return dict(
        type='BYOTDistiller',
        student_recorders=recorders,
        teacher_recorders=dict(
            fc=dict(type='ModuleOutputs', source='head.fc'),
            neck_gap=dict(type='ModuleOutputs', source='neck.gap'),
            gt_labels=dict(type='ModuleInputs', source='head.loss_module')),
        distill_losses=losses,
        connectors=connectors,
        loss_forward_mappings=mappings)


def build(**kwargs) -> SelfDistill:
    torch.manual_seed(0)
    return MODELS.build(
        dict(
            _scope_='mmrazor',
            type='SelfDistill',
            architecture=tiny_resnet(),
            distiller=byot_distiller(),
            **kwargs))


def data(n=4):
    from mmpretrain.structures import DataSample
    torch.manual_seed(1)
    inputs = torch.randn(n, 3, SIZE, SIZE)
    samples = [DataSample().set_gt_label(i % NUM_CLASSES) for i in range(n)]
    return inputs, samples


def record_by_hand(model, inputs, samples):
    """The stage features (first call of each block's ReLU), the pooled
    feature and the logits, caught with hooks of the test's own."""
    caught = {}
    handles = []
    for i in (1, 2, 3):
        relu = model.backbone.get_submodule(f'layer{i}.1.relu')

        def hook(mod, args, out, i=i):
            caught.setdefault(f's{i}', out.clone())

        handles.append(relu.register_forward_hook(hook))
    handles.append(model.neck.gap.register_forward_hook(
        lambda m, a, o: caught.__setitem__('gap', o.flatten(1).clone())))
    handles.append(model.head.fc.register_forward_hook(
        lambda m, a, o: caught.__setitem__('fc', o.clone())))
    with torch.no_grad():
        model(inputs, samples, mode='tensor')
    for h in handles:
        h.remove()
    return caught


def test_byot_losses_equal_the_formula_on_the_recorded_logits():
    algo = build().eval()  # eval: the same numbers on every pass
    inputs, samples = data()
    labels = torch.tensor([s.gt_label.item() for s in samples])
    with torch.no_grad():
        losses = algo.loss(inputs, samples)
        rec = record_by_hand(algo.architecture, inputs, samples)
        p_t = torch.softmax(rec['fc'] / 3, dim=1)
        n = len(labels)
        for i in (1, 2, 3):
            feat, logits = algo.distiller.connectors[f'loss_s{i}_sfeat'](
                rec[f's{i}'])
            log_q = torch.log_softmax(logits, dim=1)
            ce = -sum(log_q[k, labels[k]] for k in range(n)) / n
            log_p_s = torch.log_softmax(logits / 3, dim=1)
            kl = (p_t * (torch.log(p_t) - log_p_s)).sum() / n
            assert feat.shape == rec['gap'].shape + (1, 1)
            dist = torch.sqrt(((feat.flatten(1) - rec['gap'])**2).sum())
            torch.testing.assert_close(losses[f'loss_label_{i}'], 0.7 * ce)
            torch.testing.assert_close(losses[f'loss_softl_{i}'],
                                       0.3 * 9 * kl)
            torch.testing.assert_close(losses[f'loss_fet_{i}'], 0.03 * dist)
        deep_ce = F.cross_entropy(rec['fc'], labels)
        torch.testing.assert_close(losses['student.loss'], deep_ce)
    assert len(losses) == 10


def test_teacher_side_gets_no_gradient_from_the_distillation():
    algo = build()
    inputs, samples = data()
    losses = algo.loss(inputs, samples)
    (losses['loss_softl_1'] + losses['loss_fet_1']).backward()
    head = algo.architecture.head.fc
    assert head.weight.grad is None  # the deepest classifier is the teacher
    connector = algo.distiller.connectors['loss_s1_sfeat']
    assert connector.fc.weight.grad.abs().sum() > 0
    layer1 = algo.architecture.backbone.layer1[0].conv1.weight
    assert layer1.grad.abs().sum() > 0  # the shallow section learns


def test_each_connector_runs_once_per_step():
    algo = build()
    calls = []
    for name, connector in algo.distiller.connectors.items():
        connector.register_forward_hook(
            lambda m, a, o, name=name: calls.append(name))
    algo.loss(*data())
    assert sorted(calls) == sorted(algo.distiller.connectors)


def test_one_train_step_updates_the_model_and_the_shallow_classifiers():
    algo = build()
    wrapper = OptimWrapper(torch.optim.SGD(algo.parameters(), lr=0.1))
    before = {k: v.detach().clone() for k, v in algo.named_parameters()}
    inputs, samples = data()
    batch = dict(inputs=[(x * 50 + 128).clamp(0, 255) for x in inputs],
                 data_samples=samples)
    log = algo.train_step(batch, wrapper)
    after = dict(algo.named_parameters())
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    assert 'architecture.head.fc.weight' in moved
    assert 'architecture.backbone.conv1.weight' in moved
    for i in (1, 2, 3):
        assert f'distiller.connectors.loss_s{i}_sfeat.fc.weight' in moved
    assert {'student.loss', 'loss_label_1', 'loss_softl_3'} <= set(log)


def test_frozen_model_trains_only_the_connectors():
    algo = build(student_trainable=False, calculate_student_loss=False)
    losses = algo.loss(*data())
    assert 'student.loss' not in losses
    sum(losses.values()).backward()
    assert all(p.grad is None for p in algo.architecture.parameters())
    connector = algo.distiller.connectors['loss_s2_sfeat']
    assert connector.fc.weight.grad.abs().sum() > 0


def test_connector_idx_is_checked():
    cfg = byot_distiller()
    spec = cfg['loss_forward_mappings']['loss_fet_1']['s_feature']
    spec.pop('connector')
    with pytest.raises(KeyError, match='connector_idx=0.*no `connector`'):
        MODELS.build(cfg)
    cfg = byot_distiller()
    cfg['loss_forward_mappings']['loss_fet_1']['s_feature'][
        'connector_idx'] = 'x'
    with pytest.raises(TypeError, match="connector_idx must be an int.*'x'"):
        MODELS.build(cfg)
    assert isinstance(MODELS.build(byot_distiller()), BYOTDistiller)


def test_connector_idx_out_of_range_is_named():
    algo = build()
    algo.distiller.loss_forward_mappings['loss_fet_1']['student'][
        'connector_idx'] = 5
    with pytest.raises(IndexError, match='connector_idx=5.*2 output'):
        algo.loss(*data())


# ------------------------------------------------------ SelfDistillValLoop
class MeanScore(BaseMetric):
    """The mean of the predicted scores' first entry."""

    def process(self, data_batch, data_samples):
        self.results.extend(float(s['score']) for s in data_samples)

    def compute_metrics(self, results):
        return dict(mean_score=sum(results) / len(results))


def test_self_distill_val_loop_validates_the_model_with_student_prefix():
    scores = [0.5, 1.0, 3.0]
    model = types.SimpleNamespace(
        eval=lambda: None,
        val_step=lambda batch: [dict(score=s) for s in batch])
    hooks = []
    runner = types.SimpleNamespace(
        model=model,
        call_hook=lambda name, **kw: hooks.append((name, kw)))
    loader = DataLoader(scores, batch_size=2, collate_fn=list)
    loop = SelfDistillValLoop(runner, loader, Evaluator(MeanScore()))
    metrics = loop.run()
    assert metrics == {'student.mean_score': sum(scores) / 3}
    assert ('after_val_epoch', dict(metrics=metrics)) in hooks
    assert LOOPS.get('mmrazor.SelfDistillValLoop') is SelfDistillValLoop
