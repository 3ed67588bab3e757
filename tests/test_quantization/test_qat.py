"""Quantization-aware training: QATEpochBasedLoop, LSQEpochBasedLoop and
QATValLoop, run through tools/train.py, checked against values written out
here (LSQ's initial step size, accuracies counted by hand)."""
import os.path as osp
import sys
from types import SimpleNamespace
from typing import Dict, List

import pytest
import torch
from mmengine.config import Config
from torch import nn

from mmrazor.core.loops.quantization_loops import (LSQEpochBasedLoop,
                                                   QATEpochBasedLoop,
                                                   QATValLoop,
                                                   freeze_bn_statistics)
from mmrazor.models.quantizers import LearnableFakeQuantize, OpenVINOQuantizer
from mmrazor.registry import MODELS
from tool_runs import default_scopes_restored, train_in_process

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
LSQ_CONFIG = osp.join(REPO, 'configs/quantization/qat',
                      'lsq_openvino_resnet18-w16_fashion-mnist.py')
QAT_1X = osp.join(
    osp.dirname(REPO), 'shared', 'reference', 'mmrazor-1.x', 'configs',
    'quantization', 'qat')
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def small_loaders(images: int, batch_size: int) -> List[str]:
    options = []
    for key in LOADERS:
        options += [
            f'{key}.batch_size={batch_size}', f'{key}.num_workers=0',
            f'{key}.dataset.indices={images}'
        ]
    return options


def save_float_model(cfg_model: Dict, path: str) -> str:
    """A freshly built float model saved as a local checkpoint."""
    with default_scopes_restored():
        model = MODELS.build(cfg_model)
        model.init_weights()
    torch.save({'state_dict': model.state_dict()}, path)
    return path


# ------------------------------------------------------------ LSQ, tool
def test_lsq_qat_learns_step_sizes_freezes_bn_and_validates_both(
        tmp_path, monkeypatch, capsys):
    """Two LSQ epochs (2 iterations each) of the Fashion-MNIST config,
    BN statistics frozen from epoch 2."""
    torch.manual_seed(0)
    cfg = Config.fromfile(LSQ_CONFIG)
    float_path = save_float_model(cfg.model.architecture,
                                  str(tmp_path / 'float.pth'))

    # what the first batch shows the input's fake-quant, and the state of
    # the model at the end of each epoch
    first_input: Dict[str, torch.Tensor] = {}
    snapshots: List[Dict[str, torch.Tensor]] = []
    val_metrics: List[Dict[str, float]] = []

    def bn_and_scales(model):
        qmodel = model.qmodels['loss']
        return dict(
            bn_mean=qmodel.backbone.conv1.bn.running_mean.clone(),
            float_bn_mean=model.architecture.backbone.bn1.running_mean.clone(
            ),
            scales={
                name: m.scale.detach().clone()
                for name, m in qmodel.named_modules()
                if isinstance(m, LearnableFakeQuantize)
            })

    original_run_epoch = LSQEpochBasedLoop.run_epoch

    def run_epoch(loop):
        model = loop.runner.model
        if not snapshots:
            snapshots.append(bn_and_scales(model))  # before training

            def keep_first(module, inputs, output):
                if not first_input:
                    first_input['x'] = inputs[0].detach().clone()
                    first_input['scale'] = module.scale.detach().clone()

            model.qmodels['loss'].inputs_post_process.register_forward_hook(
                keep_first)
        original_run_epoch(loop)
        snapshots.append(bn_and_scales(model))

    original_val = QATValLoop.run

    def val_run(loop):
        val_metrics.append(original_val(loop))
        return val_metrics[-1]

    monkeypatch.setattr(LSQEpochBasedLoop, 'run_epoch', run_epoch)
    monkeypatch.setattr(QATValLoop, 'run', val_run)
    runner = train_in_process(
        LSQ_CONFIG, str(tmp_path / 'work'), [
            f'model.float_checkpoint={float_path}',
            'train_cfg.max_epochs=2', 'train_cfg.freeze_bn_begin=2',
            'optim_wrapper.optimizer.lr=0.01',
            'default_hooks.logger.interval=1'
        ] + small_loaders(images=8, batch_size=4), monkeypatch)

    model = runner.model
    assert type(runner.train_loop).__name__ == 'LSQEpochBasedLoop'
    assert len(snapshots) == 3  # before, after epoch 1, after epoch 2

    # LSQ's initial step size of the input's fake-quant, by hand:
    # s = 2 * mean(|x|) / sqrt(quant_max), quant_max = 255 (quint8)
    x = first_input['x']
    expected_scale = 2 * x.abs().mean() / 255**0.5
    torch.testing.assert_close(first_input['scale'],
                               expected_scale.reshape(1))
    # ... then learned: 3 more SGD steps moved it, the observer did not
    # set it again (it would give 2 * mean|x| / sqrt(255) of a new batch)
    initial = first_input['scale']
    after = snapshots[2]['scales']['inputs_post_process']
    assert not torch.allclose(after, initial, rtol=0, atol=1e-7)
    for name, module in model.qmodels['loss'].named_modules():
        if isinstance(module, LearnableFakeQuantize):
            assert int(module.observer_enabled[0]) == 0, name
            assert int(module.fake_quant_enabled[0]) == 1, name
    moved = [
        name for name, scale in snapshots[2]['scales'].items()
        if scale.shape == snapshots[1]['scales'][name].shape
        and not torch.equal(scale, snapshots[1]['scales'][name])
    ]
    assert len(moved) == len(snapshots[2]['scales'])  # all of them learn

    # BN statistics: updated in epoch 1, frozen in epoch 2; the float
    # architecture reads the same statistics
    assert not torch.equal(snapshots[1]['bn_mean'], snapshots[0]['bn_mean'])
    assert torch.equal(snapshots[2]['bn_mean'], snapshots[1]['bn_mean'])
    assert torch.equal(snapshots[2]['float_bn_mean'], snapshots[2]['bn_mean'])

    # QATValLoop: both sets, prefixed as in 1.x, each equal to the top-1
    # counted here on the 8 validation images with the final weights
    assert len(val_metrics) == 2
    metrics = val_metrics[-1]
    assert set(metrics) == {'qat.accuracy/top1', 'original.accuracy/top1'}
    assert list(metrics)[0] == 'qat.accuracy/top1'
    dataset = runner.val_dataloader.dataset
    with default_scopes_restored():
        batch = model.data_preprocessor(
            dict(
                inputs=[dataset[i]['inputs'] for i in range(len(dataset))],
                data_samples=[
                    dataset[i]['data_samples'] for i in range(len(dataset))
                ]), False)
    labels = torch.tensor([int(d.gt_label) for d in batch['data_samples']])
    model.eval()
    with torch.no_grad():
        quant_logits = model(batch['inputs'], mode='tensor')
        float_logits = model.architecture(batch['inputs'], mode='tensor')
    assert not torch.equal(quant_logits, float_logits)
    for key, logits in (('qat.accuracy/top1', quant_logits),
                        ('original.accuracy/top1', float_logits)):
        top1 = 100.0 * (logits.argmax(1) == labels).float().mean().item()
        assert metrics[key] == pytest.approx(top1), key
    scalars = runner.message_hub.log_scalars
    assert 'val/qat.accuracy/top1' in scalars
    assert 'val/original.accuracy/top1' in scalars

    # tools/test.py on the saved checkpoint: the fake-quant model as
    # validated (observers were saved off, the learned step sizes load)
    from tool_runs import load_tool
    tool = load_tool('test.py')
    monkeypatch.setattr(sys, 'argv', [
        'test.py', LSQ_CONFIG,
        str(tmp_path / 'work' / 'epoch_2.pth'), '--cfg-options',
        f'model.float_checkpoint={float_path}'
    ] + small_loaders(images=8, batch_size=4))
    capsys.readouterr()
    with default_scopes_restored():
        tool.main()
    printed = capsys.readouterr().out
    assert f"accuracy/top1: {metrics['qat.accuracy/top1']:.4f}" in printed


def bn_folded_weight(conv: nn.Module) -> torch.Tensor:
    """``weight * gamma / sqrt(running_var + eps)`` per output channel of a
    fused QAT conv-bn, written out here (detached)."""
    bn = conv.bn
    factor = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return (conv.weight * factor.reshape(-1, 1, 1, 1)).detach()


W4A8_CONFIG = osp.join(REPO, 'configs/quantization/qat',
                       'lsq_academic-w4a8_resnet18-w16_fashion-mnist.py')


def test_w4a8_config_starts_weight_steps_at_min_max(tmp_path, monkeypatch):
    """The W4A8 config: 4-bit weights over [-7, 7] whose step sizes start at
    ``max|w| / 7`` per output channel of the BN-folded weight (a zero
    learning rate keeps them there), affine 8-bit activations."""
    torch.manual_seed(0)
    cfg = Config.fromfile(W4A8_CONFIG)
    float_path = save_float_model(cfg.model.architecture,
                                  str(tmp_path / 'float.pth'))
    runner = train_in_process(
        W4A8_CONFIG, str(tmp_path / 'work'), [
            f'model.float_checkpoint={float_path}', 'train_cfg.max_epochs=1',
            'optim_wrapper.optimizer.lr=0.0'
        ] + small_loaders(images=4, batch_size=4), monkeypatch)
    assert type(runner.model.quantizer).__name__ == 'AcademicQuantizer'
    conv = runner.model.qmodels['loss'].backbone.conv1
    fake_quant = conv.weight_fake_quant
    assert isinstance(fake_quant, LearnableFakeQuantize)
    assert (fake_quant.quant_min, fake_quant.quant_max) == (-7, 7)
    folded = bn_folded_weight(conv)
    torch.testing.assert_close(fake_quant.scale.detach(),
                               folded.abs().amax((1, 2, 3)) / 7)
    inputs = runner.model.qmodels['loss'].inputs_post_process
    assert inputs.qscheme == torch.per_tensor_affine
    assert (inputs.quant_min, inputs.quant_max) == (0, 255)


MBV2_LSQ_CONFIG = osp.join(REPO, 'configs/quantization/qat',
                           'lsq_openvino_mbv2_fashion-mnist.py')


def test_mbv2_lsq_config_trains_with_affine_activations(
        tmp_path, monkeypatch):
    """The Fashion-MNIST MobileNetV2 LSQ config, one epoch of 2 iterations
    at a zero learning rate: LSQ's initial weight step sizes
    (``2 * mean|w| / sqrt(127)`` per channel of the BN-folded weight) stay,
    activations are affine quint8, and both validation sets are logged."""
    torch.manual_seed(0)
    cfg = Config.fromfile(MBV2_LSQ_CONFIG)
    float_path = save_float_model(cfg.model.architecture,
                                  str(tmp_path / 'float.pth'))
    runner = train_in_process(
        MBV2_LSQ_CONFIG, str(tmp_path / 'work'), [
            f'model.float_checkpoint={float_path}', 'train_cfg.max_epochs=1',
            'optim_wrapper.optimizer.lr=0.0'
        ] + small_loaders(images=8, batch_size=4), monkeypatch)
    assert type(runner.train_loop).__name__ == 'LSQEpochBasedLoop'
    qmodel = runner.model.qmodels['loss']
    conv = qmodel.backbone.conv1.conv
    folded = bn_folded_weight(conv)
    torch.testing.assert_close(conv.weight_fake_quant.scale.detach(),
                               2 * folded.abs().mean((1, 2, 3)) / 127**0.5)
    inputs = qmodel.inputs_post_process
    assert inputs.qscheme == torch.per_tensor_affine
    scalars = runner.message_hub.log_scalars
    assert 'val/qat.accuracy/top1' in scalars
    assert 'val/original.accuracy/top1' in scalars


# ---------------------------------------------------------- loop pieces
class ConvBnReluConvBn(nn.Module):

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.relu = nn.ReLU()
        self.bn_alone = nn.BatchNorm2d(4)  # not after a conv: not fused

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn_alone(self.relu(self.bn(self.conv(x))) + 1)


def lsq_qconfig() -> Dict:
    return dict(
        w_observer=dict(type='mmrazor.LSQPerChannelObserver'),
        a_observer=dict(type='mmrazor.LSQObserver'),
        w_fake_quant=dict(type='mmrazor.LearnableFakeQuantize'),
        a_fake_quant=dict(type='mmrazor.LearnableFakeQuantize'),
        w_qscheme=dict(
            qdtype='qint8', bit=8, is_symmetry=True, is_symmetric_range=True),
        a_qscheme=dict(qdtype='quint8', bit=8, is_symmetry=True))


def test_freeze_bn_statistics_keeps_running_stats_after_train():
    torch.manual_seed(0)
    prepared = OpenVINOQuantizer(lsq_qconfig()).prepare(
        ConvBnReluConvBn().train())
    fused = prepared.conv
    assert type(fused).__name__ == 'ConvBnReLU2d'
    assert freeze_bn_statistics(prepared) == 2  # fused BN + the lone one
    prepared.train()  # as the loop's next epoch does: fused BN stays frozen
    freeze_bn_statistics(prepared)  # the loop re-freezes the lone BN
    before = [
        fused.bn.running_mean.clone(), fused.bn.running_var.clone(),
        prepared.bn_alone.running_mean.clone()
    ]
    prepared(torch.randn(4, 1, 6, 6) * 3 + 2)
    after = [
        fused.bn.running_mean, fused.bn.running_var,
        prepared.bn_alone.running_mean
    ]
    for old, new in zip(before, after):
        assert torch.equal(old, new)
    # without freezing, the same batch moves them
    unfrozen = OpenVINOQuantizer(lsq_qconfig()).prepare(
        ConvBnReluConvBn().train())
    start = unfrozen.conv.bn.running_mean.clone()
    unfrozen(torch.randn(4, 1, 6, 6) * 3 + 2)
    assert not torch.equal(start, unfrozen.conv.bn.running_mean)


def fake_quant_qconfig() -> Dict:
    return dict(
        w_observer=dict(type='mmrazor.PerChannelMinMaxObserver'),
        a_observer=dict(type='mmrazor.MovingAverageMinMaxObserver'),
        w_fake_quant=dict(type='mmrazor.FakeQuantize'),
        a_fake_quant=dict(type='mmrazor.FakeQuantize'),
        w_qscheme=dict(
            qdtype='qint8', bit=8, is_symmetry=True, is_symmetric_range=True),
        a_qscheme=dict(qdtype='quint8', bit=8, is_symmetry=True))


def quant_flags(model: nn.Module) -> set:
    """The distinct (observer_enabled, fake_quant_enabled) pairs."""
    return {(int(m.observer_enabled[0]), int(m.fake_quant_enabled[0]))
            for m in model.modules()
            if isinstance(m, torch.ao.quantization.FakeQuantizeBase)}


def test_qat_loop_switches_observers_and_bn_by_epoch():
    """Epochs are numbered from 1: disable_observer_begin=2 leaves the
    observers on in epoch 1 only, freeze_bn_begin=3 freezes BN in epoch 3;
    after each epoch (checkpoint, validation) observers are off."""
    prepared = OpenVINOQuantizer(fake_quant_qconfig()).prepare(
        ConvBnReluConvBn().train())
    loop = QATEpochBasedLoop.__new__(QATEpochBasedLoop)
    loop._runner = SimpleNamespace(model=prepared)
    loop.disable_observer_begin, loop.freeze_bn_begin = 2, 3
    expected = {0: ((1, 1), False), 1: ((0, 1), False), 2: ((0, 1), True)}
    for epoch, (flags, frozen) in expected.items():
        loop._epoch = epoch
        prepared.train()
        loop.prepare_for_run_epoch()
        assert quant_flags(prepared) == {flags}, epoch
        assert prepared.conv.freeze_bn is frozen, epoch
        assert prepared.bn_alone.training is not frozen, epoch
        loop.prepare_for_val()
        assert quant_flags(prepared) == {(0, 1)}, epoch


def test_zero_bn_weight_trains_without_nan():
    """torch's default QAT conv-bn divides by the BN weight; a zero one
    (``zero_init_residual``) gets the exact path: no NaN, and the channel's
    output is its BN bias (gamma * anything + beta)."""
    torch.manual_seed(0)
    model = ConvBnReluConvBn().train()
    with torch.no_grad():
        model.bn.weight[1] = 0
        model.bn.bias[1] = 0.25
    prepared = OpenVINOQuantizer(fake_quant_qconfig()).prepare(model)
    assert prepared.conv._enable_slow_path_for_better_numerical_stability
    out = prepared.conv(torch.randn(4, 1, 6, 6))
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out[:, 1], torch.full_like(out[:, 1], 0.25))


@pytest.mark.parametrize('loop', [QATEpochBasedLoop, LSQEpochBasedLoop])
@pytest.mark.parametrize('value', [0, -2, 1.5, True])
def test_bad_freeze_bn_begin_is_refused(loop, value):
    with pytest.raises(ValueError, match=f'freeze_bn_begin.*{value!r}'):
        loop(None, None, max_epochs=1, freeze_bn_begin=value)


def test_qat_val_loop_needs_an_architecture():

    class FakeRunner:
        model = nn.Linear(1, 1)

    loop = QATValLoop.__new__(QATValLoop)
    loop._runner = FakeRunner()
    with pytest.raises(TypeError, match='`architecture`.*Linear'):
        loop.run()

    # a distiller: the loop validates its quantized student
    class Quant(nn.Module):

        def __init__(self):
            super().__init__()
            self.architecture = nn.Linear(1, 1)
            self.qmodels = nn.ModuleDict()

    class Distiller(nn.Module):

        def __init__(self):
            super().__init__()
            self.architecture = Quant()
            self.teacher = nn.Linear(1, 1)

    FakeRunner.model = Distiller()
    assert loop._algorithm is FakeRunner.model.architecture


def test_moving_the_algorithm_keeps_bn_statistics_shared():
    """``.to()`` / ``.cuda()`` convert each module's buffers on their own:
    the fused QAT BN and the float BN must still be one tensor after."""
    cfg = Config.fromfile(LSQ_CONFIG)
    cfg.model.float_checkpoint = None
    with default_scopes_restored():
        algorithm = MODELS.build(cfg.model)
    fused_bn = algorithm.qmodels['loss'].backbone.conv1.bn
    float_bn = algorithm.architecture.backbone.bn1
    algorithm.to(torch.float64)
    assert float_bn.running_mean.dtype == torch.float64
    assert fused_bn.running_mean is float_bn.running_mean
    assert fused_bn.running_var is float_bn.running_var
    assert fused_bn.weight is float_bn.weight
    fused_bn.running_mean.add_(1)  # one tensor: both see it
    assert torch.equal(float_bn.running_mean, fused_bn.running_mean)


# ------------------------------------------------- KD during LSQ QAT
KD_CONFIG = osp.join(REPO, 'configs/quantization/qat',
                     'lsq-kd_openvino_resnet18-w16_fashion-mnist.py')


@pytest.mark.e2e  # 10-20 s: the default suite keeps to its budget
def test_lsq_qat_with_kd_from_the_float_model(tmp_path, monkeypatch):
    """KD during QAT (``SingleTeacherDistill`` around the LSQ
    ``MMArchitectureQuant``, teacher: the float checkpoint). At every
    step the logged ``loss_kl`` is tau^2 * KL(softmax(T / tau) ||
    softmax(S / tau)) written out here, T the logits of a float model built
    apart from the same checkpoint, S the fake-quant graph's logits of the
    batch; ``QATValLoop`` validates the fake-quant student (``qat.``) and
    its float architecture (``original.``), not the teacher."""
    from mmrazor.models.algorithms import SingleTeacherDistill
    torch.manual_seed(0)
    cfg = Config.fromfile(KD_CONFIG)
    float_path = save_float_model(cfg.model.teacher,
                                  str(tmp_path / 'float.pth'))
    with default_scopes_restored():
        teacher = MODELS.build(cfg.model.teacher)
    teacher.load_state_dict(
        torch.load(float_path, weights_only=True)['state_dict'])
    teacher.eval()

    steps = []
    original_loss = SingleTeacherDistill.loss

    def loss(self, batch_inputs, data_samples):
        logits = {}
        handle = self.architecture.qmodels['loss'].head.fc \
            .register_forward_hook(
                lambda m, i, o: logits.setdefault('S', o.detach()))
        try:
            losses = original_loss(self, batch_inputs, data_samples)
        finally:
            handle.remove()
        with torch.no_grad():
            logits['T'] = teacher(batch_inputs, mode='tensor')
        steps.append(dict(logits, kl=losses['loss_kl'].detach()))
        return losses

    monkeypatch.setattr(SingleTeacherDistill, 'loss', loss)
    val_metrics = []
    original_val = QATValLoop.run

    def val_run(loop):
        val_metrics.append((loop._algorithm, original_val(loop)))
        return val_metrics[-1][1]

    monkeypatch.setattr(QATValLoop, 'run', val_run)
    runner = train_in_process(
        KD_CONFIG, str(tmp_path / 'work'), [
            f'model.architecture.float_checkpoint={float_path}',
            f'model.teacher_ckpt={float_path}', 'train_cfg.max_epochs=1'
        ] + small_loaders(images=8, batch_size=4), monkeypatch)

    assert len(steps) == 2
    tau = float(cfg.model.distiller.distill_losses.loss_kl.tau)
    for step in steps:
        log_p_s = torch.log_softmax(step['S'] / tau, dim=1)
        p_t = torch.softmax(step['T'] / tau, dim=1)
        expected = tau**2 * (p_t * (p_t.log() - log_p_s)).sum(1).mean()
        torch.testing.assert_close(step['kl'], expected)
    # the student's logits are fake-quantized, not the teacher's
    assert not torch.allclose(steps[0]['S'], steps[0]['T'])
    (algorithm, metrics), = val_metrics
    assert algorithm is runner.model.architecture
    assert {'qat.accuracy/top1', 'original.accuracy/top1'} <= set(metrics)


# ------------------------------------------------------ 1.x QAT configs
needs_reference = pytest.mark.skipif(
    not osp.isdir(QAT_1X), reason='1.x reference configs not available')


@needs_reference
@pytest.mark.parametrize('config,loop', [
    ('base/qat_openvino_resnet18_10e_8xb32_in1k.py', 'QATEpochBasedLoop'),
    ('lsq/lsq_openvino_resnet18_8xb32_10e_in1k.py', 'LSQEpochBasedLoop'),
])
def test_train_1x_qat_config(config, loop, tmp_path, monkeypatch):
    """The 1.x QAT configs with only the data paths, loader sizes, the
    number of epochs and the float checkpoint (a local file of a freshly
    built ResNet-18 instead of the URL) changed: 2 epochs of 1 iteration
    on 2 Fashion-MNIST images exported as an ImageNet folder."""
    from mmrazor.apis.config_compat import load_config
    from mmrazor.datasets import export_fashion_mnist
    config = osp.join(QAT_1X, config)
    root = export_fashion_mnist(str(tmp_path / 'imagenet'), per_class=1)
    resnet = load_config(config, {}).model.architecture
    float_path = save_float_model(resnet, str(tmp_path / 'float.pth'))
    options = [f'{key}.dataset.data_root={root}' for key in LOADERS]
    options += small_loaders(images=2, batch_size=2) + [
        'train_cfg.max_epochs=2', f'model.float_checkpoint={float_path}',
        'default_hooks.logger.interval=1'
    ]
    runner = train_in_process(config, str(tmp_path / 'work'), options,
                              monkeypatch)
    assert type(runner.train_loop).__name__ == loop
    assert type(runner.model).__name__ == 'MMArchitectureQuant'
    scalars = runner.message_hub.log_scalars
    assert 'train/loss' in scalars
    assert 'val/qat.accuracy/top1' in scalars
    assert 'val/original.accuracy/top1' in scalars
    checkpoint = osp.join(str(tmp_path / 'work'), 'epoch_2.pth')
    assert osp.isfile(checkpoint)
    # saved as validated: observers off, fake-quants on
    assert quant_flags(runner.model) == {(0, 1)}
    state = torch.load(checkpoint, weights_only=False)['state_dict']
    observer_flags = [
        int(v[0]) for k, v in state.items() if k.endswith('observer_enabled')
    ]
    assert observer_flags and not any(observer_flags)
