"""DARTS: Differentiable Architecture Search (Liu et al., ICLR 2019)."""
import contextlib
import math
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import torch
from mmengine.optim import OptimWrapper, OptimWrapperDict
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from mmrazor.registry import MODELS
from ..base import (BaseAlgorithm, fill_mutator_placeholders,
                    older_nas_args)

SubnetLike = Union[str, Path, Dict[str, Any]]
Batch = Union[dict, tuple, list]

#: Names of the two optimizers of the search, as in the configs.
WEIGHT_OPTIM_KEY = 'architecture'
ARCH_OPTIM_KEY = 'mutator'


@contextlib.contextmanager
def _isolated_grads(params: Sequence[nn.Parameter]) -> Iterator[None]:
    """Run the body with the ``.grad`` of ``params`` set aside.

    On entry the gradients of ``params`` are removed; on exit whatever the
    body accumulated into them is dropped and the previous gradients are
    put back. A backward pass inside the body therefore leaves ``params``
    exactly as they were (e.g. the architecture parameters during the
    weight step), while gradient accumulation over several steps still
    works.

    Args:
        params (Sequence[nn.Parameter]): The parameters to protect.
    """
    saved = [p.grad for p in params]
    for p in params:
        p.grad = None
    try:
        yield
    finally:
        for p, grad in zip(params, saved):
            p.grad = grad


def _grads_or_zeros(params: Sequence[nn.Parameter]) -> List[torch.Tensor]:
    """Copies of the gradients of ``params`` (zeros where there is none)."""
    return [
        torch.zeros_like(p) if p.grad is None else p.grad.detach().clone()
        for p in params
    ]


def _clear_grads(params: Sequence[nn.Parameter]) -> None:
    for p in params:
        p.grad = None


@MODELS.register_module()
class Darts(BaseAlgorithm):
    """DARTS: differentiable architecture search.

    While searching (no ``fix_subnet``), every mixed op of the supernet is
    the softmax-weighted sum of its candidates; the weights are the
    architecture parameters that ``mutator`` (a :class:`DartsMutator`)
    owns. Each training step receives two batches, ``[train_batch,
    val_batch]`` (from :class:`MultiLoaderEpochBasedRunner` /
    :class:`MultiLoaderIterBasedRunner`), and two optimizers in an
    ``OptimWrapperDict``: ``architecture`` (the supernet weights) and
    ``mutator`` (the architecture parameters). It then alternates, as in
    Algorithm 1 of the paper:

    1. an architecture step on the **validation** batch only:

       * ``unroll=False`` (first order): the gradient of the validation
         loss w.r.t. the architecture parameters ``alpha``;
       * ``unroll=True`` (second-order approximation): the gradient of
         ``L_val(w', alpha)`` with ``w' = w - xi * grad_w L_train(w,
         alpha)`` one virtual step of the weight optimizer (its learning
         rate ``xi``, momentum and weight decay, as in the paper's code),
         that is ``grad_alpha L_val(w', alpha) - xi * H v`` where ``v =
         grad_w' L_val(w', alpha)`` and the Hessian-vector product ``H v =
         grad^2_{alpha,w} L_train(w, alpha) v`` is the central finite
         difference ``(grad_alpha L_train(w+, alpha) - grad_alpha
         L_train(w-, alpha)) / (2 eps)`` with ``w+- = w +- eps v`` and
         ``eps = fd_radius / ||v||``. The train batch enters only through
         ``w'`` and the Hessian term, which is the paper's formula;

    2. a weight step on the **train** batch only.

    The architecture parameters receive no gradient from the train batch
    and the weights none from the validation batch: each backward pass sets
    the other group's gradients aside and drops what it added to them, and
    each optimizer holds only its own group (weights without gradient are
    skipped by the optimizer, so momentum and weight decay do not move
    them either).

    Every forward pass goes through :meth:`_run_forward` (mmengine's
    entry point for ``forward(**data, mode=...)``) and is followed by
    exactly one backward pass, so a model wrapper can route the passes
    through its own ``forward``.

    With ``fix_subnet`` (the genotype a search wrote, a dict or a YAML
    path) every mutable is fixed to its choice and the algorithm trains
    that subnet as a plain model (retraining): one batch and one optimizer
    per step, mmengine's default ``train_step``.

    Args:
        architecture (dict | nn.Module): The supernet, e.g. an mmpretrain
            ``ImageClassifier`` with a ``DartsBackbone`` (or an
            ``MMClsArchitecture`` wrapping one).
        mutator (dict | nn.Module): A :class:`DifferentiableMutator` owning
            the architecture parameters. Defaults to
            ``dict(type='DartsMutator')``. Unused with ``fix_subnet``.
        unroll (bool): Use the second-order approximation for the
            architecture step. Defaults to False (first order).
        norm_training (bool): Keep normalization layers in training mode
            (batch statistics, running statistics updated) even in
            evaluation: the running statistics of a supernet do not match
            any discrete architecture. Defaults to False.
        fix_subnet (str | Path | dict, optional): The subnet to retrain,
            ``{key: {'chosen': choice}}`` or a YAML file of it (as written
            by ``SearchSubnetHook``).
        retraining (bool): Older spelling of "train the fixed subnet";
            requires ``fix_subnet``. Defaults to False.
        fd_radius (float): ``eps * ||v||`` of the finite difference of the
            unrolled step (0.01 in the paper). Defaults to 0.01.
        data_preprocessor (dict | nn.Module, optional): Defaults to the
            architecture's.
        init_cfg (dict, optional): Initialisation config.
        mutable_cfg (str | dict, optional): Older name of ``fix_subnet``
            (read with ``retraining=True``).
        pruner: Older argument; only None is accepted.
        distiller: Older argument; only None is accepted.
    """

    def __init__(self,
                 architecture: Union[dict, nn.Module],
                 mutator: Union[dict, nn.Module] = dict(type='DartsMutator'),
                 unroll: bool = False,
                 norm_training: bool = False,
                 fix_subnet: Optional[SubnetLike] = None,
                 retraining: bool = False,
                 fd_radius: float = 0.01,
                 data_preprocessor: Optional[Union[dict, nn.Module]] = None,
                 init_cfg: Optional[dict] = None,
                 mutable_cfg: Optional[SubnetLike] = None,
                 pruner: Optional[dict] = None,
                 distiller: Optional[dict] = None) -> None:
        super().__init__(architecture, data_preprocessor, init_cfg)
        fix_subnet = older_nas_args(
            type(self).__name__, fix_subnet, mutable_cfg, retraining, pruner,
            distiller)
        if not fd_radius > 0:
            raise ValueError(f'Darts fd_radius must be > 0, got {fd_radius}')
        self.unroll = unroll
        self.norm_training = norm_training
        self.fd_radius = float(fd_radius)
        self._prefix = self.subnet_prefix

        if fix_subnet is not None:
            from mmrazor.structures import load_fix_subnet
            fill_mutator_placeholders(self.architecture, mutator)
            load_fix_subnet(
                self.architecture, fix_subnet, prefix=self._prefix)
            self.mutator = None
            return

        from mmrazor.models.mutators import DifferentiableMutator
        if isinstance(mutator, dict):
            mutator = MODELS.build(mutator)
        if not isinstance(mutator, DifferentiableMutator):
            raise TypeError('Darts: `mutator` must be a DifferentiableMutator'
                            ' (e.g. dict(type=\'DartsMutator\')), got '
                            f'{type(mutator).__name__}')
        mutator.prepare_from_supernet(self.architecture)
        if len(mutator.arch_params) == 0:
            raise ValueError(
                'Darts: the architecture has no differentiable mutable with '
                'an architecture parameter (e.g. DiffMutableOP); nothing to '
                'search')
        self.mutator = mutator

    # ----------------------------------------------------------- queries
    @property
    def is_supernet(self) -> bool:
        """True while searching (no subnet fixed)."""
        return self.mutator is not None

    def search_subnet(self) -> Dict[str, Dict[str, Any]]:
        """The genotype the architecture parameters currently select.

        Returns:
            dict: ``{key: {'chosen': choice}}`` (keys are the mutables'
            aliases, or module paths inside the wrapped model), ready for
            ``dump_subnet_yaml`` and ``fix_subnet``. After retraining
            starts, the fixed subnet.
        """
        if not self.is_supernet:
            from mmrazor.structures import export_fix_subnet
            subnet, _ = export_fix_subnet(
                self.architecture, prefix=self._prefix)
            return dict(subnet)
        groups = self.mutator.search_groups
        subnet = {}
        for key, choice in self.mutator.search_subnet().items():
            if groups[key][0].alias is None and self._prefix and \
                    key.startswith(self._prefix):
                key = key[len(self._prefix):]
            subnet[key] = {'chosen': choice}
        return subnet

    def arch_parameters(self) -> List[nn.Parameter]:
        """The architecture parameters (empty for a fixed subnet)."""
        if not self.is_supernet:
            return []
        return list(self.mutator.parameters())

    def weight_parameters(self) -> List[nn.Parameter]:
        """Every other parameter (the supernet weights)."""
        arch = {id(p) for p in self.arch_parameters()}
        return [p for p in self.parameters() if id(p) not in arch]

    # ------------------------------------------------------------ train
    def train(self, mode: bool = True) -> 'Darts':
        """Set the training mode; with ``norm_training`` normalization
        layers stay in training mode."""
        super().train(mode)
        if self.norm_training and not mode:
            for module in self.architecture.modules():
                if isinstance(module, _BatchNorm):
                    module.train()
        return self

    def train_step(self, data: Union[Batch, Sequence[Batch]],
                   optim_wrapper: OptimWrapper) -> Dict[str, torch.Tensor]:
        """One search step (architecture, then weights) or, for a fixed
        subnet, one ordinary training step.

        Args:
            data (list | dict): While searching, ``[train_batch,
                val_batch]`` (or a dict with keys ``train`` and ``val``);
                for a fixed subnet, one batch.
            optim_wrapper (OptimWrapperDict | OptimWrapper): While
                searching, an ``OptimWrapperDict`` with the keys
                ``architecture`` and ``mutator``; for a fixed subnet, the
                optimizer of the weights.

        Returns:
            dict[str, Tensor]: Log variables: the train-batch losses under
            their own names and the validation-batch losses of the
            architecture step prefixed ``arch.``.
        """
        if not self.is_supernet:
            if isinstance(optim_wrapper, OptimWrapperDict):
                optim_wrapper = optim_wrapper[WEIGHT_OPTIM_KEY] \
                    if WEIGHT_OPTIM_KEY in optim_wrapper.optim_wrappers \
                    else self._only_wrapper(optim_wrapper)
            return super().train_step(data, optim_wrapper)

        train_batch, val_batch = self._split_batches(data)
        arch_wrapper, weight_wrapper = self._split_wrappers(optim_wrapper)
        train_data = self.data_preprocessor(train_batch, True)
        val_data = self.data_preprocessor(val_batch, True)

        log_vars: Dict[str, torch.Tensor] = {}
        if self.unroll:
            arch_log = self._unrolled_arch_step(train_data, val_data,
                                                arch_wrapper, weight_wrapper)
        else:
            arch_log = self._first_order_arch_step(val_data, arch_wrapper)
        log_vars.update({f'arch.{k}': v for k, v in arch_log.items()})
        log_vars.update(self._weight_step(train_data, weight_wrapper))
        return log_vars

    # ----------------------------------------------------- step helpers
    @staticmethod
    def _only_wrapper(wrappers: OptimWrapperDict) -> OptimWrapper:
        keys = list(wrappers.optim_wrappers)
        if len(keys) != 1:
            raise KeyError(f'Darts (fixed subnet): expected one optimizer or '
                           f"one named '{WEIGHT_OPTIM_KEY}', got {keys}")
        return wrappers[keys[0]]

    @staticmethod
    def _split_batches(data: Any) -> Tuple[Batch, Batch]:
        """``(train_batch, val_batch)`` from what the loop passes."""
        if isinstance(data, dict) and {'train', 'val'} <= set(data):
            return data['train'], data['val']
        if isinstance(data, (list, tuple)) and len(data) == 2 and all(
                isinstance(b, (dict, list, tuple)) for b in data):
            return data[0], data[1]
        if isinstance(data, dict):
            desc = f'a dict with keys {sorted(data)}'
        elif isinstance(data, (list, tuple)):
            desc = f'a {type(data).__name__} of length {len(data)}'
        else:
            desc = f'a {type(data).__name__}'
        raise TypeError(
            'Darts supernet training needs two batches per step, '
            '[train_batch, val_batch] (train_dataloader = [train_loader, '
            'val_loader] with runner_type=\'MultiLoaderEpochBasedRunner\' or '
            f'\'MultiLoaderIterBasedRunner\'), got {desc}')

    @staticmethod
    def _split_wrappers(optim_wrapper: Any
                        ) -> Tuple[OptimWrapper, OptimWrapper]:
        """``(arch_wrapper, weight_wrapper)`` from an OptimWrapperDict."""
        keys = list(optim_wrapper.optim_wrappers) if isinstance(
            optim_wrapper, OptimWrapperDict) else None
        if keys is None or WEIGHT_OPTIM_KEY not in keys or \
                ARCH_OPTIM_KEY not in keys:
            got = keys if keys is not None else type(optim_wrapper).__name__
            raise KeyError(
                'Darts supernet training needs two optimizers, an '
                f"OptimWrapperDict with keys '{WEIGHT_OPTIM_KEY}' (weights) "
                f"and '{ARCH_OPTIM_KEY}' (architecture parameters), e.g. "
                "optim_wrapper=dict(constructor='mmrazor."
                "SeparateOptimWrapperConstructor', architecture=dict(...), "
                f'mutator=dict(...)); got {got}')
        return optim_wrapper[ARCH_OPTIM_KEY], optim_wrapper[WEIGHT_OPTIM_KEY]

    def _loss_of(self, data: Batch) -> Tuple[torch.Tensor, Dict[str, Any]]:
        """Forward one preprocessed batch in ``loss`` mode and parse it.

        Every forward pass of a search step goes through here, hence
        through :meth:`_run_forward`.
        """
        losses = self._run_forward(data, mode='loss')
        return self.parse_losses(losses)

    def _first_order_arch_step(self, val_data: Batch,
                               arch_wrapper: OptimWrapper
                               ) -> Dict[str, torch.Tensor]:
        """Gradient of the validation loss w.r.t. the architecture
        parameters; the weights' gradients are left untouched."""
        with arch_wrapper.optim_context(self):
            loss, log_vars = self._loss_of(val_data)
        with _isolated_grads(self.weight_parameters()):
            arch_wrapper.update_params(loss)
        return log_vars

    def _weight_step(self, train_data: Batch, weight_wrapper: OptimWrapper
                     ) -> Dict[str, torch.Tensor]:
        """Gradient of the train loss w.r.t. the weights; the architecture
        parameters' gradients are left untouched."""
        with weight_wrapper.optim_context(self):
            loss, log_vars = self._loss_of(train_data)
        with _isolated_grads(self.arch_parameters()):
            weight_wrapper.update_params(loss)
        return log_vars

    @staticmethod
    def _virtual_weights(weight_wrapper: OptimWrapper
                         ) -> List[Tuple[nn.Parameter, float]]:
        """``(parameter, lr)`` of every weight the optimizer updates."""
        pairs = []
        for group in weight_wrapper.optimizer.param_groups:
            for p in group['params']:
                if p.requires_grad:
                    pairs.append((p, float(group['lr'])))
        return pairs

    @staticmethod
    @torch.no_grad()
    def _virtual_step(weight_wrapper: OptimWrapper) -> None:
        """In place ``w <- w - lr * (momentum * buf + grad + wd * w)``: one
        step of the weight optimizer that does not touch its state."""
        optimizer = weight_wrapper.optimizer
        for group in optimizer.param_groups:
            lr = float(group['lr'])
            wd = float(group.get('weight_decay', 0.0) or 0.0)
            momentum = float(group.get('momentum', 0.0) or 0.0)
            for p in group['params']:
                if not p.requires_grad:
                    continue
                step = wd * p if wd else torch.zeros_like(p)
                if p.grad is not None:
                    step = step + p.grad
                buf = optimizer.state.get(p, {}).get('momentum_buffer')
                if momentum and buf is not None:
                    step = step + momentum * buf
                p.sub_(lr * step)

    def _arch_grads_at(self, weights: Sequence[nn.Parameter],
                       origin: Sequence[torch.Tensor],
                       direction: Sequence[torch.Tensor], scale: float,
                       train_data: Batch, weight_wrapper: OptimWrapper,
                       arch_params: Sequence[nn.Parameter]
                       ) -> List[torch.Tensor]:
        """``grad_alpha L_train(origin + scale * direction, alpha)``."""
        with torch.no_grad():
            for w, w0, d in zip(weights, origin, direction):
                w.copy_(w0 + scale * d)
        with weight_wrapper.optim_context(self):
            loss, _ = self._loss_of(train_data)
        loss.backward()
        grads = _grads_or_zeros(arch_params)
        _clear_grads(self.parameters())
        return grads

    def _unrolled_arch_step(self, train_data: Batch, val_data: Batch,
                            arch_wrapper: OptimWrapper,
                            weight_wrapper: OptimWrapper
                            ) -> Dict[str, torch.Tensor]:
        """The second-order DARTS architecture step (see the class doc).

        Four forward/backward passes: train loss at ``w`` (for ``w'``),
        validation loss at ``w'``, train loss at ``w+`` and at ``w-``. The
        weights are restored afterwards; only the architecture optimizer
        steps.
        """
        accumulate = getattr(arch_wrapper, '_accumulative_counts', 1)
        if accumulate != 1:
            raise ValueError('Darts(unroll=True) does not support gradient '
                             'accumulation of the mutator optimizer '
                             f'(accumulative_counts={accumulate})')
        if getattr(arch_wrapper, 'loss_scaler', None) is not None:
            raise ValueError('Darts(unroll=True) does not support the loss '
                             'scaling of AmpOptimWrapper (float16); use '
                             'unroll=False, or bfloat16 without scaling')
        arch_params = self.arch_parameters()
        pairs = self._virtual_weights(weight_wrapper)
        weights = [p for p, _ in pairs]
        origin = [p.detach().clone() for p in weights]
        everything = list(self.parameters())
        try:
            with _isolated_grads(everything):
                # w' = one virtual optimizer step on the train batch
                with weight_wrapper.optim_context(self):
                    train_loss, _ = self._loss_of(train_data)
                train_loss.backward()
                self._virtual_step(weight_wrapper)
                _clear_grads(everything)

                # grad_alpha and grad_w' of L_val(w', alpha)
                with arch_wrapper.optim_context(self):
                    val_loss, log_vars = self._loss_of(val_data)
                val_loss.backward()
                grads = _grads_or_zeros(arch_params)
                # xi-scaled direction u = lr * v, so that H u carries xi
                direction = [
                    lr * g for (_, lr), g in zip(pairs,
                                                 _grads_or_zeros(weights))
                ]
                _clear_grads(everything)

                norm = math.sqrt(
                    sum(float((d * d).sum()) for d in direction))
                if norm > 0:
                    eps = self.fd_radius / norm
                    plus = self._arch_grads_at(weights, origin, direction,
                                               eps, train_data,
                                               weight_wrapper, arch_params)
                    minus = self._arch_grads_at(weights, origin, direction,
                                                -eps, train_data,
                                                weight_wrapper, arch_params)
                    grads = [
                        g - (gp - gm) / (2 * eps)
                        for g, gp, gm in zip(grads, plus, minus)
                    ]
        finally:
            with torch.no_grad():
                for w, w0 in zip(weights, origin):
                    w.copy_(w0)
        for p, g in zip(arch_params, grads):
            p.grad = g if p.grad is None else p.grad + g
        arch_wrapper.step()
        arch_wrapper.zero_grad()
        return log_vars
