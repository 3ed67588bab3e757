"""Single Path One-Shot NAS (Guo et al., 2020)."""
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Union

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from mmrazor.registry import MODELS
from ..base import (BaseAlgorithm, fill_mutator_placeholders,
                    older_nas_args)

SubnetLike = Union[str, Path, Dict[str, Any]]


@MODELS.register_module()
class SPOS(BaseAlgorithm):
    """Single Path One-Shot NAS.

    Pre-training (no ``fix_subnet``): every training step samples a path of
    the supernet uniformly at random and trains only that path. The search
    (``EvolutionSearcher`` through ``tools/search.py``) then picks subnets
    under a resource budget, and retraining (``fix_subnet`` given) trains
    the chosen subnet as a fixed model.

    The path is sampled by :meth:`train_step` (which
    ``RazorDistributedDataParallel`` calls) and stays the current choice;
    a :meth:`loss` pass outside it (mmengine's own DDP wrapper, which
    calls only ``forward``) samples a path for that pass alone, so either
    wrapper trains one random path per step (with
    ``find_unused_parameters=True``: the unsampled candidates get no
    gradient).

    Args:
        architecture (dict | nn.Module): The supernet, e.g. an mmpretrain
            ``ImageClassifier`` with a ``SearchableShuffleNetV2`` backbone
            (or an ``MMClsArchitecture`` wrapping one).
        mutator (dict | nn.Module): Samples and sets paths. Defaults to
            ``OneShotMutator``.
        fix_subnet (str | dict, optional): A subnet (YAML path or dict) to
            fix: the algorithm then trains and evaluates that subnet.
        retraining (bool): Older spelling of "train the fixed subnet";
            requires ``fix_subnet``. Defaults to False.
        input_shape (tuple[int]): ``(C, H, W)`` used to count FLOPs.
            Defaults to ``(3, 224, 224)``.
        bn_training_mode (bool): Keep BatchNorm in batch-statistics mode in
            evaluation (subnets of a supernet have no running statistics of
            their own). Defaults to False.
        latency_lut (str | LatencyLUT, optional): A latency look-up table
            measured on the target machine (``LatencyLUT.build(...).save``),
            or its JSON path. Resource estimates then include ``latency``
            (ms), so searches can constrain it.
        data_preprocessor (dict, optional): Defaults to the architecture's.
        init_cfg (dict, optional): Initialisation config.
        mutable_cfg (str | dict, optional): Older name of ``fix_subnet``
            (read with ``retraining=True``).
        pruner: Older argument; only None is accepted.
        distiller: Older argument; only None is accepted.
    """

    def __init__(self,
                 architecture: Union[dict, nn.Module],
                 mutator: Union[dict, nn.Module] = dict(type='OneShotMutator'),
                 fix_subnet: Optional[SubnetLike] = None,
                 retraining: bool = False,
                 input_shape: Sequence[int] = (3, 224, 224),
                 bn_training_mode: bool = False,
                 latency_lut: Optional[Any] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None,
                 mutable_cfg: Optional[SubnetLike] = None,
                 pruner: Optional[dict] = None,
                 distiller: Optional[dict] = None) -> None:
        super().__init__(architecture, data_preprocessor, init_cfg)
        fix_subnet = older_nas_args(
            type(self).__name__, fix_subnet, mutable_cfg, retraining, pruner,
            distiller)
        self.input_shape = tuple(input_shape)
        if len(self.input_shape) != 3:
            raise ValueError(f'SPOS input_shape is (C, H, W), got '
                             f'{self.input_shape}')
        self.bn_training_mode = bn_training_mode
        self.latency_lut = latency_lut
        self._estimator = None
        if fix_subnet is not None:
            from mmrazor.structures import load_fix_subnet
            fill_mutator_placeholders(self.architecture, mutator)
            load_fix_subnet(self.architecture, fix_subnet,
                            prefix=self.subnet_prefix)
            self.mutator = None
        else:
            if isinstance(mutator, dict):
                mutator = MODELS.build(mutator)
            # Decide on the task model (inside a wrapper, if any), so that
            # the subnets it writes have the keys ``fix_subnet`` loads.
            prefix = self.subnet_prefix.rstrip('.')
            mutator.prepare_from_supernet(
                self.architecture.get_submodule(prefix) if prefix else
                self.architecture)
            self.mutator = mutator

    @property
    def is_supernet(self) -> bool:
        """True while searching (no subnet fixed)."""
        return self.mutator is not None

    def sample_subnet(self) -> Dict[str, Any]:
        """Apply a uniformly random path and return it.

        Returns:
            dict: The sampled choices.
        """
        choices = self.mutator.sample_choices()
        self.mutator.set_choices(choices)
        return choices

    def train_step(self, data: Union[dict, tuple, list],
                   optim_wrapper: Any) -> Dict[str, torch.Tensor]:
        """One step on a freshly sampled path, which stays the current
        choice afterwards (as in the older toolbox, whose ``train_step``
        sampled).

        Args:
            data (dict | tuple | list): A batch from the dataloader.
            optim_wrapper (OptimWrapper): The optimizer wrapper.

        Returns:
            dict: The log variables.
        """
        if not self.is_supernet:
            return super().train_step(data, optim_wrapper)
        self.sample_subnet()
        self.__dict__['_path_sampled'] = True
        try:
            return super().train_step(data, optim_wrapper)
        finally:
            self.__dict__.pop('_path_sampled', None)

    def loss(self, inputs: torch.Tensor, data_samples=None) -> dict:
        """Losses of a random path (or of the fixed subnet).

        Inside :meth:`train_step` the path is the one the step sampled.
        Called on its own (e.g. by a DDP wrapper that does not call
        :meth:`train_step`, or directly) it samples a path for this pass
        and then restores the choices the supernet had, so that calling
        the model does not change its current subnet.

        Args:
            inputs (torch.Tensor): The batch.
            data_samples (list, optional): The annotations.

        Returns:
            dict: The architecture's losses.
        """
        if not self.is_supernet or self.__dict__.get('_path_sampled'):
            return super().loss(inputs, data_samples)
        mutables = [m for members in self.mutator.search_groups.values()
                    for m in members]
        before = [m.current_choice for m in mutables]
        self.sample_subnet()
        try:
            return super().loss(inputs, data_samples)
        finally:
            for mutable, choice in zip(mutables, before):
                if not mutable.is_fixed:
                    mutable.current_choice = choice

    def train(self, mode: bool = True) -> 'SPOS':
        super().train(mode)
        if self.bn_training_mode and not mode:
            for module in self.architecture.modules():
                if isinstance(module, _BatchNorm):
                    module.train()
        return self

    @property
    def estimator(self):
        """A :class:`ResourceEstimator` for ``(1, *input_shape)``."""
        if self._estimator is None:
            from mmrazor.models.task_modules import (LatencyLUT,
                                                     ResourceEstimator)
            lut = self.latency_lut
            if isinstance(lut, (str, Path)):
                lut = LatencyLUT.load(str(lut))
            self._estimator = ResourceEstimator(
                input_shape=(1, ) + self.input_shape, latency_lut=lut)
        return self._estimator

    def estimate_resources(self) -> Dict[str, float]:
        """FLOPs (multiply-adds) and parameters of the current subnet,
        without copying the model, and its latency (ms) predicted from
        ``latency_lut`` when one is given.

        Returns:
            dict: ``{'flops': ..., 'params': ...}`` (+ ``'latency'``).
        """
        result = self.estimator.estimate(self.architecture)
        resources = dict(flops=float(result['flops']),
                         params=float(result['params']))
        if 'latency_lut' in result:
            resources['latency'] = float(result['latency_lut'])
        return resources

    def get_subnet_flops(self) -> float:
        """FLOPs (multiply-adds) of the current subnet.

        Returns:
            float: The count.
        """
        return self.estimate_resources()['flops']
