"""tools/deploy_subnet.py: portable artefact, reload, checks."""
import importlib.util
import json
import os.path as osp

import pytest
import torch
import torchvision
from torch import nn

from mmrazor.models.pruners import stale_attributes

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _tool():
    spec = importlib.util.spec_from_file_location(
        'deploy_subnet', osp.join(REPO, 'tools', 'deploy_subnet.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_torchvision_artefact(tmp_path):
    for name in ('onnx', 'onnxscript', 'onnxruntime'):
        pytest.importorskip(name)
    tool = _tool()
    out = str(tmp_path / 'art')
    rc = tool.main([
        '--torchvision', 'mobilenet_v3_small', '--random-subnet',
        '--out-dir', out, '--input-shape', '1', '3', '32', '32', '--onnx'
    ])
    assert rc == 0
    report = json.load(open(osp.join(out, 'deploy_report.json')))
    assert report['params_after'] < report['params_before']
    assert report['first_mismatch'] is None
    assert report['max_diff_reloaded_vs_masked'] <= 1e-3
    # ONNX export, checked with onnxruntime against the masked model.
    assert osp.isfile(report['onnx'])
    assert report['max_diff_onnxruntime_vs_masked'] <= 1e-4
    # the weights load with weights_only=True (no pickled module) ...
    state = torch.load(osp.join(out, 'pruned_state_dict.pth'),
                       weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    # ... into a freshly built torchvision model, without mmrazor classes
    fresh = tool.load_deployed(
        torchvision.models.mobilenet_v3_small(weights=None), out)
    assert sum(p.numel() for p in fresh.parameters()) == \
        report['params_after']
    assert not any(type(m).__module__.startswith('mmrazor')
                   for m in fresh.modules())


def test_config_artefact_with_channel_cfg(tmp_path):
    tool = _tool()
    cfg = tmp_path / 'cls.py'
    cfg.write_text(
        "model = dict(type='mmpretrain.ImageClassifier',\n"
        "    backbone=dict(type='mmpretrain.ResNet', depth=18),\n"
        "    neck=dict(type='mmpretrain.GlobalAveragePooling'),\n"
        "    head=dict(type='mmpretrain.LinearClsHead', num_classes=10,\n"
        "              in_channels=512))\n"
        "input_shape = (1, 3, 32, 32)\n")
    first = str(tmp_path / 'a')
    assert tool.main([str(cfg), '--random-subnet', '--out-dir', first]) == 0
    # reuse the written channel config on the same config
    second = str(tmp_path / 'b')
    assert tool.main([
        str(cfg), '--channel-cfg',
        osp.join(first, 'channel_cfg.yaml'), '--out-dir', second
    ]) == 0
    a = json.load(open(osp.join(first, 'deploy_report.json')))
    b = json.load(open(osp.join(second, 'deploy_report.json')))
    assert a['params_after'] == b['params_after'] < a['params_before']
    assert osp.isfile(osp.join(second, 'model_config.py'))


def test_stale_attributes_are_named():
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4))
    model[0].out_channels = 5
    model[1].num_features = 3
    problems = stale_attributes(model)
    assert any(p.startswith('0: out_channels=5') for p in problems)
    assert any(p.startswith('1: num_features=3') for p in problems)
