"""SearchLoop: the searchers as a stage of an mmengine run, scoring
candidates with mmengine's evaluator; BaseSearcher as the one home of the
searchers' machinery."""
import json

import pytest
import yaml
from mmengine.config import Config

from mmrazor.apis import search_loop_cfg
from mmrazor.core import (BaseSearcher, EvolutionSearcher, GreedySearcher,
                          SearchLoop)
from mmrazor.core.searchers import subnet_key
from mmrazor.registry import LOOPS, SEARCHERS
from mmrazor.utils import register_all_modules
from toy_search_loop import (Interrupted, ToyData, ToySupernet, by_hand,
                             toy_loop_cfg, toy_runner)

register_all_modules(init_default_scope=False)

EVOLUTION = dict(
    type='EvolutionSearcher', candidate_pool_size=6, candidate_top_k=2,
    constraints=dict(flops=150), max_epoch=3, num_mutation=2,
    num_crossover=2, mutate_prob=0.3, seed=5)


def _loop(work_dir, searcher, model=None, **kwargs) -> SearchLoop:
    runner = toy_runner(str(work_dir), model)
    return LOOPS.build(toy_loop_cfg(searcher, **kwargs),
                       default_args=dict(runner=runner))


def test_searchers_share_one_base():
    assert issubclass(EvolutionSearcher, BaseSearcher)
    assert issubclass(GreedySearcher, BaseSearcher)
    assert SEARCHERS.get('EvolutionSearcher') is EvolutionSearcher
    assert SEARCHERS.get('GreedySearcher') is GreedySearcher
    assert LOOPS.get('SearchLoop') is SearchLoop
    # The machinery lives in the base, not in the subclasses.
    for name in ('score', 'score_candidates', 'save_state', 'load_state',
                 'resources_of', 'check_constraints', 'write_tables',
                 'plot_progress', 'write_subnet'):
        assert name not in vars(EvolutionSearcher), name
        assert name not in vars(GreedySearcher), name


def test_loop_scores_candidates_as_computed_by_hand(tmp_path):
    # One calibration batch holding the 24 training samples: BatchNorm
    # statistics are then their mean and unbiased variance.
    searcher = dict(EVOLUTION, max_epoch=1, calib_batches=1,
                    score_key='accuracy_top-1')
    loop = _loop(tmp_path, searcher)
    assert isinstance(loop, SearchLoop)
    assert isinstance(loop.searcher, EvolutionSearcher)
    model = loop.searcher.algorithm
    best = loop.run()

    val, calib_x = ToyData(20, seed=1), ToyData(24, seed=2).x
    rows = json.load(open(tmp_path / 'candidates.json'))
    assert len(rows) == 6
    for row in rows:
        expected = by_hand(model, row['subnet'], val, calib_x)
        # 20 samples: accuracies are 5 points apart, approx is exact here.
        assert row['score'] == pytest.approx(expected['top1'], abs=1e-4)
        assert row['metrics']['accuracy/top1'] == row['score']
        assert row['metrics']['accuracy_top-1'] == row['score']
        assert row['metrics']['toy/confidence'] == pytest.approx(
            expected['confidence'], rel=1e-5)
    # The returned and written best is the best candidate by hand (ties go
    # to the smallest key).
    hand = min(rows, key=lambda r: (-by_hand(model, r['subnet'], val,
                                             calib_x)['top1'], r['key']))
    assert {k: v['chosen'] for k, v in best.items()} == hand['subnet']
    assert yaml.safe_load(open(tmp_path / 'best_subnet.yaml')) == best


def test_calibration_changes_the_score(tmp_path):
    # Without re-calibration the (untouched) running statistics are used:
    # the loop really re-calibrates when asked to.
    subnet = {f'd{i}': 1 for i in range(8)}
    calibrated = _loop(tmp_path / 'a', dict(EVOLUTION, calib_batches=1,
                                            score_key='toy/confidence'))
    plain = _loop(tmp_path / 'b', dict(EVOLUTION, calib_batches=0,
                                       score_key='toy/confidence'))
    a = calibrated.searcher.score(subnet)['score']
    b = plain.searcher.score(subnet)['score']
    expected = by_hand(calibrated.searcher.algorithm, subnet,
                       ToyData(20, seed=1), ToyData(24, seed=2).x)
    assert a == pytest.approx(expected['confidence'], rel=1e-5)
    assert b != pytest.approx(a, rel=1e-3)


def _resumable(work_dir, fail_at_batch=None, resume=None):
    model = ToySupernet()
    model.fail_at_batch = fail_at_batch
    # Noisy calibration data drawn 8 of 24 at a time: scores depend on the
    # calibration subset and on the seeding of the noise.
    searcher = dict(EVOLUTION, calib_batches=2, score_key='toy/confidence')
    return _loop(work_dir, searcher, model, calib_noise=0.5,
                 calib_batch_size=4, resume_from=resume)


def test_resumed_search_equals_an_uninterrupted_one(tmp_path):
    full = _resumable(tmp_path / 'full')
    full.run()
    # 20 validation samples in batches of 7: 3 batches per candidate; the
    # 9th candidate (the 3rd of epoch 1) is interrupted.
    killed = _resumable(tmp_path / 'killed', fail_at_batch=3 * 8 + 1)
    with pytest.raises(Interrupted):
        killed.run()
    state_file = tmp_path / 'killed' / 'search_state.json'
    partial = json.load(open(state_file))
    assert partial['epoch'] == 1 and len(partial['evaluated']) == 8
    resumed = _resumable(tmp_path / 'killed', resume='auto')
    assert resumed.searcher.resume_from == str(state_file)
    resumed.run()
    # The resumed search scores only what was missing.
    n_full = len(json.load(open(tmp_path / 'full' / 'search_state.json'))
                 ['evaluated'])
    assert resumed.searcher.algorithm.val_batches == 3 * (n_full - 8)

    a = json.load(open(tmp_path / 'full' / 'search_state.json'))
    b = json.load(open(state_file))
    assert a['evaluated'] == b['evaluated']  # every score, bit for bit
    assert a['top_k'] == b['top_k'] and a['history'] == b['history']
    for name in ('best_subnet.yaml', 'candidates.csv'):
        assert (tmp_path / 'full' / name).read_text() == \
            (tmp_path / 'killed' / name).read_text()


@SEARCHERS.register_module(force=True)
class ExhaustiveSearcher(BaseSearcher):
    """A searcher written on the base: score every subnet of a list."""

    state_file = 'exhaustive_state.json'

    def __init__(self, subnets, **kwargs):
        super().__init__(**kwargs)
        self.subnets = subnets

    def apply(self, candidate):
        self.algorithm.mutator.set_subnet(candidate)

    def search(self):
        self.state = self.load_state(self.resume_from, ['scores']) \
            if self.resume_from else dict(scores={})
        todo = [s for s in self.subnets
                if subnet_key(s) not in self.state['scores']]

        def record(result):
            self.state['scores'][result['key']] = result['score']

        self.score_candidates(todo, record, 'exhaustive')
        return max(self.subnets,
                   key=lambda s: self.state['scores'][subnet_key(s)])


def test_a_new_searcher_needs_only_its_algorithm(tmp_path):
    subnets = [{f'd{i}': (i + j) % 4 for i in range(8)} for j in range(4)]
    searcher = dict(type='ExhaustiveSearcher', subnets=subnets,
                    score_key='toy/confidence', calib_batches=1)
    loop = _loop(tmp_path, searcher)
    best = loop.run()
    state = json.load(open(tmp_path / 'exhaustive_state.json'))
    model = loop.searcher.algorithm
    hand = {
        subnet_key(s): by_hand(model, s, ToyData(20, seed=1),
                               ToyData(24, seed=2).x)['confidence']
        for s in subnets
    }
    assert state['scores'] == pytest.approx(hand, rel=1e-5)
    assert subnet_key(best) == max(hand, key=hand.get)
    # `resume_from='auto'` finds the searcher's own state file.
    again = _loop(tmp_path, searcher, resume_from='auto')
    assert again.searcher.resume_from == str(tmp_path /
                                             'exhaustive_state.json')
    again.run()
    assert again.searcher.algorithm.val_batches == 0  # nothing re-scored


def test_bad_loop_configs_are_named(tmp_path):
    with pytest.raises(KeyError, match="'NoSuchSearcher'"):
        _loop(tmp_path, dict(type='NoSuchSearcher'))
    with pytest.raises(TypeError, match='searcher'):
        _loop(tmp_path, dict(candidate_pool_size=3))
    with pytest.raises(ValueError, match="calib_batches must be .* '2'"):
        _loop(tmp_path, dict(EVOLUTION, calib_batches='2'))
    with pytest.raises(ValueError, match='calib_batches=2'):
        _loop(tmp_path, dict(EVOLUTION, calib_batches=2),
              calib_dataloader=None)
    with pytest.raises(TypeError, match='dataset'):
        loop_cfg = toy_loop_cfg(EVOLUTION)
        loop_cfg['dataloader'] = dict(batch_size=2)
        LOOPS.build(loop_cfg,
                    default_args=dict(runner=toy_runner(str(tmp_path))))
    with pytest.raises(ValueError, match='search_state.json'):
        (tmp_path / 'bad').mkdir()
        (tmp_path / 'bad' / 'search_state.json').write_text('{"epoch": 0')
        _loop(tmp_path / 'bad', EVOLUTION, resume_from='auto').run()


def test_search_loop_cfg_reads_the_search_config(tmp_path):
    cfg = Config(dict(
        searcher=dict(type='EvolutionSearcher'), val_dataloader=dict(a=1),
        val_evaluator=dict(type='Accuracy'), train_dataloader=dict(b=2),
        resume_search=True, search_loop=dict(calib_seed=7)))
    loop_cfg = search_loop_cfg(cfg)
    assert loop_cfg == dict(
        type='SearchLoop', dataloader=dict(a=1),
        evaluator=dict(type='Accuracy'), searcher=dict(
            type='EvolutionSearcher'), calib_dataloader=dict(b=2),
        resume_from='auto', calib_seed=7)
    assert search_loop_cfg(cfg, 'x.json')['resume_from'] == 'x.json'
    with pytest.raises(KeyError, match='searcher'):
        search_loop_cfg(Config(dict(val_dataloader=dict())))
    with pytest.raises(KeyError, match='val_evaluator'):
        search_loop_cfg(Config(dict(searcher=dict(type='X'),
                                    val_dataloader=dict(a=1))))
