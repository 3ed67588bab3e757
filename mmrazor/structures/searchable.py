"""What a searchable decision shows to the layers below the mutables.

Subnet files (:mod:`mmrazor.structures.subnet`) and the cost model
(:mod:`mmrazor.models.task_modules.estimators`) work on searchable modules
without knowing the mutable classes: every mutable derives from
:class:`Searchable` and declares, as class attributes, what these layers
need to know about it.
"""
from abc import ABC
from typing import Any, Optional


class MutableFixedError(RuntimeError, AttributeError):
    """A mutable that is already fixed was asked to change its decision.

    It is both a ``RuntimeError`` and an ``AttributeError``: the older
    toolbox raised the one for value mutables and the other for module
    mutables (fixing twice, setting ``is_fixed`` again), and code written
    against it catches either.
    """


class InvalidChoiceError(ValueError, AssertionError):
    """A choice that a mutable does not offer (or a missing one).

    It is both a ``ValueError`` and an ``AssertionError`` (what the older
    toolbox raised, e.g. from ``fix_chosen`` with an unknown value).
    """


class Searchable(ABC):
    """Marker and interface of a searchable decision (a mutable).

    Attributes:
        alias (str | None): Name shared by the mutables of one decision; the
            subnet key when set.
        current_choice: The choice in use now.
        is_fixed (bool): Whether the decision was made permanent.
        derived (bool): Class attribute. True when the value follows other
            mutables (a derived value), so that subnet files and cost
            models skip it as a decision of its own. Defaults to False.
        single_path (bool): Class attribute. True for a module mutable whose
            forward runs only its chosen candidates (``candidates`` is an
            ``nn.ModuleDict``): the cost model counts just those. Defaults
            to False.
    """

    alias: Optional[str]
    current_choice: Any
    is_fixed: bool
    derived: bool = False
    single_path: bool = False


def is_decision(module: Any) -> bool:
    """Whether ``module`` is a searchable decision of its own (a mutable
    that is not derived from others).

    Args:
        module: Any object, typically a sub-module of a model.

    Returns:
        bool: True for a non-derived :class:`Searchable`.
    """
    return isinstance(module, Searchable) and not module.derived
