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
