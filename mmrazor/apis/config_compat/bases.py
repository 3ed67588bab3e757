"""Resolve ``pkg::path`` base configs without ``pkg_resources``.

mmengine 0.10 finds the config folder of a package named in a base
(``_base_ = 'mmcls::_base_/default_runtime.py'``) through
``mmengine.utils.is_installed`` / ``get_installed_path``, both built on
``pkg_resources``, which setuptools >= 70 no longer ships. Within
:func:`sibling_config_bases` such bases are resolved here instead:

* ``mmcls::``, ``mmpretrain::``, ``mmdet::``, ``mmseg::``: the package is
  located with :func:`importlib.util.find_spec` (nothing is imported) and the
  file is looked up in the configs it ships (``<package>/.mim/configs``) or,
  for a source checkout, ``configs/`` next to the package. ``mmcls::`` reads
  mmpretrain's configs, mmcls' successor.
* ``mmrazor::``: first the configs tree the file being read belongs to (the
  folders above it, nearest first; users keep the original toolbox's configs
  tree), then the tree of the config the user named, then mmrazor's own
  ``configs/``.

Any other base is left to mmengine.
"""
import contextlib
import importlib.util
import os.path as osp
from typing import Callable, Dict, Iterator, List, Optional, Tuple

from mmengine.config import Config
from mmengine.logging import print_log

#: Config scopes whose configs another package ships.
PACKAGE_OF_SCOPE: Dict[str, str] = {
    # mmcls 1.x became mmpretrain 1.x; its configs kept their paths.
    'mmcls': 'mmpretrain',
}

#: Bases that moved after configs naming them were written:
#: ``'scope::old/path.py'`` -> the new path in the same package.
MOVED_BASES: Dict[str, str] = {
    # 1.0.0rc kept the SPOS configs in a ``shufflenet/`` folder; the
    # released tree flattened it, but DetNAS' ImageNet supernet config
    # still names the old place.
    'mmrazor::nas/mmcls/spos/shufflenet/spos_shufflenet_supernet_8xb128_in1k.py':  # noqa: E501
    'nas/mmcls/spos/spos_shufflenet_supernet_8xb128_in1k.py',
    # mmpretrain 1.0 dropped the ``_pt`` (pre-training) tag of DeiT configs.
    'mmcls::deit/deit-base_pt-16xb64_in1k.py': 'deit/deit-base_16xb64_in1k.py',
}

#: mmrazor's own configs: ``configs/`` of the source tree.
MMRAZOR_CONFIGS = osp.join(
    osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))),
    'configs')


class BaseConfigNotFoundError(FileNotFoundError):
    """A ``pkg::path`` base config cannot be found.

    The message names the base, the package and every place looked in.
    """


def package_of_scope(scope: str) -> str:
    """The Python package whose configs a base of ``scope`` names.

    Args:
        scope (str): The part before ``::`` (``'mmcls'``, ``'mmdet'`` ...).

    Returns:
        str: The package, e.g. ``'mmpretrain'`` for ``'mmcls'``.
    """
    return PACKAGE_OF_SCOPE.get(scope, scope)


def package_config_dirs(package: str) -> Optional[List[str]]:
    """The config folders that ``package`` ships, located without importing.

    Args:
        package (str): A top-level Python package, e.g. ``'mmpretrain'``.

    Returns:
        list[str] | None: ``<package>/.mim/configs`` (installed) and
        ``configs/`` beside the package (source checkout), or None when the
        package is not installed.
    """
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        return None
    dirs = []
    for location in spec.submodule_search_locations:
        dirs.append(osp.join(location, '.mim', 'configs'))
        dirs.append(osp.join(osp.dirname(location), 'configs'))
    return dirs


def enclosing_dirs(path: str) -> List[str]:
    """The folders above ``path``, nearest first.

    Args:
        path (str): A file.

    Returns:
        list[str]: Its folder, that folder's parent, ... up to the root.
    """
    dirs = []
    current = osp.dirname(osp.abspath(path))
    while current not in dirs:
        dirs.append(current)
        current = osp.dirname(current)
    return dirs


def mmrazor_config_dirs(reading: str, user_config: str) -> List[str]:
    """Where a ``mmrazor::`` base is looked for, in order.

    Args:
        reading (str): The config file whose ``_base_`` names the base.
        user_config (str): The config file the user asked to load.

    Returns:
        list[str]: The folders above ``reading``, those above
        ``user_config``, then mmrazor's own ``configs/``.
    """
    dirs = enclosing_dirs(reading)
    dirs += [d for d in enclosing_dirs(user_config) if d not in dirs]
    dirs.append(MMRAZOR_CONFIGS)
    return dirs


def first_existing(rel_path: str, dirs: List[str]) -> Optional[str]:
    """The first ``<dir>/<rel_path>`` that is a file.

    Args:
        rel_path (str): A path relative to a configs folder.
        dirs (list[str]): Folders, in order of preference.

    Returns:
        str | None: The file, or None when no folder has it.
    """
    for folder in dirs:
        candidate = osp.join(folder, rel_path)
        if osp.isfile(candidate):
            return candidate
    return None


def candidate_names(scope: str, rel_path: str) -> List[str]:
    """``rel_path``, then where :data:`MOVED_BASES` says it moved, then
    (``mmdet::``) its mmdet 3 spelling.

    Args:
        scope (str): The part before ``::``.
        rel_path (str): The part after it.

    Returns:
        list[str]: Paths to look for, in order.
    """
    names = [rel_path]
    moved = MOVED_BASES.get(f'{scope}::{rel_path}')
    if moved is not None:
        names.append(moved)
    folder, name = osp.split(rel_path)
    if scope == 'mmdet' and '_rcnn' in name:
        # mmdet 3.0 spells the R-CNN config files with a hyphen, in the
        # same folders (faster_rcnn/faster_rcnn_r50_fpn_1x_coco.py ->
        # faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py)
        names.append(osp.join(folder, name.replace('_rcnn', '-rcnn')))
    return names


def find_base(scope: str, rel_path: str, dirs: List[str]) -> Optional[str]:
    """The first of :func:`candidate_names` found in ``dirs``; a moved base
    is logged.

    Args:
        scope (str): The part before ``::``.
        rel_path (str): The part after it.
        dirs (list[str]): Folders, in order of preference.

    Returns:
        str | None: The file, or None.
    """
    for name in candidate_names(scope, rel_path):
        found = first_existing(name, dirs)
        if found is not None:
            if name != rel_path:
                print_log(
                    f'base config {scope}::{rel_path} moved; reading '
                    f'{found}',
                    logger='current')
            return found
    return None


def resolve_mmrazor_base(rel_path: str, reading: str, user_config: str) -> str:
    """The file a ``mmrazor::rel_path`` base names.

    Args:
        rel_path (str): The path after ``mmrazor::``.
        reading (str): The config file whose ``_base_`` names it.
        user_config (str): The config file the user asked to load.

    Returns:
        str: The base config file.

    Raises:
        BaseConfigNotFoundError: No folder holds it.
    """
    dirs = mmrazor_config_dirs(reading, user_config)
    found = find_base('mmrazor', rel_path, dirs)
    if found is not None:
        return found
    names = candidate_names('mmrazor', rel_path)
    raise BaseConfigNotFoundError(
        f'base config "mmrazor::{rel_path}" (named in {reading}) not found '
        f'in package mmrazor; looked for {" or ".join(names)} in the folders '
        f'above {reading}, those above {user_config} and in '
        f'{MMRAZOR_CONFIGS}')


def resolve_package_base(scope: str, rel_path: str, reading: str) -> str:
    """The file a ``scope::rel_path`` base of a sibling toolbox names.

    Args:
        scope (str): The part before ``::`` (``'mmcls'``, ``'mmdet'`` ...).
        rel_path (str): The part after it.
        reading (str): The config file whose ``_base_`` names it.

    Returns:
        str: The base config file.

    Raises:
        BaseConfigNotFoundError: The package is not installed, or none of
            its config folders holds the file.
    """
    package = package_of_scope(scope)
    base = f'{scope}::{rel_path}'
    dirs = package_config_dirs(package)
    if dirs is None:
        raise BaseConfigNotFoundError(
            f'base config "{base}" (named in {reading}) needs package '
            f'{package}, which is not installed (looked with '
            f'importlib.util.find_spec({package!r})); install it to read '
            'this config')
    found = find_base(scope, rel_path, dirs)
    if found is None:
        names = ' or '.join(candidate_names(scope, rel_path))
        raise BaseConfigNotFoundError(
            f'base config "{base}" (named in {reading}) not found in package '
            f'{package}; looked for {names} in {", ".join(dirs)}')
    return found


def resolve_base(base: str, reading: str, user_config: str) -> str:
    """The file a ``pkg::rel/path.py`` base names.

    Args:
        base (str): The base as written, e.g. ``'mmcls::_base_/x.py'``.
        reading (str): The config file whose ``_base_`` names it.
        user_config (str): The config file the user asked to load.

    Returns:
        str: The base config file.
    """
    scope, _, rel_path = base.partition('::')
    if scope == 'mmrazor':
        return resolve_mmrazor_base(rel_path, reading, user_config)
    return resolve_package_base(scope, rel_path, reading)


def make_cfg_path_getter(
        original: Callable[[str, str], Tuple[str, Optional[str]]],
        user_config: str) -> Callable[[str, str], Tuple[str, Optional[str]]]:
    """A stand-in for ``Config._get_cfg_path`` that resolves ``pkg::``
    bases with :func:`resolve_base` and leaves others to ``original``.

    Args:
        original (callable): mmengine's ``Config._get_cfg_path``.
        user_config (str): The config file the user asked to load.

    Returns:
        callable: ``(cfg_path, filename) -> (path, scope)``, where ``scope``
        is the part before ``::`` (mmengine adds it as ``_scope_`` to the
        base's typed dicts) or None for a relative base.
    """

    def get_cfg_path(cfg_path: str,
                     filename: str) -> Tuple[str, Optional[str]]:
        if '::' not in cfg_path:
            return original(cfg_path, filename)
        scope = cfg_path.partition('::')[0]
        return resolve_base(cfg_path, filename, user_config), scope

    return get_cfg_path


@contextlib.contextmanager
def sibling_config_bases(config_path: str) -> Iterator[None]:
    """Within the block, ``Config.fromfile`` resolves ``mmcls::``,
    ``mmpretrain::``, ``mmdet::``, ``mmseg::`` and ``mmrazor::`` bases.

    Only ``Config._get_cfg_path`` is replaced, and it is restored on exit,
    also when reading the config fails.

    Args:
        config_path (str): The config being read.
    """
    original = Config.__dict__['_get_cfg_path']
    Config._get_cfg_path = staticmethod(
        make_cfg_path_getter(original.__func__, config_path))
    try:
        yield
    finally:
        Config._get_cfg_path = original
