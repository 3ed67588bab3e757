"""BigNAS (Yu et al., ECCV 2020): one weight-sharing supernet trained with
the sandwich rule and in-place distillation, searched without retraining.
"""
import contextlib
import math
import numbers
from typing import (Any, Dict, Iterator, List, Optional, Sequence, Tuple,
                    Union)

import torch
from mmengine.logging import MessageHub
from mmengine.optim import OptimWrapper
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from mmrazor.registry import MODELS
from ..inplace_distill import (check_logits_layer, last_linear_name,
                               logits_loss_of_configurable_distiller)
from .spos import SPOS, SubnetLike

#: Subnets of one sandwich step, besides the random ones.
_MAX, _MIN = 'max', 'min'
_ATTENTIVE_MODES = ('best', 'worst')


def _dim_of(key: str) -> str:
    """The dimension a subnet key decides: its last dotted part
    (``'backbone.layers.2.0.kernel_size'`` -> ``'kernel_size'``)."""
    return key.rsplit('.', 1)[-1]


def _check_attentive(cfg: Optional[Dict[str, Any]]
                     ) -> Optional[Dict[str, Any]]:
    if cfg is None:
        return None
    unknown = set(cfg) - {'mode', 'num_candidates'}
    if unknown:
        raise ValueError(f'BigNAS attentive_sampling: unknown key(s) '
                         f'{sorted(unknown)}; known: mode, num_candidates')
    mode = cfg.get('mode', 'worst')
    if mode not in _ATTENTIVE_MODES:
        raise ValueError(f'BigNAS attentive_sampling.mode={mode!r} must be '
                         f'one of {_ATTENTIVE_MODES}')
    count = cfg.get('num_candidates', 4)
    if not isinstance(count, int) or count < 1:
        raise ValueError('BigNAS attentive_sampling.num_candidates must be '
                         f'an int >= 1, got {count!r}')
    return dict(mode=mode, num_candidates=count)


def _check_warmup_epochs(epochs: Any) -> int:
    if isinstance(epochs, bool) or not isinstance(epochs, int) \
            or epochs < 0:
        raise ValueError('BigNAS max_subnet_warmup_epochs must be an int '
                         f'>= 0, got {epochs!r}')
    return epochs


def _check_label_loss_weight(weight: Any) -> float:
    if isinstance(weight, bool) or not isinstance(weight, numbers.Real) \
            or not math.isfinite(weight) or weight < 0:
        raise ValueError('BigNAS label_loss_weight must be a finite number '
                         f'>= 0, got {weight!r}')
    return float(weight)


def current_epoch(warmup_epochs: int) -> int:
    """The epoch the runner is in (0-based), from the current
    ``MessageHub`` (mmengine's ``RuntimeInfoHook`` records it).

    Args:
        warmup_epochs (int): ``max_subnet_warmup_epochs``, checked against
            the run's ``max_epochs``.

    Returns:
        int: The current epoch.

    Raises:
        RuntimeError: No epoch is recorded (not trained by a runner), or
            the warm-up would last the whole run (an iteration-based loop
            runs one epoch as mmengine counts).
    """
    hub = MessageHub.get_current_instance()
    epoch = hub.get_info('epoch')
    if epoch is None:
        raise RuntimeError(
            'BigNAS max_subnet_warmup_epochs > 0 needs the current epoch: '
            "the MessageHub holds no 'epoch' info (set by mmengine's "
            'RuntimeInfoHook when a runner trains the model)')
    max_epochs = hub.get_info('max_epochs')
    if max_epochs is not None and warmup_epochs >= max_epochs:
        raise RuntimeError(
            f'BigNAS max_subnet_warmup_epochs={warmup_epochs} would train '
            f'only the largest subnet for the whole run (max_epochs='
            f'{max_epochs}; an iteration-based train loop counts as one '
            'epoch): use fewer warm-up epochs and an epoch-based loop')
    return int(epoch)


class _Recorder:
    """Keeps the last output of a module (forward hook)."""

    def __init__(self) -> None:
        self.output: Optional[torch.Tensor] = None

    def __call__(self, module: nn.Module, inputs: Any, output: Any) -> None:
        self.output = output


@contextlib.contextmanager
def frozen_bn_statistics(model: nn.Module) -> Iterator[None]:
    """Restore the running statistics of every batch norm of ``model``
    when the context closes (forward passes that only rank subnets must
    not move them)."""
    saved = [(m, m.running_mean.clone(), m.running_var.clone(),
              m.num_batches_tracked.clone())
             for m in model.modules()
             if isinstance(m, _BatchNorm) and m.track_running_stats
             and m.running_mean is not None]
    try:
        yield
    finally:
        with torch.no_grad():
            for m, mean, var, count in saved:
                m.running_mean.copy_(mean)
                m.running_var.copy_(var)
                m.num_batches_tracked.copy_(count)


@contextlib.contextmanager
def record_output(module: nn.Module) -> Iterator[_Recorder]:
    """Record the output of ``module`` while the context is open."""
    recorder = _Recorder()
    handle = module.register_forward_hook(recorder)
    try:
        yield recorder
    finally:
        handle.remove()


@MODELS.register_module()
class BigNAS(SPOS):
    """Train a weight-sharing supernet with the sandwich rule.

    Every training step trains, on the same batch, the largest subnet on
    the labels (the architecture's own loss), ``num_random_samples``
    random subnets and the smallest subnet, each of them on the largest
    subnet's logits of that step (in-place distillation, ``distill_loss``
    between the logits layer's outputs). Their gradients accumulate and
    one optimizer step follows (under DDP, gradients are all-reduced once,
    with the last pass). Only the largest subnet gets drop-path and
    dropout (``drop_path_rate``, ``backbone_dropout_stages``, through the
    backbone's ``set_dropout``); the smaller ones train without.
    Validation and the search see the subnet set afterwards: the largest.

    Two optional changes to the recipe, for short schedules where the
    largest subnet is still a weak teacher (both off by default):
    ``max_subnet_warmup_epochs`` trains only the largest subnet, on the
    labels, for the first epochs (Once-for-All starts progressive
    shrinking from a trained full network); ``label_loss_weight`` adds the
    architecture's loss on the labels, times the weight, to the smaller
    subnets' distillation loss.

    Search (``tools/search.py``, an ``EvolutionSearcher`` with BatchNorm
    re-calibration) and subnet export are those of :class:`SPOS`.

    Args:
        architecture (dict | nn.Module): The supernet classifier, e.g. a
            ``SearchableImageClassifier`` with an ``AttentiveMobileNetV3``
            backbone.
        mutator (dict | nn.Module): Decides every mutable. Defaults to
            ``NasMutator``.
        distiller (dict, optional): The 1.x ``ConfigurableDistiller``
            config recording the logits layer (``ModuleOutputs`` of, e.g.,
            ``head.fc``) as student and teacher with one loss; its loss
            becomes ``distill_loss``. Other distillers are refused.
        distill_loss (dict | nn.Module): Loss between a subnet's and the
            largest subnet's logits. Defaults to ``KLDivergence`` (tau 1).
        num_random_samples (int): Random subnets per step. Defaults to 2.
        drop_path_rate (float): Drop-path rate of the largest subnet.
            Defaults to 0.2.
        backbone_dropout_stages (Sequence[int]): Backbone stages whose
            blocks get drop-path. Defaults to ``(6, 7)``.
        fix_subnet (str | dict, optional): Train and evaluate this subnet
            as a fixed model instead.
        input_shape (tuple[int]): ``(C, H, W)`` for resource estimates.
            Defaults to ``(3, 224, 224)``.
        data_preprocessor (dict, optional): Defaults to the architecture's.
        init_cfg (dict, optional): Initialisation config.
        mutators (dict, optional): Older spelling of ``mutator`` (the 1.x
            OFA config).
        elastic_dims (Sequence[str], optional): The dimensions that vary
            between the subnets of a step, by the last part of their
            subnet keys (``'kernel_size'``, ``'depth'``, ``'expand_ratio'``
            (also matching ``expand_ratio_se``), ``'out_channels'``,
            ``'input_shape'``, ...); the others stay at their largest
            choice. None: all vary. Once-for-All's progressive shrinking
            widens it phase by phase (``ProgressiveShrinkingHook``).
        attentive_sampling (dict, optional): AttentiveNAS (Wang et al.,
            CVPR 2021): each random subnet of a step is the best or the
            worst of ``num_candidates`` random candidates, ranked by their
            loss on the step's batch (no gradient):
            ``dict(mode='worst' | 'best', num_candidates=k)``. None:
            uniform sampling (BigNAS).
        max_subnet_warmup_epochs (int): Epochs (from the first, read from
            the runner's ``MessageHub``) during which each step trains
            only the largest subnet on the labels; the full sandwich
            follows. For epoch-based training: a warm-up of at least
            the run's ``max_epochs`` (an iteration-based loop counts one)
            is refused at the first step. Defaults to 0 (the sandwich from
            the start).
        label_loss_weight (float): Weight of the architecture's loss on
            the labels (its head's loss, e.g. cross-entropy) added to the
            distillation loss of every subnet but the largest. Defaults to
            0 (distillation only).
        **kwargs: Other arguments of :class:`SPOS` (``bn_training_mode``,
            ``latency_lut``).
    """

    def __init__(self,
                 architecture: Union[dict, nn.Module],
                 mutator: Union[dict, nn.Module] = dict(type='NasMutator'),
                 distiller: Optional[dict] = None,
                 distill_loss: Union[dict, nn.Module] = dict(
                     type='KLDivergence', tau=1.0, loss_weight=1.0),
                 num_random_samples: int = 2,
                 drop_path_rate: float = 0.2,
                 backbone_dropout_stages: Sequence[int] = (6, 7),
                 fix_subnet: Optional[SubnetLike] = None,
                 input_shape: Sequence[int] = (3, 224, 224),
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None,
                 mutators: Optional[Union[dict, nn.Module]] = None,
                 elastic_dims: Optional[Sequence[str]] = None,
                 attentive_sampling: Optional[Dict[str, Any]] = None,
                 max_subnet_warmup_epochs: int = 0,
                 label_loss_weight: float = 0.0,
                 **kwargs: Any) -> None:
        if mutators is not None:
            mutator = mutators
        super().__init__(
            architecture,
            mutator=mutator,
            fix_subnet=fix_subnet,
            input_shape=input_shape,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg,
            **kwargs)
        if not isinstance(num_random_samples, int) or num_random_samples < 0:
            raise ValueError('BigNAS num_random_samples must be an int >= 0, '
                             f'got {num_random_samples!r}')
        if not 0 <= drop_path_rate < 1:
            raise ValueError('BigNAS drop_path_rate must be in [0, 1), got '
                             f'{drop_path_rate!r}')
        self.num_random_samples = num_random_samples
        self.max_subnet_warmup_epochs = _check_warmup_epochs(
            max_subnet_warmup_epochs)
        self.label_loss_weight = _check_label_loss_weight(label_loss_weight)
        self.elastic_dims: Optional[Tuple[str, ...]] = None
        if elastic_dims is not None:
            self.set_elastic_dims(elastic_dims)
        self.attentive_sampling = _check_attentive(attentive_sampling)
        self.drop_path_rate = float(drop_path_rate)
        self.backbone_dropout_stages = tuple(backbone_dropout_stages)
        hint = ('BigNAS distils the largest subnet\'s logits in place: give '
                'distill_loss=dict(type=..., ...) instead of distiller')
        model = self._task_model()
        if distiller is not None:
            self.logits_layer, distill_loss = \
                logits_loss_of_configurable_distiller(distiller, hint,
                                                      'BigNAS')
            check_logits_layer(model, self.logits_layer, hint, 'BigNAS')
        else:
            self.logits_layer = last_linear_name(model)
            if not self.logits_layer:
                raise ValueError('BigNAS: the architecture has no linear '
                                 'logits layer to distil from')
        self.distill_loss = MODELS.build(distill_loss) if isinstance(
            distill_loss, dict) else distill_loss
        backbone = getattr(model, 'backbone', None)
        self._set_dropout_fn = getattr(backbone, 'set_dropout', None)
        if self._set_dropout_fn is None and self.drop_path_rate > 0 \
                and self.is_supernet:
            raise ValueError(
                f'BigNAS drop_path_rate={self.drop_path_rate}: the backbone '
                f'{type(backbone).__name__} has no set_dropout(dropout_stages'
                ', drop_path_rate); set drop_path_rate=0')

    def _task_model(self) -> nn.Module:
        prefix = self.subnet_prefix.rstrip('.')
        return self.architecture.get_submodule(prefix) if prefix else \
            self.architecture

    def _set_dropout(self, on: bool) -> None:
        if self._set_dropout_fn is not None:
            self._set_dropout_fn(
                dropout_stages=self.backbone_dropout_stages,
                drop_path_rate=self.drop_path_rate if on else 0.0)

    def set_elastic_dims(self, dims: Optional[Sequence[str]]) -> None:
        """Choose the dimensions that vary between subnets (None: all).

        Args:
            dims (Sequence[str], optional): Last parts of subnet keys.

        Raises:
            ValueError: A dimension matches no decision of the supernet.
        """
        if dims is None:
            self.elastic_dims = None
            return
        dims = tuple(dims)
        if self.is_supernet:
            known = {_dim_of(key) for key in self.mutator.search_groups}
            unknown = [d for d in dims if not any(
                k == d or k.startswith(d + '_') for k in known)]
            if unknown:
                raise ValueError(f'BigNAS elastic_dims {unknown} match no '
                                 f'decision; the dimensions are '
                                 f'{sorted(known)}')
        self.elastic_dims = dims

    def _is_elastic(self, key: str) -> bool:
        if self.elastic_dims is None:
            return True
        dim = _dim_of(key)
        return any(dim == d or dim.startswith(d + '_')
                   for d in self.elastic_dims)

    def _choices(self, kind: str) -> Dict[str, Any]:
        """Choices of ``kind`` ('max', 'min', 'random') for the elastic
        dimensions, the largest for the others."""
        largest = self.mutator.sample_choices('max')
        if kind == _MAX:
            return largest
        wanted = self.mutator.sample_choices(
            'min' if kind == _MIN else 'random')
        return {key: wanted[key] if self._is_elastic(key) else value
                for key, value in largest.items()}

    def _set_subnet(self, kind: str, batch: Optional[dict] = None) -> None:
        if kind in (_MAX, _MIN) or self.attentive_sampling is None \
                or batch is None:
            self.mutator.set_choices(self._choices(
                kind if kind in (_MAX, _MIN) else 'random'))
            return
        self.mutator.set_choices(self._attentive_choice(batch))

    def _attentive_choice(self, batch: dict) -> Dict[str, Any]:
        """The best or worst of ``num_candidates`` random subnets by their
        loss on ``batch`` (AttentiveNAS)."""
        mode = self.attentive_sampling['mode']
        scored = []
        with torch.no_grad(), frozen_bn_statistics(self.architecture):
            for _ in range(self.attentive_sampling['num_candidates']):
                choices = self._choices('random')
                self.mutator.set_choices(choices)
                losses = self.architecture(
                    batch['inputs'], batch['data_samples'], mode='loss')
                loss, _ = self.parse_losses(losses)
                scored.append((float(loss), choices))
        pick = max if mode == 'worst' else min
        return pick(scored, key=lambda item: item[0])[1]

    def sandwich(self) -> List[str]:
        """The subnets of one step, in training order.

        Returns:
            list[str]: ``'max'``, ``'random1'`` ... and ``'min'``; only
            ``'max'`` during the first ``max_subnet_warmup_epochs``.
        """
        warmup = self.max_subnet_warmup_epochs
        if warmup and current_epoch(warmup) < warmup:
            return [_MAX]
        return [_MAX] + [f'random{i + 1}' for i in range(
            self.num_random_samples)] + [_MIN]

    def loss(self, inputs: torch.Tensor, data_samples=None) -> dict:
        """Losses of the current subnet (no sampling: the sandwich of
        :meth:`train_step` sets the subnets).

        Args:
            inputs (torch.Tensor): The batch.
            data_samples (list, optional): The annotations.

        Returns:
            dict: The architecture's losses.
        """
        return self.architecture(inputs, data_samples, mode='loss')

    def _student_loss(self, batch: dict, logits_layer: nn.Module,
                      soft_targets: torch.Tensor,
                      sync: bool) -> torch.Tensor:
        """The loss of a subnet other than the largest: the distillation
        loss to ``soft_targets``, plus ``label_loss_weight`` times the
        architecture's loss on the labels when that weight is not 0."""
        mode = 'loss' if self.label_loss_weight else 'tensor'
        with record_output(logits_layer) as student:
            outputs = self._run_forward(batch, mode=mode, sync_grads=sync)
        loss = self.distill_loss(student.output, soft_targets)
        if self.label_loss_weight:
            label_loss, _ = self.parse_losses(outputs)
            loss = loss + self.label_loss_weight * label_loss
        return loss

    def train_step(self, data: Union[dict, tuple, list],
                   optim_wrapper: OptimWrapper) -> Dict[str, torch.Tensor]:
        """One sandwich-rule step (a plain step for a fixed subnet).

        Args:
            data (dict | tuple | list): A batch from the dataloader.
            optim_wrapper (OptimWrapper): The optimizer wrapper.

        Returns:
            dict: Every subnet's loss (``max.loss``, ``random1.loss``, ...,
            ``min.loss``) and their sum ``loss``, for logging.
        """
        if not self.is_supernet:
            return super().train_step(data, optim_wrapper)
        data = self.data_preprocessor(data, True)
        batch = dict(inputs=data['inputs'], data_samples=data['data_samples'])
        logits_layer = self._task_model().get_submodule(self.logits_layer)
        log: Dict[str, torch.Tensor] = {}
        kinds = self.sandwich()
        soft_targets = None
        try:
            for i, kind in enumerate(kinds):
                self._set_dropout(kind == _MAX)
                self._set_subnet(kind, batch)
                sync = i == len(kinds) - 1
                with optim_wrapper.optim_context(self):
                    if kind == _MAX:
                        with record_output(logits_layer) as teacher:
                            losses = self._run_forward(
                                batch, mode='loss', sync_grads=sync)
                        loss, parsed = self.parse_losses(losses)
                        soft_targets = teacher.output.detach()
                        log.update({f'max.{k}': v
                                    for k, v in parsed.items()
                                    if k != 'loss'})
                    else:
                        loss = self._student_loss(batch, logits_layer,
                                                  soft_targets, sync)
                optim_wrapper.backward(loss)
                log[f'{kind}.loss'] = loss.detach()
            if optim_wrapper.should_update():
                optim_wrapper.step()
                optim_wrapper.zero_grad()
        finally:
            self._set_dropout(False)
            self.mutator.set_choices(self._choices(_MAX))
        log['loss'] = sum(v for k, v in log.items() if k.endswith('.loss'))
        return log
