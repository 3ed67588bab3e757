"""The base of all mutators: find the decisions of a supernet, set them."""
import random
from collections import OrderedDict
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Type, Union

import torch.nn as nn
from mmengine.model import BaseModule

from mmrazor.models.mutables.base_mutable import BaseMutable
from mmrazor.models.mutables.derived_mutable import DerivedMutable
from mmrazor.utils.typing import chosen_of

ChoicesType = Dict[str, Any]


class BaseMutator(BaseModule):
    """Finds the searchable mutables of a supernet and sets their choices.

    Mutables sharing an alias (the older ``space_id``) are one decision,
    keyed by the alias; any other mutable is a decision of its own, keyed by
    its module path. Derived mutables are skipped (they follow their
    sources), and so are mutables already fixed.

    The mutator is generic over :class:`BaseMutable`; subclasses narrow
    :attr:`mutable_class` (module, value or channel mutables).

    Args:
        init_cfg (dict, optional): mmengine initialisation config.
    """

    #: The mutable type(s) this mutator decides.
    mutable_class: Union[Type[BaseMutable], Tuple[Type[BaseMutable],
                                                  ...]] = BaseMutable

    def __init__(self, init_cfg: Optional[Dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self._groups: 'OrderedDict[str, List[BaseMutable]]' = OrderedDict()
        self._prepared = False

    # ------------------------------------------------------------ groups
    def accepts(self, mutable: BaseMutable) -> bool:
        """Whether this mutator decides ``mutable``."""
        return isinstance(mutable, self.mutable_class) and not isinstance(
            mutable, DerivedMutable) and not mutable.is_fixed

    def prepare_from_supernet(self, supernet: nn.Module) -> None:
        """Collect the decisions of ``supernet`` (call once, before use).

        Args:
            supernet (nn.Module): The model holding the mutables.
        """
        from mmrazor.structures import collect_mutables
        groups: 'OrderedDict[str, List[BaseMutable]]' = OrderedDict()
        for key, members in collect_mutables(supernet).items():
            members = [m for m in members if self.accepts(m)]
            if not members:
                continue
            first = members[0]
            for other in members[1:]:
                if list(other.choices) != list(first.choices):
                    raise ValueError(
                        f'mutables sharing alias {key!r} have different '
                        f'choices: {first.choices!r} vs {other.choices!r}')
            groups[key] = members
        self._groups = groups
        self._prepared = True

    def _check_prepared(self) -> None:
        if not self._prepared:
            raise RuntimeError(f'{type(self).__name__}: call '
                               'prepare_from_supernet(supernet) first')

    @property
    def search_groups(self) -> 'OrderedDict[str, List[BaseMutable]]':
        """Decision key (alias or module path) -> its mutables."""
        self._check_prepared()
        return self._groups

    # ----------------------------------------------------------- choices
    def sample_choice_of(self, key: str) -> Any:
        """A random choice of the decision ``key``."""
        mutable = self.search_groups[key][0]
        sample = getattr(mutable, 'sample_choice', None)
        if callable(sample):
            return sample()
        return random.choice(list(mutable.choices))

    def sample_choices(self) -> ChoicesType:
        """A random choice for every decision (not applied)."""
        return {key: self.sample_choice_of(key) for key in self.search_groups}

    def _unwrap(self, choices: Dict) -> ChoicesType:
        from mmrazor.structures import to_flat
        return to_flat(choices)

    def set_choices(self, choices: Dict, strict: bool = True) -> None:
        """Apply choices to every mutable of each decision.

        Args:
            choices (dict): ``{key: choice}`` or ``{key: {'chosen': choice}}``.
            strict (bool): Raise on unknown keys and on decisions left out.
                Defaults to True.
        """
        from mmrazor.structures import SubnetError
        choices = self._unwrap(choices)
        groups = self.search_groups
        if strict:
            unknown = [k for k in choices if k not in groups]
            if unknown:
                raise SubnetError(f'unknown decision key(s) {unknown}; known:'
                                  f' {list(groups)}')
            missing = [k for k in groups if k not in choices]
            if missing:
                raise SubnetError(f'choices missing for {missing}')
        for key, choice in choices.items():
            if key not in groups:
                continue
            for mutable in groups[key]:
                try:
                    mutable.current_choice = choice
                except (ValueError, TypeError) as e:
                    raise SubnetError(f'decision {key!r}: invalid choice '
                                      f'{choice!r} ({e})') from e

    @property
    def current_choices(self) -> ChoicesType:
        """The current choice of every decision."""
        return {
            key: chosen_of(members[0].dump_chosen())
            for key, members in self.search_groups.items()
        }

    # ------------------------------------------------------ subnet files
    def dump_subnet(self, path: Optional[Union[str, Path]] = None
                    ) -> Dict[str, Dict[str, Any]]:
        """The current subnet ``{key: {'chosen': choice}}``, also written
        to ``path`` (YAML or JSON, by its extension) when given."""
        from mmrazor.structures import dump_subnet, to_view
        subnet = to_view(self.current_choices, 'chosen')
        if path is not None:
            dump_subnet(subnet, path, view='chosen')
        return subnet

    def load_subnet(self, subnet: Union[str, Path, Dict]) -> None:
        """Set the choices stored in a subnet dict or file, in any view
        (the mutables stay searchable; use ``load_fix_subnet`` to fix
        them)."""
        from mmrazor.structures import load_subnet
        self.set_choices(load_subnet(subnet))
