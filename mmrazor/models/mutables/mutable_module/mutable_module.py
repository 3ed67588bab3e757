"""Module mutables: a decision between candidate sub-modules."""
import random
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

import torch
import torch.nn as nn

from mmrazor.registry import MODELS
from ..base_mutable import (BaseMutable, DumpChosen, InvalidChoiceError,
                            MutableFixedError)

CandidatesType = Union[Mapping[str, Union[Dict, nn.Module]], nn.ModuleDict]
ChoiceType = Union[str, List[str]]


def build_candidates(candidates: CandidatesType,
                     module_kwargs: Optional[Dict] = None) -> nn.ModuleDict:
    """Build the candidate modules of a module mutable.

    Args:
        candidates (dict | nn.ModuleDict): Choice name -> module, or choice
            name -> config dict built with ``MODELS``.
        module_kwargs (dict, optional): Keyword arguments added to every
            config (e.g. ``in_channels``, ``out_channels``, ``stride``);
            a key set in the config itself wins.

    Returns:
        nn.ModuleDict: The candidates, keyed by choice name.
    """
    if isinstance(candidates, nn.ModuleDict):
        return candidates
    if not isinstance(candidates, Mapping) or not candidates:
        raise TypeError('candidates must be a non-empty dict of choice '
                        'name -> module or config dict, got '
                        f'{type(candidates).__name__}')
    built = nn.ModuleDict()
    for name, candidate in candidates.items():
        if not isinstance(name, str) or '.' in name or not name:
            raise ValueError(f'invalid candidate name {name!r}: use a '
                             'non-empty string without dots')
        if isinstance(candidate, nn.Module):
            built[name] = candidate
        elif isinstance(candidate, Mapping):
            cfg = dict(module_kwargs or {})
            cfg.update(candidate)
            built[name] = MODELS.build(cfg)
        else:
            raise TypeError(f'candidate {name!r} must be an nn.Module or '
                            f'a config dict, got {type(candidate).__name__}')
    return built


class MutableModule(BaseMutable):
    """A decision between candidate sub-modules (``self.candidates``).

    One class serves both API generations:

    * newer: ``MutableModule(module_kwargs=..., alias=...)`` with
      ``current_choice`` / ``fix_chosen`` / ``dump_chosen``;
    * older: ``MutableModule(space_id, num_chosen=1)`` with
      ``choice_names``, ``choice_modules``, ``build_choice_mask()``,
      ``set_choice_mask(mask)`` and ``export(chosen)``. ``space_id`` is the
      alias: mutables sharing it are one decision.

    With ``num_chosen == 1`` a choice is a candidate name; with more, it is
    a list of ``num_chosen`` distinct names whose outputs are summed; with
    ``num_chosen=None`` it is a list of any number (at least one) of
    distinct names. A choice of ``None`` means "no decision yet" (every
    candidate runs).

    Subclasses set ``self.candidates`` (an ``nn.ModuleDict``) and
    implement ``forward``.

    Args:
        space_id (str, optional): Older name of ``alias``.
        num_chosen (int, optional): How many candidates one decision keeps;
            None for any number. Defaults to 1.
        init_cfg (dict, optional): mmengine initialisation config.
        module_kwargs (dict, optional): Keyword arguments for building
            every candidate from its config.
        alias (str, optional): Name shared by mutables of one decision.
    """

    candidates: nn.ModuleDict

    def __init__(self,
                 space_id: Optional[str] = None,
                 num_chosen: Optional[int] = 1,
                 init_cfg: Optional[Dict] = None,
                 module_kwargs: Optional[Dict] = None,
                 alias: Optional[str] = None) -> None:
        if space_id is not None and alias is not None and space_id != alias:
            raise ValueError(f'space_id {space_id!r} and alias {alias!r} '
                             'differ; they are one name, give only one')
        super().__init__(
            alias=alias if alias is not None else space_id,
            init_cfg=init_cfg)
        if num_chosen is not None and (not isinstance(num_chosen, int)
                                       or num_chosen < 1):
            raise ValueError(f'num_chosen must be a positive int or None, '
                             f'got {num_chosen!r}')
        self.num_chosen = num_chosen
        self.module_kwargs = dict(module_kwargs or {})
        self._current_choice: Optional[ChoiceType] = None

    # ---------------------------------------------------------- identity
    @property
    def space_id(self) -> Optional[str]:
        """Older name of :attr:`alias`."""
        return self.alias

    @property
    def choices(self) -> List[str]:
        """Candidate names (only the chosen ones once fixed)."""
        return list(self.candidates.keys())

    @property
    def choice_names(self) -> List[str]:
        """Older name of :attr:`choices`."""
        return self.choices

    @property
    def choice_modules(self) -> List[nn.Module]:
        """The candidate modules, in the order of :attr:`choices`."""
        return list(self.candidates.values())

    # ----------------------------------------------------------- choices
    def normalize_choice(self, choice: Any) -> Optional[ChoiceType]:
        """Turn ``choice`` into the canonical form (name or list of names).

        A one-element list is accepted for ``num_chosen == 1`` (the older
        subnet files store ``chosen: [name]``); with ``num_chosen=None`` a
        single name reads as a one-element list. A name that is no choice
        but names a candidate by its op, as early 0.x subnet files do
        (``ShuffleXception``, ``ShuffleBlock_7x7``: op class, and kernel
        size when given), reads as that candidate's name when exactly one
        candidate fits.
        """
        if isinstance(choice, (list, tuple)):
            choice = [self._resolve_op_name(c) for c in choice]
        else:
            choice = self._resolve_op_name(choice)
        if isinstance(choice, (list, tuple)):
            names = list(choice)
            if self.num_chosen == 1 and len(names) == 1:
                return names[0]
            return names
        if self.num_chosen is None and choice is not None:
            return [choice]
        return choice

    def _resolve_op_name(self, name: Any) -> Any:
        """The choice an op-style name (``{OpClass}`` or
        ``{OpClass}_{k}x{k}``) stands for, if exactly one candidate fits;
        else ``name`` unchanged."""
        candidates = getattr(self, 'candidates', None)
        if not isinstance(name, str) or candidates is None or \
                name in candidates:
            return name
        op, kernel = name, None
        head, sep, tail = name.rpartition('_')
        if sep and 'x' in tail:
            k1, _, k2 = tail.partition('x')
            if k1.isdigit() and k1 == k2:
                op, kernel = head, int(k1)
        fits = [
            choice for choice, module in candidates.items()
            if type(module).__name__ == op and (
                kernel is None or getattr(module, 'kernel_size', None) in (
                    kernel, (kernel, kernel)))
        ]
        return fits[0] if len(fits) == 1 else name

    def validate_choice(self, choice: Any) -> None:
        """Raise :class:`InvalidChoiceError` naming ``choice`` if it is not
        valid.

        Args:
            choice (str | list[str]): A name, or ``num_chosen`` names.
        """
        if choice is None:
            raise InvalidChoiceError(f'{self._name()}: no choice given '
                                     f'(valid choices: {self.choices!r})')
        choice = self.normalize_choice(choice)
        names = choice if isinstance(choice, list) else [choice]
        if self.num_chosen is None:
            if not names:
                raise InvalidChoiceError(
                    f'{self._name()} keeps at least one candidate, got '
                    f'{choice!r}')
        elif len(names) != self.num_chosen:
            raise InvalidChoiceError(
                f'{self._name()} keeps {self.num_chosen} candidate(s), '
                f'got {choice!r}')
        if len(set(map(repr, names))) != len(names):
            raise InvalidChoiceError(f'{self._name()}: repeated names in '
                                     f'{choice!r}')
        for name in names:
            if not isinstance(name, str) or name not in self.candidates:
                raise InvalidChoiceError(f'{name!r} is not a choice of '
                                         f'{self._name()}; valid choices: '
                                         f'{self.choices!r}')

    @property
    def num_kept(self) -> int:
        """How many candidates a sampled (or strongest) choice keeps:
        ``num_chosen``, or at most 2 when it is None."""
        if self.num_chosen is None:
            return min(2, len(self.candidates))
        return self.num_chosen

    @property
    def current_choice(self) -> Optional[ChoiceType]:
        """The current choice: a name (or list of names), or None."""
        return self._current_choice

    @current_choice.setter
    def current_choice(self, choice: Optional[ChoiceType]) -> None:
        if choice is None:
            if self.is_fixed:
                raise MutableFixedError(f'{self._name()} is fixed; its '
                                        'choice cannot be unset')
            self._current_choice = None
            return
        choice = self.normalize_choice(choice)
        self.validate_choice(choice)
        self._current_choice = choice

    def chosen_names(self, choice: Optional[ChoiceType] = None) -> List[str]:
        """The names in ``choice`` (default: the current one) as a list;
        all names when there is no choice."""
        choice = self._current_choice if choice is None else choice
        if choice is None:
            return self.choices
        return list(choice) if isinstance(choice, list) else [choice]

    def random_choice(self) -> ChoiceType:
        """A uniformly random choice (:attr:`num_kept` distinct names)."""
        names = random.sample(self.choices, self.num_kept)
        return names[0] if self.num_chosen == 1 else names

    def fix_chosen(self, chosen: ChoiceType) -> None:
        """Keep only the chosen candidate(s) and make the choice permanent.

        Args:
            chosen (str | list[str]): The choice (also as a
                :class:`DumpChosen` or ``{'chosen': ...}``).

        Raises:
            MutableFixedError: Already fixed.
            InvalidChoiceError: ``chosen`` is not a valid choice.
        """
        self.check_not_fixed()
        chosen = self.normalize_choice(self.unwrap_chosen(chosen))
        self.validate_choice(chosen)
        keep = self.chosen_names(chosen)
        for name in list(self.candidates.keys()):
            if name not in keep:
                del self.candidates[name]
        self._current_choice = chosen
        self.is_fixed = True

    def dump_chosen(self) -> DumpChosen:
        """The current choice.

        Returns:
            DumpChosen: ``chosen`` is the name (or list of names);
            ``meta['all_choices']`` the candidate names.

        Raises:
            InvalidChoiceError: There is no current choice yet.
        """
        choice = self.current_choice
        if choice is None:
            raise InvalidChoiceError(
                f'{self._name()} has no current choice to dump; set '
                'current_choice (e.g. with a mutator) or fix it first')
        return DumpChosen(
            chosen=list(choice) if isinstance(choice, list) else choice,
            meta=dict(all_choices=self.choices))

    # ------------------------------------------------- older mask API
    def build_choice_mask(self) -> torch.Tensor:
        """A bool mask over :attr:`choices` marking the current choice
        (all True when there is no decision)."""
        chosen = set(self.chosen_names())
        return torch.tensor([name in chosen for name in self.choices],
                            dtype=torch.bool)

    def set_choice_mask(self, mask: Union[torch.Tensor,
                                          Sequence[Any]]) -> None:
        """Select the candidates where ``mask`` is nonzero.

        Args:
            mask (Tensor | sequence): One entry per choice.
        """
        self.current_choice = self.mask_to_choice(mask)

    def mask_to_choice(self, mask: Union[torch.Tensor,
                                         Sequence[Any]]) -> ChoiceType:
        """The choice a mask over :attr:`choices` stands for."""
        mask = torch.as_tensor(mask)
        if mask.numel() != self.num_choices:
            raise ValueError(f'{self._name()}: mask has {mask.numel()} '
                             f'entries, expected {self.num_choices}')
        names = [n for n, m in zip(self.choices, mask.flatten().tolist())
                 if m]
        return names[0] if self.num_chosen == 1 and len(names) == 1 \
            else names

    def export(self, chosen: ChoiceType) -> None:
        """Older name of :meth:`fix_chosen`."""
        self.fix_chosen(chosen)

    def to_static_op(self) -> nn.Module:
        """A plain module equivalent to this fixed mutable.

        Returns the chosen candidate itself when one is kept; otherwise the
        mutable (already holding only the chosen candidates).
        """
        if not self.is_fixed:
            raise RuntimeError(f'{self._name()} is not fixed; fix it '
                               'before exporting a static model')
        if len(self.candidates) == 1:
            return next(iter(self.candidates.values()))
        return self

    def extra_repr(self) -> str:
        return f'{super().extra_repr()}, choices={self.choices!r}'


