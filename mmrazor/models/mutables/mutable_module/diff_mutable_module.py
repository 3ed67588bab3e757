"""Differentiable module mutables: softmax-weighted mixtures (DARTS)."""
from typing import Any, Dict, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmrazor.registry import MODELS
from ..base_mutable import DumpChosen
from .mutable_module import (CandidatesType, ChoiceType, MutableModule,
                             build_candidates)


class DiffMutableModule(MutableModule):
    """A module mutable whose forward mixes candidates by architecture
    weights.

    The architecture parameter normally belongs to a mutator, which builds
    one per decision (alias / space id) and attaches it with
    :meth:`set_arch_param`; it can also be passed to ``forward`` directly,
    or set as ``forward``'s default with :meth:`set_forward_args` (the
    older toolbox's way). ``forward(x, arch_param=None)`` then runs, in
    order of precedence:

    * fixed: :meth:`forward_fixed`, the chosen candidate(s);
    * an architecture parameter (given, set by :meth:`set_forward_args`, or
      attached): :meth:`forward_arch_param`, the mixture weighted by
      :meth:`compute_arch_probs`;
    * a current choice: the chosen candidate(s);
    * otherwise :meth:`forward_all`, every candidate summed.

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
        num_chosen (int, optional): Candidates kept per decision (None: any
            number). Defaults to 1.
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
                 num_chosen: Optional[int] = 1,
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
        if num_chosen is not None and num_chosen > len(self.candidates):
            raise ValueError(f'num_chosen={num_chosen} exceeds the '
                             f'{len(self.candidates)} candidates')
        # Attached by a mutator / set as forward's default; kept out of
        # this module's parameters.
        self.__dict__['_arch_param'] = None
        self.__dict__['_forward_arch_param'] = None
        if is_fixed:
            if num_chosen is not None and len(self.candidates) != num_chosen:
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

    def _check_arch_param(self, arch_param: Optional[torch.Tensor]) -> None:
        if arch_param is not None and arch_param.numel() != self.num_choices:
            raise ValueError(f'{self._name()}: arch_param has '
                             f'{arch_param.numel()} entries for '
                             f'{self.num_choices} choices')

    def set_arch_param(self, arch_param: Optional[torch.Tensor]) -> None:
        """Attach the (shared) architecture parameter used by ``forward``.

        Args:
            arch_param (Tensor, optional): One entry per choice; None
                detaches.
        """
        self._check_arch_param(arch_param)
        self.__dict__['_arch_param'] = arch_param

    def set_forward_args(self, arch_param: Optional[torch.Tensor]) -> None:
        """Make ``arch_param`` the default of ``forward``'s ``arch_param``
        (the older toolbox's way of passing it).

        Unlike :meth:`set_arch_param` it does not make the parameter this
        mutable's own: :meth:`dump_chosen` does not read it.

        Args:
            arch_param (Tensor, optional): One entry per choice; None
                clears the default.
        """
        self._check_arch_param(arch_param)
        self.__dict__['_forward_arch_param'] = arch_param

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
        """The :attr:`num_kept` choices of largest weight, skipping names in
        ``ignore`` (when something else is left).

        Args:
            arch_param (Tensor, optional): One entry per choice. Defaults
                to the attached one.
            ignore (tuple): Names to skip.

        Returns:
            str | list[str]: A choice.
        """
        arch_param = self.arch_param if arch_param is None else arch_param
        if arch_param is None:
            raise RuntimeError(f'{self._name()} has no architecture '
                               'parameter')
        self._check_arch_param(arch_param)
        # Softmax is monotone: rank by the logits themselves.
        probs = arch_param.detach().flatten().tolist()
        ranked = sorted(range(len(probs)), key=lambda i: -probs[i])
        kept = [i for i in ranked if self.choices[i] not in ignore]
        if len(kept) < self.num_kept:
            kept = ranked
        names = [self.choices[i] for i in kept[:self.num_kept]]
        return names[0] if self.num_chosen == 1 else names

    def sample_choice(self, arch_param: Optional[torch.Tensor] = None
                      ) -> ChoiceType:
        """The choice the architecture parameter selects (not applied).

        Args:
            arch_param (Tensor, optional): One entry per choice. Defaults
                to the attached one.

        Returns:
            str | list[str]: The strongest choice; a fixed mutable gives
            its fixed choice.
        """
        if self.is_fixed:
            return self.dump_chosen().chosen
        return self.strongest_choice(arch_param)

    def dump_chosen(self) -> DumpChosen:
        """The current choice, or the strongest by the attached
        architecture parameter when none is set.

        Raises:
            InvalidChoiceError: Neither a current choice nor an attached
                architecture parameter.
        """
        if self.current_choice is None and self.arch_param is not None:
            return DumpChosen(
                chosen=self.strongest_choice(),
                meta=dict(all_choices=self.choices))
        return super().dump_chosen()

    def fix_chosen(self, chosen: ChoiceType) -> None:
        super().fix_chosen(chosen)
        self.__dict__['_arch_param'] = None
        self.__dict__['_forward_arch_param'] = None

    # ------------------------------------------------------------ forward
    def _uses_arch_param(self) -> bool:
        """Whether ``forward`` weighs candidates by an architecture
        parameter (always for ops)."""
        return True

    def forward(self, x: Any, arch_param: Optional[torch.Tensor] = None
                ) -> Any:
        if self.is_fixed:
            return self.forward_fixed(x)
        if arch_param is None:
            arch_param = self.__dict__['_forward_arch_param']
        if arch_param is None:
            arch_param = self.arch_param
        if arch_param is not None and self._uses_arch_param():
            if self.fix_threshold < 1.0:
                probs = self.compute_arch_probs(arch_param.detach())
                if float(probs.max()) >= self.fix_threshold:
                    self.fix_chosen(self.strongest_choice(arch_param))
                    return self.forward_fixed(x)
            return self.forward_arch_param(x, arch_param)
        if self.current_choice is not None:
            return self.forward_choice(x, self.current_choice)
        return self.forward_all(x)

    def forward_fixed(self, x: Any) -> Any:
        """Forward of the fixed mutable: its chosen candidate(s) summed.

        Raises:
            RuntimeError: The mutable is not fixed.
        """
        if not self.is_fixed:
            raise RuntimeError(f'{self._name()} is not fixed; call '
                               'fix_chosen before forward_fixed')
        return self.forward_choice(x, self.current_choice)

    def forward_all(self, x: Any) -> Any:
        """Every candidate's output, summed (e.g. to count FLOPs)."""
        return self.forward_choice(x, self.choices)

    def forward_arch_param(self, x: Any, arch_param: torch.Tensor) -> Any:
        """The probability-weighted sum of all candidates' outputs.

        Args:
            x (Any): The input.
            arch_param (Tensor): One entry per choice.
        """
        self._check_arch_param(arch_param)
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
    the architecture probabilities while searching (only with
    ``with_arch_param=True``; otherwise an architecture parameter is
    ignored, as in the older toolbox), or the chosen edges.

    A choice is a list of edge names: exactly ``num_chosen`` of them, or
    any non-empty subset with ``num_chosen=None`` (then sampling and
    :meth:`strongest_choice` keep 2). A fixed route takes either one input
    per original edge or one per kept edge (in the order of the original
    inputs).

    Args:
        edges (dict | nn.ModuleDict): Edge name -> module (or config), in
            the order of the inputs.
        num_chosen (int, optional): Edges kept per decision; None accepts
            any number. Defaults to None.
        with_arch_param (bool): Whether the route has its own architecture
            parameter (DARTS ranks edges by their ops' weights instead).
            Defaults to False.
        alias (str, optional): Name shared by routes of one decision.
        **kwargs: Other arguments of :class:`DiffMutableModule`.
    """

    def __init__(self,
                 edges: CandidatesType,
                 num_chosen: Optional[int] = None,
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

    def _uses_arch_param(self) -> bool:
        return self.with_arch_param

    def _candidate_output(self, inputs: Sequence[torch.Tensor],
                          name: str) -> torch.Tensor:
        idx = self._input_index[name]
        if idx >= len(inputs):
            raise ValueError(f'{self._name()}: edge {name!r} reads input '
                             f'{idx}, got only {len(inputs)} inputs')
        return self.candidates[name](inputs[idx])

    def forward_fixed(self, inputs: Sequence[torch.Tensor]) -> torch.Tensor:
        """The sum of the kept edges' outputs.

        Args:
            inputs (Sequence[Tensor]): One input per original edge, or one
                per kept edge (in the order of the original inputs).

        Raises:
            RuntimeError: The route is not fixed.
            ValueError: Too few inputs.
        """
        if not self.is_fixed:
            raise RuntimeError(f'{self._name()} is not fixed; call '
                               'fix_chosen before forward_fixed')
        names = self.choices  # the kept edges, in the order of the inputs
        if len(inputs) == len(names) < len(self._input_index):
            out = self.candidates[names[0]](inputs[0])
            for name, x in zip(names[1:], inputs[1:]):
                out = out + self.candidates[name](x)
            return out
        return self.forward_choice(inputs, self.current_choice)

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
