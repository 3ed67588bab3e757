"""Channel counts padded to a runtime's block: which channels are added,
that they compute zeros, and the padded ONNX model of the deploy step."""
import numpy as np
import pytest
import torch
from torch import nn

from mmrazor.models.pruners import StructurePruner
from mmrazor.models.pruners.channel_padding import (kept_channels,
                                                    pad_masks_to_block,
                                                    zero_padded_channels)
from mmrazor.models.pruners.utils import slice_model


class ConvNet(nn.Module):
    """conv(1->24)-bn-relu, conv(24->20)-bn-relu, pool, linear(20->5)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 24, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(24)
        self.conv2 = nn.Conv2d(24, 20, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(20)
        self.fc = nn.Linear(20, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(self.bn2(self.conv2(x)))
        return self.fc(x.mean((2, 3)))


def _randomised(model: nn.Module) -> nn.Module:
    """Non-trivial BN statistics and shifts (a zero shift would hide a
    padded channel that is not silenced)."""
    torch.manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
            nn.init.uniform_(m.weight, 0.5, 1.5)
            nn.init.uniform_(m.bias, -1, 1)
    return model.eval()


def _prepared(model: nn.Module, shape) -> StructurePruner:
    pruner = StructurePruner(except_start_keys=['fc'])
    pruner.prepare_from_supernet(model, input_shape=shape)
    return pruner


def test_masks_are_rounded_up_to_the_block():
    model = _randomised(ConvNet())
    pruner = _prepared(model, (1, 1, 8, 8))
    dep = pruner.dependency
    assert set(pruner._masks) == {'conv1', 'conv2'}
    kept1 = np.zeros(24, bool)
    kept1[[1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21]] = True  # 11 channels
    kept2 = np.zeros(20, bool)
    kept2[:16] = True  # already a multiple of 8
    masks = dict(conv1=kept1, conv2=kept2)

    padded = pad_masks_to_block(dep, masks, block=8)
    assert kept_channels(dep, 'conv1', padded['conv1']) == 16
    # the kept channels stay, the first 5 pruned ones are added
    assert padded['conv1'][kept1].all()
    added = np.flatnonzero(padded['conv1'] & ~kept1)
    assert added.tolist() == [0, 2, 4, 6, 8]
    assert (padded['conv2'] == kept2).all()
    # 11 -> 16 is more than 1.4x: left as it is
    tight = pad_masks_to_block(dep, masks, block=8, max_growth=1.4)
    assert (tight['conv1'] == kept1).all()
    # 11 -> 12 with blocks of 4
    assert kept_channels(dep, 'conv1',
                         pad_masks_to_block(dep, masks, 4)['conv1']) == 12
    with pytest.raises(ValueError, match='block=0'):
        pad_masks_to_block(dep, masks, block=0)
    with pytest.raises(ValueError, match='max_growth=0.5'):
        pad_masks_to_block(dep, masks, block=8, max_growth=0.5)


def test_padded_channels_compute_zeros():
    """The padded model's outputs are the pruned model's, its first conv
    has 16 channels, and the added ones are zero after its BN (checked on
    the layer's output, written out with F.conv2d / F.batch_norm)."""
    model = _randomised(ConvNet())
    x = torch.randn(4, 1, 8, 8)
    pruner = _prepared(model, (1, 1, 8, 8))
    dep = pruner.dependency
    kept1 = np.zeros(24, bool)
    kept1[[1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21]] = True
    kept2 = np.ones(20, bool)
    kept2[[0, 5, 9]] = False
    masks = dict(conv1=kept1, conv2=kept2)
    padded = pad_masks_to_block(dep, masks, block=8)

    pruned = _randomised(ConvNet())
    pruned.load_state_dict(model.state_dict())
    pad = _randomised(ConvNet())
    pad.load_state_dict(model.state_dict())
    pruner_p = _prepared(pruned, (1, 1, 8, 8))
    slice_model(pruned, pruner_p.dependency, masks)
    pruner_q = _prepared(pad, (1, 1, 8, 8))
    changed = zero_padded_channels(pad, pruner_q.dependency, masks, padded)
    assert changed >= 2  # conv1 and bn1 (and conv2 / bn2)
    slice_model(pad, pruner_q.dependency, padded)

    assert pad.conv1.out_channels == 16 and pruned.conv1.out_channels == 11
    # 17 of 20: no multiple of 8 fits in the group, left as it is
    assert pad.conv2.out_channels == pruned.conv2.out_channels == 17
    with torch.no_grad():
        assert torch.allclose(pad(x), pruned(x), atol=1e-6)
        y = torch.nn.functional.conv2d(x, pad.conv1.weight, pad.conv1.bias,
                                       padding=1)
        y = torch.nn.functional.batch_norm(y, pad.bn1.running_mean,
                                           pad.bn1.running_var,
                                           pad.bn1.weight, pad.bn1.bias)
    order = np.flatnonzero(padded['conv1'])
    added = np.isin(order, np.flatnonzero(padded['conv1'] & ~kept1))
    assert added.sum() == 5
    assert torch.equal(y[:, torch.from_numpy(added)],
                       torch.zeros_like(y[:, torch.from_numpy(added)]))
    assert y[:, torch.from_numpy(~added)].abs().sum() > 0


def _onnx_conv_channels(path: str):
    """(out, in per group) of every Conv weight in an ONNX file, read
    with ``onnx``."""
    import onnx
    from onnx import numpy_helper
    graph = onnx.load(path).graph
    weights = {i.name: numpy_helper.to_array(i).shape
               for i in graph.initializer}
    return [weights[node.input[1]] for node in graph.node
            if node.op_type == 'Conv' and node.input[1] in weights]


def test_deploy_pads_the_onnx_model(tmp_path):
    """A random MobileNetV2 subnet (depthwise convs, residual adds):
    onnxruntime runs the padded ONNX model with the masked model's
    outputs; every padded group's convs have multiples of 8 channels;
    the torch artefact stays as pruned."""
    for name in ('onnx', 'onnxscript', 'onnxruntime'):
        pytest.importorskip(name)
    import torchvision
    from mmrazor.models.task_modules import deploy_pruned

    def build():
        torch.manual_seed(0)
        return _randomised(torchvision.models.mobilenet_v2(
            weights=None, width_mult=0.5, num_classes=10))

    out = str(tmp_path / 'art')
    report = deploy_pruned(build(), None, out, (2, 3, 32, 32),
                           model_spec=dict(torchvision='mobilenet_v2'),
                           build_fresh=build, except_start_keys=[
                               'classifier.1'], onnx=True,
                           onnx_channel_block=8, onnx_max_growth=2.0)
    assert report.ok, report.problems
    assert report.onnx_channel_block == 8
    assert report.onnx_padding_refused is None
    assert report.max_diff_padded_vs_masked <= 1e-4
    assert report.max_diff_onnxruntime_vs_masked <= 1e-4
    groups = report.onnx_padded_groups
    assert len(groups) >= 5
    for kept, exported in groups.values():
        assert kept < exported <= 2 * kept and exported % 8 == 0
    # the ONNX convs (in execution order, which is MobileNetV2's module
    # order) have the torch artefact's pruned output counts, or more: a
    # multiple of 8
    torch_convs = [m.weight.shape[0] for m in load_deployed_model(out)
                   .modules() if isinstance(m, nn.Conv2d)]
    onnx_convs = [s[0] for s in _onnx_conv_channels(report.onnx)]
    assert len(onnx_convs) == len(torch_convs)
    wider = 0
    for in_onnx, in_torch in zip(onnx_convs, torch_convs):
        assert in_onnx == in_torch or (in_onnx > in_torch
                                       and in_onnx % 8 == 0)
        wider += in_onnx > in_torch
    assert wider >= len(groups)


def load_deployed_model(folder: str) -> nn.Module:
    import torchvision
    from mmrazor.models.task_modules import load_deployed
    torch.manual_seed(0)
    return load_deployed(
        torchvision.models.mobilenet_v2(weights=None, width_mult=0.5,
                                        num_classes=10), folder)


class NormedMLP(nn.Module):
    """linear(8->24), LayerNorm over the 24 features, linear(24->4): a
    LayerNorm's statistics see padded channels."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(8, 24)
        self.norm = nn.LayerNorm(24)
        self.fc2 = nn.Linear(24, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.norm(self.fc1(x))))


def test_padding_that_changes_outputs_is_refused(tmp_path):
    """Padding the LayerNorm's group changes its mean and variance: the
    report says why the ONNX model is not padded, and the ONNX model
    (as pruned) still gives the masked outputs."""
    for name in ('onnx', 'onnxscript', 'onnxruntime'):
        pytest.importorskip(name)
    from mmrazor.models.task_modules import deploy_pruned
    torch.manual_seed(0)
    model = NormedMLP().eval()
    keep = [i for i in range(24) if i % 2]  # 12 of 24
    keep = keep[:11]
    cfg = {'fc1': dict(in_channels=8, out_channels=11,
                       kept_units=keep)}
    report = deploy_pruned(model, cfg, str(tmp_path / 'art'), (3, 8),
                           model_spec=dict(x=1),
                           except_start_keys=['fc2'], onnx=True,
                           onnx_channel_block=8)
    assert report.onnx_padded_groups == {'fc1': [11, 16]}
    assert report.max_diff_padded_vs_masked > 1e-3
    assert 'model.onnx is not padded' in report.onnx_padding_refused
    assert report.ok  # the ONNX model is the pruned one
    assert report.max_diff_onnxruntime_vs_masked <= 1e-4


def test_tool_flags_are_checked():
    from tool_runs import load_tool
    tool = load_tool('deploy_subnet.py')
    base = ['--torchvision', 'resnet18', '--random-subnet', '--out-dir',
            'x']
    args = tool.parse_args(base + ['--onnx', '--onnx-channel-block', '16'])
    assert args.onnx_channel_block == 16 and args.onnx_max_growth == 1.5
    with pytest.raises(SystemExit):
        tool.parse_args(base + ['--onnx-channel-block', '16'])  # no --onnx
    with pytest.raises(SystemExit):
        tool.parse_args(base + ['--onnx', '--onnx-channel-block', '16',
                                '--onnx-max-growth', '0.9'])
