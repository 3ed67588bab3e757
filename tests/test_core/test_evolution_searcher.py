"""EvolutionSearcher: constraints, no duplicate evaluations, resume after
SIGKILL, plots and tables."""
import json
import os
import os.path as osp
import signal
import subprocess
import sys
import textwrap

import pytest
import yaml

from mmrazor.core import EvolutionSearcher
from mmrazor.core.searchers import subnet_key
from toy_search_space import ToyAlgorithm, toy_score, toy_test_fn

HERE = osp.dirname(osp.abspath(__file__))


def _searcher(work_dir, **kwargs):
    calls = []

    def counting_test_fn(algorithm, dataloader):
        calls.append(subnet_key(algorithm.mutator.current))
        return toy_test_fn(algorithm, dataloader)

    args = dict(
        candidate_pool_size=12, candidate_top_k=4, constraints={'flops': 120},
        max_epoch=4, num_mutation=4, num_crossover=4, mutate_prob=0.3, seed=3)
    args.update(kwargs)
    searcher = EvolutionSearcher(ToyAlgorithm(), None, counting_test_fn,
                                 str(work_dir), **args)
    return searcher, calls


def test_search_obeys_constraints_and_never_evaluates_twice(tmp_path):
    searcher, calls = _searcher(tmp_path)
    best = searcher.search()
    assert len(calls) == len(set(calls))  # each candidate evaluated once
    state = json.load(open(tmp_path / 'search_state.json'))
    assert len(state['evaluated']) == len(calls)
    best_subnet = {k: v['chosen'] for k, v in best.items()}
    assert 10 * sum(best_subnet.values()) <= 120
    # The reported best is the best of all feasible evaluated candidates.
    feasible = [r for r in state['evaluated'].values() if r['feasible']]
    assert toy_score(best_subnet) == max(r['score'] for r in feasible)
    # Evolution improves on the random first epoch.
    history = state['history']
    assert history[-1]['best_score'] >= history[0]['best_score']
    assert (tmp_path / 'best_subnet.yaml').exists()
    assert yaml.safe_load(open(tmp_path / 'best_subnet_epoch_3.yaml')) == best
    assert (tmp_path / 'search_progress.png').stat().st_size > 1000
    with open(tmp_path / 'candidates.csv') as f:
        assert len(f.readlines()) == len(calls) + 1


def test_infeasible_constraints_fail_clearly(tmp_path):
    searcher, _ = _searcher(
        tmp_path, constraints={'flops': -1}, max_sample_tries=50)
    with pytest.raises(RuntimeError, match='loosen the constraints'):
        searcher.search()


def test_unknown_constraint_and_score_key_are_named(tmp_path):
    searcher, _ = _searcher(tmp_path, constraints={'latency': 3})
    with pytest.raises(KeyError, match="'latency'"):
        searcher.search()
    searcher, _ = _searcher(tmp_path / 'b', score_key='top5')
    with pytest.raises(KeyError, match="'top5'"):
        searcher.search()


def test_bad_arguments_are_rejected(tmp_path):
    with pytest.raises(ValueError, match='candidate_top_k'):
        _searcher(tmp_path, candidate_top_k=20)
    with pytest.raises(ValueError, match='num_mutation'):
        _searcher(tmp_path, num_mutation=10, num_crossover=10)


SCRIPT = textwrap.dedent('''
    import os, signal, sys
    sys.path.insert(0, {here!r})
    from mmrazor.core import EvolutionSearcher
    from toy_search_space import ToyAlgorithm, toy_test_fn

    kill_at = int(os.environ.get('KILL_AT', '-1'))
    count = [0]

    def test_fn(algorithm, loader):
        count[0] += 1
        if count[0] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return toy_test_fn(algorithm, loader)

    searcher = EvolutionSearcher(
        ToyAlgorithm(), None, test_fn, sys.argv[1], candidate_pool_size=12,
        candidate_top_k=4, constraints={{'flops': 120}}, max_epoch=4,
        num_mutation=4, num_crossover=4, mutate_prob=0.3, seed=3,
        resume_from=sys.argv[2] if len(sys.argv) > 2 else None)
    searcher.search()
''')


def test_resume_after_sigkill_matches_an_uninterrupted_run(tmp_path):
    script = tmp_path / 'run_search.py'
    script.write_text(SCRIPT.format(here=HERE))

    def run(work_dir, kill_at=-1, resume=None):
        args = [sys.executable, str(script), str(work_dir)]
        if resume:
            args.append(resume)
        env = dict(os.environ, KILL_AT=str(kill_at))
        return subprocess.run(args, env=env, capture_output=True, text=True,
                              timeout=300)

    full = run(tmp_path / 'full')
    assert full.returncode == 0, full.stderr[-2000:]
    # Killed in the middle of the second epoch.
    killed = run(tmp_path / 'killed', kill_at=17)
    assert killed.returncode == -signal.SIGKILL
    state_file = tmp_path / 'killed' / 'search_state.json'
    partial = json.load(open(state_file))
    assert partial['epoch'] == 1 and len(partial['evaluated']) == 16
    resumed = run(tmp_path / 'killed', resume=str(state_file))
    assert resumed.returncode == 0, resumed.stderr[-2000:]

    a = json.load(open(tmp_path / 'full' / 'search_state.json'))
    b = json.load(open(state_file))
    assert len(a['evaluated']) == len(b['evaluated'])
    assert set(a['evaluated']) == set(b['evaluated'])
    assert a['top_k'] == b['top_k']
    assert (tmp_path / 'full' / 'best_subnet.yaml').read_text() == \
        (tmp_path / 'killed' / 'best_subnet.yaml').read_text()
