"""Group Fisher criterion: the empirical Fisher information of a mask that
multiplies all the channels of a unit at once."""
from contextlib import contextmanager
from typing import Any, Callable, Dict, Iterator, Optional

import numpy as np
import torch
from torch import nn

from mmrazor.registry import TASK_UTILS
from ..channel_analysis import ChannelDependency, LayerRecord
from .base import RootScores
from .taylor import TaylorImportance, per_sample_sums


@TASK_UTILS.register_module()
class GroupFisherImportance(TaylorImportance):
    """Group Fisher importance (Liu et al., "Group Fisher Pruning for
    Practical Network Compression", ICML 2021).

    Think of a mask ``m_u = 1`` multiplying every channel of unit ``u`` in
    every layer the unit spans (both sides of a residual add, the channels
    of a conv group ...). For a sample ``n`` the gradient of its loss with
    respect to that mask is

    ``d[n, u] = sum over the producing layers of u, their channels in u and
    their positions of  activation * gradient``

    and the unit's score is the empirical Fisher information of the mask,
    ``sum_n d[n, u] ** 2`` over every sample seen (the loss increase the
    second-order expansion predicts for removing the unit, up to a factor
    1/2). Unlike :class:`TaylorImportance`, the contributions of tied layers
    are added *before* squaring, per sample: that is what makes the score
    of a coupled group the score of one mask.

    Statistics are gathered as for :class:`TaylorImportance`
    (``observe()`` around your own forward/backward passes, or
    ``accumulate(model, batch, loss_fn)``). One *pass* is a forward pass
    followed by its backward pass; a new pass starts when a producing layer
    runs more often than it did in the traced forward. The default
    ``normalize='none'`` keeps the scores comparable across groups (they
    estimate a loss change); to rank by loss change per FLOP or per byte
    of activations, as the paper does, give the pruner
    ``cost_normalization='flops'`` or ``'act'``.

    Args:
        normalize (str): See :class:`BaseImportance`. Defaults to
            ``'none'``.
        measure_at (str): Where the masks sit: see
            :class:`TaylorImportance`. Defaults to ``'sources'``.
    """

    def __init__(self,
                 normalize: str = 'none',
                 measure_at: str = 'sources') -> None:
        super().__init__(normalize=normalize, measure_at=measure_at)
        self._fisher: Optional[np.ndarray] = None
        self._seen: Optional[np.ndarray] = None
        # pass index -> batch size -> (samples, channel roots) gradients
        self._open: Dict[int, Dict[int, np.ndarray]] = {}
        self._pass = 0
        self._calls: Dict[str, int] = {}

    def reset(self) -> None:
        """Forget the gathered statistics."""
        super().reset()
        self._fisher = None
        self._seen = None
        self._open = {}
        self._calls = {}

    # ------------------------------------------------------- gathering
    def _hook(self, rec: LayerRecord) -> Callable:

        def record(module: nn.Module, inputs: Any, output: Any) -> None:
            if not isinstance(output, torch.Tensor) or \
                    not output.requires_grad:
                return
            self._count_call(rec)
            activation = output.detach().clone()
            index = self._pass

            def on_grad(grad: torch.Tensor) -> None:
                self._add_pass(rec, activation, grad, index)

            output.register_hook(on_grad)

        return record

    def _count_call(self, rec: LayerRecord) -> None:
        """Start a new pass when ``rec`` runs more often than it does in
        one forward pass; passes before it are complete then."""
        calls = self._calls.get(rec.name, 0) + 1
        if calls > max(1, rec.calls):
            self._close_passes()
            self._pass += 1
            self._calls = {}
            calls = 1
        self._calls[rec.name] = calls

    def _add_pass(self, rec: LayerRecord, activation: torch.Tensor,
                  grad: torch.Tensor, index: int) -> None:
        dep = self._require()
        per_sample = per_sample_sums(activation, grad, rec.out_dim)
        ids = np.asarray(rec.out_ids).ravel()
        if ids.size != per_sample.shape[1]:
            raise ValueError(f'GroupFisherImportance: {rec.name} has '
                             f'{per_sample.shape[1]} output channels but '
                             f'the analysis traced {ids.size}')
        traced = ids >= 0
        roots = dep.root_of[ids[traced]]
        batch = per_sample.shape[0]
        buffers = self._open.setdefault(index, {})
        if batch not in buffers:
            buffers[batch] = np.zeros((batch, len(dep.root_of)))
        buffer = buffers[batch]
        # add every channel's column to its unit's column, per sample
        np.add.at(buffer.T, roots, per_sample[:, traced].T)
        if rec.name == self._counted:
            self.num_batches += 1
        if self._seen is None:
            self._seen = np.zeros(len(dep.root_of), dtype=bool)
        self._seen[roots] = True

    def _close_passes(self) -> None:
        """Square the per-sample mask gradients of the open passes and add
        them to the scores."""
        dep = self._require()
        for buffers in self._open.values():
            for buffer in buffers.values():
                if self._fisher is None:
                    self._fisher = np.zeros(len(dep.root_of))
                self._fisher += (buffer**2).sum(0)
        self._open = {}

    def all_reduce(self) -> None:
        """Sum the Fisher information over the processes of a distributed
        run (a no-op otherwise)."""
        import torch.distributed as dist
        if not (dist.is_available() and dist.is_initialized()) or \
                dist.get_world_size() == 1:
            return
        dep = self._require()
        self._close_passes()
        size = len(dep.root_of)
        fisher = torch.from_numpy(
            self._fisher if self._fisher is not None else np.zeros(size))
        seen = torch.from_numpy(
            (self._seen if self._seen is not None else np.zeros(
                size, dtype=bool)).astype(np.float64))
        dist.all_reduce(fisher)
        dist.all_reduce(seen)
        self._fisher = fisher.numpy()
        self._seen = seen.numpy() > 0

    @contextmanager
    def observe(self) -> Iterator['GroupFisherImportance']:
        """See :meth:`TaylorImportance.observe`; the passes still open are
        closed when the block ends (their backward passes are done then).

        Yields:
            GroupFisherImportance: The criterion.
        """
        self._calls = {}
        try:
            with super().observe() as criterion:
                yield criterion
        finally:
            self._close_passes()
            self._calls = {}
            self._pass += 1

    # ---------------------------------------------------------- scores
    def _root_scores(self, dependency: ChannelDependency) -> RootScores:
        self._close_passes()
        if self._fisher is None or self._seen is None:
            raise RuntimeError('GroupFisherImportance: no gradients '
                               'gathered yet; call accumulate(model, batch) '
                               'or run a backward pass inside observe() '
                               'first')
        roots = RootScores(dependency)
        roots.values[:] = self._fisher
        roots.seen[:] = self._seen
        return roots
