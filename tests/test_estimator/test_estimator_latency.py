"""Latency look-up table: build, save/load round trip, prediction."""
import json
import os

import pytest
import torch
from torch import nn

from mmrazor.models.mutables.mutable_module.one_shot_mutable_module import \
    OneShotMutableOP
from mmrazor.models.task_modules import LatencyLUT, ResourceEstimator


class TinySupernet(nn.Module):

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.blocks = nn.Sequential(*[
            OneShotMutableOP(
                nn.ModuleDict(
                    dict(
                        k3=nn.Conv2d(8, 8, 3, padding=1),
                        k5=nn.Conv2d(8, 8, 5, padding=2))))
            for _ in range(2)
        ])

    def forward(self, x):
        return self.blocks(self.stem(x))


SHAPE = (1, 3, 16, 16)


@pytest.fixture
def supernet():
    torch.manual_seed(0)
    model = TinySupernet()
    for m in model.blocks:
        m.current_choice = 'k3'
    return model


def test_lut_round_trip_and_predict(supernet, tmp_path):
    lut = LatencyLUT.build(supernet, input_shape=SHAPE, warmup=0, runs=2)
    assert set(lut.ops) == {'blocks.0', 'blocks.1'}
    timings = lut.ops['blocks.0']['1x8x16x16']
    assert set(timings) == {'k3', 'k5'}
    assert all(t > 0 for t in timings.values())
    path = str(tmp_path / 'lut.json')
    lut.save(path)
    assert os.listdir(tmp_path) == ['lut.json']  # no temporary left over
    loaded = LatencyLUT.load(path)
    assert loaded.to_dict() == json.loads(json.dumps(lut.to_dict()))
    # prediction: the fixed part plus the chosen candidates
    supernet.blocks[1].current_choice = 'k5'
    static = lut.models['1x3x16x16']['static_ms']
    expected = static + lut.ops['blocks.0']['1x8x16x16']['k3'] + \
        lut.ops['blocks.1']['1x8x16x16']['k5']
    assert loaded.predict(supernet, SHAPE) == pytest.approx(expected)
    # the estimator reports the table's prediction next to its counts
    estimator = ResourceEstimator(input_shape=SHAPE, latency_lut=loaded)
    assert estimator.estimate(supernet)['latency_lut'] == pytest.approx(
        expected)


def test_lut_errors_name_the_problem(supernet, tmp_path):
    lut = LatencyLUT.build(supernet, input_shape=SHAPE, warmup=0, runs=1)
    with pytest.raises(KeyError, match='1x3x32x32'):
        lut.predict(supernet, (1, 3, 32, 32))
    del lut.ops['blocks.1']['1x8x16x16']['k5']
    supernet.blocks[1].current_choice = 'k5'
    with pytest.raises(KeyError, match="'k5'"):
        lut.predict(supernet, SHAPE)
    bad = tmp_path / 'bad.json'
    bad.write_text(json.dumps({'version': 99}))
    with pytest.raises(ValueError, match='99'):
        LatencyLUT.load(str(bad))


def test_measured_latency(supernet):
    estimator = ResourceEstimator(
        input_shape=SHAPE, latency_warmup=0, latency_runs=3)
    result = estimator.estimate(supernet, measure_latency=True)
    assert result['latency'] > 0
    part = estimator.estimate(
        supernet, measure_latency=True, module='blocks')
    assert part['latency'] > 0
    assert part['flops'] == 2 * 16 * 16 * 8 * 8 * 9
