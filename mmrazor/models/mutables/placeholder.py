"""Placeholders: the older way of writing a search space.

In the older toolbox a search space names the *place* of a decision and
leaves its candidates to the config: a backbone puts a
:class:`Placeholder` (a ``group``, a ``space_id`` and the arguments every
candidate gets, ``choice_args``) where a block goes, and a mutator's
``placeholder_mapping`` (``{group: mutable config}``) fills every
placeholder of a group with a mutable built from the group's config. The
ordinary mutator machinery then applies to those mutables.

A module becomes fillable by :func:`mark_placeholder`; :class:`Placeholder`
is the module that is nothing but such a mark, and a searchable backbone may
mark the mutables it builds by default, so that a mapping naming their group
replaces them (the older configs give such a mapping for backbones that, in
this toolbox, also build a default search space).

This module imports nothing of mutators or algorithms.
"""
import copy
import inspect
from typing import Any, Dict, List, Mapping, Optional, Tuple

import torch.nn as nn

from mmrazor.registry import MODELS

#: Attribute holding a module's placeholder mark.
PLACEHOLDER_ATTR = '_placeholder_mark'


class PlaceholderMark:
    """Where a module may be filled from a ``placeholder_mapping``.

    Args:
        group (str): The key of the mapping that fills it.
        space_id (str, optional): The decision key (alias) of the mutable
            built in its place; mutables of one ``space_id`` are one
            decision.
        choice_args (dict, optional): Arguments every candidate gets
            (``in_channels``, ``out_channels``, ``stride``).
        takes_candidates (bool): The built mutable chooses among the
            marked module's candidates (``module.candidates``, e.g. the
            input edges of a node) and gets them as ``choices``.
    """

    def __init__(self,
                 group: str,
                 space_id: Optional[str] = None,
                 choice_args: Optional[Dict] = None,
                 takes_candidates: bool = False) -> None:
        if not isinstance(group, str) or not group:
            raise TypeError(f'placeholder group must be a non-empty str, '
                            f'got {group!r}')
        self.group = group
        self.space_id = space_id
        self.choice_args = dict(choice_args or {})
        self.takes_candidates = takes_candidates

    def __repr__(self) -> str:
        return (f'PlaceholderMark(group={self.group!r}, '
                f'space_id={self.space_id!r})')


def mark_placeholder(module: nn.Module,
                     group: str,
                     space_id: Optional[str] = None,
                     choice_args: Optional[Dict] = None,
                     takes_candidates: bool = False) -> nn.Module:
    """Mark ``module`` as filled by the ``group`` entry of a
    ``placeholder_mapping`` (see :class:`PlaceholderMark`).

    Returns:
        nn.Module: ``module``.
    """
    module.__dict__[PLACEHOLDER_ATTR] = PlaceholderMark(
        group, space_id, choice_args, takes_candidates)
    return module


def placeholder_mark(module: nn.Module) -> Optional[PlaceholderMark]:
    """The placeholder mark of ``module`` (None if it has none)."""
    return module.__dict__.get(PLACEHOLDER_ATTR)


@MODELS.register_module()
class Placeholder(nn.Module):
    """The place of a decision whose candidates the mutator's
    ``placeholder_mapping`` gives.

    It runs nothing: a model still holding a placeholder when it runs
    raises an error naming the group to map.

    Args:
        group (str): The key of ``placeholder_mapping`` that fills it.
        space_id (str, optional): Decision key of the mutable built here.
        choice_args (dict, optional): Arguments of every candidate.
        choices (dict | nn.ModuleDict, optional): Modules the mutable built
            here chooses among (e.g. the input edges of a DARTS node); the
            mapping's mutable gets them as ``choices``.
        module_kwargs (dict, optional): The newer name of ``choice_args``
            (what a backbone stage gives its block mutables); merged under
            ``choice_args``.
    """

    def __init__(self,
                 group: str,
                 space_id: Optional[str] = None,
                 choice_args: Optional[Dict] = None,
                 choices: Optional[Mapping[str, nn.Module]] = None,
                 module_kwargs: Optional[Dict] = None) -> None:
        super().__init__()
        choice_args = dict(module_kwargs or {}, **(choice_args or {}))
        if choices is not None:
            if not isinstance(choices, nn.ModuleDict):
                choices = nn.ModuleDict(choices)
            self.candidates = choices
        mark_placeholder(self, group, space_id, choice_args,
                         takes_candidates=choices is not None)

    @property
    def group(self) -> str:
        return placeholder_mark(self).group

    @property
    def space_id(self) -> Optional[str]:
        return placeholder_mark(self).space_id

    @property
    def choice_args(self) -> Dict:
        return placeholder_mark(self).choice_args

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(
            f'Placeholder of group {self.group!r} (space_id '
            f'{self.space_id!r}) was not filled: give the mutator a '
            f'placeholder_mapping with the key {self.group!r}')

    def extra_repr(self) -> str:
        return f'group={self.group!r}, space_id={self.space_id!r}'


def _takes(type_: Any, key: str) -> bool:
    """Whether the class a config ``type`` names has parameter ``key``
    (declared, not only through ``**kwargs``)."""
    cls = MODELS.get(type_) if isinstance(type_, str) else type_
    if not inspect.isclass(cls):
        return False
    try:
        return key in inspect.signature(cls.__init__).parameters
    except (TypeError, ValueError):
        return False


def build_placeholder_mutable(mark: PlaceholderMark, cfg: Mapping,
                              candidates: Optional[nn.ModuleDict] = None
                              ) -> nn.Module:
    """Build the mutable of ``cfg`` in the place described by ``mark``.

    The config gets ``space_id`` (``alias`` for a mutable without that
    argument) unless it sets one, and ``choice_args`` (``module_kwargs``
    for the newer mutables) merged under the config's own; a mark that
    takes candidates gives them as ``choices`` (``edges``).
    """
    if not isinstance(cfg, Mapping) or 'type' not in cfg:
        raise TypeError(f'placeholder_mapping[{mark.group!r}] must be a '
                        f"config dict with a 'type', got {cfg!r}")
    cfg = copy.deepcopy(dict(cfg))
    if mark.space_id is not None and 'space_id' not in cfg and \
            'alias' not in cfg:
        cfg['space_id' if _takes(cfg['type'], 'space_id') else
            'alias'] = mark.space_id
    if mark.choice_args:
        # Older mutables take ``choice_args``; the newer ``module_kwargs``.
        key = 'choice_args' if _takes(cfg['type'], 'choice_args') \
            else 'module_kwargs'
        args = dict(mark.choice_args)
        args.update(cfg.get(key) or {})
        cfg[key] = args
    if mark.takes_candidates:
        if candidates is None:
            raise ValueError(f'placeholder of group {mark.group!r} has no '
                             'candidates to choose among')
        key = 'choices' if _takes(cfg['type'], 'choices') else 'edges'
        if key in cfg:
            raise ValueError(f'placeholder_mapping[{mark.group!r}] sets '
                             f'{key}, but the placeholder gives them')
        cfg[key] = candidates
    return MODELS.build(cfg)


def fill_placeholders(model: nn.Module,
                      mapping: Optional[Mapping[str, Mapping]]
                      ) -> List[Tuple[str, nn.Module]]:
    """Replace every marked module of ``model`` whose group ``mapping``
    names by the mutable the mapping's config builds (inner places first,
    so a node choosing among edges gets the filled edges).

    A :class:`Placeholder` whose group the mapping lacks is an error; a
    marked module that is a working module of its own (a backbone's default
    mutable) stays when the mapping does not name its group.

    Args:
        model (nn.Module): The search space (changed in place).
        mapping (dict, optional): ``{group: mutable config}``.

    Returns:
        list[tuple[str, nn.Module]]: ``(module path, new module)`` of each
        filled place, in the order filled.
    """
    mapping = dict(mapping or {})
    filled: List[Tuple[str, nn.Module]] = []
    unmapped: List[str] = []

    def visit(parent: nn.Module, prefix: str) -> None:
        for name, child in list(parent.named_children()):
            path = f'{prefix}{name}'
            visit(child, path + '.')
            mark = placeholder_mark(child)
            if mark is None:
                continue
            if mark.group not in mapping:
                if isinstance(child, Placeholder):
                    unmapped.append(f'{path} (group {mark.group!r})')
                continue
            new = build_placeholder_mutable(
                mark, mapping[mark.group],
                getattr(child, 'candidates', None)
                if mark.takes_candidates else None)
            setattr(parent, name, new)
            filled.append((path, new))

    visit(model, '')
    if unmapped:
        raise KeyError(
            f'placeholder_mapping {sorted(mapping)} does not fill the '
            f'placeholders {unmapped}: add a mutable config for each group')
    return filled
