"""Safe checkpoint loading and atomic writing for mmengine on torch >= 2.6.

``torch.load`` defaults to ``weights_only=True`` since torch 2.6, and
mmengine's checkpoints carry a few non-tensor objects (its ``HistoryBuffer``
log scalars holding numpy arrays and references to their statistics
methods). Instead of turning safe loading off, mmrazor keeps
``weights_only=True`` and allow-lists exactly those objects:

* numpy arrays and dtypes (plain data);
* ``mmengine.logging.HistoryBuffer`` (a data holder);
* ``getattr`` *restricted* to the registered statistics methods of
  ``HistoryBuffer`` (``min``, ``max``, ``current``, ``mean`` and methods
  registered with ``HistoryBuffer.register_statistics``). Any other
  ``getattr`` in a pickle is refused, so it cannot be used to reach
  arbitrary callables.

A checkpoint carrying anything else is refused with
:class:`UnsafeCheckpointError`, which names the offending types and how to
trust the file. A file that is cut off or damaged (torch itself reports
errors such as ``PytorchStreamReader failed reading zip archive``) raises
:class:`IncompleteCheckpointError`, which names the file. Files the user
trusts (:func:`trust_checkpoint`, the ``MMRAZOR_TRUSTED_CHECKPOINTS``
environment variable or the ``--trust-checkpoint`` flag of the tools) are
loaded with ``weights_only=False``.

Saving goes through mmengine's file backend; :func:`install` replaces the
local backend by one whose ``put`` writes to a temporary file and renames
it, so an interrupted save never leaves a truncated checkpoint behind.
"""
import builtins
import os
import os.path as osp
import pickle
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Callable, Iterable, List, Optional, Set, Tuple, Union

import numpy as np
import torch
from mmengine.fileio import LocalBackend, register_backend
from mmengine.fileio.io import backend_instances
from mmengine.logging import HistoryBuffer
from mmengine.runner import CheckpointLoader

#: Environment variable listing trusted checkpoint files (os.pathsep-joined).
TRUSTED_ENV = 'MMRAZOR_TRUSTED_CHECKPOINTS'

_trusted_files: Set[str] = set()
_extra_safe_types: List[Union[Callable, Tuple[Callable, str]]] = []
_installed = False


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint holds pickled objects that are not on the safe list."""


class IncompleteCheckpointError(RuntimeError):
    """A checkpoint file is truncated or otherwise damaged."""


#: The first bytes of a zip archive (torch's format since torch 1.6).
_ZIP_MAGIC = b'PK\x03\x04'
#: torch's legacy format starts with this number pickled (little endian).
_LEGACY_MAGIC = torch.serialization.MAGIC_NUMBER.to_bytes(10, 'little')
#: Words in torch's errors about a legacy file whose data ends early.
_LEGACY_DAMAGE_WORDS = ('unexpected EOF', 'truncated', 'corrupt')

#: Statistics methods HistoryBuffer registers for itself.
_DEFAULT_STATISTICS = frozenset({'min', 'max', 'current', 'mean'})


def _history_buffer_getattr(obj: Any, name: str) -> Any:
    """The only ``getattr`` a safe checkpoint may call.

    mmengine pickles ``HistoryBuffer`` with references to its statistics
    methods as ``getattr(HistoryBuffer, 'mean')``. This resolves those and
    refuses everything else.
    """
    allowed = _DEFAULT_STATISTICS | set(HistoryBuffer._statistics_methods)
    if obj is HistoryBuffer and isinstance(name, str) and \
            not name.startswith('_') and name in allowed:
        return getattr(HistoryBuffer, name)
    raise UnsafeCheckpointError(
        f'refused getattr({obj!r}, {name!r}) while loading a checkpoint: '
        'only HistoryBuffer statistics methods may be referenced')


def _numpy_globals() -> List[Union[Callable, Tuple[Callable, str]]]:
    reconstruct = np._core.multiarray._reconstruct if hasattr(
        np, '_core') else np.core.multiarray._reconstruct
    scalar = np._core.multiarray.scalar if hasattr(
        np, '_core') else np.core.multiarray.scalar
    safe: List[Union[Callable, Tuple[Callable, str]]] = [
        np.ndarray, np.dtype,
        (reconstruct, 'numpy.core.multiarray._reconstruct'),
        (reconstruct, 'numpy._core.multiarray._reconstruct'),
        (scalar, 'numpy.core.multiarray.scalar'),
        (scalar, 'numpy._core.multiarray.scalar'),
    ]
    # numpy >= 1.25 pickles dtypes through their classes (np.dtypes.*DType).
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        safe += [
            getattr(dtypes, n) for n in dir(dtypes) if n.endswith('DType')
        ]
    return safe


def safe_globals() -> List[Union[Callable, Tuple[Callable, str]]]:
    """The globals mmrazor allows in a ``weights_only`` checkpoint.

    Returns:
        list: Entries for :func:`torch.serialization.safe_globals`.
    """
    return _numpy_globals() + [
        HistoryBuffer,
        (_history_buffer_getattr, 'builtins.getattr'),
    ] + list(_extra_safe_types)


def _safe_names() -> Set[str]:
    names = set()
    for entry in safe_globals():
        if isinstance(entry, tuple):
            names.add(entry[1])
        else:
            names.add(f'{entry.__module__}.{entry.__qualname__}')
    return names


def add_safe_checkpoint_types(types: Iterable[Union[str, Callable]]) -> None:
    """Allow more types in checkpoints loaded with ``weights_only=True``.

    Args:
        types (Iterable[str | Callable]): Classes or dotted names of classes
            (``'mypkg.module.MyState'``) that are safe to rebuild.
    """
    for t in types:
        if isinstance(t, str):
            module, _, name = t.rpartition('.')
            if not module:
                raise ValueError(f'safe checkpoint type {t!r} must be a '
                                 'dotted path such as "pkg.module.Class"')
            obj: Any = __import__(module, fromlist=[name])
            for part in name.split('.'):
                obj = getattr(obj, part)
            t = obj
        if t is builtins.getattr or t is builtins.eval or t is builtins.exec:
            raise ValueError(f'{t!r} can never be a safe checkpoint type')
        _extra_safe_types.append(t)


def trust_checkpoint(path: Union[str, Path]) -> None:
    """Mark a checkpoint file as trusted: it is loaded with
    ``weights_only=False``. Only do this for files from a trusted source.

    Args:
        path (str | Path): The checkpoint file.
    """
    _trusted_files.add(osp.realpath(str(path)))


def is_trusted(path: Union[str, Path]) -> bool:
    """Whether ``path`` was marked trusted by :func:`trust_checkpoint` or the
    ``MMRAZOR_TRUSTED_CHECKPOINTS`` environment variable.

    Args:
        path (str | Path): The checkpoint file.

    Returns:
        bool: True if the file may be loaded with ``weights_only=False``.
    """
    real = osp.realpath(str(path))
    env = [
        osp.realpath(p) for p in os.environ.get(TRUSTED_ENV, '').split(
            os.pathsep) if p
    ]
    return real in _trusted_files or real in env


def _unsafe_names(filename: str) -> List[str]:
    try:
        found = torch.serialization.get_unsafe_globals_in_checkpoint(filename)
    except Exception:
        return []
    allowed = _safe_names()
    return [n for n in found if n not in allowed]


def _unpickler_reason(err: Exception) -> str:
    """The informative line of torch's weights-only error."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    for i, line in enumerate(lines):
        if line.startswith('WeightsUnpickler error'):
            rest = line.split(':', 1)[1].strip()
            return rest or (lines[i + 1] if i + 1 < len(lines) else line)
    return lines[-1] if lines else repr(err)


def _first_sentence(err: BaseException) -> str:
    """``err``'s type and the first sentence of its message."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    if not lines:
        return type(err).__name__
    return f'{type(err).__name__}: {lines[0].split(". ")[0].rstrip(".")}'


def _damage(filename: str, err: BaseException) -> Optional[str]:
    """Why a file that ``torch.load`` failed on looks cut off or damaged.

    A zip checkpoint is checked on its own: its directory (at the end of
    the file, so the first thing a truncation loses) and the checksums of
    its pickled records; a whole archive still counts as damaged when
    torch's zip reader fails on it. A legacy (pre torch 1.6) checkpoint is
    judged by torch's error.

    Args:
        filename (str): The checkpoint file.
        err (BaseException): What ``torch.load`` raised.

    Returns:
        str | None: What is wrong with the file, or None if it looks whole
        (then ``err`` has another cause).
    """
    try:
        size = osp.getsize(filename)
        with open(filename, 'rb') as f:
            head = f.read(32)
    except OSError:
        return None
    if size == 0:
        return 'the file is empty'
    if head.startswith(_ZIP_MAGIC):
        try:
            with zipfile.ZipFile(filename) as archive:
                for name in archive.namelist():
                    if name.endswith('.pkl'):
                        archive.read(name)  # checks the CRC
        except Exception:  # zipfile raises several types on bad data
            return f'{size} bytes, the zip archive is cut off or damaged'
        damaged = 'PytorchStreamReader' in str(err)
    elif _LEGACY_MAGIC in head:
        damaged = isinstance(err, EOFError) or any(
            w in str(err) for w in _LEGACY_DAMAGE_WORDS)
    else:
        return f'{size} bytes that do not start like a PyTorch checkpoint'
    return f'{size} bytes, the data is damaged' if damaged else None


def _raise_if_damaged(filename: str, err: BaseException) -> None:
    """Raise :class:`IncompleteCheckpointError` from ``err`` if the file
    torch failed to load is damaged; return otherwise."""
    what = _damage(filename, err)
    if what is None:
        return
    raise IncompleteCheckpointError(
        f'checkpoint {filename!r} is incomplete or corrupt ({what}; torch '
        f'says {_first_sentence(err)}); it was probably cut off while being '
        'written or copied - re-download it or pick another '
        'checkpoint') from err


def safe_torch_load(filename: Union[str, Path],
                    map_location: Any = 'cpu') -> Any:
    """Load a checkpoint with ``weights_only=True`` and mmrazor's allow list.

    Args:
        filename (str | Path): A local checkpoint file.
        map_location: As in :func:`torch.load`. Defaults to ``'cpu'``.

    Returns:
        The loaded object.

    Raises:
        FileNotFoundError: ``filename`` does not exist.
        UnsafeCheckpointError: The file holds a type that is not allowed and
            the file is not trusted.
        IncompleteCheckpointError: The file is truncated or damaged.
    """
    filename = str(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint file {filename!r} does not exist')
    if is_trusted(filename):
        try:
            return torch.load(
                filename, map_location=map_location, weights_only=False)
        except Exception as err:
            _raise_if_damaged(filename, err)
            raise
    try:
        with torch.serialization.safe_globals(safe_globals()):
            return torch.load(
                filename, map_location=map_location, weights_only=True)
    except Exception as err:
        _raise_if_damaged(filename, err)
        if not isinstance(err, pickle.UnpicklingError):
            raise
        names = _unsafe_names(filename)
        what = ', '.join(names) if names else _unpickler_reason(err)
        raise UnsafeCheckpointError(
            f'Refusing to load checkpoint {filename!r}: it holds pickled '
            f'objects that are not known to be safe: {what}. Loading it '
            'could run arbitrary code. If you trust the source of this '
            'file, pass --trust-checkpoint to the mmrazor tool, set '
            f'{TRUSTED_ENV}={filename}, or call '
            'mmrazor.utils.trust_checkpoint(path); to allow only these '
            'types, call mmrazor.utils.add_safe_checkpoint_types('
            f'{names!r}).') from err


def _load_from_local(filename: str, map_location: Any) -> Any:
    return safe_torch_load(osp.expanduser(filename), map_location)


class AtomicLocalBackend(LocalBackend):
    """mmengine's local file backend whose writes are atomic.

    ``put`` and ``put_text`` write to a temporary file in the destination
    folder, flush it to disk and rename it over the destination, so a
    crash mid-write never leaves a truncated file.
    """

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        atomic_write_bytes(obj, filepath)

    def put_text(self,
                 obj: str,
                 filepath: Union[str, Path],
                 encoding: str = 'utf-8') -> None:
        atomic_write_bytes(obj.encode(encoding), filepath)


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(data: bytes, filepath: Union[str, Path]) -> None:
    """Write ``data`` to ``filepath`` atomically (temporary file + rename).

    Args:
        data (bytes): The content.
        filepath (str | Path): The destination; its folder is created.
    """
    filepath = str(filepath)
    folder = osp.dirname(osp.abspath(filepath))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        dir=folder, prefix=f'.{osp.basename(filepath)}.', suffix='.tmp')
    try:
        # mkstemp creates the file 0600; give it the mode a plain open()
        # would (0666 minus the umask), so shared work dirs stay readable.
        os.chmod(tmp, 0o666 & ~_current_umask())
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, filepath)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


def save_state_dict(model: torch.nn.Module, path: Union[str, Path],
                    meta: Optional[dict] = None) -> None:
    """Save ``model``'s state dict (CPU tensors) as ``{'meta': meta,
    'state_dict': ...}`` atomically, a file ``load_from`` / ``--checkpoint``
    of the tools read like a Runner checkpoint.

    Args:
        model (nn.Module): The model, or a model wrapper (its ``module``
            is saved).
        path (str | Path): The destination.
        meta (dict, optional): Plain data describing the weights.
    """
    import io

    from mmengine.model import is_model_wrapper
    from mmengine.runner.checkpoint import get_state_dict, weights_to_cpu
    if is_model_wrapper(model):
        model = model.module
    buffer = io.BytesIO()
    torch.save(
        dict(meta=dict(meta or {}),
             state_dict=weights_to_cpu(get_state_dict(model))), buffer)
    atomic_write_bytes(buffer.getvalue(), path)


def install() -> None:
    """Make mmengine load local checkpoints safely and write atomically.

    Called once when :mod:`mmrazor` is imported; calling it again is a no-op.
    """
    global _installed
    if _installed:
        return
    CheckpointLoader.register_scheme(
        prefixes='', loader=_load_from_local, force=True)
    register_backend('local', AtomicLocalBackend, force=True, prefixes='')
    # Drop local backends mmengine may have cached before this call.
    for key, backend in list(backend_instances.items()):
        if type(backend) is LocalBackend:
            del backend_instances[key]
    _installed = True
