"""Smoke test of ``benchmarks/pruning_vs_torch_pruning.py``: its helpers on
untrained models and tiny data (the benchmark itself takes half an hour)."""
import pytest
import torch

from tool_runs import import_benchmark


@pytest.fixture(autouse=True, scope='module')
def one_thread():
    """One torch thread, as the benchmark runs (several threads stall on a
    small CPU shared with other jobs)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope='module')
def pb():
    import mmrazor.models  # noqa: F401 (registers the criteria)
    return import_benchmark('_pruning_bench')


@pytest.fixture(scope='module')
def data(pb):
    x, y = pb.load_split('data/fashion_mnist_subset', 'train', 3)
    return x, y


def test_data_is_balanced_and_normalised(pb, data):
    x, y = data
    assert x.shape == (30, 1, 28, 28)
    assert torch.bincount(y).tolist() == [3] * 10
    assert abs(float(x.mean())) < 1.0


@pytest.mark.parametrize('name', ['resnet18', 'mobilenetv2'])
def test_macs_are_mmrazors_flops(pb, name):
    from mmrazor.models.pruners import StructurePruner
    model, classifier = pb.build_model(name)
    pruner = StructurePruner(except_start_keys=[classifier])
    pruner.prepare_from_supernet(model.eval(), input_shape=pb.INPUT_SHAPE)
    assert pruner.estimate_subnet()['flops'] == pb.count_macs(model)


def test_ours_reaches_the_target_and_deploys_exactly(pb, data):
    torch.manual_seed(0)
    model, classifier = pb.build_model('resnet18')
    base = pb.count_macs(model)
    x, y = data
    info = pb.prune_ours(model, 'TaylorImportance', classifier, 1 / 3,
                         [(x[:8], y[:8])], x[:4])
    assert pb.count_macs(model) <= base / 3
    assert info['max_diff'] < 1e-4
    assert info['step'] > 0 and info['calib'] > 0
    assert 0 <= pb.evaluate(model, x, y) <= 100


def test_torch_pruning_reaches_the_target(pb, data):
    tp = pytest.importorskip('torch_pruning')
    torch.manual_seed(0)
    model, classifier = pb.build_model('resnet18')
    x, y = data
    pruned, info = pb.prune_tp(tp, model.eval(), 'taylor', classifier,
                               1 / 3, [(x[:8], y[:8])], tol=0.1)
    assert info['flops_ratio'] <= 1 / 3
    assert pb.count_macs(pruned) <= pb.count_macs(model) / 3
    assert pruned.head.fc.out_features == 10
    assert all(p.grad is None for p in model.parameters())


def test_table_summary_and_plot(tmp_path):
    bench = import_benchmark('pruning_vs_torch_pruning')
    runs = []
    for method, acc, ms in (('L1', 80.0, 5.0), ('Taylor', 82.0, 6.0),
                            ('TP magnitude', 79.0, 7.0),
                            ('TP Taylor', 81.0, 8.0)):
        for seed in (0, 1):
            runs.append(
                dict(model='resnet18', target=2.0, method=method, seed=seed,
                     flops_ratio=0.5, params_ratio=0.5, acc_pruned=acc - 10,
                     acc_recalibrated=acc - 5 + 2 * seed,
                     acc_finetuned=acc + seed, step_ms=ms, setup_ms=1.0,
                     speedup=1.8 if seed == 0 else None,
                     max_diff=1e-6 if method in bench.OURS else None))
    base = dict(resnet18=dict(acc=89.0, macs=28e6, params=7e5))
    table = '\n'.join(bench.table(runs, base, [0, 1]))
    assert '| resnet18 | 2x | Taylor | 0.5000 |' in table
    assert '82.50 ± 0.71' in table and '0.90 |' in table
    # top-1 pruned, + BN, fine-tuned
    assert '| 72.00 ± 0.00 | 78.00 ± 1.41 | 82.50 ± 0.71 |' in table
    summary = '\n'.join(bench.summary(runs))
    assert 'ours best Taylor 82.50 vs Torch-Pruning best TP Taylor 81.50 ' \
        '(+1.00, met)' in summary
    assert 'step 5.5 ms ours vs 7.5 ms theirs (0.73x, met); right after ' \
        'pruning, BN recomputed: Taylor 78.00 vs TP Taylor 77.00' in summary
    pytest.importorskip('matplotlib')
    assert bench.plot(runs, base, str(tmp_path / 'plot.png'))
    assert (tmp_path / 'plot.png').stat().st_size > 0


def test_unreachable_targets_are_rows_not_failures(pb, data):
    """With ``round_to=16`` the 16-channel groups of the ResNet-18 cannot
    shrink, so 1/8 of its FLOPs is out of reach: the run is recorded as
    unreachable and the table and summary say so."""
    bench = import_benchmark('pruning_vs_torch_pruning')
    args = bench.parse_args(['--round-to', '16', '--seeds', '0',
                             '--latency-rounds', '0'])
    model, classifier = pb.build_model('resnet18')
    x, y = data
    run = bench.run_one('resnet18', 8.0, 'L1', 0, model.eval(), classifier,
                        None, args, dict(test_x=x, ft_x=x, ft_y=y), {},
                        print, None)
    assert 'cannot be reached' in run['unreachable']
    assert 'acc_finetuned' not in run
    reached = dict(model='resnet18', target=2.0, method='L1', seed=0,
                   flops_ratio=0.5, params_ratio=0.5, acc_pruned=20.0,
                   acc_finetuned=88.0, step_ms=5.0, setup_ms=1.0)
    base = dict(resnet18=dict(acc=89.0, macs=28e6, params=7e5))
    table = '\n'.join(bench.table([reached, run], base, [0]))
    assert '| resnet18 | 8x | L1 | not reachable under the guard-rails |' \
        in table
    summary = '\n'.join(bench.summary([reached, run]))
    assert 'not reachable under the guard-rails: resnet18 8x L1' in summary


def test_bn_recalibration_uses_a_copy(pb, data, monkeypatch):
    """``top-1 pruned + BN`` comes from a recalibrated copy: the model
    that goes on to fine-tuning keeps its statistics."""
    bench = import_benchmark('pruning_vs_torch_pruning')
    args = bench.parse_args(['--seeds', '0', '--latency-rounds', '0',
                             '--finetune-epochs', '0', '--bn-batches', '1'])
    torch.manual_seed(0)
    model, classifier = pb.build_model('resnet18')
    x, y = data
    base = dict(macs=pb.count_macs(model), params=pb.count_params(model))
    handed = []
    monkeypatch.setattr(bench, 'train',
                        lambda model, *a, **k: handed.append(model))
    run = bench.run_one('resnet18', 2.0, 'L1', 0, model.eval(), classifier,
                        None, args, dict(test_x=x, test_y=y, ft_x=x,
                                         ft_y=y), base, print, None)
    assert 0 <= run['acc_recalibrated'] <= 100
    # the fresh model's statistics (mean 0, variance 1), sliced
    bns = [m for m in handed[0].modules()
           if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(bns) > 10
    for bn in bns:
        assert torch.equal(bn.running_mean, torch.zeros_like(
            bn.running_mean))
        assert torch.equal(bn.running_var, torch.ones_like(bn.running_var))
    args = bench.parse_args(['--bn-batches', '0'])
    assert args.bn_batches == 0


def test_step_time_comparison_times_both_sides(pb):
    tp = pytest.importorskip('torch_pruning')
    step_time = import_benchmark('pruning_step_time')
    model, classifier = pb.build_model('resnet18')
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    # (the second round reuses Torch-Pruning's ratio of the first)
    ours, theirs = step_time.compare_steps(tp, model, classifier, 2.0,
                                           rounds=2, repeats=1)
    assert ours > 0 and theirs > 0
    # both sides prune copies: the model given is left as it was
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    # a ratio given skips the search and prunes to the same FLOPs
    _, searched = pb.prune_tp(tp, model, 'magnitude', classifier, 0.5, [])
    _, given = pb.prune_tp(tp, model, 'magnitude', classifier, 0.5, [],
                           ratio=searched['ratio'])
    assert given['trials'] == 0 and searched['trials'] > 0
    assert given['flops_ratio'] == searched['flops_ratio'] <= 0.5
    assert step_time.parse_args(['--rounds', '2']).rounds == 2
    with pytest.raises(SystemExit):
        step_time.parse_args(['--repeats', '0'])


def test_padding_benchmark_variants(pb):
    """``benchmarks/onnx_channel_padding.py``: the pruned model and its
    padded copies (same outputs, checked inside), padded ones at least
    as wide, every padded conv a multiple of the block or as pruned."""
    bench = import_benchmark('onnx_channel_padding')
    torch.manual_seed(0)
    model, classifier = pb.build_model('mobilenetv2')
    models = bench.variants(model.eval(), classifier, 1 / 3, 8, [1.5, 16])
    assert list(models) == ['padded <= 1.5x', 'padded <= 16x', 'as pruned']
    macs = {k: pb.count_macs(m) for k, m in models.items()}
    assert macs['as pruned'] <= pb.count_macs(model) / 3
    assert macs['as pruned'] < macs['padded <= 1.5x'] <= macs['padded <= 16x']
    convs = {k: [c.out_channels for c in m.modules()
                 if isinstance(c, torch.nn.Conv2d)]
             for k, m in models.items()}
    for pruned, padded in zip(convs['as pruned'], convs['padded <= 16x']):
        assert padded == pruned or (padded > pruned and padded % 8 == 0)
    assert bench.parse_args(['--block', '8']).block == 8
