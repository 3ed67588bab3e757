"""Find a function or method by its import path, and patch it for a while."""
import importlib
import inspect
from types import ModuleType
from typing import Any, Callable, Tuple


def import_owner(path: str, what: str) -> Tuple[ModuleType, Tuple[str, ...]]:
    """Import the longest module prefix of a dotted ``path``.

    Args:
        path (str): E.g. ``'mmpretrain.models.heads.cls_head.ClsHead.loss'``.
        what (str): What ``path`` names, for the message.

    Returns:
        tuple: The module and the remaining attribute names
        (``('ClsHead', 'loss')``).
    """
    parts = path.split('.')
    for cut in range(len(parts) - 1, 0, -1):
        module_name = '.'.join(parts[:cut])
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            # a missing *prefix* means: try a shorter one; an import that
            # fails inside an existing module is a real error
            if err.name and not module_name.startswith(err.name):
                raise
            continue
        return module, tuple(parts[cut:])
    raise ImportError(f'{what} {path!r}: no module of that path can be '
                      'imported; write it as "package.module.name"')


def resolve_function(path: str) -> Tuple[ModuleType, str, Callable]:
    """The module-level function at ``path`` and where it lives.

    Args:
        path (str): ``'package.module.func'``: the module the function is
            *used* in (it is patched there), not where it is defined.

    Returns:
        tuple: ``(module, name, function)``.
    """
    module, names = import_owner(path, 'function')
    if len(names) != 1:
        raise AttributeError(
            f'function {path!r}: module {module.__name__!r} has no function '
            f'{".".join(names)!r}; a function recorder takes '
            '"package.module.func" (for a method use a method recorder)')
    func = getattr(module, names[0], None)
    if not callable(func):
        raise AttributeError(f'function {path!r}: module {module.__name__!r} '
                             f'has no callable {names[0]!r}')
    return module, names[0], func


def resolve_method(path: str) -> Tuple[type, str, Callable]:
    """The method at ``path`` and its class.

    Args:
        path (str): ``'package.module.Class.method'``.

    Returns:
        tuple: ``(class, name, method)``; the method as the class stores
        it, a ``staticmethod`` or ``classmethod`` object included.
    """
    module, names = import_owner(path, 'method')
    if len(names) != 2:
        raise AttributeError(
            f'method {path!r}: expected "package.module.Class.method", got '
            f'{".".join(names)!r} after module {module.__name__!r}')
    cls = getattr(module, names[0], None)
    if not isinstance(cls, type):
        raise AttributeError(f'method {path!r}: module {module.__name__!r} '
                             f'has no class {names[0]!r}')
    try:
        method = inspect.getattr_static(cls, names[1])
    except AttributeError:
        method = None
    if not callable(getattr(method, '__func__', method)):
        raise AttributeError(f'method {path!r}: class {cls.__name__} has no '
                             f'method {names[1]!r}')
    return cls, names[1], method


class AttributePatch:
    """Replace ``owner.name`` by ``value`` until :meth:`restore`.

    An attribute the owner only inherited (a method of a base class) is
    deleted again on restore rather than copied onto the owner.

    Args:
        owner (Any): A module or a class.
        name (str): The attribute.
        value (Any): The replacement.
    """

    def __init__(self, owner: Any, name: str, value: Any) -> None:
        self.owner = owner
        self.name = name
        own = vars(owner)
        self._had_own = name in own
        self._original = own.get(name)
        setattr(owner, name, value)

    def restore(self) -> None:
        """Put the original attribute back."""
        if self._had_own:
            setattr(self.owner, self.name, self._original)
        else:
            delattr(self.owner, self.name)


def unwrap_descriptor(attr: Any) -> Tuple[Callable, Callable, bool]:
    """Split a class attribute into its function and how to re-wrap it.

    Args:
        attr (Any): A function, ``staticmethod`` or ``classmethod``.

    Returns:
        tuple: ``(function, rewrap, first_is_bound)``: ``rewrap(f)`` turns a
        function back into the same kind of attribute; ``first_is_bound``
        tells whether the first argument of a call is ``self``/``cls``.
    """
    if isinstance(attr, staticmethod):
        return attr.__func__, staticmethod, False
    if isinstance(attr, classmethod):
        return attr.__func__, classmethod, True
    return attr, (lambda f: f), True
