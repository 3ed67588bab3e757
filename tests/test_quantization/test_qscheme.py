"""QSchemeHandler / QConfigHandler: 1.x qscheme dicts read as torch.ao
observer and fake-quant arguments; ranges written out by hand."""
import ast
import glob
import os.path as osp

import pytest
import torch
from torch.ao.quantization import (FakeQuantize, MovingAverageMinMaxObserver,
                                   PerChannelMinMaxObserver, QConfig)

import mmrazor.models  # noqa: F401
from mmrazor.models.quantizers import (QConfigHandler, QSchemeHandler,
                                       fake_quant_factory, observer_factory)

REFERENCE = '/work/shared/reference/mmrazor-1.x/configs/quantization'


@pytest.mark.parametrize(
    'qdtype, bit, symmetric_range, expected',
    [
        ('qint8', 8, False, (-128, 127)),
        ('qint8', 8, True, (-127, 127)),
        ('quint8', 8, False, (0, 255)),
        ('quint8', 8, True, (0, 254)),
        ('qint8', 4, False, (-8, 7)),
        ('qint8', 4, True, (-7, 7)),
        ('quint8', 4, False, (0, 15)),
        ('quint8', 1, False, (0, 1)),
        ('qint8', 2, True, (-1, 1)),
        ('qint8', 16, False, (-32768, 32767)),
    ])
def test_quant_range(qdtype, bit, symmetric_range, expected):
    handler = QSchemeHandler(
        qdtype=qdtype, bit=bit, is_symmetric_range=symmetric_range)
    params = handler.to_observer_params()
    assert (params['quant_min'], params['quant_max']) == expected


def test_dtype_and_qscheme():
    cases = [
        (dict(qdtype='qint8', is_symmetry=True), torch.qint8,
         torch.per_tensor_symmetric),
        (dict(qdtype='quint8', is_symmetry=False), torch.quint8,
         torch.per_tensor_affine),
        (dict(qdtype='qint8', is_symmetry=True, is_per_channel=True),
         torch.qint8, torch.per_channel_symmetric),
        (dict(qdtype='quint8', is_symmetry=False, is_per_channel=True),
         torch.quint8, torch.per_channel_affine),
        (dict(qdtype='qint8', bit=12), torch.int16,
         torch.per_tensor_symmetric),
        (dict(qdtype='quint8', bit=9), torch.uint16,
         torch.per_tensor_symmetric),
    ]
    for cfg, dtype, qscheme in cases:
        params = QSchemeHandler(**cfg).to_observer_params()
        assert params['dtype'] == dtype, cfg
        assert params['qscheme'] == qscheme, cfg
        assert params['reduce_range'] is False
        assert ('ch_axis' in params) == cfg.get('is_per_channel', False)
    per_channel = QSchemeHandler(is_per_channel=True).to_observer_params()
    assert per_channel['ch_axis'] == 0


def test_pass_through_keys():
    params = QSchemeHandler(
        qdtype='quint8', averaging_constant=0.1).to_observer_params()
    assert params['averaging_constant'] == 0.1
    params = QSchemeHandler(
        is_per_channel=True, ch_axis=1).to_observer_params()
    assert params['ch_axis'] == 1


@pytest.mark.parametrize('cfg, words', [
    (dict(qdtype='int8'), ['qdtype', "'int8'"]),
    (dict(bit=0), ['bit', '0']),
    (dict(bit=17), ['bit', '17']),
    (dict(bit=8.0), ['bit', '8.0']),
    (dict(is_symmetry='yes'), ['is_symmetry', "'yes'"]),
    (dict(is_symmetric_range=1), ['is_symmetric_range', '1']),
    (dict(averaging_constant=1.5), ['averaging_constant', '1.5']),
    (dict(averaging_constant=0), ['averaging_constant', '0']),
    (dict(ch_axis='0'), ['ch_axis', "'0'"]),
    (dict(dtype=torch.qint8), ['dtype']),
    (dict(quant_min=-5), ['quant_min', '-5']),
    (dict(qdtype='qint8', bit=1, is_symmetric_range=True),
     ['bit=1', '[0, 0]']),
])
def test_bad_qscheme(cfg, words):
    with pytest.raises((ValueError, TypeError)) as info:
        QSchemeHandler(**cfg)
    for word in words:
        assert word in str(info.value), (word, str(info.value))


def _1x_global_qconfig(path):
    """The ``global_qconfig = dict(...)`` of a 1.x config file."""
    tree = ast.parse(open(path).read())
    for node in tree.body:
        if (isinstance(node, ast.Assign)
                and getattr(node.targets[0], 'id', None) == 'global_qconfig'):
            module = ast.Module(body=[node], type_ignores=[])
            namespace = {'dict': dict}
            exec(compile(module, path, 'exec'), namespace)
            return namespace['global_qconfig']
    return None


def _1x_configs():
    paths = sorted(glob.glob(osp.join(REFERENCE, '**', '*.py'),
                             recursive=True))
    return [p for p in paths if _1x_global_qconfig(p) is not None]


@pytest.mark.skipif(not osp.isdir(REFERENCE), reason='no 1.x reference')
def test_every_1x_global_qconfig_builds():
    paths = _1x_configs()
    assert len(paths) >= 13
    for path in paths:
        handler = QConfigHandler(_1x_global_qconfig(path))
        qconfig = handler.convert()
        assert isinstance(qconfig, QConfig)
        weight, activation = qconfig.weight(), qconfig.activation()
        # 1.x weights: signed, per channel, symmetric range -127..127
        assert (weight.quant_min, weight.quant_max) == (-127, 127), path
        assert weight.qscheme == torch.per_channel_symmetric, path
        assert activation.qscheme == torch.per_tensor_symmetric, path


def test_qconfig_handler_1x_ptq():
    handler = QConfigHandler(
        dict(
            w_observer=dict(type='mmrazor.PerChannelMinMaxObserver'),
            a_observer=dict(type='mmrazor.MovingAverageMinMaxObserver'),
            w_fake_quant=dict(type='mmrazor.FakeQuantize'),
            a_fake_quant=dict(type='mmrazor.FakeQuantize'),
            w_qscheme=dict(
                qdtype='qint8', bit=8, is_symmetry=True,
                is_symmetric_range=True),
            a_qscheme=dict(
                qdtype='quint8', bit=8, is_symmetry=True,
                averaging_constant=0.1)))
    assert handler.w_qscheme.is_per_channel
    assert not handler.a_qscheme.is_per_channel
    assert handler.w_fakequant is handler.w_fake_quant
    weight = handler.convert().weight()
    activation = handler.convert().activation()
    assert type(weight) is FakeQuantize
    assert type(weight.activation_post_process) is PerChannelMinMaxObserver
    assert weight.activation_post_process.ch_axis == 0
    assert weight.dtype == torch.qint8
    obs = activation.activation_post_process
    assert type(obs) is MovingAverageMinMaxObserver
    assert obs.averaging_constant == 0.1
    assert (obs.quant_min, obs.quant_max, obs.dtype) == (0, 255,
                                                          torch.quint8)
    # observer-only (no fake-quant) for PTQ without fake-quantization
    handler = QConfigHandler(
        dict(
            w_observer=dict(type='mmrazor.PerChannelMinMaxObserver'),
            a_observer=dict(type='mmrazor.MinMaxObserver'),
            w_qscheme=dict(qdtype='qint8'),
            a_qscheme=dict(qdtype='quint8')))
    assert handler.w_fake_quant is None
    assert type(handler.convert().weight()) is PerChannelMinMaxObserver


def test_qconfig_handler_errors():
    base = dict(
        w_observer=dict(type='mmrazor.PerChannelMinMaxObserver'),
        a_observer=dict(type='mmrazor.MinMaxObserver'),
        w_fake_quant=dict(type='mmrazor.FakeQuantize'),
        a_fake_quant=dict(type='mmrazor.FakeQuantize'),
        w_qscheme=dict(qdtype='qint8'),
        a_qscheme=dict(qdtype='quint8'))
    with pytest.raises(KeyError, match='w_qsheme'):
        QConfigHandler({**base, 'w_qsheme': {}})
    with pytest.raises(KeyError, match='NoSuchObserver'):
        QConfigHandler({**base, 'a_observer': dict(type='NoSuchObserver')})
    with pytest.raises(KeyError, match='a_observer'):
        QConfigHandler({k: v for k, v in base.items() if k != 'a_observer'})
    # averaging_constant is not an argument of a plain MinMaxObserver
    with pytest.raises(TypeError, match='averaging_constant'):
        QConfigHandler({
            **base, 'a_qscheme':
            dict(qdtype='quint8', averaging_constant=0.1)
        })
    with pytest.raises(ValueError, match='is_per_channel'):
        QConfigHandler({
            **base, 'w_qscheme': dict(qdtype='qint8', is_per_channel=False)
        })
    with pytest.raises(TypeError, match='w_observer'):
        QConfigHandler({**base, 'w_observer': 'PerChannelMinMaxObserver'})


def test_factories_take_extra_arguments():
    observer = observer_factory(
        dict(type='mmrazor.HistogramObserver', bins=64),
        dict(qdtype='quint8', is_symmetry=False))()
    assert observer.bins == 64
    fake_quant = fake_quant_factory(
        dict(type='mmrazor.LearnableFakeQuantize', use_grad_scaling=False),
        dict(type='mmrazor.LSQObserver'), dict(qdtype='qint8', bit=4))()
    assert fake_quant.use_grad_scaling is False
    assert (fake_quant.quant_min, fake_quant.quant_max) == (-8, 7)
