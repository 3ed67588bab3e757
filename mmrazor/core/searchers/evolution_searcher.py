"""Evolution search over the subnets of a trained supernet."""
import csv
import json
import os
import os.path as osp
import random
import zlib
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import torch
from mmengine.logging import MMLogger
from torch import nn

from mmrazor.structures import dump_subnet
from mmrazor.utils import atomic_write_bytes
from .registry import SEARCHERS
from ..utils import (all_gather_objects, broadcast_object_list,
                     get_dist_info, recalibrate_bn)

STATE_FILE = 'search_state.json'


def _encode(value: Any) -> Any:
    """Candidates as JSON data of the search state (tensors become tagged
    lists, so that a resumed search gets the same masks and keys back).
    Subnet files are written by :func:`mmrazor.structures.dump_subnet`."""
    if isinstance(value, torch.Tensor):
        return {'__tensor__': value.tolist(), 'dtype': str(value.dtype)}
    if isinstance(value, dict):
        return {str(k): _encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if '__tensor__' in value:
            dtype = getattr(torch, value['dtype'].replace('torch.', ''))
            return torch.tensor(value['__tensor__'], dtype=dtype)
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def subnet_key(subnet: Dict[str, Any]) -> str:
    """A canonical string naming a subnet (equal subnets, equal keys).

    Args:
        subnet (dict): A subnet as the mutator gives it.

    Returns:
        str: Sorted-key JSON of the subnet.
    """
    return json.dumps(_encode(subnet), sort_keys=True, separators=(',', ':'))


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


@SEARCHERS.register_module()
class EvolutionSearcher:
    """Evolution search (as in single-path one-shot NAS) under resource
    constraints.

    Every epoch builds a pool of ``candidate_pool_size`` distinct subnets
    that meet ``constraints``: children of the current top-k by mutation and
    crossover (after the first epoch), then random samples. Each candidate is
    evaluated once (optionally after BatchNorm re-calibration); the top-k
    over everything evaluated so far seeds the next epoch.

    Nothing is lost on a crash: the state (the epoch, its candidate pool,
    every evaluated candidate and the top-k) is written atomically to
    ``work_dir/search_state.json`` after every evaluation round, and
    ``resume_from`` continues from it, evaluating only what is missing. The
    pool of an epoch depends only on ``seed``, the epoch and the top-k, so
    a resumed search finds the same candidates and the same best subnet as
    an uninterrupted one.

    Launched distributed, the ranks split the candidates: each candidate is
    evaluated by exactly one rank (on the whole ``dataloader``) and the
    results are shared.

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
        self.algorithm = algorithm
        self.mutator = algorithm.mutator
        self.dataloader = dataloader
        self.test_fn = test_fn
        self.work_dir = work_dir
        self.logger = logger or MMLogger.get_current_instance()
        self.candidate_pool_size = candidate_pool_size
        self.candidate_top_k = candidate_top_k
        self.constraints = dict(
            constraints if constraints is not None else {'flops': 330e6})
        self.test_kwargs = {
            k: v
            for k, v in (('metrics', metrics),
                         ('metric_options', metric_options)) if v is not None
        }
        self.score_key = score_key
        self.max_epoch = max_epoch
        self.num_mutation = num_mutation
        self.num_crossover = num_crossover
        self.mutate_prob = mutate_prob
        self.resume_from = resume_from
        self.seed = seed
        self.resource_fn = resource_fn or self._default_resources
        self.export_fn = export_fn or self._default_export
        self.calib_dataloader = calib_dataloader
        self.calib_batches = calib_batches
        self.max_sample_tries = max_sample_tries
        self._resource_cache: Dict[str, Dict[str, float]] = {}
        self.state: Dict[str, Any] = {}
        os.makedirs(work_dir, exist_ok=True)

    # ------------------------------------------------------------ resources
    def _default_resources(self, algorithm: nn.Module) -> Dict[str, float]:
        if hasattr(algorithm, 'estimate_resources'):
            return dict(algorithm.estimate_resources())
        if hasattr(algorithm, 'get_subnet_flops'):
            return {'flops': float(algorithm.get_subnet_flops())}
        raise AttributeError(
            f'{type(algorithm).__name__} has neither estimate_resources() '
            'nor get_subnet_flops(); pass resource_fn to EvolutionSearcher')

    def _default_export(self, algorithm: nn.Module) -> Dict[str, Any]:
        return self.mutator.dump_subnet()

    def resources_of(self, subnet: Dict[str, Any]) -> Dict[str, float]:
        """Resources of ``subnet`` (cached by subnet key).

        Args:
            subnet (dict): A subnet.

        Returns:
            dict: e.g. ``{'flops': ..., 'params': ...}``.
        """
        key = subnet_key(subnet)
        if key not in self._resource_cache:
            self.mutator.set_subnet(subnet)
            self._resource_cache[key] = {
                k: float(v)
                for k, v in self.resource_fn(self.algorithm).items()
                if isinstance(v, (int, float))
            }
        return self._resource_cache[key]

    def check_constraints(self, subnet: Dict[str, Any]
                          ) -> Tuple[bool, Dict[str, float]]:
        """Whether ``subnet`` meets every constraint.

        Args:
            subnet (dict): A subnet.

        Returns:
            tuple[bool, dict]: The verdict and the subnet's resources.
        """
        resources = self.resources_of(subnet)
        for name, bound in self.constraints.items():
            if name not in resources:
                raise KeyError(
                    f'constraint {name!r} cannot be checked: the resource '
                    f'function gives only {sorted(resources)}')
            if resources[name] > bound:
                return False, resources
        return True, resources

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
                pool.append(_encode(subnet))
                keys.add(key)

        parents = [
            _decode(self.state['evaluated'][k]['subnet'])
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

    # ---------------------------------------------------------- evaluation
    def _evaluate(self, encoded: Dict[str, Any], epoch: int) -> Dict:
        subnet = _decode(encoded)
        key = subnet_key(subnet)
        ok, resources = self.check_constraints(subnet)
        self.mutator.set_subnet(subnet)
        # Random data transforms of the calibration draw from the global
        # generators: seed them per candidate so a score does not depend on
        # the order of evaluation (nor on a crash and resume in between).
        seed_everything(self.seed * 1000003 + zlib.crc32(key.encode()))
        if self.calib_dataloader is not None and self.calib_batches > 0:
            recalibrate_bn(self.algorithm, self.calib_dataloader,
                           self.calib_batches)
        metrics = self.test_fn(self.algorithm, self.dataloader,
                               **self.test_kwargs)
        if self.score_key not in metrics:
            raise KeyError(f'score_key {self.score_key!r} is not among the '
                           f'metrics of test_fn: {sorted(metrics)}')
        return dict(
            key=key,
            subnet=encoded,
            score=float(metrics[self.score_key]),
            metrics={
                k: float(v)
                for k, v in metrics.items() if isinstance(v, (int, float))
            },
            resources=resources,
            feasible=ok,
            epoch=epoch)

    def _evaluate_pool(self, epoch: int) -> None:
        rank, world = get_dist_info()
        evaluated = self.state['evaluated']
        todo, seen = [], set()
        for encoded in self.state['pool']:
            key = subnet_key(_decode(encoded))
            if key not in evaluated and key not in seen:
                todo.append(encoded)
                seen.add(key)
        done = len(self.state['pool']) - len(todo)
        if done:
            self.logger.info(f'epoch {epoch}: {done} candidates of the pool '
                             'were evaluated before, skipped')
        for start in range(0, len(todo), world):
            batch = todo[start:start + world]
            mine = self._evaluate(batch[rank], epoch) \
                if rank < len(batch) else None
            for result in all_gather_objects(mine):
                if result is not None:
                    evaluated[result['key']] = result
            self._save_state()
            self.logger.info(
                f'epoch {epoch}: evaluated {min(start + world, len(todo))}/'
                f'{len(todo)} new candidates')

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

    # --------------------------------------------------------------- state
    def _fresh_state(self) -> Dict[str, Any]:
        return dict(
            version=1,
            seed=self.seed,
            epoch=0,
            pool=None,
            evaluated={},
            top_k=[],
            history=[])

    def _save_state(self) -> None:
        if get_dist_info()[0] != 0:
            return
        data = json.dumps(self.state, indent=1, sort_keys=True)
        atomic_write_bytes(data.encode(), osp.join(self.work_dir, STATE_FILE))

    def _load_state(self, path: str) -> Dict[str, Any]:
        if not osp.isfile(path):
            raise FileNotFoundError(
                f'resume_from={path!r}: no search state file there')
        with open(path) as f:
            state = json.load(f)
        missing = {'epoch', 'pool', 'evaluated', 'top_k'} - set(state)
        if missing:
            raise ValueError(f'{path!r} is not a search state file (missing '
                             f'{sorted(missing)})')
        if state.get('seed', self.seed) != self.seed:
            self.logger.warning(
                f'resuming a search made with seed {state["seed"]} while '
                f'seed={self.seed}: keeping the seed of the state file')
            self.seed = state['seed']
        return state

    # -------------------------------------------------------------- outputs
    def _write_outputs(self, epoch: int) -> Dict[str, Any]:
        best_key = self.state['top_k'][0]
        best = self.state['evaluated'][best_key]
        self.mutator.set_subnet(_decode(best['subnet']))
        exported = self.export_fn(self.algorithm)
        if get_dist_info()[0] != 0:
            return exported
        # In the view export_fn gives: ``{key: {chosen: v}}`` by default.
        for name in (f'best_subnet_epoch_{epoch}.yaml', 'best_subnet.yaml'):
            dump_subnet(exported, osp.join(self.work_dir, name), view='auto')
        self._write_tables()
        self._plot()
        return exported

    def _write_tables(self) -> None:
        rows = sorted(self.state['evaluated'].values(),
                      key=lambda r: (r['epoch'], -r['score'], r['key']))
        atomic_write_bytes(
            json.dumps(rows, indent=1).encode(),
            osp.join(self.work_dir, 'candidates.json'))
        resource_names = sorted({k for r in rows for k in r['resources']})
        lines = [['epoch', 'score', 'feasible', *resource_names, 'subnet']]
        for r in rows:
            lines.append([
                r['epoch'], r['score'], r['feasible'],
                *[r['resources'].get(n, '') for n in resource_names],
                json.dumps(r['subnet'], sort_keys=True)
            ])
        import io
        buf = io.StringIO()
        csv.writer(buf).writerows(lines)
        atomic_write_bytes(buf.getvalue().encode(),
                           osp.join(self.work_dir, 'candidates.csv'))

    def _plot(self) -> None:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
        rows = list(self.state['evaluated'].values())
        x_name = 'flops' if any('flops' in r['resources'] for r in rows) \
            else next(iter(rows[0]['resources']), None)
        if x_name is None:
            return
        fig, ax = plt.subplots(figsize=(7, 4.5))
        epochs = sorted({r['epoch'] for r in rows})
        cmap = plt.get_cmap('viridis', max(len(epochs), 2))
        for i, e in enumerate(epochs):
            pts = [(r['resources'][x_name], r['score']) for r in rows
                   if r['epoch'] == e and x_name in r['resources']]
            ax.scatter(*zip(*pts), s=12, color=cmap(i), alpha=0.7,
                       label=f'epoch {e}')
        for i, e in enumerate(epochs):
            # Pareto front of everything evaluated up to epoch e: the best
            # score reachable at each resource level.
            seen = sorted((r['resources'][x_name], -r['score']) for r in rows
                          if r['epoch'] <= e and r['feasible']
                          and x_name in r['resources'])
            front, best = [], -float('inf')
            for x, neg in seen:
                if -neg > best:
                    best = -neg
                    front.append((x, best))
            if front:
                ax.step(*zip(*front), where='post', lw=1, color=cmap(i),
                        alpha=0.8)
        last = self.state['history'][-1] if self.state['history'] else None
        if last and last['top_k_points']:
            ax.scatter(*zip(*last['top_k_points']), s=60, facecolors='none',
                       edgecolors='black', lw=1,
                       label=f'top-{len(last["top_k_points"])}')
        if x_name in self.constraints:
            ax.axvline(self.constraints[x_name], color='red', ls='--',
                       lw=1, label=f'{x_name} budget')
        ax.set_xlabel(x_name)
        ax.set_ylabel(self.score_key)
        ax.set_title('Evolution search: candidates, Pareto front per epoch, '
                     'top-k')
        ax.legend(fontsize=7, loc='lower right')
        fig.tight_layout()
        path = osp.join(self.work_dir, 'search_progress.png')
        tmp = path + '.tmp.png'
        fig.savefig(tmp, dpi=120)
        plt.close(fig)
        os.replace(tmp, path)

    # ---------------------------------------------------------------- main
    def search(self) -> Dict[str, Any]:
        """Run (or resume) the search.

        Returns:
            dict: The best subnet as written to ``best_subnet.yaml``.
        """
        self.state = (self._load_state(self.resume_from)
                      if self.resume_from else self._fresh_state())
        exported: Dict[str, Any] = {}
        while self.state['epoch'] < self.max_epoch:
            epoch = self.state['epoch']
            if self.state['pool'] is None:
                holder = [self._make_pool(epoch)
                          if get_dist_info()[0] == 0 else None]
                broadcast_object_list(holder, src=0)
                self.state['pool'] = holder[0]
                self._save_state()
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
            self._save_state()
        if not exported and self.state['top_k']:
            exported = self._write_outputs(self.state['epoch'] - 1)
        return exported
