"""Subnet files: the one reader and writer, and the views of a subnet.

In memory a subnet is a *flat sample* ``{decision key: chosen value}``; a
value is a choice name, an int, a float, a bool or a list of them (several
chosen names, a channel mask). Every other shape is a *view* of such a
sample, converted here and nowhere else:

* ``'flat'``: ``{key: value}``; also ``{space_id: mask}`` (tensors and
  arrays become plain lists).
* ``'chosen'``: ``{key: {'chosen': value}}``, the 1.x files and what the
  mutators write; a ``'meta'`` next to ``'chosen'`` is ignored, and
  :class:`~mmrazor.utils.typing.DumpChosen` values (what
  ``export_fix_subnet`` returns) read as ``{'chosen': value}``.
* ``'chosen_list'``: ``{key: {'chosen': [value]}}``, the 0.x files (e.g.
  ``stage_0_block_0: {chosen: [shuffle_7x7]}``); a one-element list of a
  choice name reads as that name, longer lists stay lists.
* ``'modules'``: ``{'modules': {key: value}, 'channels': {key: value}}``;
  written with every key under ``'modules'``.
* ``'channel_cfg'``: ``{layer: {'in_channels': n, 'out_channels': n, ...}}``,
  the AutoSlim channel configs and ``StructurePruner.export_subnet``. Its
  flat keys are ``'{layer}.{attribute}'`` (``'backbone.conv1.out_channels'``)
  with an attribute of :data:`CHANNEL_ATTRS`.
* ``'units'``: ``{'channel_unit_cfg': {'units': {name: {'choice': v}}}}``,
  the 1.x channel-mutator JSON files (DMCP, DCFF); other fields of a unit
  (``init_args``) are not part of the sample and are not written back.

Files are YAML (``.yaml``/``.yml``) or JSON (``.json``), chosen by the
extension; anything else is read as YAML, which also parses JSON.
"""
import json
import numbers
import os.path as osp
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Union

import yaml

from mmrazor.utils import atomic_write_bytes
from mmrazor.utils.typing import DumpChosen

#: The views a subnet can be read from and written to.
VIEWS = ('flat', 'chosen', 'chosen_list', 'modules', 'channel_cfg', 'units')
#: Attributes of a layer in a channel config.
CHANNEL_ATTRS = ('in_channels', 'out_channels', 'raw_in_channels',
                 'raw_out_channels', 'kept_units')

PathLike = Union[str, Path]
SubnetSource = Union[PathLike, Mapping]
_SCALARS = (str, bool, int, float)


class SubnetError(KeyError, ValueError):
    """A subnet is malformed or does not fit the model: an unknown key, a
    missing key or an invalid choice. The message names the offending file,
    key and value.

    It is both a ``KeyError`` and a ``ValueError``.
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ''


def to_plain(value: Any) -> Any:
    """Plain data of a choice: tensors, arrays and tuples become lists,
    numpy scalars Python scalars (recursively).

    Args:
        value (Any): A choice (or a mapping / list holding choices).

    Returns:
        Any: The same value made of dicts, lists and Python scalars; a
        :class:`DumpChosen` becomes ``{'chosen': ...}`` (with ``'meta'``
        when it has one).
    """
    if isinstance(value, DumpChosen):
        plain = {'chosen': to_plain(value.chosen)}
        if value.meta is not None:
            plain['meta'] = to_plain(value.meta)
        return plain
    if isinstance(value, Mapping):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if not isinstance(value, _SCALARS) and callable(
            getattr(value, 'tolist', None)):  # torch.Tensor, numpy
        return to_plain(value.tolist())
    return value


def _fail(where: str, key: Any, message: str) -> SubnetError:
    return SubnetError(f'{where}subnet key {key!r}: {message}')


def _is_plain(value: Any) -> bool:
    if isinstance(value, list):
        return all(_is_plain(v) for v in value)
    return isinstance(value, _SCALARS)


def _check_value(where: str, key: str, value: Any, plain: bool) -> Any:
    if value is None or isinstance(value, Mapping):
        raise _fail(
            where, key, f'expected a choice (a name, a number or a '
            f'list of them), got {value!r}')
    if plain and not _is_plain(value):
        raise _fail(
            where, key, f'expected plain data (str, int, float, bool '
            f'or a list of them), got {value!r} '
            f'({type(value).__name__})')
    return value


def _is_count(value: Any) -> bool:
    return isinstance(
        value, numbers.Integral) and not isinstance(value, bool) and value >= 0


def _check_channel(where: str, key: str, attr: str, value: Any) -> Any:
    if attr not in CHANNEL_ATTRS:
        raise _fail(
            where, key, f'unknown channel attribute {attr!r} '
            f'(known: {", ".join(CHANNEL_ATTRS)})')
    ok = (isinstance(value, (list, tuple)) and all(map(_is_count, value))
          if attr == 'kept_units' else _is_count(value))
    if not ok:
        what = 'a list of unit indices' if attr == 'kept_units' else \
            'a channel count'
        raise _fail(where, key, f'{attr} must be {what}, got {value!r}')
    return value


def _is_channel_entry(value: Any) -> bool:
    return isinstance(value, Mapping) and 'chosen' not in value and (
        'out_channels' in value or 'in_channels' in value)


def _undump(data: Mapping) -> Mapping:
    """``data`` with :class:`DumpChosen` values read as ``{'chosen':
    value}``."""
    if not any(isinstance(v, DumpChosen) for v in data.values()):
        return data
    return {
        k: {
            'chosen': v.chosen
        } if isinstance(v, DumpChosen) else v
        for k, v in data.items()
    }


def detect_view(data: Mapping) -> str:
    """The view ``data`` is stored in (see :data:`VIEWS`).

    Args:
        data (Mapping): A subnet in any view.

    Returns:
        str: One of :data:`VIEWS`; ``'chosen'`` for a mix of ``{'chosen':
        v}`` entries and plain values.

    Raises:
        SubnetError: ``data`` is not a mapping.
    """
    if not isinstance(data, Mapping):
        raise SubnetError(f'a subnet must be a mapping, got '
                          f'{type(data).__name__}')
    data = _undump(data)
    units = data.get('channel_unit_cfg')
    if isinstance(units, Mapping) and 'units' in units:
        return 'units'
    modules = data.get('modules')
    if data and set(data) <= {'modules', 'channels'} and all(
            v is None or isinstance(v, Mapping) for v in data.values()) and \
            not (isinstance(modules, Mapping) and 'chosen' in modules):
        return 'modules'
    values = list(data.values())
    if not any(isinstance(v, Mapping) for v in values):
        return 'flat'
    if all(_is_channel_entry(v) for v in values):
        return 'channel_cfg'
    if all(
            isinstance(v, Mapping) and isinstance(v.get('chosen'), list)
            for v in values):
        return 'chosen_list'
    return 'chosen'


def _unwrap(where: str, key: str, value: Any) -> Any:
    """``{'chosen': v}`` (a ``'meta'`` next to it is ignored) or
    ``DumpChosen(v, meta)`` -> ``v`` (a one-element list of a name -> the
    name); a plain value as it is."""
    if isinstance(value, DumpChosen):
        value = {'chosen': value.chosen}
    if isinstance(value, Mapping):
        if 'chosen' not in value or set(value) - {'chosen', 'meta'}:
            raise _fail(
                where, key, f"expected {{'chosen': ...}} or a "
                f'choice, got {dict(value)!r}')
        value = value['chosen']
        if isinstance(value, (list, tuple)) and len(value) == 1 and \
                isinstance(value[0], str):
            value = value[0]
    return _check_value(where, key, value, plain=False)


def to_flat(data: Mapping,
            view: Optional[str] = None,
            where: str = '') -> Dict:
    """Read a subnet in any view into the flat sample.

    Values are kept as they are (tensors stay tensors; see
    :func:`to_plain`); only the view's wrapping is removed.

    Args:
        data (Mapping): The subnet.
        view (str, optional): Its view; detected when None.
        where (str): Prefix of error messages (e.g. ``'file.yaml: '``).

    Returns:
        dict: ``{key: value}``.

    Raises:
        SubnetError: An entry does not fit the view (the message names
            the key and the value).
    """
    view = view or detect_view(data)
    data = _undump(data)
    flat: Dict[str, Any] = {}
    if view == 'units':
        cfg = data.get('channel_unit_cfg')
        units = cfg.get('units') if isinstance(cfg, Mapping) else None
        if not isinstance(units, Mapping):
            raise SubnetError(f'{where}channel_unit_cfg.units must be a '
                              f'mapping, got {units!r}')
        for name, unit in units.items():
            if not isinstance(unit, Mapping) or 'choice' not in unit:
                raise _fail(where, name, "a unit needs a 'choice', got "
                            f'{unit!r}')
            flat[str(name)] = _check_value(where, name, unit['choice'], False)
        return flat
    if view == 'channel_cfg':
        for layer, entry in data.items():
            if not _is_channel_entry(entry):
                raise _fail(
                    where, layer, 'expected a channel config entry '
                    f'{{in_channels, out_channels, ...}}, got '
                    f'{entry!r}')
            for attr, value in entry.items():
                key = f'{layer}.{attr}'
                flat[key] = _check_channel(where, key, str(attr), value)
        return flat
    if view == 'modules':
        merged: Dict[str, Any] = {}
        for part in ('modules', 'channels'):
            for key, value in (data.get(part) or {}).items():
                if str(key) in merged:
                    raise _fail(where, key, "given under both 'modules' "
                                "and 'channels'")
                merged[str(key)] = value
        data = merged
    elif view not in VIEWS:
        raise SubnetError(f'unknown subnet view {view!r}; one of {VIEWS}')
    for key, value in data.items():
        flat[str(key)] = _unwrap(where, key, value)
    return flat


def _from_flat(flat: Dict[str, Any], view: str, where: str) -> Dict:
    if view == 'flat':
        return dict(flat)
    if view == 'chosen':
        return {k: {'chosen': v} for k, v in flat.items()}
    if view == 'chosen_list':
        return {
            k: {
                'chosen': v if isinstance(v, list) else [v]
            }
            for k, v in flat.items()
        }
    if view == 'modules':
        return {'modules': dict(flat), 'channels': {}}
    if view == 'units':
        return {
            'channel_unit_cfg': {
                'units': {
                    k: {
                        'choice': v
                    }
                    for k, v in flat.items()
                }
            }
        }
    if view == 'channel_cfg':
        cfg: Dict[str, Dict[str, Any]] = {}
        for key, value in flat.items():
            layer, _, attr = key.rpartition('.')
            if not layer:
                raise _fail(where, key, "a channel config key is "
                            "'<layer>.<attribute>'")
            cfg.setdefault(layer,
                           {})[attr] = _check_channel(where, key, attr, value)
        return cfg
    raise SubnetError(f'unknown subnet view {view!r}; one of {VIEWS}')


def to_view(subnet: Mapping, view: str, where: str = '') -> Dict:
    """Convert a subnet in any view to ``view``.

    Args:
        subnet (Mapping): The subnet, in any view.
        view (str): One of :data:`VIEWS`, or ``'auto'`` for the view
            ``subnet`` is in.
        where (str): Prefix of error messages.

    Returns:
        dict: The subnet in ``view``.

    Raises:
        SubnetError: ``subnet`` is malformed or has no such view (e.g. a
            key that is not ``'<layer>.<attribute>'`` for ``'channel_cfg'``).
    """
    source_view = detect_view(subnet)
    flat = to_flat(subnet, source_view, where)
    return _from_flat(flat, source_view if view == 'auto' else view, where)


def _read_file(path: str) -> Any:
    if not osp.isfile(path):
        raise FileNotFoundError(f'subnet file not found: {path}')
    with open(path, encoding='utf-8') as f:
        text = f.read()
    try:
        if path.lower().endswith('.json'):
            return json.loads(text)
        return yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as e:
        raise SubnetError(f'{path}: not a valid subnet file ({e})') from e


def load_subnet(source: SubnetSource, view: str = 'flat') -> Dict:
    """Read a subnet from a file (YAML or JSON) or a mapping, in any view.

    Args:
        source (str | Path | Mapping): A subnet file or a subnet.
        view (str): The view to return: one of :data:`VIEWS`, or ``'auto'``
            for the view the source is stored in. Defaults to ``'flat'``.

    Returns:
        dict: The subnet in ``view``. Values read from a file are plain
        data; values of a mapping are returned as they are.

    Raises:
        FileNotFoundError: No such file.
        SubnetError: The file is not valid YAML/JSON, does not hold a
            mapping, or an entry is malformed; the message names the file,
            the key and the value.
    """
    if isinstance(source, (str, Path)):
        path = str(source)
        data = _read_file(path)
        where = f'{path}: '
        if not isinstance(data, Mapping):
            raise SubnetError(f'{path}: a subnet file holds a mapping, got '
                              f'{type(data).__name__}')
        stored = detect_view(data)
        flat = to_flat(data, stored, where)
        for key, value in flat.items():
            _check_value(where, key, value, plain=True)
    elif isinstance(source, Mapping):
        where = ''
        stored = detect_view(source)
        flat = to_flat(source, stored)
    else:
        raise SubnetError(f'a subnet is a file path or a mapping, got '
                          f'{type(source).__name__}')
    return _from_flat(flat, stored if view == 'auto' else view, where)


def _file_format(path: str) -> str:
    ext = osp.splitext(path)[1].lower()
    if ext in ('.yaml', '.yml'):
        return 'yaml'
    if ext == '.json':
        return 'json'
    raise SubnetError(f'{path}: a subnet file ends with .yaml, .yml or '
                      f'.json, not {ext or "no extension"!r}')


def dump_subnet(subnet: Mapping, path: PathLike, view: str = 'chosen') -> Dict:
    """Write a subnet atomically (temporary file + rename) as YAML or JSON,
    by the extension of ``path``.

    Args:
        subnet (Mapping): The subnet, in any view; tensors, arrays and
            tuples are written as lists.
        path (str | Path): The destination (``.yaml``, ``.yml`` or
            ``.json``); its folder is created.
        view (str): The view to write: ``'chosen'`` (``{key: {chosen: v}}``,
            for mutator subnets), ``'channel_cfg'`` (for pruner channel
            configs), another of :data:`VIEWS`, or ``'auto'`` for the view
            ``subnet`` is in. Defaults to ``'chosen'``.

    Returns:
        dict: The data written.

    Raises:
        SubnetError: ``subnet`` is malformed, a value is not plain data, or
            the extension is not known; the message names the file and the
            offending key and value.
    """
    path = str(path)
    fmt = _file_format(path)
    where = f'{path}: '
    stored = detect_view(subnet)
    flat = to_flat(subnet, stored, where)
    flat = {
        k: _check_value(where, k, to_plain(v), plain=True)
        for k, v in flat.items()
    }
    data = _from_flat(flat, stored if view == 'auto' else view, where)
    if fmt == 'json':
        text = json.dumps(data, indent=2, allow_nan=False) + '\n'
    else:
        text = yaml.safe_dump(data,
                              sort_keys=False,
                              default_flow_style=False,
                              allow_unicode=True)
    atomic_write_bytes(text.encode('utf-8'), path)
    return data


def load_subnet_yaml(path: PathLike) -> Dict:
    """A subnet file in the view it is stored in (older name of
    ``load_subnet(path, view='auto')``).

    Args:
        path (str | Path): The file.

    Returns:
        dict: The subnet as stored.
    """
    return load_subnet(path, view='auto')


def dump_subnet_yaml(subnet: Mapping, path: PathLike) -> None:
    """Write ``{key: {'chosen': value}}`` (older name of
    ``dump_subnet(subnet, path, view='chosen')``).

    Args:
        subnet (Mapping): The subnet, in any view.
        path (str | Path): The destination.
    """
    dump_subnet(subnet, path, view='chosen')
