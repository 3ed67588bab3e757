"""Evolution search over the subnets of a trained supernet."""
import random
from typing import Any, Callable, Dict, List, Optional

from torch import nn

from mmrazor.registry import SEARCHERS
from ..utils import broadcast_object_list
from .base import BaseSearcher, decode, encode, seed_everything, subnet_key

__all__ = ['EvolutionSearcher', 'subnet_key', 'seed_everything']


@SEARCHERS.register_module()
class EvolutionSearcher(BaseSearcher):
    """Evolution search (as in single-path one-shot NAS) under resource
    constraints.

    Every epoch builds a pool of ``candidate_pool_size`` distinct subnets
    that meet ``constraints``: children of the current top-k by mutation and
    crossover (after the first epoch), then random samples. Each candidate is
    scored once (see :class:`BaseSearcher`: BatchNorm re-calibration, the
    score function, candidates split across ranks); the top-k over
    everything evaluated so far seeds the next epoch.

    Nothing is lost on a crash: the state (the epoch, its candidate pool,
    every evaluated candidate and the top-k) is written atomically to
    ``work_dir/search_state.json`` after every round of scoring, and
    ``resume_from`` continues from it, scoring only what is missing. The
    pool of an epoch depends only on ``seed``, the epoch and the top-k, so
    a resumed search finds the same candidates and the same best subnet as
    an uninterrupted one.

    Outputs in ``work_dir``: ``best_subnet_epoch_{N}.yaml`` and
    ``best_subnet.yaml``, ``candidates.csv`` / ``candidates.json`` (every
    evaluated candidate) and ``search_progress.png`` (score vs FLOPs of all
    candidates, with the top-k front of every epoch).

    Args:
        algorithm (nn.Module): The supernet algorithm; its ``mutator`` gives
            ``sample_subnet(searching=True)``, ``mutation(subnet, prob)``,
            ``crossover(a, b)`` and ``set_subnet(subnet)``.
        dataloader (Iterable): Validation data for ``test_fn``.
        test_fn (Callable): ``test_fn(algorithm, dataloader) -> dict`` of
            metrics for the current subnet.
        work_dir (str): Where state and results go.
        logger (logging.Logger, optional): Defaults to mmengine's current.
        candidate_pool_size (int): Candidates per epoch. Defaults to 50.
        candidate_top_k (int): Parents kept. Defaults to 10.
        constraints (dict): Upper bounds on resources, e.g.
            ``{'flops': 330e6}`` (also ``params``, ``latency``).
        metrics, metric_options: Passed to ``test_fn`` as keyword arguments
            when not None (older API).
        score_key (str): The metric to maximise.
            Defaults to ``'accuracy_top-1'``.
        max_epoch (int): Epochs of evolution. Defaults to 20.
        num_mutation (int): Mutated children per epoch. Defaults to 25.
        num_crossover (int): Crossover children per epoch. Defaults to 25.
        mutate_prob (float): Per-decision mutation probability.
        resume_from (str, optional): A ``search_state.json`` to continue.
        seed (int): Seed of the search. Defaults to 0.
        resource_fn (Callable, optional): ``resource_fn(algorithm) -> dict``
            of resources of the current subnet. Defaults to
            ``algorithm.estimate_resources()`` or, failing that,
            ``{'flops': algorithm.get_subnet_flops()}``.
        export_fn (Callable, optional): ``export_fn(algorithm) -> dict``, the
            current subnet as written to YAML. Defaults to
            ``algorithm.mutator.dump_subnet()``.
        calib_dataloader (Iterable, optional): Training data for BN
            re-calibration of each candidate.
        calib_batches (int): Batches for re-calibration; 0 disables.
        max_sample_tries (int): Samples allowed to fill one pool before the
            constraints are declared infeasible. Defaults to 10000.
    """

    def __init__(self,
                 algorithm: nn.Module,
                 dataloader: Any,
                 test_fn: Callable[..., Dict[str, float]],
                 work_dir: str,
                 logger: Any = None,
                 candidate_pool_size: int = 50,
                 candidate_top_k: int = 10,
                 constraints: Optional[Dict[str, float]] = None,
                 metrics: Any = None,
                 metric_options: Any = None,
                 score_key: str = 'accuracy_top-1',
                 max_epoch: int = 20,
                 num_mutation: int = 25,
                 num_crossover: int = 25,
                 mutate_prob: float = 0.1,
                 resume_from: Optional[str] = None,
                 seed: int = 0,
                 resource_fn: Optional[Callable[[nn.Module], Dict]] = None,
                 export_fn: Optional[Callable[[nn.Module], Dict]] = None,
                 calib_dataloader: Any = None,
                 calib_batches: int = 0,
                 max_sample_tries: int = 10000) -> None:
        if candidate_top_k > candidate_pool_size:
            raise ValueError(f'candidate_top_k ({candidate_top_k}) must not '
                             'exceed candidate_pool_size '
                             f'({candidate_pool_size})')
        if num_mutation + num_crossover > candidate_pool_size:
            raise ValueError(
                f'num_mutation + num_crossover ({num_mutation} + '
                f'{num_crossover}) must not exceed candidate_pool_size '
                f'({candidate_pool_size})')
        if not 0 <= mutate_prob <= 1:
            raise ValueError(f'mutate_prob must be in [0, 1], got '
                             f'{mutate_prob}')
        super().__init__(
            algorithm, dataloader, test_fn, work_dir, logger=logger,
            metrics=metrics, metric_options=metric_options,
            score_key=score_key, resume_from=resume_from, seed=seed,
            constraints=(constraints if constraints is not None else
                         {'flops': 330e6}),
            resource_fn=resource_fn, calib_dataloader=calib_dataloader,
            calib_batches=calib_batches)
        self.mutator = algorithm.mutator
        self.candidate_pool_size = candidate_pool_size
        self.candidate_top_k = candidate_top_k
        self.max_epoch = max_epoch
        self.num_mutation = num_mutation
        self.num_crossover = num_crossover
        self.mutate_prob = mutate_prob
        self.export_fn = export_fn or (lambda _: self.mutator.dump_subnet())
        self.max_sample_tries = max_sample_tries

    def apply(self, candidate: Dict[str, Any]) -> None:
        """Set the mutator to ``candidate``.

        Args:
            candidate (dict): A subnet as the mutator gives it.
        """
        self.mutator.set_subnet(candidate)

    # ----------------------------------------------------------- the pool
    def _make_pool(self, epoch: int) -> List[Dict[str, Any]]:
        seed_everything(self.seed * 1000003 + epoch)
        pool: List[Dict[str, Any]] = []
        keys: set = set()
        tries = 0

        def offer(subnet: Dict[str, Any]) -> None:
            nonlocal tries
            tries += 1
            key = subnet_key(subnet)
            if key in keys:
                return
            if self.check_constraints(subnet)[0]:
                pool.append(encode(subnet))
                keys.add(key)

        parents = [
            decode(self.state['evaluated'][k]['subnet'])
            for k in self.state['top_k']
        ]
        if parents:
            target = len(pool) + self.num_mutation
            while len(pool) < target and tries < self.max_sample_tries:
                parent = random.choice(parents)
                offer(self.mutator.mutation(parent, self.mutate_prob))
            target = len(pool) + self.num_crossover
            while len(pool) < target and tries < 2 * self.max_sample_tries:
                a, b = random.choice(parents), random.choice(parents)
                offer(self.mutator.crossover(a, b))
        tries = 0
        while len(pool) < self.candidate_pool_size:
            if tries >= self.max_sample_tries:
                raise RuntimeError(
                    f'evolution search: only {len(pool)} distinct subnets '
                    f'meeting constraints {self.constraints} were found in '
                    f'{tries} random samples; loosen the constraints or '
                    'lower candidate_pool_size')
            offer(self.mutator.sample_subnet(searching=True))
        return pool

    def _evaluate_pool(self, epoch: int) -> None:
        evaluated = self.state['evaluated']
        todo, seen = [], set()
        for encoded in self.state['pool']:
            subnet = decode(encoded)
            key = subnet_key(subnet)
            if key not in evaluated and key not in seen:
                todo.append(subnet)
                seen.add(key)
        done = len(self.state['pool']) - len(todo)
        if done:
            self.logger.info(f'epoch {epoch}: {done} candidates of the pool '
                             'were evaluated before, skipped')

        def record(result: Dict[str, Any]) -> None:
            evaluated[result['key']] = result

        self.score_candidates(todo, record, f'epoch {epoch}', epoch=epoch)

    def update_top_k(self) -> List[str]:
        """Keep the ``candidate_top_k`` best feasible candidates evaluated
        so far (ties broken by subnet key, so the order is reproducible).

        Returns:
            list[str]: Keys of the top-k, best first.
        """
        feasible = [
            r for r in self.state['evaluated'].values() if r['feasible']
        ]
        feasible.sort(key=lambda r: (-r['score'], r['key']))
        self.state['top_k'] = [r['key']
                               for r in feasible[:self.candidate_top_k]]
        return self.state['top_k']

    # -------------------------------------------------------------- outputs
    def _write_outputs(self, epoch: int) -> Dict[str, Any]:
        best = self.state['evaluated'][self.state['top_k'][0]]
        self.apply(decode(best['subnet']))
        # In the view export_fn gives: ``{key: {chosen: v}}`` by default.
        exported = self.export_fn(self.algorithm)
        self.write_subnet(exported,
                          [f'best_subnet_epoch_{epoch}.yaml',
                           'best_subnet.yaml'])
        rows = list(self.state['evaluated'].values())
        self.write_tables(rows)
        history = self.state['history']
        self.plot_progress(
            rows, history[-1]['top_k_points'] if history else [],
            'Evolution search: candidates, Pareto front per epoch, top-k')
        return exported

    # ---------------------------------------------------------------- main
    def search(self) -> Dict[str, Any]:
        """Run (or resume) the search.

        Returns:
            dict: The best subnet as written to ``best_subnet.yaml``.
        """
        self.state = (self.load_state(self.resume_from,
                                      ('epoch', 'pool', 'evaluated', 'top_k'))
                      if self.resume_from else dict(
                          version=1, seed=self.seed, epoch=0, pool=None,
                          evaluated={}, top_k=[], history=[]))
        self.state.setdefault('history', [])
        exported: Dict[str, Any] = {}
        while self.state['epoch'] < self.max_epoch:
            epoch = self.state['epoch']
            if self.state['pool'] is None:
                holder = [self._make_pool(epoch) if self.is_main() else None]
                broadcast_object_list(holder, src=0)
                self.state['pool'] = holder[0]
                self.save_state()
            self._evaluate_pool(epoch)
            top_k = self.update_top_k()
            if not top_k:
                raise RuntimeError('evolution search: no evaluated '
                                   'candidate meets the constraints')
            x_name = next(iter(self.constraints), 'flops')
            evaluated = self.state['evaluated']
            self.state['history'].append(
                dict(
                    epoch=epoch,
                    best_score=evaluated[top_k[0]]['score'],
                    top_k_points=[[
                        evaluated[k]['resources'].get(x_name, 0.0),
                        evaluated[k]['score']
                    ] for k in top_k]))
            exported = self._write_outputs(epoch)
            self.logger.info(
                f'epoch {epoch}: best {self.score_key} '
                f'{evaluated[top_k[0]]["score"]:.4f} with '
                f'{evaluated[top_k[0]]["resources"]}; '
                f'{len(evaluated)} candidates evaluated in all')
            self.state['epoch'] = epoch + 1
            self.state['pool'] = None
            self.save_state()
        if not exported and self.state['top_k']:
            exported = self._write_outputs(self.state['epoch'] - 1)
        return exported
