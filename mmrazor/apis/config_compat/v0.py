"""Translate configs of the 0.x toolbox (mmcv runner era) to mmengine's.

One table, :data:`KEY_HANDLERS`, maps each top-level 0.x key to a small
handler returning the new keys it stands for; :data:`DROPPED_KEYS` lists the
keys without a meaning now (logged), :data:`REFUSED_KEYS` those that cannot
be translated safely (an error names the key and what to use instead).
Data and pipelines are translated in :mod:`.v0_data`, the schedule in
:mod:`.v0_schedule`.

Keys of the new vocabulary already in the config (given with
``--cfg-options``: 0.x configs have none) are merged over what translation
derives, so ``train_cfg.max_iters=2`` wins over ``runner.max_iters``.
"""
import copy
from typing import Any, Callable, Dict, List, Optional

from mmengine.config import Config

from .v0_data import log, translate_data
from .v0_errors import Untranslatable
from .v0_schedule import (Schedule, is_per_module, translate_evaluation,
                          translate_lr_config, translate_optimizer,
                          translate_runner)

#: Top-level keys of mmengine configs; in a 0.x config they can only come
#: from the command line, and they win over what translation derives.
NEW_KEYS = ('train_dataloader', 'val_dataloader', 'test_dataloader',
            'train_cfg', 'val_cfg', 'test_cfg', 'val_evaluator',
            'test_evaluator', 'optim_wrapper', 'param_scheduler',
            'default_hooks', 'env_cfg', 'randomness', 'resume',
            'default_scope', 'visualizer', 'runner_type', 'model_wrapper_cfg',
            'log_processor', 'auto_scale_lr')

#: Subnet files of 0.x algorithms: a URL is never downloaded.
SUBNET_KEYS = ('mutable_cfg', 'channel_cfg')


def is_0x_config(cfg: Config) -> bool:
    """Whether ``cfg`` is written for the 0.x toolbox: it holds
    ``algorithm`` (the 0.x runner built that, not ``model``) — unless its
    ``model`` wraps an algorithm, as 1.x fine-tuning configs do with a
    helper variable ``algorithm`` (``GroupFisherSubModel(algorithm=...)``).
    """
    if 'algorithm' not in cfg:
        return False
    model = cfg.get('model', None)
    return not (isinstance(model, dict) and 'algorithm' in model)


class Translation:
    """The state of one translation: the 0.x config and what earlier
    handlers found.

    Args:
        old (dict): The 0.x config (not changed).
    """

    def __init__(self, old: Dict[str, Any]) -> None:
        self.old = old
        self.schedule: Optional[Schedule] = None
        self.data_preprocessor: Optional[dict] = None


Handler = Callable[[Any, Translation], Dict[str, Any]]


# ---------------------------------------------------------------- handlers
def algorithm_to_model(algorithm: dict, t: Translation) -> Dict[str, Any]:
    """``algorithm`` -> ``model`` (with the pipelines' ``Normalize`` /
    ``Pad`` as the task model's data preprocessor); subnet URLs are
    refused."""
    model = copy.deepcopy(dict(algorithm))
    refuse_subnet_urls(model)
    if t.data_preprocessor is not None:
        set_data_preprocessor(model, t.data_preprocessor)
    new: Dict[str, Any] = dict(model=model)
    if t.old.get('use_ddp_wrapper'):
        new['model_wrapper_cfg'] = dict(
            type='mmrazor.RazorDistributedDataParallel',
            find_unused_parameters=bool(
                t.old.get('find_unused_parameters', False)))
        log('use_ddp_wrapper=True -> model_wrapper_cfg='
            'RazorDistributedDataParallel')
    return new


def is_url(value: Any) -> bool:
    """Whether ``value`` is a URL (``https://``, ``http://``, ...)."""
    return isinstance(value, str) and '://' in value


def refuse_subnet_urls(model: dict) -> None:
    """Raise for a subnet file of ``algorithm`` given as a URL."""
    for key in SUBNET_KEYS:
        values = model.get(key)
        if not isinstance(values, (list, tuple)):
            values = [values]
        for value in values:
            if is_url(value):
                raise Untranslatable(
                    f'algorithm.{key}={value!r} (a URL; never downloaded)',
                    f'a local file: --cfg-options algorithm.{key}=FILE '
                    '(or --subnet FILE with tools/test.py / get_flops.py)')


def set_data_preprocessor(model: dict, preprocessor: dict) -> None:
    """Give the task model the algorithm wraps (``algorithm.architecture
    [.model]``) the data preprocessor derived from the pipelines (see
    :func:`.v0_data.the_data_preprocessor`)."""
    target = model.get('architecture', model)
    if isinstance(target.get('model'), dict):
        target = target['model']
    target.setdefault('data_preprocessor', preprocessor)
    log(f'pipeline Normalize / Pad -> data_preprocessor={preprocessor}')


def drop_plain_model(model: Any, t: Translation) -> Dict[str, Any]:
    """The 0.x ``model`` is the task model ``algorithm`` wraps."""
    return {}


def data_to_loaders(data: dict, t: Translation) -> Dict[str, Any]:
    """``data`` -> ``*_dataloader`` (see :func:`.v0_data.translate_data`)."""
    new, t.data_preprocessor = translate_data(data)
    return new


def runner_to_train_cfg(runner: dict, t: Translation) -> Dict[str, Any]:
    """``runner`` (+ ``total_epochs``) -> ``train_cfg``."""
    new = translate_runner(runner, t.old.get('total_epochs'))
    train_cfg = new['train_cfg']
    by_epoch = train_cfg['by_epoch']
    t.schedule = Schedule(
        by_epoch, train_cfg['max_epochs' if by_epoch else 'max_iters'])
    return new


def optimizer_to_wrapper(optimizer: dict, t: Translation) -> Dict[str, Any]:
    """``optimizer`` + ``optimizer_config`` -> ``optim_wrapper``."""
    return translate_optimizer(optimizer, t.old.get('optimizer_config'))


def lr_config_to_schedulers(lr_config: Optional[dict],
                            t: Translation) -> Dict[str, Any]:
    """``lr_config`` -> ``param_scheduler``."""
    optimizer = t.old.get('optimizer') or {}
    names = list(optimizer) if is_per_module(optimizer) else None
    return translate_lr_config(lr_config, the_schedule(t), names)


def the_schedule(t: Translation) -> Schedule:
    """The training length found by :func:`runner_to_train_cfg`."""
    if t.schedule is None:
        raise Untranslatable('lr_config / checkpoint_config without runner',
                             'train_cfg=dict(by_epoch=..., max_epochs=...)')
    return t.schedule


def evaluation_to_val(evaluation: Optional[dict],
                      t: Translation) -> Dict[str, Any]:
    """``evaluation`` -> ``val_evaluator`` / ``val_cfg`` /
    ``train_cfg.val_interval`` (only with a ``data.val``)."""
    data = t.old.get('data') or {}
    if 'val' not in data:
        log('evaluation dropped: the config has no data.val')
        return {}
    return translate_evaluation(evaluation, data['val'])


def checkpoint_config_to_hook(checkpoint: Optional[dict],
                              t: Translation) -> Dict[str, Any]:
    """``checkpoint_config`` -> ``default_hooks.checkpoint``."""
    hook = dict(type='CheckpointHook', by_epoch=the_schedule(t).by_epoch)
    hook.update(checkpoint or {})
    hook.pop('create_symlink', None)  # mmengine writes `last_checkpoint`
    return dict(default_hooks=dict(checkpoint=hook))


#: 0.x logger hooks -> mmengine visualisation backend (None: the logger).
LOGGER_BACKENDS = {
    'TextLoggerHook': None,
    'TensorboardLoggerHook': 'TensorboardVisBackend',
    'WandbLoggerHook': 'WandbVisBackend',
}


def log_config_to_hooks(log_config: dict, t: Translation) -> Dict[str, Any]:
    """``log_config=dict(interval, hooks)`` -> ``default_hooks.logger``
    and visualisation backends."""
    backends: List[dict] = []
    for i, hook in enumerate(log_config.get('hooks', [])):
        name = str(hook.get('type', '')).split('.')[-1]
        if name not in LOGGER_BACKENDS:
            raise Untranslatable(
                f'log_config.hooks[{i}] (type={name!r})',
                'a visualisation backend in visualizer.vis_backends')
        if LOGGER_BACKENDS[name] is not None:
            backend = dict(type=LOGGER_BACKENDS[name])
            if 'init_kwargs' in hook:
                backend['init_kwargs'] = hook['init_kwargs']
            backends.append(backend)
    new: Dict[str, Any] = dict(default_hooks=dict(logger=dict(
        type='LoggerHook', interval=log_config.get('interval', 50))))
    if backends:
        new['visualizer'] = dict(
            type='mmpretrain.UniversalVisualizer',
            vis_backends=[dict(type='LocalVisBackend')] + backends)
    return new


#: Hook types of 0.x toolboxes that moved to a sibling toolbox's scope
#: (other ``custom_hooks`` are mmrazor's or mmengine's and kept).
HOOK_TYPES = {
    'NumClassCheckHook': 'mmdet.NumClassCheckHook',
}


def custom_hooks_to_scoped(hooks: Optional[List[dict]],
                           t: Translation) -> Dict[str, Any]:
    """``custom_hooks``: mmdet 2.x hooks (:data:`HOOK_TYPES`) get their
    toolbox's scope; the others are kept."""
    new_hooks = []
    for hook in hooks or []:
        hook = dict(hook)
        name = str(hook.get('type', ''))
        if name in HOOK_TYPES:
            hook['type'] = HOOK_TYPES[name]
            log(f'custom_hooks {name} -> {hook["type"]}')
        new_hooks.append(hook)
    return dict(custom_hooks=new_hooks)


def dist_params_to_env(dist_params: dict, t: Translation) -> Dict[str, Any]:
    """``dist_params`` -> ``env_cfg.dist_cfg``."""
    return dict(env_cfg=dict(dist_cfg=dict(dist_params)))


def mp_key_to_env(key: str) -> Handler:
    """A handler of ``opencv_num_threads`` / ``mp_start_method`` ->
    ``env_cfg.mp_cfg``."""

    def handler(value: Any, t: Translation) -> Dict[str, Any]:
        return dict(env_cfg=dict(mp_cfg={key: value}))

    handler.__doc__ = f'``{key}`` -> ``env_cfg.mp_cfg.{key}``.'
    return handler


def cudnn_benchmark_to_env(value: bool, t: Translation) -> Dict[str, Any]:
    """``cudnn_benchmark`` -> ``env_cfg.cudnn_benchmark``."""
    return dict(env_cfg=dict(cudnn_benchmark=value))


def seed_to_randomness(seed: Optional[int], t: Translation) -> Dict[str, Any]:
    """``seed`` -> ``randomness.seed``."""
    return dict(randomness=dict(seed=seed))


def resume_from_to_resume(path: Optional[str],
                          t: Translation) -> Dict[str, Any]:
    """``resume_from=PATH`` -> ``resume=True, load_from=PATH``."""
    if path is None:
        return {}
    return dict(resume=True, load_from=path)


#: 0.x key -> handler, in the order they run (``runner`` and ``data``
#: before the keys that depend on them). A key not in the config is
#: skipped, except those in :data:`ALWAYS_RUN`.
KEY_HANDLERS: Dict[str, Handler] = {
    'data': data_to_loaders,
    'runner': runner_to_train_cfg,
    'algorithm': algorithm_to_model,
    'model': drop_plain_model,
    'optimizer': optimizer_to_wrapper,
    'lr_config': lr_config_to_schedulers,
    'evaluation': evaluation_to_val,
    'checkpoint_config': checkpoint_config_to_hook,
    'log_config': log_config_to_hooks,
    'custom_hooks': custom_hooks_to_scoped,
    'dist_params': dist_params_to_env,
    'opencv_num_threads': mp_key_to_env('opencv_num_threads'),
    'mp_start_method': mp_key_to_env('mp_start_method'),
    'cudnn_benchmark': cudnn_benchmark_to_env,
    'seed': seed_to_randomness,
    'resume_from': resume_from_to_resume,
}
#: Handlers that run without their key (mmcls 0.x validated by default).
ALWAYS_RUN = ('evaluation', )

#: Keys consumed by another key's handler.
CONSUMED_KEYS = ('total_epochs', 'optimizer_config', 'use_ddp_wrapper')

#: Keys without a meaning now -> why (logged when dropped).
DROPPED_KEYS = {
    'workflow': 'mmengine trains by train_cfg and validates by '
    'train_cfg.val_interval',
    'gpu_ids': 'the GPUs are chosen by the launcher',
    'device': 'the device is chosen by the launcher',
    'find_unused_parameter': 'a misspelling that 0.x ignored as well '
    '(find_unused_parameters is the key)',
}

#: Keys that cannot be translated safely -> what to use instead.
REFUSED_KEYS = {
    'fp16': 'train.py --amp (mixed precision with a dynamic loss scale)',
    'momentum_config': 'a momentum scheduler in param_scheduler',
    'searcher': 'a 1.x search config (SearchLoop in train_cfg); 0.x search '
    'configs are not translated yet',
}


# ------------------------------------------------------------------- driver
def translate_0x(cfg: Config) -> Config:
    """Return ``cfg`` in mmengine's vocabulary.

    Args:
        cfg (Config): A 0.x config (``--cfg-options`` merged in).

    Returns:
        Config: The translated config.

    Raises:
        Untranslatable: A key (or value) that cannot be translated safely.
    """
    old = cfg.to_dict()
    for key, instead in REFUSED_KEYS.items():
        if old.get(key) is not None:
            raise Untranslatable(key, instead)
    t = Translation(old)
    derived: Dict[str, Any] = dict(default_scope='mmrazor')
    for key, handler in KEY_HANDLERS.items():
        if key in old or key in ALWAYS_RUN:
            deep_merge(derived, handler(old.get(key), t))
    for key, why in DROPPED_KEYS.items():
        if key in old:
            log(f'{key} dropped: {why}')
    add_test_keys(derived)
    kept = {
        k: v
        for k, v in old.items() if k not in KEY_HANDLERS
        and k not in CONSUMED_KEYS and k not in DROPPED_KEYS
        and k not in REFUSED_KEYS and k not in NEW_KEYS
    }
    user = {k: old[k] for k in NEW_KEYS if k in old}
    new = dict(kept, **derived)
    apply_user_keys(new, user)
    log('translated to mmengine keys: ' + ', '.join(sorted(derived)))
    return Config(new, filename=cfg.filename)


def add_test_keys(derived: Dict[str, Any]) -> None:
    """The test loop evaluates as the validation loop."""
    if 'test_dataloader' not in derived:
        return
    evaluator = derived.get('val_evaluator')
    if evaluator is None:
        evaluator = translate_evaluation(None)['val_evaluator']
    derived['test_evaluator'] = copy.deepcopy(evaluator)
    derived['test_cfg'] = dict()


def deep_merge(base: Dict[str, Any], extra: Dict[str, Any]) -> None:
    """Merge ``extra`` into ``base`` (nested dicts merged, the rest
    replaced)."""
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            deep_merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)


def apply_user_keys(new: Dict[str, Any], user: Dict[str, Any]) -> None:
    """Merge the new-vocabulary keys of the command line over the
    translation: into every loader of a list of loaders, and the user's
    training length replaces the derived one."""
    for key, value in user.items():
        current = new.get(key)
        if key == 'train_cfg' and isinstance(current, dict):
            drop_other_length(current, value)
            match_runner_type(new, current)
            match_checkpoint_hook(new, current)
        if isinstance(value, dict) and isinstance(current, list):
            for item in current:
                deep_merge(item, value)
        elif isinstance(value, dict) and isinstance(current, dict):
            deep_merge(current, value)
        else:
            new[key] = copy.deepcopy(value)
        log(f'{key} from the command line merged over the translation')


def drop_other_length(train_cfg: dict, user: dict) -> None:
    """``train_cfg.max_iters`` given for an epoch-based 0.x runner (or
    ``max_epochs`` for an iteration-based one) switches the loop."""
    if 'max_iters' in user and 'max_epochs' in train_cfg:
        del train_cfg['max_epochs']
        train_cfg['by_epoch'] = False
    if 'max_epochs' in user and 'max_iters' in train_cfg:
        del train_cfg['max_iters']
        train_cfg['by_epoch'] = True


def match_checkpoint_hook(new: Dict[str, Any], train_cfg: dict) -> None:
    """The checkpoint hook counts as the loop ``train_cfg`` switched to
    (``train_cfg.max_iters`` given for an epoch-based 0.x runner saves by
    iterations, not as ``epoch_1.pth`` at the end)."""
    hook = new.get('default_hooks', {}).get('checkpoint')
    by_epoch = bool(train_cfg.get('by_epoch', True))
    if isinstance(hook, dict) and hook.get('by_epoch', True) != by_epoch:
        hook['by_epoch'] = by_epoch
        log(f'default_hooks.checkpoint.by_epoch={by_epoch}, as train_cfg')


#: mmrazor's multi-loader runners by epoch-based (True) or not.
MULTI_LOADER_RUNNERS = {
    True: 'MultiLoaderEpochBasedRunner',
    False: 'MultiLoaderIterBasedRunner'
}


def match_runner_type(new: Dict[str, Any], train_cfg: dict) -> None:
    """A multi-loader runner of the loop kind ``train_cfg`` asks for."""
    runner_type = new.get('runner_type')
    if runner_type in MULTI_LOADER_RUNNERS.values():
        new['runner_type'] = MULTI_LOADER_RUNNERS[bool(
            train_cfg.get('by_epoch', True))]


# ------------------------------------------------------------------ subnets
def apply_subnet_file(cfg: Config, subnet: Optional[str]) -> bool:
    """Point the subnet the config's model already names (``mutable_cfg``
    / ``channel_cfg`` of 0.x algorithms, ``fix_subnet`` of 1.x ones) at the
    file ``subnet`` instead.

    Works on translated configs (``model``) and on 0.x ones not translated
    yet (``algorithm``).

    Args:
        cfg (Config): A config (changed in place).
        subnet (str, optional): The subnet file; None changes nothing.

    Returns:
        bool: Whether the model's config named a subnet that was replaced
        (the model then loads ``subnet`` when built).
    """
    if subnet is None:
        return False
    for key in ('model', 'algorithm'):
        model = cfg.get(key, None)
        if not isinstance(model, dict):
            continue
        for name in ('fix_subnet', ) + SUBNET_KEYS:
            if model.get(name) is not None:
                model[name] = subnet
                log(f'{key}.{name} -> {subnet}')
                return True
    return False
