"""First-order Taylor criterion: how much the loss would change if a
channel's activation were removed, |activation x gradient|."""
from contextlib import contextmanager
from typing import Any, Callable, Dict, Iterator, List, Optional

import numpy as np
import torch
from torch import nn

from mmrazor.registry import TASK_UTILS
from ..channel_analysis import ChannelDependency, LayerRecord
from .base import (LAYER_REDUCTIONS, BaseImportance, RootScores, SliceMean,
                   sum_per_channel)

LossFn = Callable[[Any], torch.Tensor]

#: Where :class:`TaylorImportance` reads activations and gradients.
MEASURE_AT = ('sources', 'norm_outputs')
#: Layer kinds (handlers' ``kind``) that normalise channels.
NORM_KINDS = ('norm', 'groupnorm', 'layernorm')


def default_loss(output: Any) -> torch.Tensor:
    """The loss of a model output: a scalar tensor itself, or the sum of the
    entries of a dict whose key contains ``'loss'`` (an mmengine model's
    ``forward(..., mode='loss')``).

    Args:
        output (Any): What the model returned.

    Returns:
        torch.Tensor: A scalar.

    Raises:
        TypeError: Anything else (pass ``loss_fn``).
    """
    if isinstance(output, torch.Tensor) and output.numel() == 1:
        return output.reshape(())
    if isinstance(output, dict):
        losses = [v for k, v in output.items()
                  if 'loss' in k and isinstance(v, torch.Tensor)]
        if losses:
            return sum(v.sum() for v in losses)
    shape = tuple(output.shape) if isinstance(output, torch.Tensor) else \
        type(output).__name__
    raise TypeError(f'TaylorImportance: cannot read a loss from a model '
                    f'output of {shape}; pass loss_fn(output) -> scalar')


def per_sample_sums(activation: torch.Tensor, grad: torch.Tensor,
                    out_dim: int) -> np.ndarray:
    """``sum over positions of activation * gradient`` per sample and
    channel: the gradient of each sample's loss with respect to a mask on
    each output channel.

    Args:
        activation (torch.Tensor): A layer's output.
        grad (torch.Tensor): The loss gradient with respect to it.
        out_dim (int): Its channel dim.

    Returns:
        np.ndarray: float64 of shape ``(samples, channels)``; a tensor
        without a sample dim (channels first) counts as one sample.
    """
    product = activation.double() * grad.detach().double()
    channel_dim = out_dim % product.dim()
    if product.dim() >= 2 and channel_dim != 0:
        moved = product.movedim(channel_dim, -1)
        moved = moved.reshape(product.shape[0], -1,
                              product.shape[channel_dim])
        return moved.sum(1).cpu().numpy()
    return sum_per_channel(product, channel_dim)[None]


@TASK_UTILS.register_module()
class TaylorImportance(BaseImportance):
    """First-order Taylor importance (Molchanov et al., ICLR 2017).

    For every producing layer of a group (its ``sources``: the convs and
    linears that create the group's channels; or, with ``measure_at``, the
    norm layers after them) the output activation ``a`` and its gradient
    ``g`` are read in the backward pass. Per sample and
    channel the score is ``|sum over positions of a * g|`` (positions:
    ``H*W`` of a conv, tokens of a linear), summed over the samples of
    every batch seen; a unit adds the scores of its channels and of every
    layer read that is tied to it (e.g. both branches of a residual add).

    Statistics are gathered while hooks are installed:

    * ``with criterion.observe(): ...`` installs them for any number of
      forward and backward passes of your own (e.g. the training loop);
    * ``criterion.accumulate(model, batch, loss_fn)`` runs one forward pass
      and a backward pass of the loss (without touching the parameters'
      ``.grad``) inside :meth:`observe`.

    :meth:`reset` (and :meth:`prepare`) forget them; ``num_batches`` counts
    the backward passes seen (through the first producing layer). Scores
    are sums, not means: with ``normalize`` (see :class:`BaseImportance`)
    the number of batches cancels out.

    Args:
        normalize (str): See :class:`BaseImportance`. Defaults to
            ``'mean'``.
        layer_reduction (str): How the producing layers of a unit
            combine: ``'sum'`` (default) adds their scores; ``'mean'``
            averages them; ``'normalized_mean'`` divides each layer's
            scores by their mean over the units it produces before
            averaging, so that every producing layer votes with the same
            weight whatever the size of its activations and gradients
            (e.g. the blocks of a residual stage, or a MobileNetV2
            expand conv and the depthwise conv after it).
        measure_at (str): Whose outputs are read: ``'sources'`` (default)
            the producing convs and linears (before their norms);
            ``'norm_outputs'`` the norm layers on the group's channels
            (BatchNorm, GroupNorm, LayerNorm ...) and the producing layers
            whose channels no norm layer carries. Removing a channel
            removes what its norm layer outputs, shift included: ``a * g``
            after the norm is the first-order loss change of that, while
            before it (in eval mode) the product lacks ``shift * g``.
            Measured (``benchmarks/pruning_vs_torch_pruning.py``, top-1
            after fine-tuning): better on MobileNetV2 (8x fewer FLOPs, 8
            seeds: 73.3 against 70.8), 0.3-0.8 points worse on ResNet-18
            at 2x-5x; hence not the default.
    """

    def __init__(self,
                 normalize: str = 'mean',
                 layer_reduction: str = 'sum',
                 measure_at: str = 'sources') -> None:
        super().__init__(normalize=normalize)
        self._check_choice('layer_reduction', layer_reduction,
                           LAYER_REDUCTIONS)
        self._check_choice('measure_at', measure_at, MEASURE_AT)
        self.layer_reduction = layer_reduction
        self.measure_at = measure_at
        self._sums: Dict[str, np.ndarray] = {}
        self.num_batches = 0
        self._observing = False
        self._counted: Optional[str] = None

    def reset(self) -> None:
        """Forget the gathered statistics."""
        self._sums = {}
        self.num_batches = 0

    # ------------------------------------------------------- gathering
    def _producers(self, dependency: ChannelDependency
                   ) -> List[LayerRecord]:
        names: List[str] = []
        for group in dependency.prunable_groups.values():
            for src in group.sources:
                if src in dependency.layers and src not in names:
                    names.append(src)
        sources = [dependency.layers[n] for n in names]
        if self.measure_at == 'sources':
            return sources
        prunable = np.zeros(len(dependency.root_of), dtype=bool)
        for group in dependency.prunable_groups.values():
            prunable[np.asarray(group.units, dtype=np.int64)] = True

        def traced(rec: LayerRecord) -> np.ndarray:
            ids = np.asarray(rec.out_ids).ravel()
            return ids[ids >= 0]

        norms = [
            rec for rec in dependency.layers.values()
            if rec.kind in NORM_KINDS
            and prunable[dependency.root_of[traced(rec)]].any()
        ]
        normed = np.zeros(len(dependency.root_of), dtype=bool)
        for rec in norms:
            normed[traced(rec)] = True
        return norms + [rec for rec in sources
                        if not normed[traced(rec)].all()]

    def _hook(self, rec: LayerRecord) -> Callable:

        def record(module: nn.Module, inputs: Any, output: Any) -> None:
            if not isinstance(output, torch.Tensor) or \
                    not output.requires_grad:
                return
            # a copy: a later in-place op must not change what is scored
            activation = output.detach().clone()

            def on_grad(grad: torch.Tensor) -> None:
                self._add(rec, activation, grad)

            output.register_hook(on_grad)

        return record

    def _add(self, rec: LayerRecord, activation: torch.Tensor,
             grad: torch.Tensor) -> None:
        sums = np.abs(per_sample_sums(activation, grad, rec.out_dim)).sum(0)
        if rec.name == self._counted:
            self.num_batches += 1
        old = self._sums.get(rec.name)
        self._sums[rec.name] = sums if old is None else old + sums

    @contextmanager
    def observe(self) -> Iterator['TaylorImportance']:
        """Install the hooks on the producing layers for the duration of the
        block; every backward pass through them adds to the statistics.

        Yields:
            TaylorImportance: The criterion.
        """
        dep = self._require()
        if self._observing:
            raise RuntimeError('TaylorImportance: observe() is already '
                               'active')
        producers = self._producers(dep)
        self._counted = producers[0].name if producers else None
        handles = [
            rec.module.register_forward_hook(self._hook(rec))
            for rec in producers
        ]
        self._observing = True
        try:
            yield self
        finally:
            for handle in handles:
                handle.remove()
            self._observing = False

    def accumulate(self,
                   model: nn.Module,
                   batch: Any,
                   loss_fn: Optional[LossFn] = None,
                   forward_fn: Optional[Callable[[nn.Module, Any],
                                                 Any]] = None) -> float:
        """One forward and backward pass of ``batch`` whose gradients are
        added to the statistics (the parameters' ``.grad`` stays as it
        was; the model's train/eval mode is left as it is).

        Args:
            model (nn.Module): The analysed model.
            batch (Any): Its input.
            loss_fn (Callable, optional): ``loss_fn(output) -> scalar``;
                defaults to :func:`default_loss`.
            forward_fn (Callable, optional): ``forward_fn(model, batch)``;
                defaults to ``model(batch)``.

        Returns:
            float: The loss.
        """
        params = [p for p in model.parameters() if p.requires_grad]
        if not params:
            raise RuntimeError('TaylorImportance: the model has no '
                               'parameter that requires grad, so no '
                               'gradient reaches its layers')
        with torch.enable_grad(), self.observe():
            output = forward_fn(model, batch) if forward_fn else model(batch)
            loss = (loss_fn or default_loss)(output)
            torch.autograd.grad(loss, params, allow_unused=True)
        return float(loss.detach())

    def all_reduce(self) -> None:
        """Sum the statistics over the processes of a distributed run (a
        no-op otherwise), so that every process prunes the same units."""
        import torch.distributed as dist
        if not (dist.is_available() and dist.is_initialized()) or \
                dist.get_world_size() == 1:
            return
        dep = self._require()
        for rec in self._producers(dep):
            width = np.asarray(rec.out_ids).size
            local = self._sums.get(rec.name, np.zeros(width))
            tensor = torch.from_numpy(np.ascontiguousarray(local, float))
            dist.all_reduce(tensor)
            if tensor.any() or rec.name in self._sums:
                self._sums[rec.name] = tensor.numpy()

    # ---------------------------------------------------------- scores
    def _root_scores(self, dependency: ChannelDependency) -> RootScores:
        if not self._sums:
            raise RuntimeError('TaylorImportance: no gradients gathered '
                               'yet; call accumulate(model, batch) or run '
                               'a backward pass inside observe() first')
        if self.layer_reduction == 'sum':
            roots = RootScores(dependency)
            for name, sums in self._sums.items():
                roots.add(dependency.layers[name].out_ids, sums)
            return roots
        average = SliceMean(
            dependency, relative=self.layer_reduction == 'normalized_mean')
        for name, sums in self._sums.items():
            layer = RootScores(dependency)
            layer.add(dependency.layers[name].out_ids, sums)
            average.add(layer)
        return average.result()
