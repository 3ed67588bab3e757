"""Pruning a RetinaNet: the channel analysis ties the FPN levels and the
head that is shared across them; a pruned RetinaNet deploys and predicts
the same boxes as its masked version."""
import copy
import random

import pytest
import torch
from det_seg_utils import RETINANET
from torch import nn

from mmrazor.models.architectures import MMDetArchitecture
from mmrazor.models.architectures.detector import dummy_det_samples
from mmrazor.models.pruners import StructurePruner, stale_attributes

NUM_LEVELS = 4
FPN_WIDTH = 48


def retinanet_config() -> dict:
    """The folder's small RetinaNet with four pyramid levels (three backbone
    levels plus an extra conv on the backbone's output), a two-conv head,
    and a score threshold of 0 (many boxes survive to be compared)."""
    cfg = copy.deepcopy(RETINANET)
    cfg['data_preprocessor'] = dict(
        type='DetDataPreprocessor',
        mean=[0.0, 0.0, 0.0],
        std=[255.0, 255.0, 255.0],
        pad_size_divisor=32)
    cfg['neck'] = dict(
        type='FPN',
        in_channels=[128, 256, 512],
        out_channels=FPN_WIDTH,
        start_level=0,
        add_extra_convs='on_input',
        num_outs=NUM_LEVELS)
    head = cfg['bbox_head']
    head.update(in_channels=FPN_WIDTH, stacked_convs=2, feat_channels=32)
    head['anchor_generator'] = dict(
        head['anchor_generator'], octave_base_scale=2,
        strides=[8, 16, 32, 64])
    cfg['test_cfg'] = dict(
        nms_pre=1000,
        min_bbox_size=0,
        score_thr=0.0,
        nms=dict(type='nms', iou_threshold=0.5),
        max_per_img=100)
    return cfg


SIDE = 96


def build_retinanet() -> MMDetArchitecture:
    """A RetinaNet with random weights and random BN statistics (so that
    masked channels change the outputs)."""
    torch.manual_seed(0)
    arch = MMDetArchitecture(model=retinanet_config()).eval()
    g = torch.Generator().manual_seed(0)
    for m in arch.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
    return arch


def flat_outputs(outputs) -> list:
    if isinstance(outputs, torch.Tensor):
        return [outputs]
    return [t for item in outputs for t in flat_outputs(item)]


def group_of(pruner: StructurePruner, layer_side: str) -> str:
    found = [
        name for name, g in pruner.dependency.groups.items()
        if layer_side in g.layers
    ]
    assert len(found) == 1, (layer_side, found)
    return found[0]


@pytest.fixture(scope='module')
def prepared():
    arch = build_retinanet()
    pruner = StructurePruner(except_start_keys=[])
    pruner.prepare_from_supernet(arch, input_shape=(1, 3, SIDE, SIDE))
    return arch, pruner


def test_fpn_levels_and_shared_head_form_one_group(prepared):
    arch, pruner = prepared
    # FPN: every level's output is a lateral 1x1 conv plus the upsampled
    # level above (then a 3x3 conv), and the extra level is a conv on the
    # backbone output: all these output channels meet in the shared head,
    # whose first convs see every level.
    fpn_out = [f'neck.fpn_convs.{k}.conv:out' for k in range(
        NUM_LEVELS)]
    lateral_out = [f'neck.lateral_convs.{k}.conv:out'
                   for k in range(3)]
    head_in = ['bbox_head.cls_convs.0.conv:in',
               'bbox_head.reg_convs.0.conv:in']
    # the lateral outputs are summed across levels, then each goes through
    # its own 3x3 conv: one group for the laterals, one for the outputs
    lateral_groups = {group_of(pruner, side) for side in lateral_out}
    assert len(lateral_groups) == 1
    output_groups = {group_of(pruner, side) for side in fpn_out + head_in}
    assert len(output_groups) == 1
    output_group = pruner.dependency.groups[output_groups.pop()]
    assert output_group.prunable
    assert output_group.num_units == FPN_WIDTH
    # the shared convs ran once per level and were recorded once
    for name in ('bbox_head.cls_convs.0.conv',
                 'bbox_head.retina_reg'):
        assert pruner.dependency.layers[name].calls == NUM_LEVELS


def test_head_outputs_are_not_pruned(prepared):
    _, pruner = prepared
    for layer in ('bbox_head.retina_cls:out',
                  'bbox_head.retina_reg:out'):
        group = pruner.dependency.groups[group_of(pruner, layer)]
        assert not group.prunable
        assert any('model output' in why for why in group.blocked_by)


def test_pruned_retinanet_deploys_equal_to_masked():
    arch = build_retinanet()
    pruner = StructurePruner(except_start_keys=[])
    pruner.prepare_from_supernet(arch, input_shape=(1, 3, SIDE, SIDE))
    torch.manual_seed(1)
    x = torch.rand(2, 3, SIDE, SIDE) * 255
    samples = dummy_det_samples(x)
    with torch.no_grad():
        dense = flat_outputs(arch.forward_dummy(x))
    random.seed(0)
    subnet = pruner.sample_subnet()
    pruner.set_subnet(subnet)
    with torch.no_grad():
        masked = flat_outputs(arch.forward_dummy(x))
        masked_pred = arch(x, copy.deepcopy(samples), mode='predict')
    assert max((a - b).abs().max().item()
               for a, b in zip(dense, masked)) > 1e-2, 'masks had no effect'

    before = sum(p.numel() for p in arch.parameters())
    pruner.deploy_subnet(arch, pruner.export_subnet())
    after = sum(p.numel() for p in arch.parameters())
    assert after < before
    assert stale_attributes(arch) == []
    # every shared-head conv now takes exactly the kept FPN channels
    fpn_group = group_of(pruner, 'bbox_head.cls_convs.0.conv:in')
    kept = int(subnet[fpn_group])
    assert arch.model.bbox_head.cls_convs[0].conv.in_channels == kept
    assert arch.model.bbox_head.reg_convs[0].conv.in_channels == kept
    for conv in arch.model.neck.fpn_convs:
        assert conv.conv.out_channels == kept

    with torch.no_grad():
        deployed = flat_outputs(arch.forward_dummy(x))
        deployed_pred = arch(x, copy.deepcopy(samples), mode='predict')
    assert len(deployed) == len(masked) == 2 * NUM_LEVELS
    for a, b in zip(masked, deployed):
        torch.testing.assert_close(b, a, atol=1e-4, rtol=1e-4)
    for m, d in zip(masked_pred, deployed_pred):
        assert len(m.pred_instances) == len(d.pred_instances) > 0
        torch.testing.assert_close(d.pred_instances.bboxes,
                                   m.pred_instances.bboxes, atol=1e-3,
                                   rtol=1e-4)
        torch.testing.assert_close(d.pred_instances.scores,
                                   m.pred_instances.scores, atol=1e-5,
                                   rtol=1e-4)
        assert torch.equal(d.pred_instances.labels, m.pred_instances.labels)
