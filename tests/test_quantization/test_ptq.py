"""Post-training quantization: tracer, quantizers, MMArchitectureQuant,
PTQLoop and tools/ptq.py, checked against fake-quant written out here."""
import copy
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from torch import nn

from mmrazor.core.loops.quantization_loops import calibrate_prepared
from mmrazor.models.algorithms.quantization import MMArchitectureQuant
from mmrazor.models.quantizers import (AcademicQuantizer, CustomTracer,
                                       OpenVINOQuantizer, TensorRTQuantizer)
from mmrazor.registry import MODELS

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PTQ_CONFIG = osp.join(
    REPO, 'configs/quantization/ptq',
    'ptq_openvino_resnet18-w16_fashion-mnist.py')
SKIPPED = [
    'mmcls.models.heads.ClsHead._get_loss',
    'mmcls.models.heads.ClsHead._get_predictions'
]


def qconfig(a_observer='mmrazor.MovingAverageMinMaxObserver',
            a_qdtype='quint8', w_bit=8):
    return dict(
        w_observer=dict(type='mmrazor.PerChannelMinMaxObserver'),
        a_observer=dict(type=a_observer),
        w_fake_quant=dict(type='mmrazor.FakeQuantize'),
        a_fake_quant=dict(type='mmrazor.FakeQuantize'),
        w_qscheme=dict(
            qdtype='qint8', bit=w_bit, is_symmetry=True,
            is_symmetric_range=True),
        a_qscheme=dict(qdtype=a_qdtype, bit=8, is_symmetry=True))


class ConvBnReluLinear(nn.Module):

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.relu = nn.ReLU()
        self.fc = nn.Linear(4 * 4 * 4, 3)

    def forward(self, x):
        x = self.relu(self.bn(self.conv(x)))
        return self.fc(torch.flatten(x, 1))


def fake_quant_modules(model):
    return [
        name for name, m in model.named_modules()
        if isinstance(m, torch.ao.quantization.FakeQuantize)
    ]


def test_prepare_inserts_fake_quants_where_expected():
    prepared = OpenVINOQuantizer(qconfig()).prepare(ConvBnReluLinear().eval())
    calls = [
        n.target for n in prepared.graph.nodes if n.op == 'call_module'
        and n.target.endswith('_post_process')
    ]
    # activations: input, fused conv-bn-relu output, flatten output (the
    # same fake-quant as its input: flatten shares its input's qparams),
    # fc output; weights: the conv's and the linear's
    assert calls == [
        'x_post_process', 'conv_post_process', 'flatten_post_process',
        'fc_post_process'
    ]
    assert prepared.flatten_post_process is prepared.conv_post_process
    assert sorted(fake_quant_modules(prepared)) == sorted([
        'x_post_process', 'conv_post_process', 'fc_post_process',
        'conv.weight_fake_quant', 'fc.weight_fake_quant'
    ])
    assert type(prepared.conv).__name__ == 'ConvBnReLU2d'
    assert prepared.conv.weight_fake_quant.qscheme == \
        torch.per_channel_symmetric


def test_extra_redundant_fakequants_removes_what_they_name():
    model = ConvBnReluLinear().eval()
    x = torch.randn(2, 1, 6, 6)
    by_prefix = OpenVINOQuantizer(
        qconfig(), extra_redundant_fakequants=dict(
            extra_module_prefixes=('fc', ))).prepare(copy.deepcopy(model))
    # the fake-quant after fc is gone: the graph returns fc's output
    assert 'fc_post_process' not in dict(by_prefix.named_children())
    assert 'conv_post_process' in dict(by_prefix.named_children())
    output = [n for n in by_prefix.graph.nodes if n.op == 'output'][0]
    assert output.args[0].target == 'fc'
    by_name = OpenVINOQuantizer(
        qconfig(), extra_redundant_fakequants=dict(
            extra_fakequant_names=('x_post_process', ))).prepare(
                copy.deepcopy(model))
    children = dict(by_name.named_children())
    assert 'x_post_process' not in children and 'fc_post_process' in children
    # the rewired graphs still run: with fake-quant off, the float model
    for prepared in (by_prefix, by_name):
        prepared.eval().apply(torch.ao.quantization.disable_fake_quant)
        torch.testing.assert_close(prepared(x), model(x))
    with pytest.raises(KeyError, match='extra_module_prefixes'):
        OpenVINOQuantizer(qconfig(),
                          extra_redundant_fakequants=dict(prefixes=('fc', )))


class ConvBnReLU6Residual(nn.Module):
    """conv-bn -> ReLU6, then conv-bn -> ReLU6 whose conv output is also
    added to the ReLU6 output (two users)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(4)
        self.act1 = nn.ReLU6()
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(4)
        self.act2 = nn.ReLU6()

    def forward(self, x):
        x = self.act1(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(x))
        return self.act2(y) + y


def test_conv_bn_relu6_is_observed_after_the_relu6():
    prepared = OpenVINOQuantizer(qconfig()).prepare(
        ConvBnReLU6Residual().eval())
    observed = [
        n.args[0].target for n in prepared.graph.nodes
        if n.op == 'call_module' and n.target.endswith('_post_process')
    ]
    # conv1 -> ReLU6 is one quantized op: one fake-quant, after the ReLU6.
    # conv2's output has two users, so it is quantized itself and its
    # ReLU6 shares that fake-quant (torch's pattern for a lone ReLU6)
    assert 'conv1' not in observed and 'act1' in observed
    assert 'conv2' in observed
    assert prepared.act2_post_process is prepared.conv2_post_process
    assert type(prepared.conv1).__name__ == 'ConvBn2d'


def hand_fake_quant(v, scale, zero_point, qmin, qmax):
    return (torch.clamp(torch.round(v / scale) + zero_point, qmin, qmax) -
            zero_point) * scale


def test_calibrated_output_equals_hand_computed_fake_quant():
    torch.manual_seed(0)
    conv = nn.Sequential(nn.Conv2d(2, 3, 3)).eval()
    quantizer = OpenVINOQuantizer(qconfig('mmrazor.MinMaxObserver'))
    prepared = quantizer.prepare(conv).train()
    calib = [torch.randn(2, 2, 5, 5) * 2 for _ in range(3)]
    assert calibrate_prepared(prepared, calib) is prepared
    assert not prepared.training
    for module in prepared.modules():
        if isinstance(module, torch.ao.quantization.FakeQuantize):
            assert int(module.observer_enabled[0]) == 0
            assert int(module.fake_quant_enabled[0]) == 1

    # by hand: unsigned symmetric activations [0, 255], zero point 127,
    # s = max(-min, max) / 127.5 over everything seen (min <= 0 <= max)
    def act_qparams(values):
        lo = min(float(v.min()) for v in values + [torch.zeros(1)])
        hi = max(float(v.max()) for v in values + [torch.zeros(1)])
        return max(-lo, hi) / 127.5

    weight, bias = conv[0].weight.detach(), conv[0].bias.detach()
    in_scale = act_qparams(calib)
    outputs = [nn.functional.conv2d(x, weight, bias) for x in calib]
    out_scale = act_qparams(outputs)
    # weights: per output channel, s_c = max|w_c| / 127, range [-127, 127]
    w_scale = weight.abs().flatten(1).max(dim=1).values / 127
    w_q = hand_fake_quant(weight, w_scale.view(-1, 1, 1, 1), 0, -127, 127)
    x = torch.randn(4, 2, 5, 5) * 2.5
    x_q = hand_fake_quant(x, in_scale, 127, 0, 255)
    expected = hand_fake_quant(
        nn.functional.conv2d(x_q, w_q, bias), out_scale, 127, 0, 255)
    with torch.no_grad():
        got = prepared(x)
    assert torch.allclose(got, expected, atol=1e-5)
    assert not torch.allclose(got, conv(x), atol=1e-3)  # it is quantized


class WithUnsupportedOps(ConvBnReluLinear):

    def forward(self, x):
        return torch.sigmoid(super().forward(x)).cumsum(1)


def test_unsupported_ops_are_named_in_the_log(monkeypatch):
    from mmengine.logging import MMLogger
    messages = []
    logger = MMLogger.get_current_instance()
    monkeypatch.setattr(logger, 'warning', messages.append)
    quantizer = OpenVINOQuantizer(qconfig())
    prepared = quantizer.prepare(WithUnsupportedOps().eval())
    assert quantizer.unsupported_ops == ['sigmoid', 'cumsum']
    assert len(messages) == 1 and "['sigmoid', 'cumsum']" in messages[0]
    # they stay float: no fake-quant after the last linear's output one
    assert 'sigmoid_post_process' not in dict(prepared.named_modules())


def test_backend_constraints():
    with pytest.raises(ValueError, match='w_qscheme.bit=4'):
        OpenVINOQuantizer(qconfig(w_bit=4))
    with pytest.raises(ValueError, match="a_qscheme.qdtype='quint8'"):
        TensorRTQuantizer(qconfig())
    trt = TensorRTQuantizer(qconfig(a_qdtype='qint8')).prepare(
        ConvBnReluLinear().eval())
    assert trt.conv_post_process.quant_min == -128
    academic = AcademicQuantizer(qconfig(w_bit=4)).prepare(
        ConvBnReluLinear().eval())
    assert (academic.conv.weight_fake_quant.quant_min,
            academic.conv.weight_fake_quant.quant_max) == (-7, 7)


def test_custom_tracer_keeps_skipped_methods_as_leaves():
    cfg = Config.fromfile(PTQ_CONFIG)
    model = MODELS.build(cfg.model.architecture)
    tracer = CustomTracer(skipped_methods=SKIPPED)
    graph = tracer.trace(model, {'mode': 'loss'})
    assert tracer.skipped_calls == ['head._get_loss']
    assert [n.name for n in graph.nodes][-2:] == ['_get_loss', 'output']
    with pytest.raises(AttributeError, match='no method'):
        CustomTracer(skipped_methods=['mmcls.models.heads.ClsHead.nope'])


def build_algorithm(float_checkpoint=None):
    cfg = Config.fromfile(PTQ_CONFIG)
    cfg.model.float_checkpoint = float_checkpoint
    return MODELS.build(cfg.model)


def test_forward_modes_share_quantizers():
    algorithm = build_algorithm()
    qmodels = algorithm.qmodels
    assert set(qmodels) == {'tensor', 'predict', 'loss'}
    for mode in ('predict', 'loss'):
        assert qmodels[mode].backbone.conv1 is qmodels['tensor'].backbone.conv1
        assert qmodels[mode].head_fc_post_process is \
            qmodels['tensor'].head_fc_post_process
    with pytest.raises(ValueError, match='is a URL'):
        build_algorithm('https://example.com/x.pth')


def preprocessed(model, dataset_cfg, num):
    from mmrazor.registry import DATASETS
    dataset = DATASETS.build(
        dict(dataset_cfg, indices=num,
             pipeline=[dict(type='mmpretrain.PackInputs')]))
    return model.data_preprocessor(
        dict(
            inputs=[dataset[i]['inputs'] for i in range(num)],
            data_samples=[dataset[i]['data_samples'] for i in range(num)]),
        False)


def train_briefly(model, cfg, num=512, epochs=4):
    """Four epochs of SGD on 512 training images (about 6 s): a model whose
    predictions mean something, so that agreement is a real check (after
    two, many of its predictions are near ties that one rounding flips)."""
    data = preprocessed(model, cfg.train_dataloader.dataset, num)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model.train()
    for _ in range(epochs):
        for i in range(0, num, 64):
            loss = model(data['inputs'][i:i + 64],
                         data['data_samples'][i:i + 64], mode='loss')['loss']
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()


#: tools/ptq.py overrides of the tool tests: 3 calibration steps of 16
#: images, evaluation on 200 test images.
SMALL_RUN = ('test_cfg.calibrate_steps=3',
             'test_cfg.calibrate_dataloader.batch_size=16',
             'test_dataloader.dataset.indices=200',
             'test_dataloader.batch_size=100')


def trained_float_model(cfg, tmp_path):
    """The PTQ config's architecture after :func:`train_briefly` (seed 0),
    and its checkpoint saved under ``tmp_path``."""
    from tool_runs import default_scopes_restored
    torch.manual_seed(0)
    float_model = MODELS.build(cfg.model.architecture)
    float_model.init_weights()
    with default_scopes_restored():
        train_briefly(float_model, cfg)
    float_path = str(tmp_path / 'float.pth')
    torch.save({'state_dict': float_model.state_dict()}, float_path)
    return float_model, float_path


def fresh_float_checkpoint(config: str, tmp_path):
    """A freshly built (seed 0) float model of ``config``'s architecture,
    its checkpoint saved under ``tmp_path``, and the config."""
    from tool_runs import default_scopes_restored
    torch.manual_seed(0)
    cfg = Config.fromfile(config)
    with default_scopes_restored():
        float_model = MODELS.build(cfg.model.architecture)
        float_model.init_weights()
    float_path = str(tmp_path / 'float.pth')
    torch.save({'state_dict': float_model.state_dict()}, float_path)
    return cfg, float_model, float_path


def record_calibration_steps(monkeypatch) -> list:
    """A list that gets one entry per ``MMArchitectureQuant.calibrate_step``
    call (the step still runs)."""
    steps = []
    original = MMArchitectureQuant.calibrate_step
    monkeypatch.setattr(MMArchitectureQuant, 'calibrate_step',
                        lambda self, data: steps.append(1) or original(
                            self, data))
    return steps


def test_ptq_tool_end_to_end(tmp_path, monkeypatch):
    from tool_runs import default_scopes_restored, load_tool
    monkeypatch.setenv('OMP_NUM_THREADS', '1')
    cfg = Config.fromfile(PTQ_CONFIG)
    float_model, float_path = trained_float_model(cfg, tmp_path)

    steps = record_calibration_steps(monkeypatch)
    tool = load_tool('ptq.py')
    with default_scopes_restored():
        metrics = tool.main([
            PTQ_CONFIG, float_path, '--work-dir',
            str(tmp_path / 'work'), '--cfg-options', *SMALL_RUN
        ])
    assert len(steps) == 3
    assert 'accuracy/top1' in metrics
    saved = str(tmp_path / 'work' / 'model_ptq.pth')
    assert osp.isfile(saved)

    # the saved fake-quant model agrees with the float one on 200 images
    algorithm = build_algorithm(float_path).eval()
    state = torch.load(saved, weights_only=True)['state_dict']
    algorithm.load_state_dict(state, strict=True)
    with default_scopes_restored():
        batch = preprocessed(algorithm, cfg.test_dataloader.dataset, 200)
    with torch.no_grad():
        quantized = algorithm(batch['inputs'], mode='tensor')
        floating = float_model.eval()(batch['inputs'], mode='tensor')
    agreement = (quantized.argmax(1) == floating.argmax(1)).float().mean()
    assert agreement >= 0.95, agreement
    labels = torch.stack([d.gt_label for d in batch['data_samples']])[:, 0]
    top1_float = (floating.argmax(1) == labels).float().mean()
    top1_quant = (quantized.argmax(1) == labels).float().mean()
    assert top1_float > 0.2, top1_float  # above chance (0.1)
    assert abs(top1_quant - top1_float) <= 0.02, (top1_quant, top1_float)
    assert not torch.equal(quantized, floating)


PRUNE_CONFIG = osp.join(REPO, 'configs/pruning/importance',
                        'resnet18-w16_l1-flops50_fashion-mnist.py')


@pytest.mark.e2e  # 15-30 s: the default suite keeps to its budget
def test_ptq_tool_quantizes_a_pruned_model(tmp_path, monkeypatch):
    """prune -> quantize: tools/prune.py halves the FLOPs, tools/ptq.py
    --pruned quantizes the physically pruned model (fine-tuning skipped:
    its checkpoint has the unpruned shapes, as the trained one here). The
    quantized model has the pruned shapes (parameter count of the prune
    report) and agrees with the masked float model."""
    import json

    from tool_runs import default_scopes_restored, load_tool

    from mmrazor.apis.prune import pruned_architecture
    monkeypatch.setenv('OMP_NUM_THREADS', '1')
    cfg = Config.fromfile(PTQ_CONFIG)
    float_model, float_path = trained_float_model(cfg, tmp_path)
    pruned_dir = tmp_path / 'pruned'
    with default_scopes_restored():
        load_tool('prune.py').main([
            PRUNE_CONFIG, float_path, '--work-dir',
            str(pruned_dir)
        ])
    finetune = str(pruned_dir / 'finetune.py')
    with open(pruned_dir / 'prune_report.json') as f:
        report = json.load(f)
    assert report['flops_ratio'] <= 0.5

    steps = record_calibration_steps(monkeypatch)
    with default_scopes_restored():
        metrics = load_tool('ptq.py').main([
            PTQ_CONFIG, float_path, '--pruned', finetune, '--work-dir',
            str(tmp_path / 'work'), '--cfg-options', *SMALL_RUN
        ])
    assert len(steps) == 3
    assert 'accuracy/top1' in metrics

    cfg.model.architecture = pruned_architecture(finetune, float_path)
    cfg.model.float_checkpoint = None
    with default_scopes_restored():
        algorithm = MODELS.build(cfg.model).eval()
    state = torch.load(
        str(tmp_path / 'work' / 'model_ptq.pth'),
        weights_only=True)['state_dict']
    algorithm.load_state_dict(state, strict=True)
    assert sum(p.numel() for p in algorithm.architecture.parameters()) \
        == report['params']
    # the masked float model (full shapes, pruned channels zeroed by
    # hooks) of the same subnet
    masked_cfg = Config.fromfile(finetune).model
    masked_cfg.checkpoint = float_path
    with default_scopes_restored():
        masked = MODELS.build(masked_cfg).eval()
        batch = preprocessed(algorithm, cfg.test_dataloader.dataset, 200)
    with torch.no_grad():
        quantized = algorithm(batch['inputs'], mode='tensor')
        floating = masked(batch['inputs'], mode='tensor')
    agreement = (quantized.argmax(1) == floating.argmax(1)).float().mean()
    assert agreement >= 0.95, agreement
    assert not torch.equal(quantized, floating)
    with pytest.raises(ValueError, match='not .mmrazor.PrunedModel'):
        pruned_architecture(PTQ_CONFIG, float_path)


# ------------------------------------------------------ 1.x PTQ configs
PTQ_1X = osp.join(
    osp.dirname(REPO), 'shared', 'reference', 'mmrazor-1.x', 'configs',
    'quantization', 'ptq', 'base')


@pytest.mark.skipif(not osp.isdir(PTQ_1X),
                    reason='1.x reference configs not available')
@pytest.mark.parametrize('config', [
    pytest.param(
        f'ptq_{backend}_{model}_8xb32_in1k_calib32xb32.py',
        # ResNet-50's are the slow ones (12 s each): end-to-end suite
        marks=[pytest.mark.e2e] if model == 'resnet50' else [])
    for backend in ('openvino', 'tensorrt')
    for model in ('resnet18', 'mbv2', 'resnet50')
])
def test_1x_ptq_config_through_the_tool(config, tmp_path, monkeypatch):
    """The 1.x classification PTQ configs through tools/ptq.py with only the
    data paths, loader sizes and calibration steps changed, on 2
    Fashion-MNIST images exported as an ImageNet folder, the float
    checkpoint a local file of the freshly built architecture: the
    calibration steps run, the observers of every fake-quant saw data and
    the saved model evaluates."""
    from mmrazor.apis.config_compat import load_config
    from mmrazor.datasets import export_fashion_mnist
    from tool_runs import default_scopes_restored, load_tool
    monkeypatch.setenv('OMP_NUM_THREADS', '1')
    torch.manual_seed(0)
    config = osp.join(PTQ_1X, config)
    root = export_fashion_mnist(str(tmp_path / 'imagenet'), per_class=1)
    arch = load_config(config, {}).model.architecture
    with default_scopes_restored():
        float_model = MODELS.build(arch)
        float_model.init_weights()
    float_path = str(tmp_path / 'float.pth')
    torch.save({'state_dict': float_model.state_dict()}, float_path)
    steps = record_calibration_steps(monkeypatch)
    options = []
    for key in ('test_dataloader', 'test_cfg.calibrate_dataloader'):
        options += [
            f'{key}.dataset.data_root={root}', f'{key}.batch_size=1',
            f'{key}.num_workers=0', f'{key}.dataset.indices=2'
        ]
    with default_scopes_restored():
        metrics = load_tool('ptq.py').main([
            config, float_path, '--work-dir',
            str(tmp_path / 'work'), '--cfg-options',
            'test_cfg.calibrate_steps=2', *options
        ])
    assert len(steps) == 2
    assert 'accuracy/top1' in metrics
    state = torch.load(
        str(tmp_path / 'work' / 'model_ptq.pth'),
        weights_only=True)['state_dict']
    assert weight_scales_are_min_max(state) >= 20


def weight_scales_are_min_max(state: dict) -> int:
    """Checks that every weight fake-quant of a saved PTQ ``state`` was
    calibrated: per-channel symmetric int8 on [-127, 127], so its scale is
    max |w| of the channel / 127 (at least the float32 epsilon), w being
    the conv weight with its BN folded in (gamma / sqrt(var + 1e-5)) where
    the conv and BN are fused. Returns how many were checked."""
    checked = 0
    for key, scale in state.items():
        if not key.endswith('.weight_fake_quant.scale'):
            continue
        layer = key[:-len('.weight_fake_quant.scale')]
        weight = state[layer + '.weight'].flatten(1)
        if layer + '.bn.weight' in state:
            weight = weight * (state[layer + '.bn.weight'] / torch.sqrt(
                state[layer + '.bn.running_var'] + 1e-5))[:, None]
        amax = weight.abs().max(dim=1).values
        expected = torch.clamp(amax / 127, min=torch.finfo(torch.float32).eps)
        torch.testing.assert_close(scale, expected, rtol=1e-5, atol=1e-12)
        checked += 1
    return checked


MBV2_PTQ_CONFIG = osp.join(REPO, 'configs/quantization/ptq',
                           'ptq_openvino_mbv2_fashion-mnist.py')


def test_mbv2_ptq_config_through_the_tool(tmp_path, monkeypatch):
    """The Fashion-MNIST MobileNetV2 PTQ config through tools/ptq.py (a
    freshly built float model, 2 calibration steps of 4 images, with
    ``bias_correction``): the calibration steps run (twice: calibration,
    then bias correction), the model evaluates, every conv's and the
    classifier's weight quantizer holds its min-max scale, and the biases
    moved (each conv-bn's BN ``beta``)."""
    from tool_runs import default_scopes_restored, load_tool
    monkeypatch.setenv('OMP_NUM_THREADS', '1')
    _, float_model, float_path = fresh_float_checkpoint(
        MBV2_PTQ_CONFIG, tmp_path)
    steps = record_calibration_steps(monkeypatch)
    with default_scopes_restored():
        metrics = load_tool('ptq.py').main([
            MBV2_PTQ_CONFIG, float_path, '--work-dir',
            str(tmp_path / 'work'), '--cfg-options',
            'test_cfg.calibrate_steps=2', 'test_cfg.bias_correction=True',
            'test_cfg.calibrate_dataloader.batch_size=4',
            'test_dataloader.dataset.indices=8', 'test_dataloader.batch_size=8'
        ])
    assert len(steps) == 4
    assert 'accuracy/top1' in metrics
    state = torch.load(
        str(tmp_path / 'work' / 'model_ptq.pth'),
        weights_only=True)['state_dict']
    # MobileNetV2's 52 conv-bn pairs and the classifier, in each of the
    # three forward modes' graphs
    assert weight_scales_are_min_max(state) == 3 * 53
    floating = float_model.state_dict()
    moved = [
        key for key in floating if key.endswith('.bn.bias') and not
        torch.equal(state['qmodels.tensor.' + key[:-len('bn.bias')] +
                          'conv.bn.bias'], floating[key])
    ]
    # 48 of 52: in this freshly initialised network the deepest layers'
    # inputs quantize to all zeros on 4 images, so there is no shift to
    # remove there (a trained model's layers all see data)
    assert len(moved) >= 45, len(moved)



def _folded_weights(state, weights=None):
    """Per quantized layer of a state dict: its weight (from ``weights``
    where given, keyed as ``state``) with the BN folded in by hand where it
    has one, and its weight quantizer's scale."""
    weights = weights or state
    folded = {}
    for key in state:
        if not key.endswith('.weight_fake_quant.scale'):
            continue
        layer = key[:-len('.weight_fake_quant.scale')]
        weight = weights[layer + '.weight']
        if layer + '.bn.weight' in state:
            factor = state[layer + '.bn.weight'] / torch.sqrt(
                state[layer + '.bn.running_var'] + 1e-5)
            weight = weight * factor.reshape([-1] + [1] *
                                             (weight.dim() - 1))
        folded[layer] = (weight, state[key])
    return folded


def assert_learned_levels(state, float_model, max_level: int) -> int:
    """Every weight quantizer of the ``tensor`` graph of a saved
    learned-rounding PTQ model: its layer's weight (BN folded in by hand)
    is a multiple of its scale, an integer level within ``max_level``,
    the float weight's floor or ceiling (or the clamp at ``max_level``).

    Returns:
        int: The number of layers checked.
    """
    # the prepared layers keep the float layers' names; the BN statistics
    # do not change
    floating = {
        f'qmodels.{mode}.{key}': value
        for key, value in float_model.state_dict().items()
        for mode in ('tensor', 'predict', 'loss')
    }
    original = _folded_weights(state, floating)
    checked = 0
    for layer, (weight, scale) in _folded_weights(state).items():
        if not layer.startswith('qmodels.tensor.'):
            continue
        shape = [-1] + [1] * (weight.dim() - 1)
        levels = weight / scale.reshape(shape)
        torch.testing.assert_close(levels, torch.round(levels), rtol=0,
                                   atol=1e-3)
        levels = torch.round(levels)
        exact = original[layer][0] / scale.reshape(shape)
        assert levels.abs().max() <= max_level, layer
        assert bool(((levels == torch.floor(exact))
                     | (levels == torch.ceil(exact))
                     | (levels.abs() == max_level)).all()), layer
        checked += 1
    return checked


def test_ptq_tool_learns_the_rounding(tmp_path, monkeypatch):
    """``PTQLoop(learned_rounding=...)`` through tools/ptq.py on a freshly
    built ResNet-18: the calibration batch runs once to calibrate, once to
    find the layer order and twice per quantized layer (float and
    quantized inputs: 20 convs and the classifier); every saved weight lies
    on its quantizer's grid, at the float weight's floor or ceiling; an
    unknown key of ``learned_rounding`` is refused by name."""
    from tool_runs import default_scopes_restored, load_tool
    monkeypatch.setenv('OMP_NUM_THREADS', '1')
    _, float_model, float_path = fresh_float_checkpoint(
        PTQ_CONFIG, tmp_path)
    small = ('test_cfg.calibrate_steps=1',
             'test_cfg.calibrate_dataloader.batch_size=4',
             'test_dataloader.dataset.indices=8',
             'test_dataloader.batch_size=8')
    steps = record_calibration_steps(monkeypatch)
    with default_scopes_restored():
        load_tool('ptq.py').main([
            PTQ_CONFIG, float_path, '--work-dir',
            str(tmp_path / 'work'), '--cfg-options', *small,
            'test_cfg.learned_rounding.iters=3'
        ])
    assert len(steps) == 1 + 1 + 2 * 21
    state = torch.load(
        str(tmp_path / 'work' / 'model_ptq.pth'),
        weights_only=True)['state_dict']
    assert assert_learned_levels(state, float_model, 127) == 21

    with pytest.raises(ValueError, match="unknown key.*'itres'"):
        with default_scopes_restored():
            load_tool('ptq.py').main([
                PTQ_CONFIG, float_path, '--work-dir',
                str(tmp_path / 'work2'), '--cfg-options', *small,
                'test_cfg.learned_rounding.itres=3'
            ])


W4A8_ADAROUND_CONFIG = osp.join(
    REPO, 'configs/quantization/ptq',
    'ptq_academic-w4a8-adaround_mbv2_fashion-mnist.py')


@pytest.mark.e2e  # about 18 s: the default suite keeps to its budget
def test_w4a8_adaround_config_through_the_tool(tmp_path, monkeypatch):
    """The MobileNetV2 W4A8 learned-rounding PTQ config through
    tools/ptq.py (a freshly built float model, one calibration step of 4
    images, 2 rounding steps per layer): one calibration pass, one to order
    the layers, two per layer (52 conv-bns and the classifier); every saved
    weight is a 4-bit level (-7..7) at the float weight's floor or
    ceiling, with affine activation quantizers."""
    from tool_runs import default_scopes_restored, load_tool
    monkeypatch.setenv('OMP_NUM_THREADS', '1')
    cfg, float_model, float_path = fresh_float_checkpoint(
        W4A8_ADAROUND_CONFIG, tmp_path)
    assert cfg.test_cfg.learned_rounding == dict(iters=500, lr=1e-2)
    steps = record_calibration_steps(monkeypatch)
    with default_scopes_restored():
        metrics = load_tool('ptq.py').main([
            W4A8_ADAROUND_CONFIG, float_path, '--work-dir',
            str(tmp_path / 'work'), '--cfg-options',
            'test_cfg.calibrate_steps=1',
            'test_cfg.calibrate_dataloader.batch_size=4',
            'test_cfg.learned_rounding.iters=2',
            'test_dataloader.dataset.indices=8', 'test_dataloader.batch_size=8'
        ])
    assert len(steps) == 1 + 1 + 2 * 53
    assert 'accuracy/top1' in metrics
    state = torch.load(
        str(tmp_path / 'work' / 'model_ptq.pth'),
        weights_only=True)['state_dict']
    assert assert_learned_levels(state, float_model, 7) == 53
    zero_points = [
        value for key, value in state.items()
        if key.startswith('qmodels.tensor.') and key.endswith(
            '_post_process.zero_point')
    ]
    # affine: the ReLU6 outputs' quantizers start at level 0
    assert any(int(z.flatten()[0]) == 0 for z in zero_points)
