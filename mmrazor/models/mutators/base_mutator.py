"""The base of all mutators: find the decisions of a supernet, set them."""
import random
from collections import OrderedDict
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Type, Union

import torch.nn as nn
from mmengine.model import BaseModule

from mmrazor.models.mutables.base_mutable import BaseMutable
from mmrazor.models.mutables.derived_mutable import DerivedMutable
from mmrazor.models.mutables.placeholder import fill_placeholders
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

    Search spaces written the older way, with
    :class:`~mmrazor.models.mutables.Placeholder` modules, are filled by
    ``placeholder_mapping`` first: :meth:`prepare_from_supernet` replaces
    every placeholder of a group by the mutable the group's config builds
    (see :func:`~mmrazor.models.mutables.placeholder.fill_placeholders`),
    then collects the decisions as usual.

    Args:
        placeholder_mapping (dict, optional): ``{group: mutable config}``
            filling the placeholders of the supernet. Defaults to None.
        init_cfg (dict, optional): mmengine initialisation config.
    """

    #: The mutable type(s) this mutator decides.
    mutable_class: Union[Type[BaseMutable], Tuple[Type[BaseMutable],
                                                  ...]] = BaseMutable

    def __init__(self,
                 placeholder_mapping: Optional[Dict[str, Dict]] = None,
                 init_cfg: Optional[Dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if placeholder_mapping is not None and not isinstance(
                placeholder_mapping, dict):
            raise TypeError('placeholder_mapping must be a dict {group: '
                            f'mutable config}}, got {placeholder_mapping!r}')
        self.placeholder_mapping = placeholder_mapping
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
            supernet (nn.Module): The model holding the mutables (its
                placeholders are filled in place first).
        """
        from mmrazor.structures import collect_mutables
        fill_placeholders(supernet, self.placeholder_mapping)
        # A reference, not a submodule: the supernet is not the mutator's.
        self.__dict__['_prepared_supernet'] = supernet
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

    @property
    def search_spaces(self) -> Dict[str, Dict[str, Any]]:
        """The older view of :attr:`search_groups`:
        ``space_id -> dict(modules, choice_names, num_chosen, chosen)``;
        ``chosen`` lists the current choice(s) of the space (None before
        one is set)."""
        spaces = {}
        for key, members in self.search_groups.items():
            choice = members[0].current_choice
            if choice is not None and not isinstance(choice, (list, tuple)):
                choice = [choice]
            spaces[key] = dict(
                modules=members,
                choice_names=list(members[0].choices),
                num_chosen=getattr(members[0], 'num_chosen', 1),
                chosen=None if choice is None else list(choice))
        return spaces

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

    def deploy_subnet(self, supernet: nn.Module,
                      subnet_dict: Union[str, Path, Dict]) -> nn.Module:
        """Fix ``supernet`` to a subnet, each mutable to its chosen
        candidate(s) (the older name of ``load_fix_subnet``; any subnet
        view, e.g. the 0.x ``{space_id: {'chosen': [name]}}`` files).

        Args:
            supernet (nn.Module): The model this mutator was prepared on,
                or a wrapper holding it (module-path keys are then read
                relative to the prepared model).
            subnet_dict (str | Path | dict): The subnet or its file.

        Returns:
            nn.Module: ``supernet``, fixed in place.
        """
        from mmrazor.structures import load_fix_subnet
        prefix = ''
        prepared = self.__dict__.get('_prepared_supernet')
        if prepared is not None and prepared is not supernet:
            for name, module in supernet.named_modules():
                if module is prepared:
                    prefix = name + '.'
                    break
        load_fix_subnet(supernet, subnet_dict, prefix=prefix)
        return supernet

    def load_subnet(self, subnet: Union[str, Path, Dict]) -> None:
        """Set the choices stored in a subnet dict or file, in any view
        (the mutables stay searchable; use ``load_fix_subnet`` to fix
        them)."""
        from mmrazor.structures import load_subnet
        self.set_choices(load_subnet(subnet))
