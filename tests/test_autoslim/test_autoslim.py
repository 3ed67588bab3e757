"""AutoSlim sandwich training and the greedy channel search."""
import copy
import json

import pytest
import torch
import torch.nn.functional as F
from mmengine.optim import OptimWrapper

from mmrazor.core import GreedySearcher
from mmrazor.models import AutoSlim
from mmrazor.utils import register_all_modules

register_all_modules()


def _classifier():
    return dict(
        type='mmpretrain.ImageClassifier',
        data_preprocessor=dict(type='mmpretrain.ClsDataPreprocessor',
                               num_classes=4),
        backbone=dict(type='mmpretrain.ResNet_CIFAR', depth=18,
                      in_channels=1, stem_channels=8, base_channels=8),
        neck=dict(type='mmpretrain.GlobalAveragePooling'),
        head=dict(type='mmpretrain.LinearClsHead', num_classes=4,
                  in_channels=64))


def _batch(n=6):
    from mmpretrain.structures import DataSample
    torch.manual_seed(1)
    return dict(
        inputs=[torch.rand(1, 16, 16) * 255 for _ in range(n)],
        data_samples=[DataSample().set_gt_label(i % 4) for i in range(n)])


def _algo(**kwargs):
    torch.manual_seed(0)
    args = dict(
        architecture=_classifier(),
        pruner=dict(type='RatioPruner', ratios=(0.25, 0.5, 0.75, 1.0),
                    except_start_keys=['head.fc']),
        input_shape=(1, 16, 16))
    args.update(kwargs)
    return AutoSlim(**args)


def test_sandwich_step_equals_sum_of_width_gradients():
    algo = _algo(num_sample_training=2)  # widest + narrowest: no sampling
    data = algo.data_preprocessor(_batch(), True)
    labels = torch.tensor([s.gt_label.item() for s in data['data_samples']])
    params = [p for p in algo.parameters() if p.requires_grad]
    before = [p.detach().clone() for p in params]

    # Independent reference with plain autograd.
    algo.pruner.set_max_channel()
    wide = algo.architecture(data['inputs'], mode='tensor')
    grads = torch.autograd.grad(F.cross_entropy(wide, labels), params,
                                allow_unused=True)
    algo.pruner.set_min_channel()
    narrow = algo.architecture(data['inputs'], mode='tensor')
    kl = F.kl_div(F.log_softmax(narrow, 1), F.softmax(wide.detach(), 1),
                  reduction='batchmean')
    grads2 = torch.autograd.grad(kl, params, allow_unused=True)

    wrapper = OptimWrapper(torch.optim.SGD(params, lr=0.1))
    log = algo.train_step(_batch(), wrapper)
    assert set(log) == {'max.loss', 'min.loss', 'loss'}
    for p, b, g1, g2 in zip(params, before, grads, grads2):
        total = sum(g for g in (g1, g2) if g is not None)
        if isinstance(total, int):
            total = torch.zeros_like(b)
        torch.testing.assert_close(p.detach(), b - 0.1 * total,
                                   rtol=1e-4, atol=1e-6)


def test_four_widths_per_step_and_smaller_flops_for_min():
    algo = _algo(num_sample_training=4)
    wrapper = OptimWrapper(torch.optim.SGD(algo.parameters(), lr=0.01))
    log = algo.train_step(_batch(), wrapper)
    assert {'max.loss', 'min.loss', 'random1.loss', 'random2.loss'} <= \
        set(log)
    full = algo.get_subnet_flops()  # widest after the step
    algo.pruner.set_min_channel()
    assert algo.get_subnet_flops() < 0.2 * full
    with pytest.raises(ValueError, match='num_sample_training'):
        _algo(num_sample_training=1)


def _bins_score(algo):
    """A deterministic score: prefers keeping channels of later groups."""
    bins = algo.pruner.current_subnet()
    names = sorted(bins)
    return {'score': sum((i + 1) * bins[n] for i, n in enumerate(names))}


def test_greedy_search_hits_targets_and_resumes(tmp_path):
    algo = _algo()
    full = algo.get_subnet_flops()
    targets = [0.8 * full, 0.5 * full]
    calls = []

    def score_fn(model, loader):
        calls.append(1)
        return _bins_score(model)

    searcher = GreedySearcher(algo, None, targets, score_fn, str(tmp_path),
                              max_channel_bins=4, score_key='score')
    results = searcher.search()
    assert [r['target'] for r in results] == sorted(targets, reverse=True)
    for r in results:
        assert r['flops'] <= r['target']
        assert (tmp_path / r['file']).exists()
    # The first slimmed group is the one whose loss hurts the score least:
    # the first group in sorted order (weight 1).
    first = sorted(algo.pruner.current_subnet())[0]
    assert results[0]['bins'][first] < 4

    # Resume from a state saved in the middle of a step: no re-evaluation.
    state = json.load(open(tmp_path / 'greedy_state.json'))
    assert state['pending'] == []
    algo2 = _algo()
    n_before = len(calls)
    GreedySearcher(algo2, None, targets, score_fn, str(tmp_path / 'again'),
                   max_channel_bins=4, score_key='score',
                   resume_from=str(tmp_path / 'greedy_state.json')).search()
    assert len(calls) == n_before  # everything was already done


def test_retraining_from_a_channel_config_is_physically_slimmer(tmp_path):
    algo = _algo()
    algo.pruner.set_min_channel()
    cfg = algo.pruner.export_subnet()
    slim = _algo(channel_cfg=copy.deepcopy(cfg))
    n_full = sum(p.numel() for p in _algo().parameters())
    n_slim = sum(p.numel() for p in slim.parameters())
    assert n_slim < 0.3 * n_full
    wrapper = OptimWrapper(torch.optim.SGD(slim.parameters(), lr=0.01))
    log = slim.train_step(_batch(), wrapper)
    assert torch.isfinite(log['loss'])
