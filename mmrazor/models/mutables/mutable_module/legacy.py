"""Module mutables under the names of the older toolbox generation.

Each is a thin, registered subclass of the newer core
(:class:`OneShotMutableOP`, :class:`DiffMutableOP`,
:class:`DiffChoiceRoute`) that accepts the older arguments:
``choices`` (candidate configs or modules), ``choice_args`` (arguments
shared by the candidates), ``space_id`` (the alias) and ``num_chosen``.
"""
from typing import Any, Dict, List, Optional

import torch

from mmrazor.registry import MODELS
from .diff_mutable_module import DiffChoiceRoute, DiffMutableOP, gumbel_probs
from .mutable_module import CandidatesType
from .one_shot_mutable_module import OneShotMutableOP


def _older_args(choices: Optional[CandidatesType],
                choice_args: Optional[Dict], kwargs: Dict) -> Dict:
    """Merge the older ``choices``/``choice_args`` with the newer
    ``candidates``/``edges``/``module_kwargs`` given in ``kwargs``."""
    for newer in ('candidates', 'edges'):
        if newer in kwargs:
            if choices is not None:
                raise TypeError(f'give either choices or {newer}, not both')
            choices = kwargs.pop(newer)
    if choices is None:
        raise TypeError('choices (the candidates) are required')
    module_kwargs = dict(kwargs.pop('module_kwargs', None) or {})
    module_kwargs.update(choice_args or {})
    kwargs['module_kwargs'] = module_kwargs
    return choices


@MODELS.register_module()
class MutableOP(OneShotMutableOP):
    """Older name of a choice between operations.

    Args:
        choices (dict | nn.ModuleDict): Choice name -> op config or module.
        choice_args (dict, optional): Arguments shared by all op configs
            (``in_channels``, ``out_channels``, ``stride``).
        space_id (str, optional): Mutables with one ``space_id`` are one
            decision.
        num_chosen (int): Ops kept per decision. Defaults to 1.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 choices: Optional[CandidatesType] = None,
                 choice_args: Optional[Dict] = None,
                 space_id: Optional[str] = None,
                 num_chosen: int = 1,
                 init_cfg: Optional[Dict] = None,
                 **kwargs) -> None:
        choices = _older_args(choices, choice_args, kwargs)
        super().__init__(
            candidates=choices,
            space_id=space_id,
            num_chosen=num_chosen,
            init_cfg=init_cfg,
            **kwargs)


@MODELS.register_module()
class OneShotOP(MutableOP):
    """Older name of :class:`OneShotMutableOP`: runs the ops selected by
    the choice mask (see :meth:`set_choice_mask`), summed."""


@MODELS.register_module()
class DifferentiableOP(DiffMutableOP):
    """Older name of :class:`DiffMutableOP`.

    Args:
        choices (dict | nn.ModuleDict): Choice name -> op config or module.
        choice_args (dict, optional): Arguments shared by all op configs.
        with_arch_param (bool): Whether this op's space has an
            architecture parameter. Defaults to True.
        space_id (str, optional): Mutables with one ``space_id`` share one
            architecture parameter.
        num_chosen (int): Defaults to 1.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 choices: Optional[CandidatesType] = None,
                 choice_args: Optional[Dict] = None,
                 with_arch_param: bool = True,
                 space_id: Optional[str] = None,
                 num_chosen: int = 1,
                 init_cfg: Optional[Dict] = None,
                 **kwargs) -> None:
        choices = _older_args(choices, choice_args, kwargs)
        super().__init__(
            candidates=choices,
            with_arch_param=with_arch_param,
            space_id=space_id,
            num_chosen=num_chosen,
            init_cfg=init_cfg,
            **kwargs)


@MODELS.register_module()
class GumbelOP(DifferentiableOP):
    """:class:`DifferentiableOP` with Gumbel-softmax weights.

    Args:
        choices (dict | nn.ModuleDict): Choice name -> op config or module.
        choice_args (dict, optional): Arguments shared by all op configs.
        tau (float): Temperature. Defaults to 1.0.
        hard (bool): Straight-through one-hot weights. Defaults to True.
        **kwargs: Other arguments of :class:`DifferentiableOP`.
    """

    def __init__(self,
                 choices: Optional[CandidatesType] = None,
                 choice_args: Optional[Dict] = None,
                 tau: float = 1.0,
                 hard: bool = True,
                 **kwargs) -> None:
        super().__init__(choices, choice_args, **kwargs)
        self.tau = tau
        self.hard = hard

    def set_temperature(self, tau: float) -> None:
        """Set the Gumbel-softmax temperature."""
        self.tau = tau

    def compute_arch_probs(self, arch_param: torch.Tensor) -> torch.Tensor:
        return gumbel_probs(arch_param, self.tau, self.hard, self.training)


@MODELS.register_module()
class MutableEdge(DiffChoiceRoute):
    """Older name of a searchable choice of input edges.

    ``forward(inputs)`` takes one tensor per edge (``choices`` in the
    order of the inputs) and sums the chosen edges' outputs.

    Args:
        choices (dict | nn.ModuleDict): Edge name -> module or config.
        space_id (str, optional): Edges with one ``space_id`` are one
            decision.
        num_chosen (int): Edges kept. Defaults to 2.
        with_arch_param (bool): Defaults to False.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 choices: Optional[CandidatesType] = None,
                 space_id: Optional[str] = None,
                 num_chosen: int = 2,
                 with_arch_param: bool = False,
                 init_cfg: Optional[Dict] = None,
                 **kwargs) -> None:
        choices = _older_args(choices, None, kwargs)
        super().__init__(
            edges=choices,
            num_chosen=num_chosen,
            with_arch_param=with_arch_param,
            space_id=space_id,
            init_cfg=init_cfg,
            **kwargs)

    def forward(self, prev_inputs: List[torch.Tensor],
                arch_param: Optional[torch.Tensor] = None) -> Any:
        return super().forward(prev_inputs, arch_param)


@MODELS.register_module()
class DifferentiableEdge(MutableEdge):
    """Older name of :class:`DiffChoiceRoute` (softmax-weighted edges).

    Args:
        choices (dict | nn.ModuleDict): Edge name -> module or config.
        with_arch_param (bool): Whether the edge choice has its own
            architecture parameter. Defaults to False.
        **kwargs: Other arguments of :class:`MutableEdge`.
    """


@MODELS.register_module()
class GumbelEdge(DifferentiableEdge):
    """:class:`DifferentiableEdge` with Gumbel-softmax weights.

    Args:
        choices (dict | nn.ModuleDict): Edge name -> module or config.
        tau (float): Temperature. Defaults to 1.0.
        hard (bool): Straight-through one-hot weights. Defaults to True.
        with_arch_param (bool): Defaults to True.
        **kwargs: Other arguments of :class:`MutableEdge`.
    """

    def __init__(self,
                 choices: Optional[CandidatesType] = None,
                 tau: float = 1.0,
                 hard: bool = True,
                 with_arch_param: bool = True,
                 **kwargs) -> None:
        super().__init__(choices, with_arch_param=with_arch_param, **kwargs)
        self.tau = tau
        self.hard = hard

    def set_temperature(self, tau: float) -> None:
        """Set the Gumbel-softmax temperature."""
        self.tau = tau

    def compute_arch_probs(self, arch_param: torch.Tensor) -> torch.Tensor:
        return gumbel_probs(arch_param, self.tau, self.hard, self.training)
