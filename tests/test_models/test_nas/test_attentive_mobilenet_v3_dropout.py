"""AttentiveMobileNetV3.set_dropout: the drop-path BigNAS gives its largest
subnet (MMRazor 1.x semantics: stages numbered from 1, block ``b`` of all
``B`` built blocks gets ``rate * b / B``)."""
import copy
from pathlib import Path

import pytest
import torch
from mmcv.cnn.bricks.drop import DropPath
from mmengine.config import Config
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from mmrazor.registry import MODELS

REF = Path('/work/shared/reference/mmrazor-1.x/configs/_base_/nas_backbones')
pytestmark = pytest.mark.skipif(
    not REF.is_dir(), reason='1.x reference configs not available')

# max blocks per stage of the 1.x arch settings (num_blocks [min, max, step])
MAX_BLOCKS = dict(attentive=[2, 5, 6, 6, 8, 8, 2], ofa=[1, 4, 4, 4, 4, 4])


def build(space: str) -> nn.Module:
    cfg = Config.fromfile(
        str(REF / f'{space}_mobilenetv3_supernet.py')).nas_backbone.to_dict()
    cfg['type'] = 'mmrazor.AttentiveMobileNetV3'
    torch.manual_seed(0)
    return MODELS.build(cfg)


@pytest.fixture(scope='module')
def backbones():
    return {space: build(space) for space in MAX_BLOCKS}


def blocks_by_stage(backbone):
    return [list(stage) for stage in list(backbone.layers)[:-1]]


def expected_rates(space: str, stages, rate: float):
    """Per stage, per block: the rate written out from the arch setting;
    None for blocks of stages not set."""
    counts = MAX_BLOCKS[space]
    total = sum(counts)
    result, index = [], 0
    for number, count in enumerate(counts, start=1):
        result.append([
            rate * (index + j) / total if number in stages else None
            for j in range(count)
        ])
        index += count
    return result


def rate_of(block) -> float:
    if isinstance(block.drop_path, DropPath):
        return block.drop_path.drop_prob
    assert isinstance(block.drop_path, nn.Identity)
    return 0.0


@pytest.mark.parametrize('space', list(MAX_BLOCKS))
def test_rates_follow_the_documented_rule(backbones, space):
    backbone = copy.deepcopy(backbones[space])
    # the 1.x configs of both spaces: stages 6 and 7 (OFA has 6 stages:
    # its 7 is the last layer, without blocks)
    backbone.set_dropout(dropout_stages=[6, 7], drop_path_rate=0.2)
    expected = expected_rates(space, [6, 7], 0.2)
    set_blocks = 0
    for stage, rates in zip(blocks_by_stage(backbone), expected):
        assert len(stage) == len(rates)
        for block, rate in zip(stage, rates):
            residual = block.shortcut is not None or block.with_res_shortcut
            if rate is None:  # not in dropout_stages: untouched
                assert isinstance(block.drop_path, nn.Identity)
                continue
            want = rate if residual else 0.0
            assert rate_of(block) == pytest.approx(want, abs=1e-12)
            assert block.drop_path_rate == pytest.approx(want, abs=1e-12)
            set_blocks += want > 0
    assert set_blocks > 0
    if space == 'ofa':  # the first block of stage 6 (stride 2): no residual
        first = blocks_by_stage(backbone)[5][0]
        assert first.shortcut is None and not first.with_res_shortcut
        assert isinstance(first.drop_path, nn.Identity)
    else:  # AttentiveNAS: every block has a residual (a shortcut layer
        # or its input); the last rate is rate * 36 / 37
        last = blocks_by_stage(backbone)[6][1]
        assert rate_of(last) == pytest.approx(0.2 * 36 / 37)

    # rate 0 (BigNAS's smaller subnets) turns them off again
    backbone.set_dropout(dropout_stages=[6, 7], drop_path_rate=0.0)
    for stage in blocks_by_stage(backbone):
        for block in stage:
            assert isinstance(block.drop_path, nn.Identity)


def _norms_eval(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, _BatchNorm):
            m.eval()


def test_samples_are_dropped_whole(backbones):
    """In training, each sample's residual branch is either dropped (the
    output is the shortcut alone) or kept and scaled by ``1 / keep``."""
    backbone = copy.deepcopy(backbones['attentive'])
    backbone.set_dropout(dropout_stages=[7], drop_path_rate=0.6)
    block = blocks_by_stage(backbone)[6][1]
    prob = block.drop_path.drop_prob
    assert prob == pytest.approx(0.6 * 36 / 37)
    block.train()
    _norms_eval(block)  # deterministic branch; only drop-path is random
    x = torch.randn(32, block.in_channels, 4, 4)
    with torch.no_grad():
        block.drop_path.eval()
        full = block(x)
        assert block.with_res_shortcut  # the input is added back
        shortcut = x
        branch = full - shortcut
        block.drop_path.train()
        torch.manual_seed(1)
        out = block(x)
    kept = dropped = 0
    for i in range(x.shape[0]):
        if torch.allclose(out[i], shortcut[i], atol=1e-6):
            dropped += 1
        else:
            torch.testing.assert_close(
                out[i], shortcut[i] + branch[i] / (1 - prob), atol=1e-5,
                rtol=1e-5)
            kept += 1
    assert kept > 0 and dropped > 0


@pytest.mark.parametrize('space', list(MAX_BLOCKS))
def test_train_eval_and_zero_rate_outputs(backbones, space):
    backbone = copy.deepcopy(backbones[space])
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        backbone.eval()
        eval_before = backbone(x)[-1]
        backbone.train()
        _norms_eval(backbone)
        train_before = backbone(x)[-1]

        backbone.set_dropout(dropout_stages=[2, 3, 4, 5, 6, 7],
                             drop_path_rate=0.5)
        torch.manual_seed(0)
        train_drop = backbone(x)[-1]
        # (relative: the outputs of an untrained net can be tiny)
        change = (train_drop - train_before).abs().max()
        assert change > 1e-2 * train_before.abs().max()

        backbone.eval()  # no dropping in eval mode
        torch.testing.assert_close(backbone(x)[-1], eval_before, rtol=0,
                                   atol=0)

        backbone.set_dropout(dropout_stages=[2, 3, 4, 5, 6, 7],
                             drop_path_rate=0.0)
        backbone.train()
        _norms_eval(backbone)
        torch.testing.assert_close(backbone(x)[-1], train_before, rtol=0,
                                   atol=0)


@pytest.mark.parametrize('stages, rate, key', [
    ([0], 0.1, 'dropout_stages entry 0'),
    ([9], 0.1, 'dropout_stages entry 9'),
    (['6'], 0.1, "dropout_stages entry '6'"),
    (6, 0.1, 'dropout_stages must be a list'),
    ([6], 1.0, 'drop_path_rate must be a number in [0, 1), got 1.0'),
    ([6], -0.1, 'got -0.1'),
])
def test_bad_arguments(backbones, stages, rate, key):
    with pytest.raises(ValueError) as err:
        backbones['attentive'].set_dropout(stages, rate)
    assert key in str(err.value)
    # the last layer (8 = 7 stages + 1) is accepted and has no blocks
    backbones['attentive'].set_dropout([8], 0.1)
