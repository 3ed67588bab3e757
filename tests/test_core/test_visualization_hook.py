"""RazorVisualizationHook: pictures of recorded feature maps at test time."""
import os.path as osp
import types

import mmcv
import numpy as np
import pytest
import torch
from mmengine.visualization import Visualizer
from torch import nn

from mmrazor.core.hooks import RazorVisualizationHook


class Algo(nn.Module):
    """Stands for an algorithm: the model is its ``architecture``."""

    def __init__(self) -> None:
        super().__init__()
        self.architecture = nn.Sequential(
            nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 5, 1))

    def forward(self, x):
        return self.architecture(x)


def hook_cfg(**overrides):
    cfg = dict(
        recorders=dict(
            conv=dict(type='ModuleOutputs', source='architecture.2')),
        mappings=dict(last=dict(recorder='conv')),
        enabled=True,
        visualization_cfg=dict(channel_reduction='squeeze_mean'))
    cfg.update(overrides)
    return cfg


def run_test_iters(hook, model, log_dir, batches):
    runner = types.SimpleNamespace(model=model, log_dir=log_dir)
    for idx, batch in enumerate(batches):
        hook.before_test_iter(runner, idx, batch)
        with torch.no_grad():
            model(batch['inputs'].float())
        hook.after_test_iter(runner, idx, batch, None)


def test_pictures_of_the_recorded_map(tmp_path):
    torch.manual_seed(0)
    model = Algo().eval()
    images = torch.randint(0, 255, (2, 3, 8, 8), dtype=torch.uint8)
    hook = RazorVisualizationHook(**hook_cfg(out_dir='vis'))
    run_test_iters(hook, model, str(tmp_path), [dict(inputs=images)] * 3)
    assert [osp.basename(p) for p in hook.written] == [
        '0_0_last.png', '1_0_last.png', '2_0_last.png'
    ]
    picture = mmcv.imread(hook.written[0])[..., ::-1]  # back to RGB
    # the same picture drawn by hand from the conv's output
    with torch.no_grad():
        featmap = model.architecture(images.float())[0]
    overlaid = images[0].permute(1, 2, 0).numpy().astype(np.uint8)
    expected = Visualizer.draw_featmap(
        featmap, overlaid_image=overlaid, channel_reduction='squeeze_mean',
        topk=20, arrangement=(4, 5), resize_shape=None, alpha=0.5)
    assert np.abs(picture.astype(int) - expected.astype(int)).max() <= 1
    # no hook stays on the model between iterations
    assert not model.architecture[2]._forward_hooks


def test_pixel_wise_max_is_the_channel_max(tmp_path):
    """1.x's default reduction, which mmengine lacks: the per-position max
    over the channels."""
    from mmrazor.core.hooks.visualization_hook import draw_featmap
    featmap = torch.randn(5, 6, 6)
    picture = draw_featmap(featmap, None,
                           dict(channel_reduction='pixel_wise_max'))
    by_hand = Visualizer.draw_featmap(
        featmap.max(dim=0, keepdim=True).values, channel_reduction=None,
        topk=1, arrangement=(1, 1))
    assert picture.shape == by_hand.shape
    assert np.abs(picture.astype(int) - by_hand.astype(int)).max() <= 1


def test_disabled_or_off_interval_draws_nothing(tmp_path):
    model = Algo().eval()
    batch = dict(inputs=torch.zeros(1, 3, 8, 8, dtype=torch.uint8))
    off = RazorVisualizationHook(**hook_cfg(enabled=False))
    run_test_iters(off, model, str(tmp_path), [batch] * 2)
    assert off.written == []
    every_2 = RazorVisualizationHook(**hook_cfg(interval=2))
    run_test_iters(every_2, model, str(tmp_path), [batch] * 3)
    assert [osp.basename(p) for p in every_2.written] == [
        '0_0_last.png', '2_0_last.png'
    ]


@pytest.mark.parametrize('overrides,words', [
    (dict(mappings=dict(m=dict(recorder='nope'))), ["'m'", "'nope'"]),
    (dict(mappings=dict(m=dict(recorder='conv', idx=0))), ["'m'", 'idx']),
    (dict(visualization_cfg=dict(colour=1)), ['colour']),
])
def test_bad_arguments_are_named(overrides, words):
    with pytest.raises((KeyError, TypeError)) as err:
        RazorVisualizationHook(**hook_cfg(**overrides))
    assert all(w in str(err.value) for w in words), str(err.value)
