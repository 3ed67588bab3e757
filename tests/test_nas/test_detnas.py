"""DetNAS on a detector-shaped model: backbone-only resource counting."""
import pytest
import torch
from mmengine.model import BaseModel
from torch import nn

from mmrazor.models import DetNAS
from mmrazor.models.task_modules import ResourceEstimator
from mmrazor.structures import export_fix_subnet


class _TinyDetector(BaseModel):
    """Backbone + a dense 'head' applied to every backbone output."""

    def __init__(self):
        super().__init__()
        from mmrazor.registry import MODELS
        self.backbone = MODELS.build(
            dict(type='SearchableShuffleNetV2', in_channels=3,
                 arch_setting=[[16, 1], [32, 1]], out_indices=(0, 1),
                 with_last_layer=False))
        self.head = nn.ModuleList(
            [nn.Conv2d(16, 4, 3, padding=1),
             nn.Conv2d(32, 4, 3, padding=1)])

    def forward(self, inputs, data_samples=None, mode='tensor'):
        feats = self.backbone(inputs)
        outs = [h(f) for h, f in zip(self.head, feats)]
        if mode == 'loss':
            return {'loss': sum(o.pow(2).mean() for o in outs)}
        return outs


def test_detnas_counts_the_backbone_path_only():
    algo = DetNAS(_TinyDetector(), input_shape=(3, 64, 64))
    algo.sample_subnet()
    got = algo.estimate_resources()
    _, static = export_fix_subnet(algo.architecture, slice_weight=True)
    estimator = ResourceEstimator((1, 3, 64, 64))
    whole = estimator.count_static(static)
    backbone_params = sum(p.numel() for p in static.backbone.parameters())
    assert got['params'] == backbone_params
    head_macs = sum(
        # stem /2 then each stage /2: outputs at 16x16 and 8x8
        conv.weight.numel() * (64 // (4 * 2**i))**2
        for i, conv in enumerate(static.head))
    assert got['flops'] == whole['flops'] - head_macs

    # A training step samples a path, as SPOS.
    from mmengine.optim import OptimWrapper
    wrapper = OptimWrapper(torch.optim.SGD(algo.parameters(), lr=0.1))
    log = algo.train_step(dict(inputs=torch.rand(2, 3, 64, 64)), wrapper)
    assert torch.isfinite(log['loss'])


def test_detnas_names_a_missing_backbone():
    with pytest.raises(KeyError, match='neck'):
        DetNAS(_TinyDetector(), backbone_name='neck')
