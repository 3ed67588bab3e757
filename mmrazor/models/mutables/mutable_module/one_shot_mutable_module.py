"""One-shot module mutables: one sampled path per forward."""
from abc import abstractmethod
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from mmrazor.registry import MODELS
from .mutable_module import (CandidatesType, ChoiceType, MutableModule,
                             build_candidates)


class OneShotMutableModule(MutableModule):
    """A module mutable of single-path one-shot search.

    ``forward`` dispatches on the state: fixed -> :meth:`forward_fixed`;
    a current choice -> :meth:`forward_choice`; no choice ->
    :meth:`forward_all` (every candidate, e.g. for FLOPs of the whole
    space).
    """

    single_path = True

    @abstractmethod
    def sample_choice(self) -> ChoiceType:
        """A random choice (not applied; the caller sets it)."""

    @abstractmethod
    def forward_fixed(self, x: Any) -> Any:
        """Forward of the fixed mutable."""

    @abstractmethod
    def forward_choice(self, x: Any, choice: ChoiceType) -> Any:
        """Forward of ``choice``."""

    @abstractmethod
    def forward_all(self, x: Any) -> Any:
        """Forward through every candidate (outputs summed)."""

    def forward(self, x: Any) -> Any:
        if self.is_fixed:
            return self.forward_fixed(x)
        if self.current_choice is None:
            return self.forward_all(x)
        return self.forward_choice(x, self.current_choice)


@MODELS.register_module()
class OneShotMutableOP(OneShotMutableModule):
    """Choose one of several candidate operations, sampled uniformly.

    Args:
        candidates (dict | nn.ModuleDict): Choice name -> config dict (built
            with ``MODELS``, ``module_kwargs`` merged in) or module.
        module_kwargs (dict, optional): Arguments shared by all candidate
            configs (``in_channels``, ``out_channels``, ``stride``, ...).
        alias (str, optional): Name shared by mutables of one decision.
        num_chosen (int): Candidates kept per decision (outputs summed).
            Defaults to 1.
        space_id (str, optional): Older name of ``alias``.
        init_cfg (dict, optional): Initialisation config.

    Example:
        >>> op = OneShotMutableOP(
        ...     candidates=dict(
        ...         k3=dict(type='ShuffleBlock', kernel_size=3),
        ...         k5=dict(type='ShuffleBlock', kernel_size=5)),
        ...     module_kwargs=dict(in_channels=32, out_channels=32))
        >>> op.current_choice = 'k5'
        >>> op.fix_chosen('k5')      # drops 'k3'
    """

    def __init__(self,
                 candidates: CandidatesType,
                 module_kwargs: Optional[Dict] = None,
                 alias: Optional[str] = None,
                 init_cfg: Optional[Dict] = None,
                 num_chosen: int = 1,
                 space_id: Optional[str] = None) -> None:
        super().__init__(
            space_id=space_id,
            num_chosen=num_chosen,
            module_kwargs=module_kwargs,
            alias=alias,
            init_cfg=init_cfg)
        self.candidates = build_candidates(candidates, self.module_kwargs)
        if num_chosen > len(self.candidates):
            raise ValueError(f'num_chosen={num_chosen} exceeds the '
                             f'{len(self.candidates)} candidates')

    def sample_choice(self) -> ChoiceType:
        return self.random_choice()

    def _run(self, x: Any, names: Sequence[str]) -> Any:
        out = self.candidates[names[0]](x)
        for name in names[1:]:
            out = out + self.candidates[name](x)
        return out

    def forward_fixed(self, x: Any) -> Any:
        return self._run(x, self.chosen_names())

    def forward_choice(self, x: Any, choice: ChoiceType) -> Any:
        """Forward of the candidate(s) of ``choice``.

        Args:
            x (Any): The input.
            choice (str | list[str]): A valid choice (not None: use
                :meth:`forward_all` to run every candidate).

        Raises:
            InvalidChoiceError: ``choice`` is None or not a valid choice.
        """
        self.validate_choice(choice)
        return self._run(x, self.chosen_names(self.normalize_choice(choice)))

    def forward_all(self, x: Any) -> Any:
        return self._run(x, self.choices)


@MODELS.register_module()
class OneShotProbMutableOP(OneShotMutableOP):
    """:class:`OneShotMutableOP` sampling by given probabilities.

    Args:
        candidates (dict | nn.ModuleDict): As in :class:`OneShotMutableOP`.
        choice_probs (list[float]): One probability per candidate, in the
            order of ``candidates``; they must sum to 1.
        **kwargs: Other arguments of :class:`OneShotMutableOP`.
    """

    def __init__(self, candidates: CandidatesType,
                 choice_probs: Sequence[float], **kwargs) -> None:
        super().__init__(candidates, **kwargs)
        probs = [float(p) for p in choice_probs]
        if len(probs) != len(self.candidates):
            raise ValueError(f'choice_probs has {len(probs)} entries for '
                             f'{len(self.candidates)} candidates')
        if any(p < 0 for p in probs) or abs(sum(probs) - 1.0) > 1e-6:
            raise ValueError('choice_probs must be non-negative and sum to '
                             f'1, got {probs}')
        self._probs = dict(zip(self.candidates.keys(), probs))

    @property
    def choice_probs(self) -> List[float]:
        """Sampling probabilities of the remaining choices."""
        return [self._probs[n] for n in self.choices]

    def sample_choice(self) -> ChoiceType:
        probs = np.asarray(self.choice_probs, dtype=np.float64)
        probs = probs / probs.sum()
        idx = np.random.choice(
            len(probs), self.num_chosen, replace=False, p=probs)
        names = [self.choices[i] for i in idx]
        return names[0] if self.num_chosen == 1 else names


