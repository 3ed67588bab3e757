"""AutoSlim (Yu & Huang, 2019): slimmable training, then greedy slimming."""
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from mmengine.optim import OptimWrapper
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from mmrazor.registry import MODELS
from ..base import BaseAlgorithm

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
        num_sample_training (int): Widths trained per step (>= 2).
            Defaults to 4.
        input_shape (tuple[int]): ``(C, H, W)`` for channel analysis and
            FLOPs. Defaults to ``(3, 224, 224)``.
        bn_training_mode (bool): Keep BatchNorm in batch-statistics mode in
            evaluation (a width has no running statistics of its own).
            Defaults to False.
        channel_cfg (str | dict, optional): A channel configuration (as the
            greedy search writes) to retrain: the model is physically
            slimmed to it and trained as a plain network.
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
                 num_sample_training: int = 4,
                 input_shape: Sequence[int] = (3, 224, 224),
                 bn_training_mode: bool = False,
                 channel_cfg: Optional[ChannelCfg] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(architecture, data_preprocessor, init_cfg)
        if num_sample_training < 2:
            raise ValueError('AutoSlim num_sample_training must be >= 2 (the '
                             f'widest and the narrowest), got '
                             f'{num_sample_training}')
        self.num_sample_training = num_sample_training
        self.input_shape = tuple(input_shape)
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
        if self.retraining:
            if isinstance(channel_cfg, (str, Path)):
                from mmrazor.structures import load_subnet
                channel_cfg = load_subnet(channel_cfg, view='auto')
            pruner.deploy_subnet(self.architecture, channel_cfg)

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
            return super().train_step(data, optim_wrapper)
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
