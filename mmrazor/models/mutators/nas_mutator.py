"""One mutator over every kind of searchable mutable (the 1.x ``NasMutator``).
"""
import copy
import random
from collections import OrderedDict
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

import torch.nn as nn

from mmrazor.models.mutables.base_mutable import BaseMutable
from mmrazor.models.mutables.mutable_module import DiffMutableModule
from mmrazor.registry import MODELS
from .base_mutator import ChoicesType
from .diff_mutator import DifferentiableMutator

_KINDS = ('random', 'max', 'min')


@MODELS.register_module()
class NasMutator(DifferentiableMutator):
    """Decides every searchable mutable of a supernet: module mutables
    (one-shot and differentiable), value mutables and channel mutables.

    Decisions are keyed as in :class:`BaseMutator` (alias, else module
    path). ``custom_groups`` merges more decisions into one: each group is
    a list of keys (aliases or module paths) whose mutables then take the
    same choice; the group is keyed by its first entry. Differentiable
    mutables get one architecture parameter per decision (see
    :class:`DifferentiableMutator`) and are decided by it; the others are
    sampled.

    Args:
        custom_groups (list[list[str]], optional): Decisions to merge.
            Defaults to None.
        placeholder_mapping (dict, optional): ``{group: mutable config}``
            filling placeholders (see :class:`BaseMutator`).
        init_cfg (dict, optional): Initialisation config.

    Example:
        >>> mutator = NasMutator()
        >>> mutator.prepare_from_supernet(supernet)
        >>> mutator.set_choices(mutator.sample_choices())
        >>> mutator.set_max_choices()  # the largest subnet
    """

    mutable_class = BaseMutable

    def __init__(self,
                 custom_groups: Optional[Sequence[Sequence[str]]] = None,
                 placeholder_mapping: Optional[Dict[str, Dict]] = None,
                 init_cfg: Optional[Dict] = None) -> None:
        super().__init__(
            placeholder_mapping=placeholder_mapping, init_cfg=init_cfg)
        groups = [] if custom_groups is None else custom_groups
        if not isinstance(groups, (list, tuple)) or not all(
                isinstance(g, (list, tuple)) and g and all(
                    isinstance(k, str) for k in g) for g in groups):
            raise TypeError('custom_groups must be a list of non-empty '
                            f'lists of mutable keys, got {custom_groups!r}')
        self.custom_groups = [list(g) for g in groups]
        # group key -> the keys merged into it (itself first)
        self._members: Dict[str, List[str]] = {}

    # ------------------------------------------------------------ groups
    def prepare_from_supernet(self, supernet: nn.Module) -> None:
        """Collect the decisions, merge ``custom_groups``, then build and
        attach the architecture parameters of differentiable mutables.

        Args:
            supernet (nn.Module): The model holding the mutables.
        """
        super(DifferentiableMutator, self).prepare_from_supernet(supernet)
        self._merge_custom_groups()
        self.arch_params = self.build_arch_params(supernet)
        self.modify_supernet_forward(supernet)

    def _merge_custom_groups(self) -> None:
        groups = self._groups
        self._members = {key: [key] for key in groups}
        taken: Dict[str, int] = {}
        for index, keys in enumerate(self.custom_groups):
            for key in keys:
                if key not in groups:
                    raise KeyError(f'custom_groups[{index}]: {key!r} is not '
                                   f'a searchable mutable; known: '
                                   f'{list(groups)}')
                if key in taken:
                    raise ValueError(f'{key!r} is in custom_groups '
                                     f'{taken[key]} and {index}')
                taken[key] = index
        merged: 'OrderedDict[str, List[BaseMutable]]' = OrderedDict()
        for key, mutables in groups.items():
            if key in taken and self.custom_groups[taken[key]][0] != key:
                continue  # merged into the group's first key
            members = list(mutables)
            names = [key]
            if key in taken:
                for other in self.custom_groups[taken[key]][1:]:
                    members.extend(groups[other])
                    names.append(other)
            first = members[0]
            for mutable in members[1:]:
                if list(mutable.choices) != list(first.choices):
                    raise ValueError(
                        f'custom group {names}: the mutables have different '
                        f'choices ({list(first.choices)!r} vs '
                        f'{list(mutable.choices)!r})')
            merged[key] = members
            self._members[key] = names
        self._groups = merged

    # ----------------------------------------------------------- choices
    def _is_differentiable(self, key: str) -> bool:
        return isinstance(self.search_groups[key][0], DiffMutableModule)

    def search_subnet(self) -> ChoicesType:
        """Differentiable decisions by their parameters; the others keep
        their current choice."""
        subnet = {}
        for key, members in self.search_groups.items():
            mutable = members[0]
            if self._is_differentiable(key):
                subnet[key] = mutable.strongest_choice(self.arch_param_of(key))
            else:
                subnet[key] = mutable.current_choice
        return subnet

    def _extreme(self, key: str, kind: str) -> Any:
        mutable = self.search_groups[key][0]
        value = getattr(mutable, f'{kind}_choice', None)
        if value is not None:
            return value
        choices = list(mutable.choices)
        try:
            return max(choices) if kind == 'max' else min(choices)
        except TypeError:
            raise TypeError(
                f'decision {key!r} ({type(mutable).__name__}) has no '
                f'{kind} choice: its choices {choices!r} are not '
                'ordered') from None

    def sample_choices(self, kind: str = 'random') -> ChoicesType:
        """A choice for every decision (not applied).

        Args:
            kind (str): ``'random'`` (differentiable decisions take their
                strongest choice), ``'max'`` or ``'min'``.

        Returns:
            dict: ``{key: choice}``.
        """
        if kind not in _KINDS:
            raise ValueError(f'kind must be one of {_KINDS}, got {kind!r}')
        searched = None
        choices = {}
        for key in self.search_groups:
            if kind != 'random':
                choices[key] = self._extreme(key, kind)
            elif self._is_differentiable(key):
                if searched is None:
                    searched = self.search_subnet()
                choices[key] = searched[key]
            else:
                choices[key] = self.sample_choice_of(key)
        return choices

    @property
    def max_choices(self) -> ChoicesType:
        """The largest choice of every decision."""
        return self.sample_choices('max')

    @property
    def min_choices(self) -> ChoicesType:
        """The smallest choice of every decision."""
        return self.sample_choices('min')

    def set_max_choices(self) -> None:
        """Set every decision to its largest choice."""
        self.set_choices(self.max_choices)

    def set_min_choices(self) -> None:
        """Set every decision to its smallest choice."""
        self.set_choices(self.min_choices)

    # ------------------------------------------- the searchers' interface
    def sample_subnet(self, searching: bool = False) -> ChoicesType:
        """A random subnet ``{key: choice}`` (not applied), as the
        searchers (``EvolutionSearcher``) ask a mutator for one.

        Args:
            searching (bool): Unused: every decision is sampled the same
                way in training and in search. Kept for the searchers'
                call.

        Returns:
            dict: ``{key: choice}``.
        """
        return self.sample_choices('random')

    def set_subnet(self, subnet: Dict[str, Any]) -> None:
        """Apply a subnet (``{key: choice}``, or ``{key: {'chosen':
        choice}}`` as subnet files store it).

        Args:
            subnet (dict): A choice for every decision.
        """
        self.set_choices(subnet)

    def mutation(self, subnet: Dict[str, Any],
                 prob: float = 0.1) -> ChoicesType:
        """A copy of ``subnet`` where each decision is sampled anew with
        probability ``prob``.

        Args:
            subnet (dict): ``{key: choice}``.
            prob (float): Probability per decision. Defaults to 0.1.

        Returns:
            dict: The child.
        """
        flat = self._unwrap(subnet)
        return {
            key: self.sample_choice_of(key)
            if random.random() < prob else copy.deepcopy(choice)
            for key, choice in flat.items()
        }

    def crossover(self, subnet1: Dict[str, Any],
                  subnet2: Dict[str, Any]) -> ChoicesType:
        """A child taking each decision from either parent with equal odds.

        Args:
            subnet1 (dict): ``{key: choice}``.
            subnet2 (dict): ``{key: choice}``, the same keys.

        Returns:
            dict: The child.
        """
        first, second = self._unwrap(subnet1), self._unwrap(subnet2)
        if set(first) != set(second):
            raise KeyError('the parents differ in decisions '
                           f'{sorted(set(first) ^ set(second))}')
        return {
            key: copy.deepcopy(first[key] if random.random() < 0.5 else
                               second[key])
            for key in first
        }

    # ------------------------------------------------------ subnet files
    def dump_subnet(self, path: Optional[Union[str, Path]] = None
                    ) -> Dict[str, Dict[str, Any]]:
        """The current subnet keyed by mutable (a custom group's choice is
        written under each of its keys, so the file loads with
        ``load_fix_subnet``); also written to ``path`` when given."""
        from mmrazor.structures import dump_subnet, to_view
        expanded = {}
        for key, choice in self.current_choices.items():
            for name in self._members.get(key, [key]):
                expanded[name] = choice
        subnet = to_view(expanded, 'chosen')
        if path is not None:
            dump_subnet(subnet, path, view='chosen')
        return subnet
