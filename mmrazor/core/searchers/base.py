"""What every searcher shares: scoring a candidate (BatchNorm
re-calibration, then the score function the search loop gives), splitting
candidates across ranks, resources and constraints, the resume state, the
candidate tables and plot, and writing subnet files.

A subclass holds only its algorithm: how a candidate is put into the model
(:meth:`BaseSearcher.apply`) and which candidates to score in which order
(:meth:`BaseSearcher.search`).
"""
import csv
import io
import json
import os
import os.path as osp
import random
import zlib
from typing import (Any, Callable, Dict, Iterable, List, Optional, Sequence,
                    Tuple, Union)

import numpy as np
import torch
from mmengine.logging import MMLogger
from torch import nn

from mmrazor.structures import dump_subnet
from mmrazor.utils import atomic_write_bytes
from ..utils import all_gather_objects, get_dist_info, recalibrate_bn

#: ``test_fn(algorithm, dataloader, **kwargs) -> {metric name: value}``.
ScoreFn = Callable[..., Dict[str, Any]]


def encode(value: Any) -> Any:
    """A candidate as JSON data (tensors become tagged lists, so that a
    resumed search gets the same masks and keys back).

    Args:
        value: A candidate or a part of one.

    Returns:
        The same data with tensors as ``{'__tensor__': list, 'dtype': str}``,
        tuples as lists and keys as strings.
    """
    if isinstance(value, torch.Tensor):
        return {'__tensor__': value.tolist(), 'dtype': str(value.dtype)}
    if isinstance(value, dict):
        return {str(k): encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    return value


def decode(value: Any) -> Any:
    """The inverse of :func:`encode`.

    Args:
        value: JSON data written by :func:`encode`.

    Returns:
        The candidate, tensors restored with their dtype.
    """
    if isinstance(value, dict):
        if '__tensor__' in value:
            dtype = getattr(torch, value['dtype'].replace('torch.', ''))
            return torch.tensor(value['__tensor__'], dtype=dtype)
        return {k: decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value


def subnet_key(subnet: Dict[str, Any]) -> str:
    """A canonical string naming a candidate (equal candidates, equal keys).

    Args:
        subnet (dict): A candidate as the mutator or pruner gives it.

    Returns:
        str: Sorted-key JSON of the candidate.
    """
    return json.dumps(encode(subnet), sort_keys=True, separators=(',', ':'))


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's global generators.

    Args:
        seed (int): The seed (any int; numpy gets it modulo 2**32).
    """
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


class BaseSearcher:
    """The machinery of a search over the candidates of a trained supernet.

    **Scoring.** :meth:`score` puts a candidate into the model
    (:meth:`apply`), seeds the global generators from the candidate's key,
    re-calibrates BatchNorm on ``calib_batches`` batches of
    ``calib_dataloader`` and calls ``test_fn(algorithm, dataloader)``; the
    metric ``score_key`` is the score. Seeding per candidate makes a score
    independent of the order of evaluation, so a search interrupted and
    resumed scores every candidate as an uninterrupted one.

    **Ranks.** Launched distributed, :meth:`score_candidates` splits a list
    of candidates across the ranks: each candidate is scored by exactly one
    rank, on the whole ``dataloader`` (``test_fn`` must not gather across
    ranks), and every rank receives every result. A score does not depend
    on the number of ranks.

    **State.** ``self.state`` is plain JSON data, written atomically to
    ``work_dir/<state_file>`` by rank 0 after every round of scoring;
    ``resume_from`` names such a file to continue from.

    Args:
        algorithm (nn.Module): The supernet algorithm (unwrapped).
        dataloader (Iterable): Data ``test_fn`` scores on.
        test_fn (Callable): ``test_fn(algorithm, dataloader, **kwargs)``
            returns the metrics of the algorithm's current subnet; the
            :class:`~mmrazor.core.loops.SearchLoop` gives its ``evaluate``.
        work_dir (str | PathLike): Where the state and the results go.
        logger (logging.Logger, optional): Defaults to mmengine's current.
        metrics, metric_options: Passed to ``test_fn`` as keyword arguments
            when not None (older API).
        score_key (str): The metric to maximise.
            Defaults to ``'accuracy_top-1'``.
        resume_from (str, optional): A state file to continue from.
        seed (int): Seed of the search. Defaults to 0.
        constraints (dict, optional): Upper bounds on resources, e.g.
            ``{'flops': 330e6}``. Defaults to none.
        resource_fn (Callable, optional): ``resource_fn(algorithm) -> dict``
            of resources of the current subnet. Defaults to
            ``algorithm.estimate_resources()`` or, failing that,
            ``{'flops': algorithm.get_subnet_flops()}``.
        calib_dataloader (Iterable, optional): Training data for BatchNorm
            re-calibration of each candidate.
        calib_batches (int): Batches for re-calibration; 0 disables.
    """

    #: Name of the resume state file in ``work_dir``.
    state_file: str = 'search_state.json'

    def __init__(self,
                 algorithm: nn.Module,
                 dataloader: Any,
                 test_fn: ScoreFn,
                 work_dir: Union[str, os.PathLike],
                 logger: Any = None,
                 metrics: Any = None,
                 metric_options: Any = None,
                 score_key: str = 'accuracy_top-1',
                 resume_from: Optional[str] = None,
                 seed: int = 0,
                 constraints: Optional[Dict[str, float]] = None,
                 resource_fn: Optional[Callable[[nn.Module], Dict]] = None,
                 calib_dataloader: Any = None,
                 calib_batches: int = 0) -> None:
        if not callable(test_fn):
            raise TypeError(f'{type(self).__name__}: test_fn must be callable'
                            f', got {type(test_fn).__name__}')
        if not isinstance(calib_batches, int) or calib_batches < 0:
            raise ValueError(f'{type(self).__name__}: calib_batches must be '
                             f'an integer >= 0, got {calib_batches!r}')
        self.algorithm = algorithm
        self.dataloader = dataloader
        self.test_fn = test_fn
        self.work_dir = os.fspath(work_dir)
        self.logger = logger or MMLogger.get_current_instance()
        self.test_kwargs = {
            k: v
            for k, v in (('metrics', metrics),
                         ('metric_options', metric_options)) if v is not None
        }
        self.score_key = score_key
        self.resume_from = resume_from
        self.seed = seed
        self.constraints = dict(constraints or {})
        self.resource_fn = resource_fn or self._default_resources
        self.calib_dataloader = calib_dataloader
        self.calib_batches = calib_batches
        self.state: Dict[str, Any] = {}
        self._resource_cache: Dict[str, Dict[str, float]] = {}
        os.makedirs(self.work_dir, exist_ok=True)

    # ------------------------------------------------- what subclasses add
    def apply(self, candidate: Dict[str, Any]) -> None:
        """Put ``candidate`` into the model.

        Args:
            candidate (dict): A candidate of this searcher's kind.
        """
        raise NotImplementedError

    def search(self) -> Any:
        """Run (or resume) the search.

        Returns:
            The searcher's result.
        """
        raise NotImplementedError

    # ----------------------------------------------------------- resources
    def _default_resources(self, algorithm: nn.Module) -> Dict[str, float]:
        if hasattr(algorithm, 'estimate_resources'):
            return dict(algorithm.estimate_resources())
        if hasattr(algorithm, 'get_subnet_flops'):
            return {'flops': float(algorithm.get_subnet_flops())}
        raise AttributeError(
            f'{type(algorithm).__name__} has neither estimate_resources() '
            f'nor get_subnet_flops(); pass resource_fn to '
            f'{type(self).__name__}')

    def resources_of(self, candidate: Dict[str, Any]) -> Dict[str, float]:
        """Resources of ``candidate`` (cached by its key).

        Args:
            candidate (dict): A candidate.

        Returns:
            dict: e.g. ``{'flops': ..., 'params': ...}``.
        """
        key = subnet_key(candidate)
        if key not in self._resource_cache:
            self.apply(candidate)
            self._resource_cache[key] = {
                k: float(v)
                for k, v in self.resource_fn(self.algorithm).items()
                if isinstance(v, (int, float))
            }
        return self._resource_cache[key]

    def check_constraints(self, candidate: Dict[str, Any]
                          ) -> Tuple[bool, Dict[str, float]]:
        """Whether ``candidate`` meets every constraint.

        Args:
            candidate (dict): A candidate.

        Returns:
            tuple[bool, dict]: The verdict and the candidate's resources.

        Raises:
            KeyError: A constraint names a resource the resource function
                does not give.
        """
        resources = self.resources_of(candidate)
        for name, bound in self.constraints.items():
            if name not in resources:
                raise KeyError(
                    f'constraint {name!r} cannot be checked: the resource '
                    f'function gives only {sorted(resources)}')
            if resources[name] > bound:
                return False, resources
        return True, resources

    # ------------------------------------------------------------- scoring
    def score(self, candidate: Dict[str, Any], **extra: Any) -> Dict:
        """Score one candidate on this rank.

        Args:
            candidate (dict): A candidate.
            **extra: Added to the record (e.g. ``epoch``).

        Returns:
            dict: The record: ``key``, ``subnet`` (as JSON data),
            ``score``, ``metrics``, ``resources``, ``feasible`` and
            ``extra``.

        Raises:
            KeyError: ``score_key`` is not among the metrics.
        """
        key = subnet_key(candidate)
        feasible, resources = self.check_constraints(candidate)
        self.apply(candidate)
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
            subnet=encode(candidate),
            score=float(metrics[self.score_key]),
            metrics={
                k: float(v)
                for k, v in metrics.items() if isinstance(v, (int, float))
            },
            resources=resources,
            feasible=feasible,
            **extra)

    def score_candidates(self, candidates: Sequence[Dict[str, Any]],
                         record: Callable[[Dict], None], what: str,
                         **extra: Any) -> None:
        """Score ``candidates``, split across the ranks; every rank gets
        every record. The state is saved after each round (one candidate
        per rank), so an interruption loses at most one round.

        Args:
            candidates (Sequence[dict]): Candidates, the same on every rank.
            record (Callable): Called with each record (see :meth:`score`),
                in the order of ``candidates``; it stores the record in
                ``self.state``.
            what (str): Names the scoring in the log (e.g. ``'epoch 2'``).
            **extra: Added to every record.
        """
        rank, world = get_dist_info()
        for start in range(0, len(candidates), world):
            round_ = candidates[start:start + world]
            mine = self.score(round_[rank], **extra) \
                if rank < len(round_) else None
            for result in all_gather_objects(mine):
                if result is not None:
                    record(result)
            self.save_state()
            self.logger.info(f'{what}: evaluated {start + len(round_)}/'
                             f'{len(candidates)} candidates')

    # --------------------------------------------------------------- state
    def save_state(self) -> None:
        """Write ``self.state`` atomically to ``work_dir`` (rank 0)."""
        self.write_json(self.state_file, self.state)

    def load_state(self, path: str, required: Iterable[str]) -> Dict:
        """Read a state file written by :meth:`save_state`.

        A different ``seed`` in the file wins over the searcher's (the
        candidates of a resumed search must be the same).

        Args:
            path (str): The file.
            required (Iterable[str]): Keys the state must hold.

        Returns:
            dict: The state.

        Raises:
            FileNotFoundError: No file at ``path``.
            ValueError: The file is not JSON or lacks a required key.
        """
        if not osp.isfile(path):
            raise FileNotFoundError(
                f'resume_from={path!r}: no search state file there')
        with open(path) as f:
            try:
                state = json.load(f)
            except ValueError as e:
                raise ValueError(f'resume_from={path!r} is not a JSON search '
                                 f'state file (truncated?): {e}') from None
        missing = set(required) - set(state) if isinstance(state, dict) \
            else set(required)
        if missing:
            raise ValueError(f'{path!r} is not a search state file of '
                             f'{type(self).__name__} (missing '
                             f'{sorted(missing)})')
        if state.get('seed', self.seed) != self.seed:
            self.logger.warning(
                f'resuming a search made with seed {state["seed"]} while '
                f'seed={self.seed}: keeping the seed of the state file')
            self.seed = state['seed']
        return state

    # ------------------------------------------------------------- outputs
    @staticmethod
    def is_main() -> bool:
        """Whether this rank writes the outputs (rank 0)."""
        return get_dist_info()[0] == 0

    def write_json(self, name: str, data: Any) -> None:
        """Write ``data`` atomically as JSON to ``work_dir/name`` (rank 0).

        Args:
            name (str): File name.
            data: JSON data.
        """
        if self.is_main():
            atomic_write_bytes(
                json.dumps(data, indent=1, sort_keys=True).encode(),
                osp.join(self.work_dir, name))

    def write_subnet(self, subnet: Dict[str, Any], names: Sequence[str],
                     view: str = 'auto') -> None:
        """Write a subnet file per name in ``work_dir`` (rank 0), through
        :func:`mmrazor.structures.dump_subnet`.

        Args:
            subnet (dict): The subnet, in any shape ``dump_subnet`` takes.
            names (Sequence[str]): File names.
            view (str): The view to write. Defaults to ``'auto'``.
        """
        if self.is_main():
            for name in names:
                dump_subnet(subnet, osp.join(self.work_dir, name), view=view)

    def write_tables(self, rows: List[Dict[str, Any]]) -> None:
        """Write every record to ``candidates.json`` and ``candidates.csv``
        (rank 0), ordered by epoch, then score (best first).

        Args:
            rows (list[dict]): Records as :meth:`score` returns them, with
                an ``epoch``.
        """
        if not self.is_main():
            return
        rows = sorted(rows, key=lambda r: (r['epoch'], -r['score'],
                                           r['key']))
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
        buf = io.StringIO()
        csv.writer(buf).writerows(lines)
        atomic_write_bytes(buf.getvalue().encode(),
                           osp.join(self.work_dir, 'candidates.csv'))

    def plot_progress(self, rows: List[Dict[str, Any]],
                      top_k_points: Sequence[Sequence[float]],
                      title: str) -> None:
        """Plot score against the first resource (FLOPs when known) of
        every record, coloured by epoch, with the Pareto front of each
        epoch, the current top-k circled and the constraint as a line; to
        ``search_progress.png`` (rank 0).

        Args:
            rows (list[dict]): Records with an ``epoch``.
            top_k_points (Sequence): ``(resource, score)`` of the top-k.
            title (str): The plot's title.
        """
        if not self.is_main() or not rows:
            return
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
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
            if pts:
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
        if top_k_points:
            ax.scatter(*zip(*top_k_points), s=60, facecolors='none',
                       edgecolors='black', lw=1,
                       label=f'top-{len(top_k_points)}')
        if x_name in self.constraints:
            ax.axvline(self.constraints[x_name], color='red', ls='--',
                       lw=1, label=f'{x_name} budget')
        ax.set_xlabel(x_name)
        ax.set_ylabel(self.score_key)
        ax.set_title(title)
        ax.legend(fontsize=7, loc='lower right')
        fig.tight_layout()
        path = osp.join(self.work_dir, 'search_progress.png')
        tmp = path + '.tmp.png'
        fig.savefig(tmp, dpi=120)
        plt.close(fig)
        os.replace(tmp, path)
