"""Translate names of 1.x configs that moved since (mmcls -> mmpretrain).

MMRazor 1.x configs were written against mmcls 1.x and MMRazor 1.x's own
classes. Reading them here needs four kinds of change, each logged with
mmengine's ``print_log`` (one line per distinct rename, with its count):

* scopes: ``_scope_='mmcls'`` and ``default_scope='mmcls'`` name mmpretrain
  (:data:`SCOPE_RENAMES`); a ``type`` prefixed ``mmcls.`` becomes
  ``mmpretrain.X`` when mmpretrain registers ``X`` itself, and plain ``X``
  when ``X`` is mmengine's (``mmcls.SGD``, ``mmcls.DefaultSampler``: mmcls
  reached them through its parent registries, and ``mmpretrain.SGD`` is not
  found by every registry lookup mmengine makes);
* types: classes renamed by mmpretrain or spelled differently by this
  toolbox (:data:`TYPE_RENAMES`, one table; each entry says why);
* structure: MMRazor 1.x's ``DartsEpochBasedTrainLoop`` held the
  architecture-parameter loader in ``train_cfg.mutator_dataloader``; here
  the multi-loader runner reads both loaders from ``train_dataloader``
  (:func:`translate_darts_loop`);
* models by config file: ``architecture=dict(cfg_path='mmcls::resnet/
  resnet18_8xb32_in1k.py', pretrained=False)`` (MMRazor 1.x's distillation
  configs) became the ``model`` of that config, read and translated here;
  ``pretrained=True`` adds the ``Pretrained`` initialisation with the
  weights the package's metafile publishes for it (:func:`expand_cfg_path`);
  a ``model`` key beside them (not in 1.x: e.g. ``--cfg-options
  model.architecture.model.backbone.init_cfg=None``) overrides keys of that
  model.

A relative ``fix_subnet`` path (``'configs/nas/.../SUBNET.yaml'``, relative
to the root of the toolbox's source tree) that does not exist from the
working directory is looked up above the config file, so a config read from
an original configs tree finds the subnet file beside it
(:func:`locate_subnet_file`).
"""
import functools
import os.path as osp
from collections import Counter
from typing import Any, Dict, NamedTuple, Optional

from mmengine.config import Config, ConfigDict
from mmengine.fileio import load
from mmengine.logging import print_log

from .v1_augment import translate_1x_augments
from .bases import (BaseConfigNotFoundError, package_config_dirs,
                    package_of_scope, resolve_base, sibling_config_bases)

#: Scopes of mmcls 1.x, read as their successor's.
SCOPE_RENAMES: Dict[str, str] = {
    # mmcls 1.x became mmpretrain 1.0; the registries kept their names.
    'mmcls': 'mmpretrain',
}


class Rename(NamedTuple):
    """One entry of :data:`TYPE_RENAMES`.

    Args:
        new (str): The type today, scope prefix included when the class
            lives in one toolbox only.
        why (str): Where and why the name moved.
        args (dict): Constructor arguments renamed with it (old -> new).
    """
    new: str
    why: str
    args: Dict[str, str] = {}


#: Types of MMRazor 1.x configs that are spelled differently today, keyed by
#: the unscoped old name (a ``mmcls.``/``mmrazor.`` prefix is kept apart).
TYPE_RENAMES: Dict[str, Rename] = {
    'PackClsInputs':
    Rename(
        'PackInputs', 'mmpretrain 1.0 packs the inputs of every task '
        '(classification, retrieval, multimodal) with one transform'),
    'ClsVisualizer':
    Rename('UniversalVisualizer', 'mmpretrain 1.0 draws every task with '
           'one visualizer'),
    'DumpSubnetHook':
    Rename(
        'mmrazor.SearchSubnetHook', "mmrazor's hook that writes the "
        'subnet the algorithm prefers every `interval` epochs',
        {'max_keep_subnets': 'max_keep_ckpts'}),
    'DartsDDP':
    Rename(
        'mmrazor.RazorDistributedDataParallel', "mmrazor's DDP wrapper "
        "calls the algorithm's own train_step (DARTS' two passes)"),
    'AutoSlimDDP':
    Rename(
        'mmrazor.RazorDistributedDataParallel', "mmrazor's DDP wrapper "
        "calls the algorithm's own train_step (AutoSlim's sandwich)"),
    'BigNASDDP':
    Rename(
        'mmrazor.RazorDistributedDataParallel', "mmrazor's DDP wrapper "
        "calls the algorithm's own train_step (BigNAS' sandwich)"),
    'SubnetValLoop':
    Rename(
        'mmrazor.CalibratedValLoop', "MMRazor 1.x's loop re-calibrated "
        'BatchNorm on `calibrate_sample_num` training samples (4096 by '
        'default), then validated the widest and the narrowest subnet of a '
        'one-shot supernet (or the fixed subnet with '
        '`evaluate_fixed_subnet=True`); mmrazor\'s loop re-calibrates the '
        'same way and validates the current subnet: the widest after a '
        'BigNAS / AutoSlim step, or the fixed one'),
    'SlimmableNetworkDDP':
    Rename(
        'mmrazor.RazorDistributedDataParallel', "mmrazor's DDP wrapper "
        "calls the algorithm's own train_step (one pass per width)"),
    'GroupFisherDDP':
    Rename(
        'mmrazor.RazorDistributedDataParallel', "mmrazor's DDP wrapper "
        "calls the algorithm's own train_step (Fisher information "
        'gathered, summed over the processes before each removal)'),
}

#: The 1.x DARTS loop and the loop of the multi-loader runner replacing it.
DARTS_LOOP = 'DartsEpochBasedTrainLoop'
MULTI_LOADER_RUNNER = 'mmrazor.MultiLoaderEpochBasedRunner'


def split_type(name: str) -> tuple:
    """Split ``'mmcls.PackClsInputs'`` into ``('mmcls', 'PackClsInputs')``.

    Args:
        name (str): A config ``type``.

    Returns:
        tuple: ``(scope or None, unscoped name)``.
    """
    scope, dot, rest = name.partition('.')
    return (scope, rest) if dot else (None, name)


@functools.lru_cache(maxsize=None)
def registered_by(scope: str, name: str) -> bool:
    """Whether toolbox ``scope`` registers ``name`` in a registry of its own
    (not only in mmengine's, which its registries inherit).

    Args:
        scope (str): ``'mmpretrain'``.
        name (str): An unscoped type name.

    Returns:
        bool: True when one of ``<scope>.registry``'s registries holds it.
    """
    import importlib

    from mmengine.registry import Registry
    module = importlib.import_module(f'{scope}.registry')
    registries = [
        r for r in vars(module).values()
        if isinstance(r, Registry) and r.scope == scope
    ]
    for registry in registries:
        registry.import_from_location()
    return any(name in r.module_dict for r in registries)


def renamed_scope_prefix(scope: str, name: str) -> str:
    """``scope.name`` with a renamed ``scope`` (see :data:`SCOPE_RENAMES`).

    Args:
        scope (str): The prefix of a type, e.g. ``'mmcls'``.
        name (str): The unscoped type, already renamed.

    Returns:
        str: ``'mmpretrain.X'`` when mmpretrain registers ``X``, ``'X'``
        when only mmengine does; ``scope.name`` for other scopes.
    """
    if scope not in SCOPE_RENAMES:
        return f'{scope}.{name}'
    new_scope = SCOPE_RENAMES[scope]
    return f'{new_scope}.{name}' if registered_by(new_scope, name) else name


def renamed_type(name: str) -> str:
    """The type that ``name`` of a 1.x config means today.

    A table entry that carries its own scope replaces the old prefix;
    otherwise :func:`renamed_scope_prefix` renames ``mmcls.`` and any other
    prefix stays.

    Args:
        name (str): A config ``type``, e.g. ``'mmcls.PackClsInputs'``.

    Returns:
        str: E.g. ``'mmpretrain.PackInputs'``; ``name`` when nothing moved.
    """
    scope, bare = split_type(name)
    entry = TYPE_RENAMES.get(bare)
    if entry is not None:
        if '.' in entry.new or scope is None:
            return entry.new
        bare = entry.new
    if scope is None:
        return bare
    return renamed_scope_prefix(scope, bare)


def rename_args(node: dict, old_type: str, log: Counter) -> None:
    """Rename the constructor arguments a :data:`TYPE_RENAMES` entry lists.

    Args:
        node (dict): The config of one object, changed in place.
        old_type (str): Its type as the 1.x config wrote it.
        log (Counter): Renames done so far, added to.
    """
    entry = TYPE_RENAMES.get(split_type(old_type)[1])
    for old, new in (entry.args if entry else {}).items():
        if old in node:
            node[new] = node.pop(old)
            log[f'{old_type} argument {old} -> {new}'] += 1


def rename_node(node: dict, log: Counter) -> None:
    """Rename ``_scope_`` and ``type`` of one config dict, in place.

    Args:
        node (dict): A config dict.
        log (Counter): Renames done so far, added to.
    """
    scope = node.get('_scope_')
    if isinstance(scope, str) and scope in SCOPE_RENAMES:
        node['_scope_'] = SCOPE_RENAMES[scope]
        log[f'_scope_ {scope} -> {node["_scope_"]}'] += 1
    old = node.get('type')
    if not isinstance(old, str):
        return
    new = renamed_type(old)
    if new != old:
        node['type'] = new
        log[f'type {old} -> {new}'] += 1
        rename_args(node, old, log)


def rename_tree(node: Any, log: Counter) -> None:
    """Apply :func:`rename_node` to every dict below ``node``.

    Args:
        node (Any): A config value.
        log (Counter): Renames done so far, added to.
    """
    if isinstance(node, dict):
        rename_node(node, log)
        for value in node.values():
            rename_tree(value, log)
    elif isinstance(node, (list, tuple)):
        for value in node:
            rename_tree(value, log)


def rename_default_scope(cfg: Config, log: Counter) -> None:
    """Translate ``default_scope='mmcls'``.

    Args:
        cfg (Config): Changed in place.
        log (Counter): Renames done so far, added to.
    """
    scope = cfg.get('default_scope')
    if isinstance(scope, str) and scope in SCOPE_RENAMES:
        cfg.default_scope = SCOPE_RENAMES[scope]
        log[f'default_scope {scope} -> {cfg.default_scope}'] += 1


def translate_darts_loop(cfg: Config, log: Counter) -> None:
    """Replace MMRazor 1.x's ``DartsEpochBasedTrainLoop``.

    Its ``train_cfg.mutator_dataloader`` (the half of the data that trains
    the architecture parameters) becomes the second loader of
    ``train_dataloader``, read by ``mmrazor.MultiLoaderEpochBasedRunner``,
    whose loop hands both batches to ``Darts.train_step``.

    Args:
        cfg (Config): Changed in place.
        log (Counter): Renames done so far, added to.

    Raises:
        KeyError: The loop config lacks ``mutator_dataloader``.
    """
    train_cfg = cfg.get('train_cfg')
    if not isinstance(train_cfg, dict) or \
            split_type(str(train_cfg.get('type')))[1] != DARTS_LOOP:
        return
    if 'mutator_dataloader' not in train_cfg:
        raise KeyError(f'train_cfg of type {train_cfg["type"]!r} in '
                       f'{cfg.filename} has no mutator_dataloader')
    loop = ConfigDict(train_cfg)
    mutator_loader = loop.pop('mutator_dataloader')
    loop.pop('type')
    cfg.train_dataloader = [cfg.train_dataloader, mutator_loader]
    cfg.train_cfg = loop
    cfg.runner_type = MULTI_LOADER_RUNNER
    log[f'train_cfg.type {train_cfg["type"]} -> {MULTI_LOADER_RUNNER} with '
        'train_dataloader=[train_dataloader, mutator_dataloader]'] += 1


#: MMRazor 1.x's search loop (a train loop, run by ``tools/train.py`` with
#: ``load_from``) and the loop replacing it.
SEARCH_LOOP_1X = 'EvolutionSearchLoop'
SEARCH_LOOP = 'mmrazor.SearchLoop'
#: Arguments of the 1.x loop -> those of ``EvolutionSearcher``.
SEARCH_ARGS_1X: Dict[str, str] = {
    'max_epochs': 'max_epoch',
    'num_candidates': 'candidate_pool_size',
    'top_k': 'candidate_top_k',
    'num_mutation': 'num_mutation',
    'num_crossover': 'num_crossover',
    'mutate_prob': 'mutate_prob',
    'score_key': 'score_key',
}
#: Arguments of the 1.x loop accepted only with their 1.x default, and why.
SEARCH_DEFAULTS_1X: Dict[str, tuple] = {
    'crossover_prob': (0.5, "mmrazor's crossover takes each decision from "
                       'either parent with probability 0.5'),
    'estimator_cfg': (None, 'resources are counted by the algorithm '
                      '(multiply-adds and parameters of the current subnet)'),
    'predictor_cfg': (None, 'mmrazor scores every candidate on the data; '
                      'it has no metric predictor'),
    'init_candidates': (None, 'the first population is sampled at random'),
}
#: 1.x resource units (its estimator's default ``units='M'``).
RESOURCE_UNITS_1X = {'flops': 1e6, 'params': 1e6, 'latency': 1.0}


def searcher_constraints(ranges: Any, where: str) -> Dict[str, float]:
    """``constraints`` of ``EvolutionSearcher`` for 1.x's
    ``constraints_range=dict(flops=(0., 330.))``.

    Args:
        ranges (dict): Resource -> ``(low, high)``; flops and params in
            millions (1.x's default units), latency in ms.
        where (str): Where it is, for errors.

    Returns:
        dict: Resource -> upper bound in counts, e.g. ``{'flops': 330e6}``.

    Raises:
        ValueError: A resource 1.x could not mean, a range that is not
            ``(low, high)``, or a lower bound > 0 (the searcher bounds
            resources from above only).
    """
    if not isinstance(ranges, dict):
        raise ValueError(f'{where}: constraints_range must be a dict of '
                         f'resource -> (low, high), got {ranges!r}')
    constraints = {}
    for name, bounds in ranges.items():
        if name not in RESOURCE_UNITS_1X:
            raise ValueError(f'{where}: constraints_range key {name!r} is '
                             'not a resource mmrazor counts (known: '
                             f'{sorted(RESOURCE_UNITS_1X)})')
        if not isinstance(bounds, (list, tuple)) or len(bounds) != 2:
            raise ValueError(f'{where}: constraints_range {name}={bounds!r} '
                             'must be (low, high)')
        low, high = bounds
        if low > 0:
            raise ValueError(
                f'{where}: constraints_range {name}={tuple(bounds)!r}: a '
                'lower bound > 0 cannot be honoured (mmrazor\'s '
                'EvolutionSearcher bounds resources from above only); set '
                'it to 0')
        constraints[name] = float(high) * RESOURCE_UNITS_1X[name]
    return constraints


def translate_search_loop(cfg: Config, log: Counter) -> None:
    """Replace MMRazor 1.x's ``EvolutionSearchLoop`` train loop.

    ``train_cfg`` becomes a :class:`~mmrazor.core.loops.SearchLoop` over an
    ``EvolutionSearcher`` (its arguments renamed by
    :data:`SEARCH_ARGS_1X`, ``constraints_range`` by
    :func:`searcher_constraints`), scoring on the loop's ``dataloader`` and
    ``evaluator``. ``calibrate_sample_num`` > 0 re-calibrates BatchNorm of
    each candidate on that many samples of ``calibrate_dataloader`` (1.x's
    argument) or else of the config's ``train_dataloader`` (1.x read the
    loop's own data, the validation set, through the runner's train
    loader). The search runs as 1.x ran it, with ``tools/train.py CONFIG
    --cfg-options load_from=SUPERNET``, or with ``tools/search.py CONFIG
    SUPERNET``.

    Args:
        cfg (Config): Changed in place.
        log (Counter): Renames done so far, added to.

    Raises:
        KeyError: The loop lacks ``dataloader`` or ``evaluator``.
        ValueError: An argument that cannot be honoured, named.
    """
    train_cfg = cfg.get('train_cfg')
    if not isinstance(train_cfg, dict) or \
            split_type(str(train_cfg.get('type')))[1] != SEARCH_LOOP_1X:
        return
    where = f'train_cfg of type {train_cfg["type"]!r} in {cfg.filename}'
    loop = dict(train_cfg)
    loop.pop('type')
    for key in ('dataloader', 'evaluator'):
        if key not in loop:
            raise KeyError(f'{where} has no {key}')
    searcher: Dict[str, Any] = dict(type='EvolutionSearcher')
    for old, new in SEARCH_ARGS_1X.items():
        if old in loop:
            searcher[new] = loop.pop(old)
    for key, (default, why) in SEARCH_DEFAULTS_1X.items():
        value = loop.pop(key, default)
        if value != default:
            raise ValueError(f'{where}: {key}={value!r} cannot be honoured '
                             f'({why}); only {key}={default!r} is')
    searcher['constraints'] = searcher_constraints(
        loop.pop('constraints_range', dict(flops=(0., 330.))), where)
    calib_loader = loop.pop('calibrate_dataloader', None) or \
        cfg.get('train_dataloader')
    sample_num = loop.pop('calibrate_sample_num', -1)
    if not isinstance(sample_num, int) or isinstance(sample_num, bool):
        raise ValueError(f'{where}: calibrate_sample_num must be an int, '
                         f'got {sample_num!r}')
    if sample_num > 0:
        if calib_loader is None:
            raise ValueError(f'{where}: calibrate_sample_num={sample_num} '
                             'needs calibrate_dataloader or a '
                             'train_dataloader in the config')
        batch = calib_loader.get('batch_size', 1) if isinstance(
            calib_loader, dict) else getattr(calib_loader, 'batch_size', 1)
        searcher['calib_batches'] = -(-sample_num // max(int(batch), 1))
    # 1.x kept its search checkpoints; here the state is one JSON file
    loop.pop('max_keep_ckpts', None)
    new_loop = dict(
        type=SEARCH_LOOP,
        dataloader=loop.pop('dataloader'),
        evaluator=loop.pop('evaluator'),
        searcher=searcher,
        calib_dataloader=calib_loader,
        resume_from=loop.pop('resume_from', None))
    if loop:
        raise ValueError(f'{where}: keys {sorted(loop)} are not arguments of '
                         "1.x's EvolutionSearchLoop that mmrazor can honour")
    cfg.train_cfg = new_loop
    log[f'train_cfg.type {train_cfg["type"]} -> {SEARCH_LOOP} with '
        f'searcher {searcher}'] += 1


CFG_PATH_KEYS = ('cfg_path', 'pretrained', 'model')


def model_config_file(cfg_path: str, reading: str) -> str:
    """The file a ``cfg_path`` names: ``pkg::rel.py`` in the package's
    configs (as bases are found), else relative to the config ``reading``.

    Args:
        cfg_path (str): The ``cfg_path`` value.
        reading (str): The config that holds it.

    Returns:
        str: The model's config file.
    """
    if '::' in cfg_path:
        return resolve_base(cfg_path, reading, reading)
    return osp.join(osp.dirname(osp.abspath(reading)), cfg_path)


def published_weights(cfg_path: str) -> str:
    """The checkpoint a package's metafiles publish for a ``pkg::`` config.

    Args:
        cfg_path (str): E.g. ``'mmcls::resnet/resnet34_8xb32_in1k.py'``.

    Returns:
        str: The ``Weights`` URL of the model whose ``Config`` it is.

    Raises:
        BaseConfigNotFoundError: No metafile lists weights for it.
    """
    scope, _, rel_path = cfg_path.partition('::')
    package = package_of_scope(scope)
    looked = []
    for configs in package_config_dirs(package) or []:
        index = osp.join(osp.dirname(configs), 'model-index.yml')
        if not osp.isfile(index):
            continue
        looked.append(index)
        for metafile in load(index).get('Import', []):
            models = load(osp.join(osp.dirname(index), metafile))
            for model in models.get('Models', []):
                if model.get('Config') == f'configs/{rel_path}' and \
                        model.get('Weights'):
                    return model['Weights']
    raise BaseConfigNotFoundError(
        f'cfg_path={cfg_path!r} with pretrained=True: no weights published '
        f'for configs/{rel_path} in package {package} (looked in the '
        f'metafiles of {looked or "no model-index.yml"})')


def check_cfg_path_keys(node: dict, reading: str) -> None:
    """Refuse keys of a ``dict(cfg_path=...)`` other than
    :data:`CFG_PATH_KEYS`.

    Args:
        node (dict): The model entry of a 1.x config.
        reading (str): The config that holds it.

    Raises:
        ValueError: ``node`` has other keys, or its ``model`` is no dict.
    """
    extra = sorted(set(node) - set(CFG_PATH_KEYS))
    if extra:
        raise ValueError(
            f'model given by cfg_path={node["cfg_path"]!r} in {reading} has '
            f'keys {extra}; only {list(CFG_PATH_KEYS)} are understood (to '
            'change the named model, set them under `model`, e.g. '
            f'`{extra[0]}` as `<this key>.model.{extra[0]}`)')
    overrides = node.get('model', {})
    if not isinstance(overrides, dict):
        raise ValueError(
            f'model given by cfg_path={node["cfg_path"]!r} in {reading}: '
            f'`model` must be a dict of overrides, got {overrides!r}')


def override_model(model: ConfigDict, overrides: dict) -> ConfigDict:
    """Merge ``overrides`` into ``model`` as a child config would (nested
    dicts merged, ``_delete_=True`` replaces).

    Args:
        model (ConfigDict): The named config's model.
        overrides (dict): Keys to change.

    Returns:
        ConfigDict: The merged model.
    """
    merged = ConfigDict(model)
    merged.merge(overrides)
    return merged


def expand_cfg_path(node: dict, reading: str) -> ConfigDict:
    """The model a ``dict(cfg_path=..., pretrained=..., model=...)`` stands
    for.

    Args:
        node (dict): The model entry of a 1.x config.
        reading (str): The config that holds it.

    Returns:
        ConfigDict: The ``model`` of the named config, translated, with
        ``_scope_`` set to that config's ``default_scope``; when
        ``pretrained``, ``init_cfg`` loads the published weights; keys of
        ``model`` (if given) override, last.

    Raises:
        ValueError: ``node`` has keys besides :data:`CFG_PATH_KEYS`.
    """
    check_cfg_path_keys(node, reading)
    path = model_config_file(node['cfg_path'], reading)
    with sibling_config_bases(path):
        named = translate_1x(Config.fromfile(path))
    model = ConfigDict(named.model)
    scope = named.get('default_scope')
    if scope and '_scope_' not in model:
        model['_scope_'] = scope
    if node.get('pretrained', False):
        model['init_cfg'] = dict(type='Pretrained',
                                 checkpoint=published_weights(
                                     node['cfg_path']))
    if node.get('model'):
        model = override_model(model, node['model'])
    return model


def expand_cfg_paths(node: Any, reading: str, log: Counter) -> Any:
    """Replace every ``dict(cfg_path=...)`` below ``node`` by its model.

    Args:
        node (Any): A config value.
        reading (str): The config that holds it.
        log (Counter): Renames done so far, added to.

    Returns:
        Any: ``node``, or the model replacing it.
    """
    if isinstance(node, dict):
        if 'cfg_path' in node and 'type' not in node:
            log[f'model cfg_path={node["cfg_path"]} -> its model'] += 1
            return expand_cfg_path(node, reading)
        for key, value in node.items():
            node[key] = expand_cfg_paths(value, reading, log)
    elif isinstance(node, list):
        node[:] = [expand_cfg_paths(v, reading, log) for v in node]
    return node


def locate_subnet_file(path: str, config_file: Optional[str]) -> str:
    """Where a relative ``fix_subnet`` path of a 1.x config points.

    Args:
        path (str): The path as the config holds it.
        config_file (str, optional): The config file read.

    Returns:
        str: ``path`` when it exists from the working directory (or is
        absolute, or nothing above the config has it), else the first
        ``<folder above the config>/<path>`` that exists.
    """
    if osp.isabs(path) or osp.exists(path) or not config_file:
        return path
    current = osp.dirname(osp.abspath(config_file))
    while True:
        candidate = osp.join(current, path)
        if osp.exists(candidate):
            return candidate
        parent = osp.dirname(current)
        if parent == current:
            return path
        current = parent


def locate_subnet_files(cfg: Config, log: Counter) -> None:
    """Apply :func:`locate_subnet_file` to ``model.fix_subnet`` (a
    ``sub_model``'s or an algorithm's).

    Args:
        cfg (Config): Changed in place.
        log (Counter): Renames done so far, added to.
    """
    model = cfg.get('model')
    path = model.get('fix_subnet') if isinstance(model, dict) else None
    if not isinstance(path, str):
        return
    found = locate_subnet_file(path, cfg.filename)
    if found != path:
        model['fix_subnet'] = found
        log[f'model.fix_subnet {path} -> {found}'] += 1


def log_renames(log: Counter, filename: Optional[str]) -> None:
    """Say what :func:`translate_1x` changed.

    Args:
        log (Counter): ``'what -> what' -> count``.
        filename (str, optional): The config file.
    """
    for change, count in log.items():
        times = f' ({count}x)' if count > 1 else ''
        print_log(f'1.x config {filename}: {change}{times}', logger='current')


def translate_1x(cfg: Config) -> Config:
    """Return ``cfg`` with moved names of the 1.x era replaced.

    Args:
        cfg (Config): A config read by :func:`~.load_config`.

    Returns:
        Config: The translated config (the same object, changed in place).
    """
    log: Counter = Counter()
    rename_default_scope(cfg, log)
    translate_1x_augments(cfg, log)
    for key in list(cfg.keys()):
        rename_tree(cfg[key], log)
    translate_darts_loop(cfg, log)
    translate_search_loop(cfg, log)
    if isinstance(cfg.get('model'), dict) and cfg.filename:
        expand_cfg_paths(cfg.model, cfg.filename, log)
    locate_subnet_files(cfg, log)
    log_renames(log, cfg.filename)
    return cfg
