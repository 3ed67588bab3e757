"""A 2-process gloo search evaluates each candidate exactly once."""
import json
import textwrap
import os.path as osp

import pytest
from launch import launch

pytestmark = pytest.mark.multiprocess

HERE = osp.dirname(osp.abspath(__file__))

SCRIPT = textwrap.dedent('''
    import json, os, sys
    import torch.distributed as dist
    sys.path.insert(0, {here!r})
    dist.init_process_group('gloo')
    from mmrazor.core import EvolutionSearcher
    from mmrazor.core.searchers import subnet_key
    from toy_search_space import ToyAlgorithm, toy_test_fn

    mine = []

    def test_fn(algorithm, loader):
        mine.append(subnet_key(algorithm.mutator.current))
        return toy_test_fn(algorithm, loader)

    out = sys.argv[1]
    searcher = EvolutionSearcher(
        ToyAlgorithm(), None, test_fn, out, candidate_pool_size=10,
        candidate_top_k=3, constraints={{'flops': 120}}, max_epoch=3,
        num_mutation=3, num_crossover=3, seed=1)
    best = searcher.search()
    with open(os.path.join(out, f'rank{{dist.get_rank()}}.json'), 'w') as f:
        json.dump(dict(evaluated=mine, best=best,
                       top_k=searcher.state['top_k']), f)
    from mmrazor.utils import close_distributed
    assert close_distributed()
''')


def test_two_ranks_split_candidates_exactly_once(tmp_path):
    script = tmp_path / 'dist_search.py'
    script.write_text(SCRIPT.format(here=HERE))
    launch([script, tmp_path], timeout=300)
    r0 = json.load(open(tmp_path / 'rank0.json'))
    r1 = json.load(open(tmp_path / 'rank1.json'))
    assert r0['evaluated'] and r1['evaluated']  # both ranks worked
    assert not set(r0['evaluated']) & set(r1['evaluated'])
    assert len(r0['evaluated']) == len(set(r0['evaluated']))
    state = json.load(open(tmp_path / 'search_state.json'))
    assert set(r0['evaluated']) | set(r1['evaluated']) == set(
        state['evaluated'])
    # Both ranks agree on the result.
    assert r0['best'] == r1['best'] and r0['top_k'] == r1['top_k']


LOOP_SCRIPT = textwrap.dedent('''
    import json, os, sys
    import torch.distributed as dist
    sys.path.insert(0, {here!r})
    dist.init_process_group('gloo')
    from mmrazor.registry import LOOPS
    from mmrazor.utils import close_distributed, register_all_modules
    register_all_modules(init_default_scope=False)
    from toy_search_loop import toy_loop_cfg, toy_runner

    out = sys.argv[1]
    searcher = dict(
        type='EvolutionSearcher', candidate_pool_size=6, candidate_top_k=2,
        constraints=dict(flops=150), max_epoch=2, num_mutation=2,
        num_crossover=2, mutate_prob=0.3, seed=5, calib_batches=2,
        score_key='toy/confidence')
    loop = LOOPS.build(
        toy_loop_cfg(searcher, calib_noise=0.5, calib_batch_size=4),
        default_args=dict(runner=toy_runner(out)))
    best = loop.run()
    with open(os.path.join(out, f'rank{{dist.get_rank()}}.json'), 'w') as f:
        json.dump(dict(val_batches=loop.searcher.algorithm.val_batches,
                       best=best), f)
    assert close_distributed()
''')


def test_search_loop_scores_alike_on_one_and_two_ranks(tmp_path):
    # Each rank scores its share of the candidates on the whole validation
    # set; the metrics are computed on that rank (not gathered), so every
    # score equals the score of a one-process search.
    script = tmp_path / 'dist_search_loop.py'
    script.write_text(LOOP_SCRIPT.format(here=HERE))
    one, two = tmp_path / 'one', tmp_path / 'two'
    launch([script, one], nproc=1, timeout=300)
    launch([script, two], nproc=2, timeout=300)
    a = json.load(open(one / 'search_state.json'))
    b = json.load(open(two / 'search_state.json'))
    assert a['evaluated'] == b['evaluated'] and a['top_k'] == b['top_k']
    r0 = json.load(open(two / 'rank0.json'))
    r1 = json.load(open(two / 'rank1.json'))
    # 20 validation samples in batches of 7: 3 batches per candidate, each
    # candidate scored on one rank only.
    assert r0['val_batches'] > 0 and r1['val_batches'] > 0
    assert r0['val_batches'] + r1['val_batches'] == 3 * len(b['evaluated'])
    assert r0['best'] == r1['best'] == \
        json.load(open(one / 'rank0.json'))['best']
