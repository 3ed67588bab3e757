"""Deploy of a pruned model: the library functions of
``mmrazor.models.task_modules.deploy`` (portable artefact, reload, checks)
and their command line, ``tools/deploy_subnet.py``."""
import json
import os.path as osp
import subprocess
import sys

import pytest
import torch
import torchvision
from torch import nn

import mmrazor.models.task_modules.deploy as deploy_module
from mmrazor.models.pruners import stale_attributes
from mmrazor.models.task_modules import (DeployReport, deploy_pruned,
                                         load_deployed, save_deployed,
                                         structure_of)
from .toy_models import ToyNet

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(REPO, 'tools', 'deploy_subnet.py')


def _run_tool(*args: str) -> subprocess.CompletedProcess:
    """``python tools/deploy_subnet.py ARGS`` in a fresh interpreter."""
    return subprocess.run([sys.executable, TOOL, *args],
                          cwd=REPO,
                          capture_output=True,
                          text=True,
                          timeout=600)


def _n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_torchvision_artefact(tmp_path):
    for name in ('onnx', 'onnxscript', 'onnxruntime'):
        pytest.importorskip(name)
    out = str(tmp_path / 'art')

    def build():
        torch.manual_seed(0)
        return torchvision.models.mobilenet_v3_small(weights=None)

    result = deploy_pruned(
        build(),
        None,
        out, (1, 3, 32, 32),
        model_spec=dict(torchvision='mobilenet_v3_small'),
        build_fresh=build,
        onnx=True)
    assert isinstance(result, DeployReport)
    assert result.ok and result.problems == []
    report = json.load(open(osp.join(out, 'deploy_report.json')))
    assert report == json.loads(json.dumps(result.to_dict()))
    assert report['params_after'] < report['params_before']
    assert report['first_mismatch'] is None
    assert report['max_diff_reloaded_vs_masked'] <= 1e-3
    # ONNX export, checked with onnxruntime against the masked model.
    assert osp.isfile(report['onnx'])
    assert report['max_diff_onnxruntime_vs_masked'] <= 1e-4
    assert json.load(open(osp.join(out, 'model_spec.json'))) == dict(
        torchvision='mobilenet_v3_small')
    # the weights load with weights_only=True (no pickled module) ...
    state = torch.load(osp.join(out, 'pruned_state_dict.pth'),
                       weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    # ... into a freshly built torchvision model, without mmrazor classes
    fresh = load_deployed(
        torchvision.models.mobilenet_v3_small(weights=None), out)
    assert sum(p.numel() for p in fresh.parameters()) == \
        report['params_after']
    assert not any(type(m).__module__.startswith('mmrazor')
                   for m in fresh.modules())
    assert structure_of(fresh) == json.load(
        open(osp.join(out, 'structure.json')))


def test_config_artefact_with_channel_cfg_cli(tmp_path):
    """End to end through the command line: exit codes, printed report,
    artefact files."""
    cfg = tmp_path / 'cls.py'
    cfg.write_text(
        "model = dict(type='mmpretrain.ImageClassifier',\n"
        "    backbone=dict(type='mmpretrain.ResNet', depth=18),\n"
        "    neck=dict(type='mmpretrain.GlobalAveragePooling'),\n"
        "    head=dict(type='mmpretrain.LinearClsHead', num_classes=10,\n"
        "              in_channels=512))\n"
        "input_shape = (1, 3, 32, 32)\n")
    first = str(tmp_path / 'a')
    proc = _run_tool(str(cfg), '--random-subnet', '--out-dir', first)
    assert proc.returncode == 0, proc.stderr
    # reuse the written channel config on the same config
    second = str(tmp_path / 'b')
    proc2 = _run_tool(
        str(cfg), '--channel-cfg', osp.join(first, 'channel_cfg.yaml'),
        '--out-dir', second)
    assert proc2.returncode == 0, proc2.stderr
    a = json.load(open(osp.join(first, 'deploy_report.json')))
    b = json.load(open(osp.join(second, 'deploy_report.json')))
    assert a['params_after'] == b['params_after'] < a['params_before']
    assert osp.isfile(osp.join(second, 'model_config.py'))
    assert open(osp.join(second, 'model_config.py')).read() == \
        cfg.read_text()
    for name in ('channel_cfg.yaml', 'structure.json',
                 'pruned_state_dict.pth'):
        assert osp.isfile(osp.join(second, name))
    assert not osp.exists(osp.join(second, 'model.onnx'))
    assert 'onnx' not in b
    assert a['input_shape'] == [1, 3, 32, 32]
    # stdout: the report as JSON, then the summary line
    for proc, out, report in ((proc, first, a), (proc2, second, b)):
        printed, _, last = proc.stdout.rstrip('\n').rpartition('\n')
        assert last == (f"deployed: {report['params_before']} -> "
                        f"{report['params_after']} params; artefact in "
                        f'{out}')
        assert json.loads(printed[printed.index('{\n'):]) == report
        assert 'DEPLOY CHECK FAILED' not in proc.stderr


def test_cli_usage_errors(tmp_path):
    proc = _run_tool('--random-subnet', '--out-dir', str(tmp_path))
    assert proc.returncode == 2
    assert 'give a CONFIG or --torchvision NAME' in proc.stderr
    proc = _run_tool('--torchvision', 'resnet18', '--out-dir',
                     str(tmp_path))
    assert proc.returncode == 2
    assert 'give --channel-cfg FILE or --random-subnet' in proc.stderr
    assert not any(tmp_path.iterdir())


def test_deploy_pruned_toy_and_reuse_channel_cfg(tmp_path):
    torch.manual_seed(0)
    model = ToyNet()
    first = str(tmp_path / 'a')
    report = deploy_pruned(
        model, None, first, (1, 3, 16, 16), model_spec=dict(builder='toy'))
    assert report.ok, report.problems
    assert report.out_dir == first and report.atol == 1e-3
    assert report.params_after == _n_params(model) < report.params_before
    assert report.first_mismatch is None
    assert report.stale_attributes == report.stale_attributes_reloaded == []
    assert report.onnx is None
    # no builder: the reload check used a copy of the original model
    assert report.max_diff_reloaded_vs_masked <= 1e-3
    assert 'onnx' not in report.to_dict()
    assert json.load(open(osp.join(first, 'deploy_report.json'))) == \
        json.loads(json.dumps(report.to_dict()))
    # a fresh model loads the artefact and computes what `model` computes
    fresh = load_deployed(ToyNet(), first)
    assert structure_of(fresh) == structure_of(model)
    assert not fresh.training
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(fresh(x), model(x))
    # the written channel config, as a path, gives the same model
    second = str(tmp_path / 'b')
    again = deploy_pruned(
        ToyNet(),
        osp.join(first, 'channel_cfg.yaml'),
        second, [1, 3, 16, 16],
        model_spec=dict(builder='toy'),
        build_fresh=ToyNet)
    assert again.ok, again.problems
    assert again.params_after == report.params_after
    assert json.load(open(osp.join(second, 'structure.json'))) == \
        structure_of(model)


def test_save_and_load_deployed_roundtrip(tmp_path):

    def net(c: int) -> nn.Module:
        return nn.Sequential(
            nn.Conv2d(3, c, 3, padding=1), nn.BatchNorm2d(c),
            nn.GroupNorm(2, c), nn.PReLU(c), nn.Flatten(2),
            nn.LayerNorm(16), nn.Flatten(1), nn.Linear(c * 16, 5))

    small = net(4).eval()
    for m in small.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 1.5)
    assert structure_of(small) == {
        '0': dict(in_channels=3, out_channels=4, groups=1),
        '1': dict(num_features=4),
        '2': dict(num_channels=4, num_groups=2),
        '3': dict(num_parameters=4),
        '5': dict(normalized_shape=[16]),
        '7': dict(in_features=64, out_features=5),
    }
    out = str(tmp_path / 'art')
    written = save_deployed(small, {}, out, model_spec=dict(c=8))
    assert sorted(osp.basename(p) for p in written) == [
        'channel_cfg.yaml', 'model_spec.json', 'pruned_state_dict.pth',
        'structure.json'
    ]
    big = net(8)
    assert load_deployed(big, out) is big
    assert structure_of(big) == structure_of(small)
    assert stale_attributes(big) == []
    assert big[5].normalized_shape == (16, )
    x = torch.randn(2, 3, 4, 4)
    with torch.no_grad():
        torch.testing.assert_close(big(x), small(x))
    # a structure naming a module the model lacks
    with pytest.raises(KeyError, match="no module '1'"):
        load_deployed(nn.Sequential(nn.Conv2d(3, 8, 3)), out)


def test_model_source_is_required(tmp_path):
    model = nn.Sequential(nn.Conv2d(3, 4, 1))
    with pytest.raises(ValueError, match='exactly one'):
        save_deployed(model, {}, str(tmp_path))
    with pytest.raises(ValueError, match='exactly one'):
        save_deployed(
            model, {}, str(tmp_path), model_config='x.py', model_spec={})
    with pytest.raises(ValueError, match='exactly one'):
        deploy_pruned(model, None, str(tmp_path), (1, 3, 4, 4))
    assert not any(tmp_path.iterdir())


def test_onnx_needs_its_packages(tmp_path, monkeypatch):
    monkeypatch.setattr(deploy_module, 'missing_onnx_packages',
                        lambda: ['onnxscript'])
    with pytest.raises(ImportError, match='onnxscript'):
        deploy_pruned(
            ToyNet(),
            None,
            str(tmp_path), (1, 3, 16, 16),
            model_spec={},
            onnx=True)
    assert not any(tmp_path.iterdir())


def test_report_problems():
    report = DeployReport(
        out_dir='x',
        atol=1e-3,
        input_shape=[1, 3, 8, 8],
        params_before=10,
        params_after=5,
        max_diff_deployed_vs_masked=0.5,
        stale_attributes=['conv: out_channels=5 but weight says 4'],
        first_mismatch='conv: max diff 0.5',
        torch_version=torch.__version__,
        stale_attributes_reloaded=['bn: num_features=3 but weight says 4'])
    assert not report.ok
    assert report.problems == [
        'conv: out_channels=5 but weight says 4',
        'bn: num_features=3 but weight says 4',
        'first layer that differs: conv: max diff 0.5',
        'max_diff_deployed_vs_masked=0.5 > atol=0.001',
    ]
    assert list(report.to_dict()) == [
        'input_shape', 'params_before', 'params_after',
        'max_diff_deployed_vs_masked', 'stale_attributes', 'first_mismatch',
        'torch_version', 'max_diff_reloaded_vs_masked',
        'stale_attributes_reloaded'
    ]
    report.onnx, report.max_diff_onnxruntime_vs_masked = 'm.onnx', 0.01
    assert list(report.to_dict())[-2:] == [
        'onnx', 'max_diff_onnxruntime_vs_masked'
    ]
    assert report.problems[-1] == \
        'max_diff_onnxruntime_vs_masked=0.01 > atol=0.001'


def test_stale_attributes_are_named():
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4))
    model[0].out_channels = 5
    model[1].num_features = 3
    problems = stale_attributes(model)
    assert any(p.startswith('0: out_channels=5') for p in problems)
    assert any(p.startswith('1: num_features=3') for p in problems)
