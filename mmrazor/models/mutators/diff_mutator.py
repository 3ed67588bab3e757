"""Mutators of differentiable search (DARTS and relatives)."""
from abc import abstractmethod
from typing import Dict, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmrazor.models.mutables.mutable_module import (DiffChoiceRoute,
                                                    DiffMutableModule)
from mmrazor.registry import MODELS
from .base_mutator import BaseMutator, ChoicesType


class DifferentiableMutator(BaseMutator):
    """Owns the architecture parameters of differentiable mutables.

    :meth:`prepare_from_supernet` builds ONE ``nn.Parameter`` per decision
    (alias / ``space_id``; a mutable without alias is its own decision) and
    makes every mutable of that decision use it in ``forward``. The
    parameters live in :attr:`arch_params` (this module's parameters, for
    the architecture optimizer), not in the supernet.

    Args:
        placeholder_mapping (dict, optional): ``{group: mutable config}``
            filling placeholders (see :class:`BaseMutator`).
        init_cfg (dict, optional): Initialisation config.
    """

    mutable_class = DiffMutableModule

    def __init__(self,
                 placeholder_mapping: Optional[Dict[str, Dict]] = None,
                 init_cfg: Optional[Dict] = None) -> None:
        super().__init__(
            placeholder_mapping=placeholder_mapping, init_cfg=init_cfg)
        self.arch_params = nn.ParameterDict()
        self._param_names: Dict[str, str] = {}

    def prepare_from_supernet(self, supernet: nn.Module) -> None:
        """Collect the decisions, build their architecture parameters and
        attach them to the mutables.

        Args:
            supernet (nn.Module): The model holding the mutables.
        """
        super().prepare_from_supernet(supernet)
        self.arch_params = self.build_arch_params(supernet)
        self.modify_supernet_forward(supernet)

    @staticmethod
    def _param_name(key: str) -> str:
        # ParameterDict keys cannot hold dots.
        return key.replace('.', '__')

    def build_arch_params(self, supernet: Optional[nn.Module] = None
                          ) -> nn.ParameterDict:
        """One architecture parameter per decision that wants one.

        Args:
            supernet (nn.Module, optional): Unused; the decisions were
                collected by :meth:`prepare_from_supernet`.

        Returns:
            nn.ParameterDict: Parameter name -> parameter.
        """
        params = nn.ParameterDict()
        self._param_names = {}
        for key, members in self.search_groups.items():
            # only differentiable mutables build one (NasMutator also
            # decides others)
            build = getattr(members[0], 'build_arch_param', None)
            param = None if build is None else build()
            if param is None:
                continue
            name = self._param_name(key)
            self._param_names[key] = name
            params[name] = param
        return params

    def modify_supernet_forward(self,
                                supernet: Optional[nn.Module] = None) -> None:
        """Make every mutable's forward use its decision's parameter."""
        for key, members in self.search_groups.items():
            param = self.arch_param_of(key)
            for mutable in members:
                if hasattr(mutable, 'set_arch_param'):
                    mutable.set_arch_param(param)

    def arch_param_of(self, key: str) -> Optional[nn.Parameter]:
        """The architecture parameter of decision ``key`` (None if it has
        none)."""
        name = self._param_names.get(key)
        return None if name is None else self.arch_params[name]

    @abstractmethod
    def search_subnet(self) -> ChoicesType:
        """The subnet the architecture parameters currently select,
        ``{key: choice}``."""

    @property
    def current_choices(self) -> ChoicesType:
        """Choices set explicitly, else those the parameters select."""
        searched = None
        choices = {}
        for key, members in self.search_groups.items():
            choice = members[0].current_choice
            if choice is None:
                if searched is None:
                    searched = self.search_subnet()
                choice = searched[key]
            choices[key] = choice
        return choices

    def sample_choices(self) -> ChoicesType:
        """The strongest choices (differentiable search does not sample)."""
        return self.search_subnet()


@MODELS.register_module()
class DiffModuleMutator(DifferentiableMutator):
    """Differentiable mutator choosing the strongest candidates.

    An op decision keeps its ``num_chosen`` candidates of largest weight,
    skipping ``ignore_choices``. An input-edge decision
    (:class:`DiffChoiceRoute`) without its own parameter keeps the
    ``num_chosen`` edges whose op has the largest non-ignored weight.

    Args:
        ignore_choices (Sequence[str]): Candidate names never selected
            (while alternatives exist). Defaults to ().
        placeholder_mapping (dict, optional): ``{group: mutable config}``
            filling placeholders (see :class:`BaseMutator`).
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 ignore_choices: Sequence[str] = (),
                 placeholder_mapping: Optional[Dict[str, Dict]] = None,
                 init_cfg: Optional[Dict] = None) -> None:
        super().__init__(
            placeholder_mapping=placeholder_mapping, init_cfg=init_cfg)
        self.ignore_choices = tuple(ignore_choices)

    def _edge_strength(self, edge: nn.Module) -> float:
        """Largest non-ignored softmax weight of the op on an edge."""
        if not isinstance(edge, DiffMutableModule):
            return 0.0
        param = edge.arch_param
        if param is None:
            return 0.0
        probs = F.softmax(param.detach().flatten(), dim=-1)
        kept = [
            p for name, p in zip(edge.choices, probs.tolist())
            if name not in self.ignore_choices
        ]
        return max(kept) if kept else 0.0

    def search_subnet(self) -> ChoicesType:
        subnet = {}
        for key, members in self.search_groups.items():
            mutable = members[0]
            param = self.arch_param_of(key)
            if param is not None:
                subnet[key] = mutable.strongest_choice(
                    param, ignore=self.ignore_choices)
            elif isinstance(mutable, DiffChoiceRoute):
                strength = torch.tensor([
                    self._edge_strength(mutable.candidates[name])
                    for name in mutable.choices
                ])
                subnet[key] = mutable.strongest_choice(strength)
            else:
                names = mutable.chosen_names()[:mutable.num_chosen]
                subnet[key] = names[0] if mutable.num_chosen == 1 else names
        return subnet


@MODELS.register_module()
class DartsMutator(DiffModuleMutator):
    """The DARTS discretization: per node, the strongest op other than
    ``zero`` on each edge and the top-2 input edges.

    Args:
        ignore_choices (Sequence[str]): Defaults to ``('zero',)``.
        placeholder_mapping (dict, optional): ``{group: mutable config}``
            filling placeholders (see :class:`BaseMutator`).
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 ignore_choices: Sequence[str] = ('zero', ),
                 placeholder_mapping: Optional[Dict[str, Dict]] = None,
                 init_cfg: Optional[Dict] = None) -> None:
        super().__init__(
            ignore_choices=ignore_choices,
            placeholder_mapping=placeholder_mapping,
            init_cfg=init_cfg)
