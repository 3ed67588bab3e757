"""Smoke test of ``benchmarks/bignas_fashion_mnist.py``: the whole
pipeline (supernet, three searches, supernet scores, from-scratch runs,
table, plot) in its quick mode on a few images and one epoch."""
import os.path as osp
import re

import pytest
import torch
from mmengine.config import Config

from tool_runs import import_benchmark


@pytest.fixture(scope='module')
def bench():
    return import_benchmark('bignas_fashion_mnist')


@pytest.fixture(scope='module')
def result(bench, tmp_path_factory):
    """One quick run on 64 training, 32 held-out and 32 test images."""
    threads = torch.get_num_threads()
    work_dir = tmp_path_factory.mktemp('bignas_fmnist')
    args = bench.parse_args([
        '--quick', '--work-dir', str(work_dir), '--train-images', '64',
        '--val-images', '32', '--test-images', '32', '--pool-size', '4',
        '--search-epochs', '1', '--calib-batches', '1', '--space-samples',
        '10', '--seeds-smallest', '2'
    ])
    try:
        yield args, bench.run(args)
    finally:
        torch.set_num_threads(threads)


def test_quick_settings_apply_and_explicit_options_win(bench):
    args = bench.parse_args(['--quick', '--epochs', '2'])
    assert args.epochs == 2
    assert args.train_images == bench.QUICK['train_images']
    assert args.out.endswith('table.md') and args.plot.endswith('table.png')


def test_table_has_three_budgets_with_numbers(result):
    args, res = result
    with open(args.out) as f:
        text = f.read()
    assert text == res['table']
    rows = [line for line in text.splitlines()
            if line.startswith('| ') and re.match(r'\| [0-9]', line)]
    assert len(rows) == 3
    number = r'-?[0-9]+\.[0-9]+'
    for line, seeds in zip(rows, (2, 1, 1)):
        cells = [c.strip() for c in line.strip('|').split('|')]
        assert len(cells) == 8
        assert re.fullmatch(number + r'M \(q0\.[0-9]+\)', cells[0])
        assert re.fullmatch(number + 'M', cells[1])
        assert re.fullmatch(number + 'K', cells[2])
        assert re.fullmatch(number, cells[3])  # held-out, in the search
        assert re.fullmatch(number, cells[4])
        assert re.fullmatch(number + (f' ± {number}' if seeds > 1 else ''),
                            cells[5])
        assert cells[6] == str(seeds)
        assert re.fullmatch(r'[+-][0-9]+\.[0-9]+', cells[7])
    assert osp.isfile(args.plot)
    assert osp.isfile(osp.join(args.work_dir, 'results.json'))


def test_budgets_ascend_and_are_respected(result):
    _, res = result
    rows = res['rows']
    budgets = [r['budget'] for r in rows]
    assert budgets == sorted(budgets)
    low = res['extremes']['min']['flops']
    high = res['extremes']['max']['flops']
    for kind in ('min', 'max'):
        assert 0 <= res['extremes'][kind]['supernet_top1'] <= 100
    for row in rows:
        assert low <= row['flops'] <= row['budget'] <= high
        assert 0 <= row['val_top1'] <= 100
        assert 0 <= row['supernet_top1'] <= 100
        assert all(0 <= t <= 100 for t in row['scratch_top1'])


def test_subnet_files_load_into_the_supernet(bench, result):
    from mmrazor.registry import MODELS
    _, res = result
    cfg = Config.fromfile(bench.SUPERNET_CFG)
    for row in res['rows']:
        # the algorithm, fixed to the subnet (mutables kept, fixed) ...
        model = dict(cfg.model, fix_subnet=row['subnet'])
        fixed = MODELS.build(model)
        assert not fixed.is_supernet
        assert fixed.estimate_resources()['flops'] == row['flops']
        # ... and the static network the subnet config trains
        sub = Config.fromfile(bench.SUBNET_CFG).model
        sub.fix_subnet = row['subnet']
        static = MODELS.build(sub)
        out = static(torch.zeros(2, 3, 28, 28), mode='tensor')
        assert out.shape == (2, 10)


def test_reruns_reuse_every_stage(bench, result, capsys):
    args, res = result
    again = bench.run(args)
    printed = capsys.readouterr().out
    assert 'supernet: reusing' in printed
    assert printed.count('search ') >= 3 and ': training' not in printed
    assert again['table'] == res['table']
