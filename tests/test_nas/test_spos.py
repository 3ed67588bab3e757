"""SPOS: path sampling, fixed subnets, resource estimates, search glue."""
import copy

import pytest
import torch
from mmengine import Config

from mmrazor.models import SPOS
from mmrazor.registry import MODELS
from mmrazor.structures import export_fix_subnet
from mmrazor.utils import register_all_modules

register_all_modules()
CFG = 'configs/nas/spos/spos_shufflenet-s_supernet_fashion-mnist.py'


@pytest.fixture(scope='module')
def supernet_cfg(repo_root):
    import os.path as osp
    return Config.fromfile(osp.join(repo_root, CFG)).model


def _batch(n=8):
    from mmpretrain.structures import DataSample
    data = dict(
        inputs=[torch.randint(0, 255, (1, 28, 28), dtype=torch.uint8)
                for _ in range(n)],
        data_samples=[DataSample().set_gt_label(i % 10) for i in range(n)])
    return data


def test_each_training_step_trains_a_freshly_sampled_path(supernet_cfg):
    torch.manual_seed(0)
    algo = MODELS.build(copy.deepcopy(supernet_cfg))
    assert isinstance(algo, SPOS) and algo.is_supernet
    from mmengine.optim import OptimWrapper
    wrapper = OptimWrapper(torch.optim.SGD(algo.parameters(), lr=0.1))
    paths = []
    for _ in range(6):
        before = {n: p.detach().clone() for n, p in algo.named_parameters()}
        algo.train_step(_batch(), wrapper)
        choices = algo.mutator.current_choices
        paths.append(tuple(sorted(choices.items())))
        changed = {
            n for n, p in algo.named_parameters()
            if not torch.equal(before[n], p)
        }
        # Exactly the sampled candidate of each block was updated.
        for key, chosen in choices.items():
            for name in ('shuffle_3x3', 'shuffle_5x5', 'shuffle_7x7',
                         'shuffle_xception'):
                prefix = f'architecture.{key}.candidates.{name}.'
                touched = any(n.startswith(prefix) for n in changed)
                assert touched == (name == chosen), (key, name, chosen)
    assert len(set(paths)) > 1  # different paths across steps


def test_fix_subnet_trains_the_fixed_model_and_matches_export(supernet_cfg):
    algo = MODELS.build(copy.deepcopy(supernet_cfg))
    algo.sample_subnet()
    subnet, static = export_fix_subnet(algo.architecture, slice_weight=True)
    cfg = copy.deepcopy(supernet_cfg)
    cfg.fix_subnet = subnet
    fixed = MODELS.build(cfg)
    assert not fixed.is_supernet and fixed.mutator is None
    fixed.load_state_dict(static.state_dict(), strict=False)
    # Resources of the supernet's current path equal the fixed model's,
    # and the independent static count (exported plain model).
    from mmrazor.models.task_modules import ResourceEstimator
    reference = ResourceEstimator((1, 1, 28, 28)).count_static(static)
    assert algo.estimate_resources()['flops'] == reference['flops']
    assert fixed.get_subnet_flops() == reference['flops']
    assert algo.estimate_resources()['params'] == reference['params']


def test_bad_arguments(supernet_cfg):
    cfg = copy.deepcopy(supernet_cfg)
    cfg.retraining = True
    with pytest.raises(ValueError, match='fix_subnet'):
        MODELS.build(cfg)
    cfg = copy.deepcopy(supernet_cfg)
    cfg.input_shape = (28, 28)
    with pytest.raises(ValueError, match='input_shape'):
        MODELS.build(cfg)


def test_bn_training_mode_keeps_batch_statistics(supernet_cfg):
    cfg = copy.deepcopy(supernet_cfg)
    algo = MODELS.build(cfg)
    algo.eval()
    bns = [m for m in algo.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and all(m.training for m in bns)
    cfg.bn_training_mode = False
    algo = MODELS.build(cfg)
    algo.eval()
    assert not any(m.training for m in algo.modules()
                   if isinstance(m, torch.nn.BatchNorm2d))


def test_latency_constraint_from_a_lookup_table(supernet_cfg, tmp_path):
    from mmrazor.models.task_modules import LatencyLUT
    algo = MODELS.build(copy.deepcopy(supernet_cfg))
    lut = LatencyLUT.build(algo.architecture, input_shape=(1, 1, 28, 28),
                           warmup=1, runs=2)
    lut.save(str(tmp_path / 'lut.json'))
    cfg = copy.deepcopy(supernet_cfg)
    cfg.latency_lut = str(tmp_path / 'lut.json')
    algo2 = MODELS.build(cfg)
    algo2.load_state_dict(algo.state_dict())
    algo2.sample_subnet()
    resources = algo2.estimate_resources()
    # The prediction is the LUT's: fixed part + the chosen candidates.
    assert resources['latency'] == pytest.approx(
        lut.predict(algo2.architecture, input_shape=(1, 1, 28, 28)))
    assert resources['latency'] > 0
