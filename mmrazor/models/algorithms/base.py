"""The base class of every mmrazor algorithm."""
import contextlib
from typing import Any, Dict, List, Optional, Union

import torch
from mmengine.model import BaseModel
from torch import nn

from mmrazor.registry import MODELS

#: Attribute under which a DDP wrapper puts itself on the algorithm while
#: the algorithm's own ``train_step`` runs (outside nn.Module registration;
#: see :class:`mmrazor.core.RazorDistributedDataParallel`).
DDP_WRAPPER_ATTR = '_razor_ddp_wrapper'


@MODELS.register_module()
class BaseAlgorithm(BaseModel):
    """An algorithm holds the ``architecture`` it compresses or searches.

    NAS, pruning and distillation algorithms subclass it. By itself it trains
    and evaluates the architecture unchanged: :meth:`forward` delegates to
    it, so losses and predictions are the architecture's.

    Args:
        architecture (dict | nn.Module): The model, or its config (any
            registry scope, e.g. ``dict(type='MMClsArchitecture', ...)`` or
            ``dict(type='mmcls.ImageClassifier', ...)``).
        data_preprocessor (dict | nn.Module, optional): The data
            preprocessor; by default the architecture's own.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 architecture: Union[dict, nn.Module],
                 data_preprocessor: Optional[Union[dict, nn.Module]] = None,
                 init_cfg: Optional[dict] = None) -> None:
        if isinstance(architecture, dict):
            architecture = MODELS.build(architecture)
        elif not isinstance(architecture, nn.Module):
            raise TypeError(
                f'{type(self).__name__}: `architecture` must be a config dict '
                f'or an nn.Module, got {type(architecture)}')
        if data_preprocessor is None:
            data_preprocessor = getattr(architecture, 'data_preprocessor',
                                        None)
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.architecture = architecture

    def forward(self,
                inputs: torch.Tensor,
                data_samples: Optional[List[Any]] = None,
                mode: str = 'tensor') -> Any:
        """mmengine's entry point.

        Args:
            inputs (Tensor): Preprocessed inputs.
            data_samples (list, optional): Annotations of the inputs.
            mode (str): ``'loss'`` (dict of losses), ``'predict'`` (data
                samples with predictions) or ``'tensor'`` (raw outputs).

        Returns:
            dict | list | Tensor: Depends on ``mode``.
        """
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self._predict(inputs, data_samples)
        if mode == 'tensor':
            return self._forward(inputs, data_samples)
        raise RuntimeError(f'Invalid mode {mode!r}: use "loss", "predict" '
                           'or "tensor"')

    @property
    def subnet_prefix(self) -> str:
        """Module-path prefix of the task model inside ``architecture``.

        Subnet files name module paths inside the task model
        (``backbone.layers.0.0``); an architecture wrapper such as
        ``MMClsArchitecture`` holds that model as ``model``.

        Returns:
            str: ``'model.'`` for a wrapper, else ``''``.
        """
        inner = getattr(self.architecture, 'model', None)
        return 'model.' if isinstance(inner, nn.Module) else ''

    def _run_forward(self,
                     data: Union[dict, tuple, list],
                     mode: str,
                     sync_grads: bool = True) -> Any:
        """One forward pass, through the DDP wrapper when there is one.

        Algorithms whose ``train_step`` runs several forward/backward passes
        (DARTS, AutoSlim, distillation) call this for every pass. Trained
        distributed, the pass then goes through DDP's ``forward`` so that
        its backward synchronises gradients; with ``sync_grads=False`` the
        gradients only accumulate locally (``DistributedDataParallel.
        no_sync``) and are all-reduced by a later synchronised pass.

        Args:
            data (dict | tuple | list): Preprocessed data.
            mode (str): ``'loss'``, ``'predict'`` or ``'tensor'``.
            sync_grads (bool): Synchronise this pass's gradients.
                Defaults to True.

        Returns:
            The output of ``forward`` in ``mode``.
        """
        wrapper = self.__dict__.get(DDP_WRAPPER_ATTR)
        if wrapper is None:
            return super()._run_forward(data, mode)
        context = (contextlib.nullcontext() if sync_grads
                   else wrapper.no_sync())
        with context:
            return wrapper._run_forward(data, mode)

    def loss(self,
             inputs: torch.Tensor,
             data_samples: Optional[List[Any]] = None
             ) -> Dict[str, torch.Tensor]:
        """The training losses (by default the architecture's).

        Args:
            inputs (Tensor): Preprocessed inputs.
            data_samples (list, optional): Annotations.

        Returns:
            dict[str, Tensor]: The losses.
        """
        return self.architecture(inputs, data_samples, mode='loss')

    def _predict(self,
                 inputs: torch.Tensor,
                 data_samples: Optional[List[Any]] = None) -> Any:
        return self.architecture(inputs, data_samples, mode='predict')

    def _forward(self,
                 inputs: torch.Tensor,
                 data_samples: Optional[List[Any]] = None) -> Any:
        return self.architecture(inputs, data_samples, mode='tensor')


def older_nas_args(algorithm: str,
                   fix_subnet: Any = None,
                   mutable_cfg: Any = None,
                   retraining: bool = False,
                   pruner: Any = None,
                   distiller: Any = None) -> Any:
    """Translate the older NAS constructor (``retraining``, ``mutable_cfg``,
    ``pruner``, ``distiller``) onto ``fix_subnet``.

    ``mutable_cfg`` (the older subnet file) with ``retraining=True`` is
    loaded and fixed at build, as ``fix_subnet``; ``pruner`` and
    ``distiller`` were accepted by every older algorithm and may only be
    None for a NAS algorithm.

    Args:
        algorithm (str): The algorithm's name, for messages.
        fix_subnet: The newer argument.
        mutable_cfg: The older one.
        retraining (bool): Whether the subnet is retrained.
        pruner: Must be None.
        distiller: Must be None.

    Returns:
        The subnet to fix (None: search the supernet).
    """
    for key, value in (('pruner', pruner), ('distiller', distiller)):
        if value is not None:
            raise ValueError(
                f'{algorithm} does not take a {key} (the older toolbox '
                f'accepted {key}=None here); for distillation use '
                'GeneralDistill, for pruning AutoSlim')
    if mutable_cfg is not None:
        if fix_subnet is not None:
            raise ValueError(f'{algorithm} got both fix_subnet and its older '
                             'name mutable_cfg; give one')
        if not retraining:
            raise ValueError(
                f'{algorithm} got mutable_cfg with retraining=False; the '
                'older toolbox fixed mutable_cfg only when retraining: set '
                'retraining=True (or give the subnet as fix_subnet)')
        fix_subnet = mutable_cfg
    if retraining and fix_subnet is None:
        raise ValueError(f'{algorithm}(retraining=True) needs the subnet to '
                         'retrain: fix_subnet (older name: mutable_cfg), '
                         'e.g. the YAML written by the search')
    return fix_subnet


def fill_mutator_placeholders(model: nn.Module, mutator: Any) -> None:
    """Fill the placeholders of ``model`` from the ``placeholder_mapping``
    of ``mutator`` (a config or a mutator), as a fixed subnet is loaded
    without preparing the mutator: the subnet's keys are the decisions of
    the filled search space.

    Args:
        model (nn.Module): The supernet.
        mutator (dict | nn.Module | None): The mutator or its config.
    """
    from mmrazor.models.mutables import fill_placeholders
    mapping = mutator.get('placeholder_mapping') if isinstance(
        mutator, dict) else getattr(mutator, 'placeholder_mapping', None)
    if mapping:
        fill_placeholders(model, mapping)
