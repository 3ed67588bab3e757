"""Weight magnitude criteria: L1 and L2 norms of the weights that follow a
unit's channels."""
from typing import Callable, Optional, Set

import numpy as np
import torch
from torch import nn

from mmrazor.registry import TASK_UTILS
from ..channel_analysis import ChannelDependency
from .base import (LAYER_REDUCTIONS, BaseImportance, RootScores, SliceMean,
                   sum_per_channel)


class WeightMagnitudeImportance(BaseImportance):
    """The norm of every weight that a unit's channels own.

    For every layer of the analysis, every *parameter* its handler names in
    ``tensor_dims`` (weights, and biases as ``bias`` says; statistics
    buffers such as BN running means are not weights and are left out) is
    cut along its input channel dim and along its output channel dim; each
    slice is reduced by :meth:`_elementwise` and added to the unit of that
    channel. A conv's weight therefore counts for the unit of its output
    channel (the producing side) and, slice by slice along dim 1, for the
    units of its input channels (the consuming side); a unit of several
    channels (a conv group, the ``H*W`` features of a flattened channel)
    sums them.
    Parameters used directly by ops (e.g. a layer scale) count the same
    way. Subclasses choose the element-wise term and the final transform.

    Args:
        normalize (str): See :class:`BaseImportance`.
        layer_reduction (str): How the slices of a unit combine:
            ``'sum'`` (default) adds every element of every slice and
            transforms the total once (one norm of all the unit's
            weights); ``'mean'`` takes the norm of each slice (each layer
            side, each direct parameter) on its own and averages them, so
            that every layer of the group counts alike however large its
            fan-in (wide consumers no longer outweigh the producing conv);
            ``'normalized_mean'`` divides each slice's norms by their mean
            over the channels the slice covers before averaging, so that
            every layer side also weighs alike whatever the scale of its
            weights (a depthwise conv's nine weights per channel, a BN's
            scales): the unit's score is the mean of its relative sizes
            in the group's layers.
        bias (bool, optional): Count the parameters named ``bias`` (of
            convs, linear and norm layers: a BN's shift, not only its
            scale). Defaults to None: counted with ``'sum'`` (where a bias
            entry weighs as one more weight element), left out with
            ``'mean'`` and ``'normalized_mean'`` (where it would be a
            slice of its own and count as
            much as a whole layer; a large shift may even mean a dead
            channel). Without them, ``'mean'`` is Torch-Pruning's group
            magnitude (``MagnitudeImportance(bias=False)``, its default),
            except that Torch-Pruning 1.6 also leaves out the weights of
            depthwise convs (its check for conv layers misses them), which
            count here.
    """

    def __init__(self,
                 normalize: str = 'mean',
                 layer_reduction: str = 'sum',
                 bias: Optional[bool] = None) -> None:
        super().__init__(normalize=normalize)
        self._check_choice('layer_reduction', layer_reduction,
                           LAYER_REDUCTIONS)
        if bias is not None and not isinstance(bias, bool):
            raise ValueError(f'{type(self).__name__}: bias={bias!r} is not '
                             'None, True or False')
        self.layer_reduction = layer_reduction
        self.bias = layer_reduction == 'sum' if bias is None else bias

    def _elementwise(self, weight: torch.Tensor) -> torch.Tensor:
        """The per-element contribution, e.g. ``|w|``."""
        raise NotImplementedError(f'{type(self).__name__}._elementwise')

    def _finish(self, roots: RootScores) -> RootScores:
        """Transform the per-unit sums (e.g. a square root)."""
        return roots

    def _root_scores(self, dependency: ChannelDependency) -> RootScores:
        if self.layer_reduction == 'sum':
            return self._finish(
                self._gather(dependency, RootScores(dependency)))
        return self._mean_of_slices(
            dependency, relative=self.layer_reduction == 'normalized_mean')

    def _mean_of_slices(self, dependency: ChannelDependency,
                        relative: bool) -> RootScores:
        """Every slice normed on its own (:meth:`_finish` per slice), with
        ``relative`` divided by its mean over the units it covers, then
        averaged per unit."""
        average = SliceMean(dependency, relative)
        self._gather(dependency, None,
                     lambda layer: average.add(self._finish(layer)))
        return average.result()

    def _gather(self,
                dependency: ChannelDependency,
                roots: Optional[RootScores],
                each_slice: Optional[Callable[[RootScores], None]] = None
                ) -> RootScores:
        """Add the element-wise terms of every slice to ``roots``, or hand
        every slice's own sums to ``each_slice``."""

        def target() -> RootScores:
            return roots if roots is not None else RootScores(dependency)

        def done(slice_roots: RootScores) -> None:
            if each_slice is not None:
                each_slice(slice_roots)

        seen: Set[int] = set()
        with torch.no_grad():
            for rec in dependency.layers.values():
                module = rec.module
                for attr, (din, dout) in rec.handler.tensor_dims(
                        module).items():
                    if attr == 'bias' and not self.bias:
                        continue
                    weight = getattr(module, attr, None)
                    if not isinstance(weight, nn.Parameter) or \
                            id(weight) in seen:
                        continue
                    seen.add(id(weight))
                    terms = self._elementwise(weight)
                    for dim, ids in ((din, rec.in_ids), (dout, rec.out_ids)):
                        if dim is None:
                            continue
                        into = target()
                        self._add_slices(into, terms, dim, ids,
                                         f'{rec.name}.{attr}')
                        done(into)
            for prec in dependency.params.values():
                weight = getattr(prec.owner, prec.attr, None)
                if not isinstance(weight, nn.Parameter) or \
                        id(weight) in seen:
                    continue
                seen.add(id(weight))
                terms = self._elementwise(weight).double().cpu().numpy()
                # ids: same rank, size 1 along the dims without channels
                into = target()
                into.add(np.broadcast_to(prec.ids, terms.shape), terms)
                done(into)
        return roots if roots is not None else RootScores(dependency)

    @staticmethod
    def _add_slices(roots: RootScores, terms: torch.Tensor, dim: int,
                    ids, where: str) -> None:
        sums = sum_per_channel(terms, dim)
        if len(sums) != len(ids):
            raise ValueError(
                f'{where}: {len(sums)} slices along dim {dim} but the '
                f'layer side has {len(ids)} channels (check the layer '
                'handler\'s tensor_dims)')
        roots.add(ids, sums)


@TASK_UTILS.register_module()
class L1Importance(WeightMagnitudeImportance):
    """L1 weight magnitude: a unit's score is the sum of ``|w|`` over every
    weight slice that follows its channels, in every layer of its group
    (see :class:`WeightMagnitudeImportance`).

    Args:
        normalize (str): See :class:`BaseImportance`. Defaults to
            ``'mean'``.
        layer_reduction (str): See :class:`WeightMagnitudeImportance`.
        bias (bool, optional): See :class:`WeightMagnitudeImportance`.
    """

    def _elementwise(self, weight: torch.Tensor) -> torch.Tensor:
        return weight.detach().abs()


@TASK_UTILS.register_module()
class L2Importance(WeightMagnitudeImportance):
    """L2 weight magnitude: a unit's score is the L2 norm of all the weight
    entries that follow its channels, taken together:
    ``sqrt(sum of w**2)`` over every slice of every layer of its group (see
    :class:`WeightMagnitudeImportance`).

    Args:
        normalize (str): See :class:`BaseImportance`. Defaults to
            ``'mean'``.
        layer_reduction (str): See :class:`WeightMagnitudeImportance`.
        squared (bool): The squared norm (``sum of w**2``, no square
            root). With ``layer_reduction='mean'`` each slice's squared
            norm is averaged, which weighs the strong channels of a layer
            more than the norm does; with the biases left out (the default
            there) this is Torch-Pruning's default ``MagnitudeImportance``
            (but for depthwise convs, see
            :class:`WeightMagnitudeImportance`). Defaults to False.
        bias (bool, optional): See :class:`WeightMagnitudeImportance`.
    """

    def __init__(self,
                 normalize: str = 'mean',
                 layer_reduction: str = 'sum',
                 squared: bool = False,
                 bias: Optional[bool] = None) -> None:
        super().__init__(
            normalize=normalize, layer_reduction=layer_reduction, bias=bias)
        self.squared = bool(squared)

    def _elementwise(self, weight: torch.Tensor) -> torch.Tensor:
        return weight.detach().double().pow(2)

    def _finish(self, roots: RootScores) -> RootScores:
        if not self.squared:
            roots.values = roots.values**0.5
        return roots
