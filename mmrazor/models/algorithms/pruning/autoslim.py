"""AutoSlim (Yu & Huang, 2019): slimmable training, then greedy slimming."""
import logging
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.logging import print_log
from mmengine.optim import OptimWrapper
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from mmrazor.registry import MODELS
from ..base import BaseAlgorithm
from ..inplace_distill import (check_logits_layer, config_kind,
                               logits_loss_of_configurable_distiller,
                               refuse_extra_keys)

ChannelCfg = Union[str, Path, Dict[str, Any]]


def _labels(data_samples: Sequence[Any]) -> torch.Tensor:
    """Class indices of a batch of classification data samples."""
    labels = []
    for sample in data_samples:
        label = getattr(sample, 'gt_label', None)
        if label is None:
            raise ValueError('AutoSlim trains classifiers: every data sample '
                             'needs a `gt_label`')
        labels.append(label.reshape(-1)[:1])
    return torch.cat(labels).long()


def sandwich_size(num_sample_training: Optional[int],
                  num_random_samples: Optional[int]) -> int:
    """Widths trained per step, from either spelling (default 4).

    Args:
        num_sample_training (int, optional): All widths of a step.
        num_random_samples (int, optional): MMRazor 1.x: the random ones
            only (besides the widest and the narrowest).

    Returns:
        int: The widths trained per step.

    Raises:
        ValueError: Both are given and disagree.
    """
    if num_random_samples is None:
        return 4 if num_sample_training is None else num_sample_training
    if num_random_samples < 0:
        raise ValueError('AutoSlim num_random_samples must be >= 0, got '
                         f'{num_random_samples}')
    size = num_random_samples + 2
    if num_sample_training is not None and num_sample_training != size:
        raise ValueError(
            f'AutoSlim got num_sample_training={num_sample_training} and '
            f'num_random_samples={num_random_samples} (= '
            f'num_sample_training {size}); give one of them')
    return size


def _kind(cfg: Any) -> str:
    return config_kind(cfg)


def _refuse_extra_keys(what: str, cfg: dict, known: Sequence[str]) -> None:
    refuse_extra_keys('AutoSlim', what, cfg, known)


def pruner_of_1x_mutator(mutator: dict) -> Tuple[dict, Tuple[int, ...]]:
    """The ``RatioPruner`` and ``input_shape`` an MMRazor 1.x AutoSlim
    ``mutator`` config stands for.

    Args:
        mutator (dict): ``dict(type='OneShotChannelMutator',
            channel_unit_cfg=dict(type='OneShotMutableChannelUnit',
            default_args=dict(candidate_choices=[...], choice_mode='ratio',
            divisor=8)), parse_cfg=dict(type='ChannelAnalyzer',
            demo_input=(1, 3, 224, 224), tracer_type=...))``.

    Returns:
        tuple[dict, tuple[int]]: The pruner config and ``(C, H, W)``.

    Raises:
        ValueError: Naming the key or value this toolbox cannot honour.
    """
    if _kind(mutator) != 'OneShotChannelMutator':
        raise ValueError('AutoSlim mutator must be a OneShotChannelMutator '
                         f'config (MMRazor 1.x), got {mutator!r}')
    _refuse_extra_keys('mutator', mutator, ('channel_unit_cfg', 'parse_cfg'))
    unit = mutator.get('channel_unit_cfg') or {}
    if _kind(unit) != 'OneShotMutableChannelUnit':
        raise ValueError('AutoSlim mutator.channel_unit_cfg must be a '
                         f'OneShotMutableChannelUnit config, got {unit!r}')
    _refuse_extra_keys('mutator.channel_unit_cfg', unit, ('default_args', ))
    args = unit.get('default_args') or {}
    _refuse_extra_keys('mutator.channel_unit_cfg.default_args', args,
                       ('candidate_choices', 'choice_mode', 'divisor'))
    if args.get('choice_mode', 'ratio') != 'ratio':
        raise ValueError('AutoSlim mutator.channel_unit_cfg.default_args.'
                         f'choice_mode must be "ratio", got '
                         f'{args["choice_mode"]!r}')
    if 'candidate_choices' not in args:
        raise ValueError('AutoSlim mutator.channel_unit_cfg.default_args '
                         'needs candidate_choices (the width ratios)')
    parse = mutator.get('parse_cfg') or {}
    _refuse_extra_keys('mutator.parse_cfg', parse,
                       ('demo_input', 'tracer_type'))
    demo = tuple(parse.get('demo_input', (1, 3, 224, 224)))
    if len(demo) != 4:
        raise ValueError('AutoSlim mutator.parse_cfg.demo_input must be '
                         f'(N, C, H, W), got {demo}')
    if args.get('divisor', 1) != 1:
        print_log(
            f'AutoSlim: divisor={args["divisor"]} of the 1.x mutator is '
            'not applied; widths are the candidate ratios of the full '
            'widths',
            logger='current',
            level=logging.WARNING)
    pruner = dict(type='RatioPruner',
                  ratios=tuple(float(r) for r in args['candidate_choices']))
    return pruner, demo[1:]


@MODELS.register_module()
class AutoSlim(BaseAlgorithm):
    """Slimmable training with the sandwich rule and in-place distillation.

    Every training step trains ``num_sample_training`` widths of the same
    network: the widest (on the labels), the narrowest and
    ``num_sample_training - 2`` random widths (each on the widest network's
    predictions, in-place distillation). Gradients of all widths accumulate
    and one optimizer step follows; under DDP they are all-reduced once.
    The greedy search (``GreedySearcher``) then finds channel
    configurations for target FLOPs, and ``channel_cfg`` retrains one of
    them as a physically slimmer model.

    Args:
        architecture (dict | nn.Module): The classifier to slim (e.g. an
            mmpretrain ``ImageClassifier``, or ``MMClsArchitecture``).
        pruner (dict | nn.Module): The channel pruner giving widths.
            Defaults to a ``RatioPruner`` with ratios 2/12 ... 12/12.
        distill_loss (dict | nn.Module): The in-place distillation loss
            between a narrow network's and the widest network's logits.
            Defaults to ``KLDivergence``.
        num_sample_training (int, optional): Widths trained per step
            (>= 2). Defaults to 4.
        input_shape (tuple[int], optional): ``(C, H, W)`` for channel
            analysis and FLOPs; None means the default ``(3, 224, 224)``.
        bn_training_mode (bool): Keep BatchNorm in batch-statistics mode in
            evaluation (a width has no running statistics of its own).
            Defaults to False.
        channel_cfg (str | dict | list, optional): A channel configuration
            (as the greedy search writes) to retrain: the model is
            physically slimmed to it and trained as a plain network
            (:attr:`deployed`). A list of several configurations retrains
            them together, as the older toolbox did: every batch norm gets
            one set of statistics per configuration
            (``SwitchableBatchNorm2d``) and every step trains each
            configuration in turn, on the labels.
        retraining (bool, optional): The older switch of retraining; True
            needs ``channel_cfg``, False refuses one. Defaults to None
            (retrain when ``channel_cfg`` is given).
        distiller (dict, optional): The older ways of giving the in-place
            distillation: a 0.x ``SelfDistiller`` config with one component
            whose ``student_module`` and ``teacher_module`` are the
            classifier's last linear layer (the logits, e.g.
            ``'head.fc'``) and one loss, or a 1.x ``ConfigurableDistiller``
            config recording that layer's outputs (``ModuleOutputs``) as
            student and as teacher, with one loss between them. Its loss
            becomes ``distill_loss``; any other distiller is refused.
        num_random_samples (int, optional): MMRazor 1.x's spelling: random
            widths per step besides the widest and the narrowest, i.e.
            ``num_sample_training - 2``.
        mutator (dict, optional): MMRazor 1.x's channel search space: a
            ``OneShotChannelMutator`` config whose ``channel_unit_cfg`` is a
            ``OneShotMutableChannelUnit`` with ``choice_mode='ratio'`` and
            ``candidate_choices`` (they become a ``RatioPruner``'s
            ``ratios``) and whose ``parse_cfg.demo_input`` ``(N, C, H, W)``
            gives ``input_shape``. ``divisor`` (rounding of channel counts)
            is not applied: the widths are the ratios of the full widths.
        data_preprocessor (dict, optional): Defaults to the architecture's.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 architecture: Union[dict, nn.Module],
                 pruner: Union[dict, nn.Module] = dict(
                     type='RatioPruner',
                     ratios=tuple(i / 12 for i in range(2, 13))),
                 distill_loss: Union[dict, nn.Module] = dict(
                     type='KLDivergence', tau=1.0, loss_weight=1.0),
                 num_sample_training: Optional[int] = None,
                 input_shape: Optional[Sequence[int]] = (3, 224, 224),
                 bn_training_mode: bool = False,
                 channel_cfg: Optional[Union[ChannelCfg,
                                             Sequence[ChannelCfg]]] = None,
                 retraining: Optional[bool] = None,
                 distiller: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None,
                 num_random_samples: Optional[int] = None,
                 mutator: Optional[dict] = None) -> None:
        super().__init__(architecture, data_preprocessor, init_cfg)
        num_sample_training = sandwich_size(num_sample_training,
                                            num_random_samples)
        if mutator is not None:
            pruner, input_shape = pruner_of_1x_mutator(mutator)
        if retraining and channel_cfg is None:
            raise ValueError('AutoSlim(retraining=True) needs channel_cfg: '
                             'the channel configuration(s) written by the '
                             'greedy search')
        if retraining is False and channel_cfg is not None:
            raise ValueError('AutoSlim got channel_cfg with retraining=False;'
                             ' a channel_cfg is retrained (drop retraining='
                             'False, or channel_cfg to train the supernet)')
        if distiller is not None:
            distill_loss = self._loss_of_distiller(distiller)
        if num_sample_training < 2:
            raise ValueError('AutoSlim num_sample_training must be >= 2 (the '
                             f'widest and the narrowest), got '
                             f'{num_sample_training}')
        self.num_sample_training = num_sample_training
        # 0.x configs write input_shape=None for the default
        self.input_shape = (3, 224, 224) if input_shape is None else tuple(
            input_shape)
        self.bn_training_mode = bn_training_mode
        if isinstance(pruner, dict):
            pruner = MODELS.build(pruner)
        pruner.prepare_from_supernet(
            self.architecture, input_shape=(1, ) + self.input_shape)
        # Not a submodule: it holds references into the architecture.
        self.__dict__['pruner'] = pruner
        self.distill_loss = MODELS.build(distill_loss) if isinstance(
            distill_loss, dict) else distill_loss
        self.retraining = channel_cfg is not None
        self.channel_cfgs: List[Dict[str, Any]] = []
        if self.retraining:
            from mmrazor.structures import load_subnet
            many = isinstance(channel_cfg, (list, tuple))
            for cfg in (channel_cfg if many else [channel_cfg]):
                if isinstance(cfg, (str, Path)):
                    cfg = load_subnet(cfg, view='auto')
                self.channel_cfgs.append(cfg)
            if not self.channel_cfgs:
                raise ValueError('AutoSlim channel_cfg is an empty list')
            if len(self.channel_cfgs) == 1:
                pruner.deploy_subnet(self.architecture, self.channel_cfgs[0])
            else:
                pruner.convert_switchable_bn(self.architecture,
                                             len(self.channel_cfgs))
                pruner.switch_subnet(self.channel_cfgs[0], 0)

    @property
    def deployed(self) -> bool:
        """Whether the model was physically slimmed to one channel
        configuration (retraining a single ``channel_cfg``)."""
        return len(self.channel_cfgs) == 1

    def _loss_of_distiller(self, distiller: Any) -> dict:
        """The ``distill_loss`` an older ``distiller`` config stands for."""
        hint = ('AutoSlim distils the widest network\'s logits in place: '
                'give distill_loss=dict(type=..., ...) instead of distiller')
        kind = str(distiller.get('type', '')).split('.')[-1] if isinstance(
            distiller, dict) else None
        if kind == 'ConfigurableDistiller':
            path, loss = logits_loss_of_configurable_distiller(
                distiller, hint)
            self._check_logits_layer(path, hint)
            return loss
        if kind != 'SelfDistiller':
            raise ValueError(f'AutoSlim: unsupported distiller {distiller!r};'
                             f' {hint}')
        components = distiller.get('components') or []
        if len(components) != 1 or len(components[0].get('losses')
                                       or []) != 1:
            raise ValueError('AutoSlim: the distiller must have one component'
                             f' with one loss; {hint}')
        component = components[0]
        path = component.get('student_module')
        if path != component.get('teacher_module'):
            raise ValueError('AutoSlim: the distiller component must read '
                             'one module as student and teacher, got '
                             f'{path!r} and '
                             f'{component.get("teacher_module")!r}; {hint}')
        self._check_logits_layer(path, hint)
        loss = dict(component['losses'][0])
        loss.pop('name', None)
        return loss

    def _check_logits_layer(self, path: str, hint: str) -> None:
        """Refuse a distiller that reads another layer than the logits."""
        prefix = self.subnet_prefix.rstrip('.')
        model = self.architecture.get_submodule(prefix) if prefix else \
            self.architecture
        check_logits_layer(model, path, hint, 'AutoSlim')

    def _logits(self, data: dict, sync_grads: bool) -> torch.Tensor:
        return self._run_forward(
            dict(inputs=data['inputs'], data_samples=data['data_samples']),
            mode='tensor',
            sync_grads=sync_grads)

    def train_step(self, data: Union[dict, tuple, list],
                   optim_wrapper: OptimWrapper) -> Dict[str, torch.Tensor]:
        """One sandwich-rule step (or a plain step when retraining).

        Args:
            data (dict): A batch from the dataloader.
            optim_wrapper (OptimWrapper): The optimizer wrapper.

        Returns:
            dict: Losses of every trained width, for logging.
        """
        if self.retraining:
            if len(self.channel_cfgs) == 1:
                return super().train_step(data, optim_wrapper)
            return self._train_step_switchable(data, optim_wrapper)
        data = self.data_preprocessor(data, True)
        labels = _labels(data['data_samples']).to(data['inputs'].device)
        log: Dict[str, torch.Tensor] = {}
        last = self.num_sample_training - 1
        self.pruner.set_max_channel()
        with optim_wrapper.optim_context(self):
            logits = self._logits(data, sync_grads=False)
            loss = F.cross_entropy(logits, labels)
        optim_wrapper.backward(loss)
        log['max.loss'] = loss.detach()
        soft_targets = logits.detach()
        for i in range(1, self.num_sample_training):
            if i == 1:
                self.pruner.set_min_channel()
                name = 'min'
            else:
                self.pruner.set_subnet(self.pruner.sample_subnet())
                name = f'random{i - 1}'
            with optim_wrapper.optim_context(self):
                loss = self.distill_loss(
                    self._logits(data, sync_grads=(i == last)),
                    soft_targets)
            optim_wrapper.backward(loss)
            log[f'{name}.loss'] = loss.detach()
        if optim_wrapper.should_update():
            optim_wrapper.step()
            optim_wrapper.zero_grad()
        self.pruner.set_max_channel()  # validation sees the widest network
        log['loss'] = sum(log.values())
        return log

    def _train_step_switchable(self, data: Union[dict, tuple, list],
                               optim_wrapper: OptimWrapper
                               ) -> Dict[str, torch.Tensor]:
        """Train every channel configuration in turn on the labels, then
        step once; the first configuration stays active afterwards."""
        data = self.data_preprocessor(data, True)
        log: Dict[str, torch.Tensor] = {}
        last = len(self.channel_cfgs) - 1
        for i, cfg in enumerate(self.channel_cfgs):
            self.pruner.switch_subnet(cfg, i)
            with optim_wrapper.optim_context(self):
                losses = self._run_forward(
                    dict(inputs=data['inputs'],
                         data_samples=data['data_samples']),
                    mode='loss',
                    sync_grads=(i == last))
                loss, _ = self.parse_losses(losses)
            optim_wrapper.backward(loss)
            log[f'subnet{i}.loss'] = loss.detach()
        if optim_wrapper.should_update():
            optim_wrapper.step()
            optim_wrapper.zero_grad()
        self.pruner.switch_subnet(self.channel_cfgs[0], 0)
        log['loss'] = sum(log.values())
        return log

    def train(self, mode: bool = True) -> 'AutoSlim':
        super().train(mode)
        if self.bn_training_mode and not mode:
            for module in self.architecture.modules():
                if isinstance(module, _BatchNorm):
                    module.train()
        return self

    def estimate_resources(self) -> Dict[str, float]:
        """FLOPs (multiply-adds) and parameters of the current widths,
        computed from the channel analysis (no copy, no forward pass).

        Returns:
            dict: ``{'flops': ..., 'params': ...}``.
        """
        found = self.pruner.estimate_subnet()
        return dict(flops=float(found['flops']),
                    params=float(found['params']))

    def get_subnet_flops(self) -> float:
        """FLOPs of the current widths.

        Returns:
            float: Multiply-adds at ``input_shape``.
        """
        return self.estimate_resources()['flops']
