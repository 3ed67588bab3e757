"""Models of timm and transformers (random weights, tiny sizes, nothing
downloaded): mixed-kernel convs (MixNet), attention heads (ViT, BERT),
weight-standardised convs (NF-ResNet), selective kernels (SKResNet) and
channel-transposed attention with a baked width (XCiT, refused with the
reason while the rest is pruned)."""
import os
import os.path as osp
from typing import Any, Callable

import pytest
import torch
from torch import nn

from mmrazor.models.pruners import StructurePruner, stale_attributes
from mmrazor.models.task_modules import ChannelDependency

os.environ['HF_HUB_OFFLINE'] = '1'
os.environ['TRANSFORMERS_OFFLINE'] = '1'

timm = pytest.importorskip('timm')

Forward = Callable[[nn.Module, Any], torch.Tensor]


def _plain(model: nn.Module, x: Any) -> torch.Tensor:
    return model(x)


def prune_half(model: nn.Module,
               x: Any,
               excluded: str,
               forward: Forward = _plain) -> ChannelDependency:
    """Analyse ``model`` on ``x``, keep half of every prunable group,
    deploy, and check the deployed model against the masked one.

    Returns:
        ChannelDependency: The analysis.
    """
    torch.manual_seed(0)
    model.eval()
    with torch.no_grad():
        dense = forward(model, x)
    before = sum(p.numel() for p in model.parameters())
    pruner = StructurePruner(except_start_keys=[excluded])
    supernet = model if forward is _plain else _Wrapped(model, forward)
    pruner.prepare_from_supernet(supernet, inputs=x)
    dep = pruner.dependency
    assert dep.prunable_groups, pruner.report()
    pruner.set_subnet({
        name: max(1, g.num_units // 2)
        for name, g in dep.prunable_groups.items()
    })
    with torch.no_grad():
        masked = forward(model, x)
    assert not torch.allclose(masked, dense), 'masks had no effect'
    pruner.deploy_subnet(supernet, pruner.export_subnet())
    with torch.no_grad():
        deployed = forward(model, x)
    assert sum(p.numel() for p in model.parameters()) < before
    assert stale_attributes(model) == []
    scale = masked.abs().max().item()
    diff = (deployed - masked).abs().max().item()
    assert scale > 0 and diff <= 1e-4 * scale, (diff, scale)
    return dep


class _Wrapped(nn.Module):
    """Runs ``forward(model, x)`` (a model with keyword inputs)."""

    def __init__(self, model: nn.Module, forward: Forward) -> None:
        super().__init__()
        self.model = model
        self._fwd = forward

    def forward_dummy(self, x: Any) -> torch.Tensor:
        return self._fwd(self.model, x)


def _image(side: int = 32) -> torch.Tensor:
    torch.manual_seed(1)
    return torch.randn(1, 3, side, side)


def test_mixnet_mixed_kernel_convs():
    model = timm.create_model('mixnet_s', pretrained=False, num_classes=10)
    dep = prune_half(model, _image(), 'classifier')
    # every MixedConv2d is a structure record; its splits follow the kept
    # channels of its chunks
    mixed = [
        (name, m) for name, m in model.named_modules()
        if type(m).__name__ == 'MixedConv2d'
    ]
    assert mixed
    for name, m in mixed:
        assert list(m.splits) == [c.in_channels for c in m.values()], name
    assert len(dep.prunable_groups) >= 30


def test_vit_prunes_whole_heads():
    model = timm.create_model(
        'vit_tiny_patch16_224',
        pretrained=False,
        img_size=32,
        patch_size=8,
        depth=2,
        num_classes=10)
    dep = prune_half(model, _image(), 'head')
    # tokens + class token + position embedding; heads and MLPs per block
    assert len(dep.prunable_groups) == 5
    assert dep.groups['blocks.0.attn.qkv'].num_units == 3  # heads
    attn = model.blocks[0].attn
    assert attn.num_heads == 1
    assert attn.attn_dim == attn.head_dim == 64
    assert tuple(attn.qkv.weight.shape) == (3 * 64, 96)


def test_nf_resnet_weight_standardised_convs_are_folded():
    model = timm.create_model('nf_resnet26', pretrained=False, num_classes=10)
    dep = prune_half(model, _image(), 'head.fc')
    assert len(dep.prunable_groups) == 21
    # convs with pruned inputs became plain convs with the standardised
    # weight; the stem (RGB input) keeps its class and slices its gain
    conv1 = model.stages[0][0].conv1
    assert type(conv1) is nn.Conv2d
    stem = model.stem.conv
    assert type(stem).__name__ == 'ScaledStdConv2d'
    assert stem.gain.shape[0] == stem.out_channels == 32  # of 64


def test_nf_resnet_artefact_loads_into_a_fresh_model(tmp_path):
    """The folded convs are recorded in ``structure.json`` as plain
    ``nn.Conv2d`` layers, which ``load_deployed`` builds in a freshly
    created NF-ResNet: the reloaded model computes the masked one."""
    import json
    from mmrazor.models.task_modules import deploy_pruned, load_deployed

    def build():
        torch.manual_seed(0)
        return timm.create_model('nf_resnet26', pretrained=False,
                                 num_classes=10).eval()

    out = str(tmp_path / 'art')
    report = deploy_pruned(build(), None, out, (1, 3, 64, 64),
                           model_spec=dict(timm='nf_resnet26'),
                           build_fresh=build, except_start_keys=['head.fc'])
    assert report.ok, report.problems
    assert report.max_diff_reloaded_vs_masked <= 1e-4
    with open(osp.join(out, 'structure.json')) as f:
        structure = json.load(f)
    folded = [n for n, a in structure.items() if '__torch_nn__' in a]
    assert len(folded) >= 10
    fresh = load_deployed(build(), out)
    for name in folded:
        conv = fresh.get_submodule(name)
        assert type(conv) is nn.Conv2d
        assert list(conv.weight.shape[:2]) == [
            structure[name]['out_channels'],
            structure[name]['in_channels'] // structure[name]['groups']
        ]
    # only convolutions may be asked for
    name = folded[0]
    structure[name]['__torch_nn__']['class'] = 'Sequential'
    with open(osp.join(out, 'structure.json'), 'w') as f:
        json.dump(structure, f)
    with pytest.raises(ValueError, match='torch.nn.Sequential'):
        load_deployed(build(), out)


def test_skresnet_selective_kernels_are_pruned():
    model = timm.create_model('skresnet18', pretrained=False, num_classes=10)
    dep = prune_half(model, _image(), 'fc')
    assert len(dep.prunable_groups) == 20
    sk = model.layer1[0].conv1
    assert sk.in_channels == sum(p.conv.in_channels for p in sk.paths)


def test_xcit_channel_attention_is_refused_and_the_rest_pruned():
    model = timm.create_model(
        'xcit_nano_12_p16_224',
        pretrained=False,
        img_size=32,
        depth=2,
        num_classes=10)
    groups = prune_half(model, _image(), 'head').groups
    qkv = groups['blocks.0.attn.qkv']
    assert not qkv.prunable
    reason = '; '.join(qkv.blocked_by)
    assert 'in blocks.0.attn' in reason
    assert 'heads cannot be pruned' in reason
    assert groups['blocks.0.mlp.fc1'].prunable


def test_bert_prunes_whole_heads():
    transformers = pytest.importorskip('transformers')
    torch.manual_seed(0)
    config = transformers.BertConfig(
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        vocab_size=100)
    model = transformers.BertModel(config)
    ids = torch.randint(0, 100, (1, 8))
    dep = prune_half(model, ids, 'pooler',
                     lambda m, x: m(input_ids=x).last_hidden_state)
    group = dep.groups['encoder.layer.0.attention.self.query']
    assert group.num_units == 4 and group.prunable
    attn = model.encoder.layer[0].attention.self
    assert attn.num_attention_heads == 2
    assert attn.all_head_size == 32 and attn.attention_head_size == 16
    assert tuple(attn.query.weight.shape) == (32, 64)


def test_channel_attention_alone_refuses_its_input_width_too():
    """XCA merges the heads back to the width of its input (``x.shape``),
    which its fused path no longer holds in a local variable: the input
    channels are refused with the heads."""
    from timm.models.xcit import XCA

    class Net(nn.Module):

        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Linear(3, 16)
            self.attn = XCA(16, num_heads=4)
            self.mlp = nn.Linear(16, 8)
            self.fc = nn.Linear(8, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.embed(x.flatten(2).transpose(1, 2))
            x = x + self.attn(x)
            return self.fc(torch.relu(self.mlp(x)).mean(1))

    groups = prune_half(Net(), _image(4), 'fc').groups
    for name in ('embed', 'attn.qkv'):
        assert not groups[name].prunable
        assert any('heads cannot be pruned' in r and r.endswith('in attn')
                   for r in groups[name].blocked_by), name
    assert groups['mlp'].prunable
