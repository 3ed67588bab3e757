"""Differentiable module mutables: softmax-weighted mixtures (DARTS)."""
from typing import Any, Dict, List, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmrazor.registry import MODELS
from .mutable_module import (CandidatesType, ChoiceType, MutableModule,
                             build_candidates)


class DiffMutableModule(MutableModule):
    """A module mutable whose forward mixes candidates by architecture
    weights.

    The architecture parameter normally belongs to a mutator, which builds
    one per decision (alias / space id) and attaches it with
    :meth:`set_arch_param`; it can also be passed to ``forward`` directly.
    ``forward(x, arch_param=None)`` then runs, in order of precedence:

    * fixed: the chosen candidate(s);
    * an architecture parameter (given or attached): the mixture weighted
      by :meth:`compute_arch_probs`;
    * a current choice: the chosen candidate(s);
    * otherwise every candidate, summed.

    Args:
        candidates (dict | nn.ModuleDict): Choice name -> config or module.
        fix_threshold (float): Fix the choice to the strongest candidate as
            soon as its probability reaches this value (1.0 never fixes
            during search). Defaults to 1.0.
        is_fixed (bool): Build the mutable already fixed; it must then have
            exactly ``num_chosen`` candidates. Defaults to False.
        with_arch_param (bool): Whether this mutable wants an architecture
            parameter. Defaults to True.
        module_kwargs (dict, optional): Arguments for every candidate.
        alias (str, optional): Name shared by mutables of one decision.
        num_chosen (int): Candidates kept per decision. Defaults to 1.
        space_id (str, optional): Older name of ``alias``.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 candidates: CandidatesType,
                 fix_threshold: float = 1.0,
                 is_fixed: bool = False,
                 with_arch_param: bool = True,
                 module_kwargs: Optional[Dict] = None,
                 alias: Optional[str] = None,
                 num_chosen: int = 1,
                 space_id: Optional[str] = None,
                 init_cfg: Optional[Dict] = None) -> None:
        super().__init__(
            space_id=space_id,
            num_chosen=num_chosen,
            module_kwargs=module_kwargs,
            alias=alias,
            init_cfg=init_cfg)
        if not 0.0 < fix_threshold <= 1.0:
            raise ValueError(f'fix_threshold must be in (0, 1], got '
                             f'{fix_threshold}')
        self.fix_threshold = fix_threshold
        self.with_arch_param = with_arch_param
        self.candidates = build_candidates(candidates, self.module_kwargs)
        if num_chosen > len(self.candidates):
            raise ValueError(f'num_chosen={num_chosen} exceeds the '
                             f'{len(self.candidates)} candidates')
        # Attached by a mutator; kept out of this module's parameters.
        self.__dict__['_arch_param'] = None
        if is_fixed:
            if len(self.candidates) != num_chosen:
                raise ValueError(
                    'is_fixed=True needs exactly the chosen candidate(s), '
                    f'got {self.choices}')
            self.fix_chosen(self.choices[0] if num_chosen == 1 else
                            self.choices)

    # ------------------------------------------------ architecture param
    def build_arch_param(self) -> Optional[nn.Parameter]:
        """A fresh architecture parameter for this decision (small random
        values, one per choice), or None with ``with_arch_param=False``."""
        if not self.with_arch_param:
            return None
        return nn.Parameter(1e-3 * torch.randn(self.num_choices))

    def set_arch_param(self, arch_param: Optional[torch.Tensor]) -> None:
        """Attach the (shared) architecture parameter used by ``forward``.

        Args:
            arch_param (Tensor, optional): One entry per choice; None
                detaches.
        """
        if arch_param is not None and arch_param.numel() != self.num_choices:
            raise ValueError(f'{self._name()}: arch_param has '
                             f'{arch_param.numel()} entries for '
                             f'{self.num_choices} choices')
        self.__dict__['_arch_param'] = arch_param

    @property
    def arch_param(self) -> Optional[torch.Tensor]:
        """The attached architecture parameter, if any."""
        return self.__dict__['_arch_param']

    def compute_arch_probs(self, arch_param: torch.Tensor) -> torch.Tensor:
        """Mixture weights from the architecture parameter (softmax).

        Args:
            arch_param (Tensor): One entry per choice.

        Returns:
            Tensor: Non-negative weights summing to 1.
        """
        return F.softmax(arch_param, dim=-1)

    def strongest_choice(self, arch_param: Optional[torch.Tensor] = None,
                         ignore: tuple = ()) -> ChoiceType:
        """The ``num_chosen`` choices of largest weight, skipping names in
        ``ignore`` (when something else is left)."""
        arch_param = self.arch_param if arch_param is None else arch_param
        if arch_param is None:
            raise RuntimeError(f'{self._name()} has no architecture '
                               'parameter')
        # Softmax is monotone: rank by the logits themselves.
        probs = arch_param.detach().flatten().tolist()
        ranked = sorted(range(len(probs)), key=lambda i: -probs[i])
        kept = [i for i in ranked if self.choices[i] not in ignore]
        if len(kept) < self.num_chosen:
            kept = ranked
        names = [self.choices[i] for i in kept[:self.num_chosen]]
        return names[0] if self.num_chosen == 1 else names

    def dump_chosen(self) -> Optional[ChoiceType]:
        """The current choice, or the strongest by the architecture
        parameter when none is set."""
        if self.current_choice is None and self.arch_param is not None:
            return self.strongest_choice()
        return super().dump_chosen()

    def fix_chosen(self, chosen: ChoiceType) -> None:
        super().fix_chosen(chosen)
        self.__dict__['_arch_param'] = None

    # ------------------------------------------------------------ forward
    def forward(self, x: Any, arch_param: Optional[torch.Tensor] = None
                ) -> Any:
        if self.is_fixed:
            return self.forward_choice(x, self.current_choice)
        if arch_param is None:
            arch_param = self.arch_param
        if arch_param is not None:
            if self.fix_threshold < 1.0:
                probs = self.compute_arch_probs(arch_param.detach())
                if float(probs.max()) >= self.fix_threshold:
                    self.fix_chosen(self.strongest_choice(arch_param))
                    return self.forward_choice(x, self.current_choice)
            return self.forward_arch_param(x, arch_param)
        if self.current_choice is not None:
            return self.forward_choice(x, self.current_choice)
        return self.forward_choice(x, self.choices)

    def forward_arch_param(self, x: Any, arch_param: torch.Tensor) -> Any:
        """The probability-weighted sum of all candidates' outputs."""
        probs = self.compute_arch_probs(arch_param)
        out = None
        for i, name in enumerate(self.choices):
            y = self._candidate_output(x, name) * probs[i]
            out = y if out is None else out + y
        return out

    def forward_choice(self, x: Any, choice: ChoiceType) -> Any:
        """The sum of the outputs of the candidates in ``choice``."""
        names = choice if isinstance(choice, list) else [choice]
        out = self._candidate_output(x, names[0])
        for name in names[1:]:
            out = out + self._candidate_output(x, name)
        return out

    def _candidate_output(self, x: Any, name: str) -> Any:
        return self.candidates[name](x)


@MODELS.register_module()
class DiffMutableOP(DiffMutableModule):
    """A mixed operation: ``sum_i softmax(alpha)_i * op_i(x)`` (DARTS).

    Args:
        candidates (dict | nn.ModuleDict): Choice name -> config or module.
        fix_threshold (float): See :class:`DiffMutableModule`.
            Defaults to 1.0.
        is_fixed (bool): See :class:`DiffMutableModule`. Defaults to False.
        **kwargs: Other arguments of :class:`DiffMutableModule`.
    """

    def __init__(self,
                 candidates: CandidatesType,
                 fix_threshold: float = 1.0,
                 is_fixed: bool = False,
                 **kwargs) -> None:
        super().__init__(candidates, fix_threshold, is_fixed, **kwargs)


@MODELS.register_module()
class DiffChoiceRoute(DiffMutableModule):
    """A searchable choice of input edges (the inputs of a DARTS node).

    ``edges`` holds one module per input; ``forward(inputs)`` applies edge
    ``i`` to ``inputs[i]`` and sums the outputs: all of them weighted by
    the architecture probabilities while searching, or the ``num_chosen``
    chosen edges.

    Args:
        edges (dict | nn.ModuleDict): Edge name -> module (or config), in
            the order of the inputs.
        num_chosen (int): Edges kept per decision. Defaults to 2.
        with_arch_param (bool): Whether the route has its own architecture
            parameter (DARTS ranks edges by their ops' weights instead).
            Defaults to False.
        alias (str, optional): Name shared by routes of one decision.
        **kwargs: Other arguments of :class:`DiffMutableModule`.
    """

    def __init__(self,
                 edges: CandidatesType,
                 num_chosen: int = 2,
                 with_arch_param: bool = False,
                 alias: Optional[str] = None,
                 **kwargs) -> None:
        super().__init__(
            edges,
            with_arch_param=with_arch_param,
            num_chosen=num_chosen,
            alias=alias,
            **kwargs)
        self._input_index = {n: i for i, n in enumerate(self.candidates)}

    def _candidate_output(self, inputs: List[torch.Tensor],
                          name: str) -> torch.Tensor:
        idx = self._input_index[name]
        if idx >= len(inputs):
            raise ValueError(f'{self._name()}: edge {name!r} reads input '
                             f'{idx}, got only {len(inputs)} inputs')
        return self.candidates[name](inputs[idx])

    def to_static_op(self) -> nn.Module:
        """A fixed route stays itself (it takes a list of inputs)."""
        if not self.is_fixed:
            raise RuntimeError(f'{self._name()} is not fixed')
        return self


@MODELS.register_module()
class GumbelChoiceRoute(DiffChoiceRoute):
    """:class:`DiffChoiceRoute` with Gumbel-softmax weights.

    Args:
        edges (dict | nn.ModuleDict): Edge name -> module.
        tau (float): Gumbel-softmax temperature. Defaults to 1.0.
        hard (bool): Straight-through one-hot weights. Defaults to True.
        with_arch_param (bool): Defaults to True.
        **kwargs: Other arguments of :class:`DiffChoiceRoute`.
    """

    def __init__(self,
                 edges: CandidatesType,
                 tau: float = 1.0,
                 hard: bool = True,
                 with_arch_param: bool = True,
                 **kwargs) -> None:
        super().__init__(edges, with_arch_param=with_arch_param, **kwargs)
        self.tau = tau
        self.hard = hard

    def set_temperature(self, tau: float) -> None:
        """Set the Gumbel-softmax temperature."""
        self.tau = tau

    def compute_arch_probs(self, arch_param: torch.Tensor) -> torch.Tensor:
        return gumbel_probs(arch_param, self.tau, self.hard, self.training)


def gumbel_probs(arch_param: torch.Tensor, tau: float, hard: bool,
                 training: bool) -> torch.Tensor:
    """Gumbel-softmax weights while training, softmax otherwise.

    Args:
        arch_param (Tensor): Logits, one per choice.
        tau (float): Temperature.
        hard (bool): Straight-through one-hot weights.
        training (bool): Sample only in training mode.

    Returns:
        Tensor: Mixture weights.
    """
    if training:
        return F.gumbel_softmax(arch_param, tau=tau, hard=hard, dim=-1)
    return F.softmax(arch_param, dim=-1)
