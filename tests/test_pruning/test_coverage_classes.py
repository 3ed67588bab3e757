"""Coverage classes of the channel analysis on hand-built models: mixed-kernel
convolutions, learnable per-channel parameters, attention heads (pruned
whole) and selective-kernel blocks. Each is pruned, deployed, and the
deployed model must compute what the masked model computed."""
from typing import Callable, Dict, Tuple

import torch
from torch import nn

from mmrazor.models.pruners import StructurePruner, stale_attributes
from mmrazor.models.task_modules import (ChannelAnalyzer, deploy_pruned,
                                         structure_of)
from .toy_models import (LayerScaleNet, MixedConvNet, SelectiveKernelNet,
                         TinyViT, n_params)

SHAPE = (1, 3, 8, 8)


def prune_and_deploy(model: nn.Module,
                     subnet: Callable[[StructurePruner], Dict[str, int]],
                     shape: Tuple[int, ...] = SHAPE) -> StructurePruner:
    """Mask ``model`` to ``subnet(pruner)``, deploy it and check that the
    deployed model equals the masked one (and that the masks mattered)."""
    torch.manual_seed(0)
    model.eval()
    x = torch.randn(2, *shape[1:])
    with torch.no_grad():
        dense = model(x)
    before = n_params(model)
    pruner = StructurePruner(except_start_keys=['head'])
    pruner.prepare_from_supernet(model, input_shape=shape)
    pruner.set_subnet(subnet(pruner))
    with torch.no_grad():
        masked = model(x)
    assert not torch.allclose(masked, dense), 'masks had no effect'
    estimate = pruner.estimate_subnet()
    pruner.deploy_subnet(model, pruner.export_subnet())
    assert estimate['params'] == n_params(model)
    with torch.no_grad():
        deployed = model(x)
    torch.testing.assert_close(deployed, masked, atol=1e-5, rtol=1e-5)
    assert n_params(model) < before
    assert stale_attributes(model) == []
    return pruner


def half(pruner: StructurePruner) -> Dict[str, int]:
    """Every prunable group at half its units."""
    return {
        name: max(1, g.num_units // 2)
        for name, g in pruner.channel_groups.items()
    }


# ------------------------------------------------ mixed-kernel convs
def test_mixed_conv_chunks_are_tied_and_split_sizes_rewritten():
    model = MixedConvNet()
    dep = ChannelAnalyzer(input_shape=SHAPE).analyze(model)
    # uneven chunks [5, 4, 3]: channel j of every chunk is tied to channel
    # j % 3 of the first one, so no chunk can lose all its channels
    assert dep.groups['stem'].num_units == 3
    assert dep.groups['stem'].prunable
    assert dep.layers['mix'].kind == 'structure'
    # mix2's outputs [4, 2, 2] are tied the same way before the head
    assert dep.groups['mix2.convs.0'].num_units == 2
    prune_and_deploy(model, lambda p: {'stem': 2, 'mix2.convs.0': 1})
    assert model.mix.splits == [4, 3, 2]
    assert model.mix2.splits == [4, 3, 2]
    assert [c.in_channels for c in model.mix.convs] == [4, 3, 2]
    assert [c.out_channels for c in model.mix.convs] == [4, 3, 2]
    assert [c.out_channels for c in model.mix2.convs] == [2, 1, 1]


def test_mixed_conv_through_the_deploy_artefact(tmp_path):
    torch.manual_seed(0)
    model, fresh = MixedConvNet(), MixedConvNet()
    report = deploy_pruned(
        model, {'stem': 1},
        str(tmp_path),
        SHAPE,
        model_spec={'python': 'MixedConvNet'},
        build_fresh=lambda: fresh,
        except_start_keys=['head'])
    assert report.ok, report.problems
    assert structure_of(model)['mix'] == {'splits': [2, 2, 1]}
    assert list(fresh.mix.splits) == [2, 2, 1]


# ------------------------------------------ per-channel parameters
def test_layer_scale_and_direct_parameters_are_sliced():
    model = LayerScaleNet()
    dep = ChannelAnalyzer(input_shape=SHAPE).analyze(model)
    stem = dep.groups['stem']
    assert {'gamma', 'beta', 'conv'} <= set(stem.sources)
    assert {'gamma:param', 'beta:param'} <= set(stem.layers)
    assert {'scale', 'shift'} <= set(dep.groups['conv2'].sources)
    prune_and_deploy(model, lambda p: {'stem': 5, 'conv2': 2})
    assert tuple(model.gamma.shape) == (5, 1, 1)
    assert tuple(model.beta.shape) == (1, 5, 1, 1)
    assert tuple(model.scale.shape) == (2, )
    assert tuple(model.shift.shape) == (2, )
    assert isinstance(model.gamma, nn.Parameter)


# ------------------------------------------------------ attention
def _heads_group(pruner: StructurePruner, first: str) -> str:
    groups = pruner.channel_groups
    assert first in groups, pruner.report()
    return first


def test_attention_prunes_whole_heads_separate_qkv():
    model = TinyViT()
    dep = ChannelAnalyzer(input_shape=SHAPE).analyze(model)
    g = dep.groups['attn.q']
    # q, k and v of a head are one unit; the attention module's head
    # attributes are recorded with it
    assert g.num_units == 4 and g.prunable
    assert sorted(g.sources) == ['attn.k', 'attn.q', 'attn.v']
    assert 'attn:in' in g.layers
    assert dep.layers['attn'].handler.scaled == {
        'num_heads': 1,
        'inner_dim': 6
    }
    # the token stream: patch embedding, class token, position embedding,
    # layer scale and the residual branches
    stream = dep.groups['patch']
    assert {'cls_token', 'pos_embed', 'ls1', 'attn.proj', 'fc2'} <= set(
        stream.sources) and stream.prunable
    prune_and_deploy(model, lambda p: {'attn.q': 2, 'patch': 12, 'fc1': 9})
    attn = model.attn
    assert (attn.num_heads, attn.head_dim, attn.inner_dim) == (2, 6, 12)
    assert tuple(attn.q.weight.shape) == (12, 12)
    assert tuple(attn.proj.weight.shape) == (12, 12)
    assert tuple(model.pos_embed.shape) == (1, 5, 12)


def test_attention_prunes_whole_heads_fused_qkv_sdpa(tmp_path):
    model = TinyViT(fused=True)
    pruner = prune_and_deploy(model, lambda p: {'attn.qkv': 3})
    assert pruner.dependency.groups['attn.qkv'].num_units == 4
    assert model.attn.num_heads == 3
    assert tuple(model.attn.qkv.weight.shape) == (54, 16)
    # the artefact records the rewritten head attributes
    torch.manual_seed(0)
    model, fresh = TinyViT(fused=True), TinyViT(fused=True)
    report = deploy_pruned(
        model, {'attn.qkv': 1},
        str(tmp_path),
        SHAPE,
        model_spec={'python': 'TinyViT'},
        build_fresh=lambda: fresh,
        except_start_keys=['head'])
    assert report.ok, report.problems
    assert (fresh.attn.num_heads, fresh.attn.inner_dim) == (1, 6)


def test_attention_with_a_baked_width_is_refused_with_the_reason():
    # merges the heads back to the width of ``x.shape``
    model = TinyViT(baked=True, head_dim=4)
    dep = ChannelAnalyzer(input_shape=SHAPE).analyze(model)
    g = dep.groups['attn.q']
    assert not g.prunable
    reason = '; '.join(g.blocked_by)
    assert 'in attn' in reason and 'heads cannot be pruned' in reason
    # so is the token stream, whose width the merge takes from ``x.shape``
    assert not dep.groups['patch'].prunable
    # the rest of the model is still pruned
    prune_and_deploy(model, lambda p: {'fc1': 5})
    assert model.attn.num_heads == 4


# ---------------------------------------------- selective kernels
def test_selective_kernel_paths_are_tied_through_the_reweighting():
    model = SelectiveKernelNet()
    dep = ChannelAnalyzer(input_shape=SHAPE).analyze(model)
    g = dep.groups['paths.0']
    assert sorted(g.sources) == ['fc_select', 'paths.0', 'paths.1']
    assert g.num_units == 8 and g.prunable
    assert dep.groups['stem'].prunable and dep.groups['fc_reduce'].prunable
    prune_and_deploy(model, lambda p: {'paths.0': 3, 'stem': 6,
                                       'fc_reduce': 2})
    assert tuple(model.fc_select.weight.shape) == (6, 2, 1, 1)
    assert [p.out_channels for p in model.paths] == [3, 3]
