"""Mutators of single-path one-shot search."""
import copy
import random
from typing import Any, Dict

import torch
import torch.nn as nn

from mmrazor.models.mutables.base_mutable import BaseMutable
from mmrazor.models.mutables.mutable_module import (DiffMutableModule,
                                                    MutableModule,
                                                    OneShotMutableModule)
from mmrazor.registry import MODELS
from .base_mutator import BaseMutator


@MODELS.register_module()
class OneShotModuleMutator(BaseMutator):
    """Samples and sets the choices of one-shot module mutables.

    Example:
        >>> mutator = OneShotModuleMutator()
        >>> mutator.prepare_from_supernet(supernet)
        >>> mutator.set_choices(mutator.sample_choices())  # a random path
    """

    mutable_class = OneShotMutableModule


@MODELS.register_module()
class OneShotMutator(OneShotModuleMutator):
    """One-shot mutator with the older mask-based API.

    A subnet here is ``{space_id: mask}`` with a bool mask over the choices
    of each search space (decision). Every searchable, non-differentiable
    mutable takes part (module mutables, and value / channel mutables with
    a list of choices).

    Args:
        init_cfg (dict, optional): Initialisation config.
    """

    mutable_class = BaseMutable

    def accepts(self, mutable: BaseMutable) -> bool:
        return super().accepts(mutable) and not isinstance(
            mutable, DiffMutableModule)

    # ------------------------------------------------------- masks
    @staticmethod
    def get_random_mask(space_info: Dict[str, Any],
                        searching: bool = False) -> torch.Tensor:
        """A random bool mask choosing ``num_chosen`` of the choices.

        Args:
            space_info (dict): A :attr:`search_spaces` entry (needs
                ``choice_names`` and optionally ``num_chosen``).
            searching (bool): Whether this is the search stage (sampling
                is uniform in both stages here; subclasses may differ).

        Returns:
            Tensor: Bool mask, one entry per choice.
        """
        num = len(space_info['choice_names'])
        k = space_info.get('num_chosen', 1)
        mask = torch.zeros(num, dtype=torch.bool)
        mask[random.sample(range(num), k)] = True
        return mask

    def _mask_to_choice(self, key: str, mask: Any) -> Any:
        mutable = self.search_groups[key][0]
        if isinstance(mutable, MutableModule):
            return mutable.mask_to_choice(mask)
        mask = torch.as_tensor(mask).flatten().tolist()
        choices = list(mutable.choices)
        if len(mask) != len(choices):
            raise ValueError(f'{key!r}: mask has {len(mask)} entries, '
                             f'expected {len(choices)}')
        picked = [c for c, m in zip(choices, mask) if m]
        return picked[0] if len(picked) == 1 else picked

    def _choice_to_mask(self, key: str, choice: Any) -> torch.Tensor:
        choices = list(self.search_groups[key][0].choices)
        picked = choice if isinstance(choice, list) else [choice]
        return torch.tensor([c in picked for c in choices], dtype=torch.bool)

    # --------------------------------------------------- older API
    def sample_subnet(self, searching: bool = False) -> Dict[str, Any]:
        """A random subnet ``{space_id: mask}`` (not applied).

        Args:
            searching (bool): Passed to :meth:`get_random_mask`.
        """
        return {
            key: self.get_random_mask(info, searching)
            for key, info in self.search_spaces.items()
        }

    def set_subnet(self, subnet_dict: Dict[str, Any]) -> None:
        """Apply a subnet of masks (or of choices) to the supernet.

        Candidates left out of the path are marked ``in_subnet=False``
        (see :meth:`reset_in_subnet`).

        Args:
            subnet_dict (dict): ``{space_id: mask}``; choice names and
                ``{'chosen': ...}`` entries are accepted as well.
        """
        from mmrazor.structures import SubnetError
        choices = {}
        for key, value in subnet_dict.items():
            if key not in self.search_groups:
                raise SubnetError(f'unknown search space {key!r}; known: '
                                  f'{list(self.search_groups)}')
            if isinstance(value, dict) and 'chosen' in value:
                value = value['chosen']
            if isinstance(value, torch.Tensor) or (
                    isinstance(value, (list, tuple)) and value
                    and all(isinstance(v, bool) for v in value)):
                value = self._mask_to_choice(key, value)
            choices[key] = value
        self.set_choices(choices)
        for members in self.search_groups.values():
            for mutable in members:
                if isinstance(mutable, MutableModule):
                    chosen = set(mutable.chosen_names())
                    for name, module in mutable.candidates.items():
                        self.reset_in_subnet(module, name in chosen)

    def set_chosen_subnet(self, subnet_dict: Dict[str, Any]) -> None:
        """Apply a subnet given by choice names,
        ``{space_id: {'chosen': names}}`` (e.g. read from a subnet file)."""
        self.set_subnet(subnet_dict)

    @property
    def current_subnet(self) -> Dict[str, torch.Tensor]:
        """The current choices as ``{space_id: mask}``."""
        return {
            key: self._choice_to_mask(key, choice)
            for key, choice in self.current_choices.items()
        }

    def mutation(self, subnet_dict: Dict[str, Any],
                 prob: float = 0.1) -> Dict[str, Any]:
        """A copy of ``subnet_dict`` where each space is resampled with
        probability ``prob``.

        Args:
            subnet_dict (dict): ``{space_id: mask}``.
            prob (float): Mutation probability per space. Defaults to 0.1.
        """
        spaces = self.search_spaces
        child = {}
        for key, mask in subnet_dict.items():
            if random.random() < prob:
                child[key] = self.get_random_mask(spaces[key], True)
            else:
                child[key] = copy.deepcopy(mask)
        return child

    @staticmethod
    def crossover(subnet_dict1: Dict[str, Any],
                  subnet_dict2: Dict[str, Any]) -> Dict[str, Any]:
        """A child taking each space from either parent with equal odds.

        Args:
            subnet_dict1 (dict): First parent.
            subnet_dict2 (dict): Second parent (same keys).
        """
        if set(subnet_dict1) != set(subnet_dict2):
            diff = set(subnet_dict1) ^ set(subnet_dict2)
            raise KeyError(f'parents differ in search spaces {sorted(diff)}')
        return {
            key: copy.deepcopy(
                subnet_dict1[key] if random.random() < 0.5 else
                subnet_dict2[key])
            for key in subnet_dict1
        }

    @staticmethod
    def reset_in_subnet(m: nn.Module, in_subnet: bool = True) -> None:
        """Mark ``m`` and its submodules as in (or out of) the current
        subnet (``module.in_subnet``), e.g. for FLOPs counting."""
        for module in m.modules():
            module.in_subnet = in_subnet


