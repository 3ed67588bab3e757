"""Smoke test of ``benchmarks/quantization_fashion_mnist.py``: its LSQ QAT
recipe and training on a tiny model and 30 images (the benchmark itself
takes most of an hour), and its table / verdicts on made-up numbers."""
import argparse
import copy
import os.path as osp

import pytest
import torch
from torch import nn

from tool_runs import import_benchmark


@pytest.fixture(autouse=True, scope='module')
def one_thread():
    """One torch thread, as the benchmark runs."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope='module')
def qfm():
    return import_benchmark('quantization_fashion_mnist')


@pytest.fixture(scope='module')
def data(qfm):
    return import_benchmark('_pruning_bench').load_split('data/fashion_mnist_subset',
                                                'train', 3)


class TinyNet(nn.Module):
    """conv-bn-relu, global average pooling, linear: one fused ConvBnReLU2d
    and one Linear after prepare."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, bias=False)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn(self.conv(x)))
        return self.fc(x.mean((2, 3)))


def _tiny_net() -> nn.Module:
    torch.manual_seed(0)
    model = TinyNet()
    with torch.no_grad():  # statistics that differ from a fresh BN's
        model.bn.running_mean.uniform_(-0.5, 0.5)
        model.bn.running_var.uniform_(0.5, 2.0)
        model.bn.weight.uniform_(0.5, 1.5)
    return model.eval()


def test_lsq_recipe_is_the_runner_configs(qfm):
    from mmrazor.models.quantizers import OpenVINOQuantizer
    recipe = qfm.lsq_recipe()
    assert recipe.quantizer_type is OpenVINOQuantizer
    assert recipe.optimizer == dict(lr=0.001, momentum=0.9,
                                    weight_decay=1e-4)
    assert recipe.batch_size == 64
    qconfig = recipe.global_qconfig
    assert qconfig['w_observer']['type'] == 'mmrazor.LSQPerChannelObserver'
    assert qconfig['a_observer']['type'] == 'mmrazor.LSQObserver'
    assert qconfig['w_qscheme']['bit'] == 8


def test_with_weight_bits_changes_only_the_weight_bits(qfm):
    qconfig = qfm.lsq_recipe().global_qconfig
    original = copy.deepcopy(qconfig)
    w4 = qfm.with_weight_bits(qconfig, 4)
    assert w4['w_qscheme'] == dict(original['w_qscheme'], bit=4)
    assert {k: v for k, v in w4.items() if k != 'w_qscheme'} == \
        {k: v for k, v in original.items() if k != 'w_qscheme'}
    assert qconfig == original


def _fake_quants(model: nn.Module) -> list:
    from mmrazor.models.quantizers import LearnableFakeQuantize
    return [
        m for m in model.modules() if isinstance(m, LearnableFakeQuantize)
    ]


def test_lsq_qat_initialises_trains_and_freezes_bn(qfm, data):
    recipe = qfm.lsq_recipe()._replace(batch_size=8)
    model = _tiny_net()
    float_state = copy.deepcopy(model.state_dict())
    x, y = data

    def top1(m: nn.Module) -> float:
        assert not m.training
        with torch.no_grad():
            return 100.0 * float((m(x).argmax(1) == y).float().mean())

    prepared, top1s = qfm.lsq_qat(model, recipe.quantizer_type,
                                  recipe.global_qconfig, data, 2, 0, recipe,
                                  top1)
    assert len(top1s) == 2
    with torch.no_grad():
        logits = prepared(x)
    assert top1s[-1] == pytest.approx(
        100.0 * (logits.argmax(1) == y).sum().item() / len(y))
    # the float model is copied, not trained
    for key, value in model.state_dict().items():
        assert torch.equal(value, float_state[key]), key
    conv_bn = prepared.get_submodule('conv')
    assert not torch.equal(conv_bn.weight, float_state['conv.weight'])
    # BN statistics frozen: those of the float model
    assert torch.equal(conv_bn.bn.running_mean,
                       float_state['bn.running_mean'])
    assert torch.equal(conv_bn.bn.running_var, float_state['bn.running_var'])
    fake_quants = _fake_quants(prepared)
    assert len(fake_quants) >= 3  # input, conv weight, fc weight, ...
    for fq in fake_quants:
        assert int(fq.observer_enabled[0]) == 0
        assert int(fq.fake_quant_enabled[0]) == 1
    assert conv_bn.weight_fake_quant.scale.shape == (4, )


def test_lsq_qat_first_batch_sets_the_lsq_step_sizes(qfm, data):
    """With a zero learning rate nothing moves after the first batch: the
    conv's weight step sizes are LSQ's ``2 * mean(|w|) / sqrt(127)`` per
    output channel of the BN-folded weight ``w * gamma / std``."""
    recipe = qfm.lsq_recipe()
    recipe = recipe._replace(
        batch_size=10,
        optimizer=dict(lr=0.0, momentum=0.9, weight_decay=0.0))
    model = _tiny_net()
    prepared, _ = qfm.lsq_qat(model, recipe.quantizer_type,
                              recipe.global_qconfig, data, 1, 0, recipe,
                              lambda m: 0.0)
    bn = model.bn
    folded = model.conv.weight * (
        bn.weight / torch.sqrt(bn.running_var + bn.eps)).reshape(-1, 1, 1, 1)
    expected = 2 * folded.abs().mean((1, 2, 3)) / 127**0.5
    scale = prepared.get_submodule('conv').weight_fake_quant.scale
    torch.testing.assert_close(scale.detach(), expected.detach())


def test_minmax_weight_init_starts_at_the_weights_range(qfm, data):
    """``with_minmax_weight_init``: with a zero learning rate the conv's
    weight step sizes stay ``max(|w|) / 127`` per output channel of the
    BN-folded weight (symmetric qint8 over [-127, 127]); only the weight
    observer differs from the config's qconfig."""
    recipe = qfm.lsq_recipe()
    recipe = recipe._replace(
        batch_size=10,
        optimizer=dict(lr=0.0, momentum=0.9, weight_decay=0.0))
    qconfig = qfm.with_minmax_weight_init(recipe.global_qconfig)
    assert {k: v for k, v in qconfig.items() if k != 'w_observer'} == \
        {k: v for k, v in recipe.global_qconfig.items() if k != 'w_observer'}
    model = _tiny_net()
    prepared, _ = qfm.lsq_qat(model, recipe.quantizer_type, qconfig, data,
                              1, 0, recipe, lambda m: 0.0)
    bn = model.bn
    folded = model.conv.weight * (
        bn.weight / torch.sqrt(bn.running_var + bn.eps)).reshape(-1, 1, 1, 1)
    expected = folded.abs().amax((1, 2, 3)) / 127
    scale = prepared.get_submodule('conv').weight_fake_quant.scale
    torch.testing.assert_close(scale.detach(), expected.detach())


def test_lsq_qat_is_reproducible_per_seed(qfm, data):
    recipe = qfm.lsq_recipe()._replace(batch_size=8)
    runs = [
        qfm.lsq_qat(_tiny_net(), recipe.quantizer_type,
                    recipe.global_qconfig, data, 1, seed, recipe,
                    lambda m: 0.0)[0] for seed in (0, 0, 1)
    ]
    scales = [[fq.scale.detach() for fq in _fake_quants(r)] for r in runs]
    assert all(torch.equal(a, b) for a, b in zip(scales[0], scales[1]))
    assert not all(torch.equal(a, b) for a, b in zip(scales[0], scales[2]))


def test_lsq_qat_with_kd_takes_the_written_out_step(qfm, data, monkeypatch):
    """``kd_tau``: one SGD step (all 30 images in one batch, plain SGD) on
    cross-entropy + tau^2 * KL(softmax(T / tau) || softmax(S / tau)), T
    the float model's logits, S the fake-quant model's, written out here
    and stepped by hand on an equally prepared copy."""
    from mmrazor.core.loops.quantization_loops import (
        freeze_bn_statistics, set_training_quant_mode)
    recipe = qfm.lsq_recipe()._replace(
        batch_size=30, optimizer=dict(lr=0.5, momentum=0.0,
                                      weight_decay=0.0))
    seen = []
    original = qfm.batches

    def recorded(*args, **kwargs):
        for xb, yb in original(*args, **kwargs):
            seen.append((xb, yb))
            yield xb, yb

    monkeypatch.setattr(qfm, 'batches', recorded)
    model, tau = _tiny_net(), 2.0
    trained, _ = qfm.lsq_qat(model, recipe.quantizer_type,
                             recipe.global_qconfig, data, 1, 0, recipe,
                             lambda m: 0.0, kd_tau=tau)
    (xb, yb), = seen

    hand = recipe.quantizer_type(recipe.global_qconfig).prepare(
        copy.deepcopy(model))
    hand.train()
    freeze_bn_statistics(hand)
    set_training_quant_mode(hand, observing=True)
    student = hand(xb)
    with torch.no_grad():
        teacher = model(xb)
    log_p_s = torch.log_softmax(student / tau, dim=1)
    p_t = torch.softmax(teacher / tau, dim=1)
    kl = (p_t * (p_t.log() - log_p_s)).sum(1).mean()
    loss = torch.nn.functional.cross_entropy(student, yb) + tau**2 * kl
    loss.backward()
    with torch.no_grad():
        for param in hand.parameters():
            if param.grad is not None:
                param -= 0.5 * param.grad
    torch.testing.assert_close(trained.get_submodule('fc').weight,
                               hand.get_submodule('fc').weight)
    # without KD the step differs
    plain, _ = qfm.lsq_qat(model, recipe.quantizer_type,
                           recipe.global_qconfig, data, 1, 0, recipe,
                           lambda m: 0.0)
    assert not torch.allclose(plain.get_submodule('fc').weight,
                              hand.get_submodule('fc').weight)


def test_bench_qat_runs_the_chosen_bit_widths(qfm, data):
    """``bench_qat``: the top-1 of the chosen LSQ runs only, each the
    share of test images its model classifies right."""
    x, y = data
    labels = y.numpy()
    seen = []

    def top1(pred) -> float:
        seen.append(pred)
        return 100.0 * float((pred == labels).mean())

    result = qfm.bench_qat(
        _tiny_net(), data, x, 0, 1, 10, top1, qat_bits=('w4a8', ))
    assert set(result) == {'ours_w4a8_lsq'}
    assert result['ours_w4a8_lsq'] == 100.0 * float(
        (seen[-1] == labels).mean())


def test_lsq_qat_refuses_zero_epochs(qfm, data):
    recipe = qfm.lsq_recipe()
    with pytest.raises(ValueError, match='epochs must be an int >= 1, got 0'):
        qfm.lsq_qat(_tiny_net(), recipe.quantizer_type,
                    recipe.global_qconfig, data, 0, 0, recipe, lambda m: 0.0)


def _results(fp32: float, int8_lsq: list, w4a8_lsq: list) -> list:
    return [
        dict(
            fp32=fp32,
            ort_int8=87.5,
            ours_int8_onnx=87.6,
            ours_int8_fake=87.6,
            agreement=99.5,
            ours_w4a8_fake=86.0,
            ours_int8_lsq=a,
            ours_w4a8_lsq=b) for a, b in zip(int8_lsq, w4a8_lsq)
    ]


def test_table_and_verdicts(qfm):
    per_model = dict(
        good=_results(88.0, [87.9, 87.8, 87.85], [87.5, 87.2, 87.3]),
        bad=_results(88.0, [87.7, 87.7, 87.7], [86.9, 87.0, 86.8]))
    lines = qfm.verdicts(per_model)
    # good: int8 loss 0.15 <= 0.2, W4A8 loss 0.67 <= 1.0;
    # bad: int8 loss 0.30 > 0.2, W4A8 loss 1.10 > 1.0
    assert [line.endswith(': met') for line in lines] == [
        True, True, True, True, False, False]
    assert '(loss +0.15, worst seed +0.20)' in lines[1]
    table = qfm.markdown_table(per_model).splitlines()
    assert table[-2].startswith('| ours int8 LSQ QAT')
    assert table[-2].endswith('| 87.85 ± 0.05 | 87.70 ± 0.00 |')
    ptq_only = {
        name: [{k: v for k, v in r.items() if 'lsq' not in k} for r in rs]
        for name, rs in per_model.items()
    }
    assert len(qfm.markdown_table(ptq_only).splitlines()) == len(table) - 2
    assert qfm.markdown_table(per_model, 10000).startswith(
        '| top-1 (%) on the 10,000 test images |')
    assert not any('lsq' in line for line in qfm.verdicts(ptq_only))


@pytest.mark.parametrize('qat_epochs', [0, 3])
def test_docs_section_describes_the_qat_rows_when_there(qfm, qat_epochs):
    args = argparse.Namespace(
        seeds=[0, 1, 2],
        calib_batches=8,
        calib_batch_size=32,
        qat_epochs=qat_epochs,
        act_observer='histogram',
        weight_bits=7 if qat_epochs else 8,
        ort_kernels='reference' if qat_epochs else 'int8',
        qat_kd_tau=4.0 if qat_epochs else 0.0,
        qat_weight_init=['lsq', 'minmax'] if qat_epochs else ['lsq'])
    text = qfm.docs_section('TABLE', 'python bench.py', args)
    assert ('graph optimisations off' in text) == bool(qat_epochs)
    assert ("onnxruntime's int8 kernels" in text) != bool(qat_epochs)
    assert ('`KLDivergence(tau=4.0)`' in text) == bool(qat_epochs)
    assert 'activations\n(`HistogramObserver`: the range of least L2 error)' \
        in text
    assert ("7 bits (onnxruntime's `reduce_range`)" in text) == \
        bool(qat_epochs)
    heading = '## Accuracy on Fashion-MNIST (PTQ and LSQ QAT)' \
        if qat_epochs else '## Accuracy on Fashion-MNIST (PTQ)\n'
    assert heading in text
    settings = 'SGD\nlr 0.001, momentum 0.9, weight_decay 0.0001, constant'
    assert (settings in text) == bool(qat_epochs)
    assert ('3 epoch(s) of LSQ' in text) == bool(qat_epochs)
    assert ('The min-max rows start the weight step sizes' in text) == \
        bool(qat_epochs)


def test_with_activations_switches_only_the_activation_symmetry(qfm):
    qconfig = qfm.lsq_recipe().global_qconfig
    assert qconfig['a_qscheme']['is_symmetry'] is True
    affine = qfm.with_activations(qconfig, 'affine')
    assert affine['a_qscheme'] == dict(qconfig['a_qscheme'],
                                       is_symmetry=False)
    assert {k: v for k, v in affine.items() if k != 'a_qscheme'} == {
        k: v for k, v in qconfig.items() if k != 'a_qscheme'}
    assert qfm.with_activations(qconfig, 'config') is qconfig
    with pytest.raises(ValueError, match="activations='signed'"):
        qfm.with_activations(qconfig, 'signed')


def test_ptq_verdicts_cover_the_learned_rounding_row(qfm):
    results = _results(88.0, [87.9], [87.5])
    results[0]['ours_int8_adaround_onnx'] = 87.4  # below ORT's 87.5
    lines = qfm.verdicts(dict(m=results))
    assert lines[0] == 'm: ours_int8_onnx 87.60 >= ORT int8 87.50: met'
    assert lines[1] == ('m: ours_int8_adaround_onnx 87.40 >= ORT int8 '
                        '87.50: NOT met')


def test_bench_adaround_rows_on_a_tiny_net(qfm, data, tmp_path):
    """Both learned-rounding rows are measured: the int8 one through an
    ONNX file in onnxruntime, the W4A8 one in PyTorch."""
    images, labels = data
    args = argparse.Namespace(act_observer='histogram', weight_bits=8,
                              adaround_iters=3, batch_size=10,
                              ort_kernels='int8')
    calls = []

    def top1(pred) -> float:
        calls.append(len(pred))
        return 100 * float((pred == labels.numpy()).mean())

    path = str(tmp_path / 'adaround.onnx')
    result = qfm.bench_adaround(_tiny_net(), [images[:16], images[16:]],
                                images, args, top1, path)
    assert sorted(result) == ['ours_int8_adaround_onnx', 'ours_w4a8_adaround']
    assert calls == [len(images)] * 2
    assert torch.tensor(list(result.values())).le(100).all()
    assert osp.isfile(path)
