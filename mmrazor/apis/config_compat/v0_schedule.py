"""0.x ``runner``, ``optimizer``, ``optimizer_config``, ``lr_config`` and
``evaluation`` -> mmengine's ``train_cfg``, ``optim_wrapper``,
``param_scheduler`` and ``val_evaluator``."""
from typing import Any, Dict, List, Optional

from .v0_errors import Untranslatable


class Schedule:
    """The training length of a 0.x ``runner``.

    Args:
        by_epoch (bool): An epoch-based (or iteration-based) runner.
        length (int): ``max_epochs`` or ``max_iters``.
    """

    def __init__(self, by_epoch: bool, length: int) -> None:
        self.by_epoch = by_epoch
        self.length = length


#: 0.x runner type -> (epoch based, mmrazor runner_type or None).
RUNNER_TYPES = {
    'EpochBasedRunner': (True, None),
    'IterBasedRunner': (False, None),
    'MultiLoaderEpochBasedRunner': (True, 'MultiLoaderEpochBasedRunner'),
    'MultiLoaderIterBasedRunner': (False, 'MultiLoaderIterBasedRunner'),
}


def translate_runner(runner: dict,
                     total_epochs: Optional[int] = None) -> Dict[str, Any]:
    """0.x ``runner=dict(type, max_epochs | max_iters)`` -> ``train_cfg``
    (and ``runner_type`` for mmrazor's multi-loader runners).

    Args:
        runner (dict): The 0.x runner (``{}`` for none).
        total_epochs (int, optional): The older ``total_epochs`` key.

    Returns:
        dict: New top-level keys.
    """
    runner = dict(runner)
    name = str(runner.pop('type', '')).split('.')[-1]
    if not name:
        name = 'IterBasedRunner' if 'max_iters' in runner else \
            'EpochBasedRunner'
    if name not in RUNNER_TYPES:
        raise Untranslatable(
            f'runner.type={name!r}',
            'train_cfg (and runner_type) in a 1.x config; known 0.x runners:'
            f' {", ".join(RUNNER_TYPES)}')
    by_epoch, runner_type = RUNNER_TYPES[name]
    length_key = 'max_epochs' if by_epoch else 'max_iters'
    length = runner.pop(length_key, total_epochs if by_epoch else None)
    if length is None or runner:
        raise Untranslatable(
            f'runner={dict(type=name, **runner)!r}',
            f'train_cfg=dict(by_epoch={by_epoch}, {length_key}=N)')
    new: Dict[str, Any] = dict(
        train_cfg=dict(by_epoch=by_epoch, **{length_key: length}))
    if runner_type is not None:
        new['runner_type'] = runner_type
    return new


# ----------------------------------------------------------------- optimizer
def is_per_module(optimizer: dict) -> bool:
    """Whether a 0.x ``optimizer`` holds one optimizer per sub-module
    (``dict(architecture=dict(type='SGD'), mutator=dict(type='Adam'))``)."""
    return 'type' not in optimizer and bool(optimizer) and all(
        isinstance(v, dict) and 'type' in v for v in optimizer.values())


def one_wrapper(optimizer: dict) -> dict:
    """One 0.x optimizer -> an ``OptimWrapper`` config."""
    optimizer = dict(optimizer)
    wrapper: Dict[str, Any] = dict(type='OptimWrapper')
    for key in ('paramwise_cfg', 'constructor'):
        if optimizer.get(key) is not None:
            wrapper[key] = optimizer.pop(key)
        optimizer.pop(key, None)
    wrapper['optimizer'] = optimizer
    return wrapper


def translate_optimizer(optimizer: dict,
                        optimizer_config: Optional[dict]) -> Dict[str, Any]:
    """0.x ``optimizer`` + ``optimizer_config`` -> ``optim_wrapper``.

    Args:
        optimizer (dict): One optimizer, or one per sub-module.
        optimizer_config (dict, optional): The 0.x optimizer hook.

    Returns:
        dict: ``dict(optim_wrapper=...)``.
    """
    extra = optimizer_hook_args(optimizer_config)
    if is_per_module(optimizer):
        wrapper: Dict[str, Any] = dict(
            constructor='mmrazor.SeparateOptimWrapperConstructor')
        for name, sub in optimizer.items():
            wrapper[name] = dict(one_wrapper(sub), **extra)
    else:
        wrapper = dict(one_wrapper(optimizer), **extra)
    return dict(optim_wrapper=wrapper)


def optimizer_hook_args(optimizer_config: Optional[dict]) -> Dict[str, Any]:
    """The ``OptimWrapper`` arguments of a 0.x ``optimizer_config``."""
    config = dict(optimizer_config or {})
    hook = str(config.pop('type', 'OptimizerHook')).split('.')[-1]
    if 'Fp16' in hook or 'loss_scale' in config:
        raise Untranslatable(
            f'optimizer_config (type={hook!r})',
            'train.py --amp (mixed precision with a dynamic loss scale)')
    extra: Dict[str, Any] = {}
    grad_clip = config.pop('grad_clip', None)
    if grad_clip is not None:
        extra['clip_grad'] = dict(grad_clip)
    cumulative = config.pop('cumulative_iters', None)
    if cumulative is not None:
        extra['accumulative_counts'] = cumulative
    if hook not in ('OptimizerHook', 'GradientCumulativeOptimizerHook') \
            or config:
        raise Untranslatable(
            f'optimizer_config={optimizer_config!r}',
            'optim_wrapper (clip_grad, accumulative_counts) in a 1.x config')
    return extra


# ------------------------------------------------------------------ lr_config
def scheduler_timing(by_epoch: bool, schedule: Schedule) -> Dict[str, Any]:
    """How a scheduler over the whole training counts (0.x ``by_epoch``
    of the lr hook, and the runner)."""
    if not schedule.by_epoch:
        return dict(by_epoch=False, begin=0, end=schedule.length)
    # Epoch runner: per-iteration updates (by_epoch=False) are the epoch
    # schedule converted to iterations.
    return dict(by_epoch=True, begin=0, end=schedule.length,
                convert_to_iter_based=not by_epoch)


def step_policy(cfg: dict, schedule: Schedule) -> dict:
    """0.x ``policy='step'``: ``step`` (int or list) and ``gamma``."""
    if cfg.pop('min_lr', None) is not None:
        raise Untranslatable('lr_config.min_lr (policy step)',
                             'param_scheduler=dict(type="MultiStepLR") '
                             'without a lower bound')
    step = cfg.pop('step')
    by_epoch = cfg.pop('by_epoch', True) and schedule.by_epoch
    common = dict(by_epoch=by_epoch, gamma=cfg.pop('gamma', 0.1))
    if isinstance(step, int):
        return dict(type='StepLR', step_size=step, **common)
    return dict(type='MultiStepLR', milestones=list(step), **common)


def cosine_policy(cfg: dict, schedule: Schedule) -> dict:
    """0.x ``policy='CosineAnnealing'``: ``min_lr`` or ``min_lr_ratio``."""
    timing = scheduler_timing(cfg.pop('by_epoch', True), schedule)
    out = dict(type='CosineAnnealingLR', T_max=schedule.length, **timing)
    if 'min_lr_ratio' in cfg:
        out['eta_min_ratio'] = cfg.pop('min_lr_ratio')
    else:
        out['eta_min'] = cfg.pop('min_lr', 0.)
    return out


def poly_policy(cfg: dict, schedule: Schedule) -> dict:
    """0.x ``policy='poly'``: ``power`` and ``min_lr``."""
    timing = scheduler_timing(cfg.pop('by_epoch', True), schedule)
    return dict(type='PolyLR', eta_min=cfg.pop('min_lr', 0.),
                power=cfg.pop('power', 1.), **timing)


#: 0.x lr policy (lower case) -> handler (None: constant lr).
LR_POLICIES = {
    'step': step_policy,
    'cosineannealing': cosine_policy,
    'poly': poly_policy,
    'fixed': None,
}


def warmup_scheduler(cfg: dict) -> Optional[dict]:
    """The 0.x ``warmup`` of an lr policy as a scheduler (or None)."""
    kind = cfg.pop('warmup', None)
    iters = cfg.pop('warmup_iters', 0)
    ratio = cfg.pop('warmup_ratio', 0.1)
    by_epoch = cfg.pop('warmup_by_epoch', False)
    if kind is None:
        return None
    timing = dict(by_epoch=by_epoch, begin=0, end=iters)
    if kind == 'linear':
        return dict(type='LinearLR', start_factor=ratio, end_factor=1.,
                    **timing)
    if kind == 'constant':
        return dict(type='ConstantLR', factor=ratio, **timing)
    raise Untranslatable(f'lr_config.warmup={kind!r}',
                         'a LinearLR or ConstantLR warm-up in '
                         'param_scheduler')


def translate_lr_config(lr_config: Optional[dict], schedule: Schedule,
                        optimizer_names: Optional[List[str]] = None
                        ) -> Dict[str, Any]:
    """0.x ``lr_config`` -> ``param_scheduler``.

    Args:
        lr_config (dict, optional): The 0.x lr hook (None: constant lr).
        schedule (Schedule): The training length.
        optimizer_names (list[str], optional): The sub-modules of a
            per-module optimizer; the schedule is given per name, and
            ``freeze_optimizers`` keep a constant lr.

    Returns:
        dict: ``dict(param_scheduler=...)`` or ``{}``.
    """
    if lr_config is None:
        return {}
    cfg = dict(lr_config)
    policy = str(cfg.pop('policy'))
    frozen = cfg.pop('freeze_optimizers', [])
    if policy.lower() not in LR_POLICIES:
        raise Untranslatable(
            f'lr_config.policy={policy!r}',
            'param_scheduler in a 1.x config (known 0.x policies: '
            f'{", ".join(LR_POLICIES)})')
    schedulers = [s for s in [warmup_scheduler(cfg)] if s is not None]
    handler = LR_POLICIES[policy.lower()]
    if handler is not None:
        schedulers.append(handler(cfg, schedule))
    if cfg:
        raise Untranslatable(f'lr_config.{sorted(cfg)[0]} (policy {policy})',
                             'the arguments of the mmengine scheduler in '
                             'param_scheduler')
    if optimizer_names is None:
        return dict(param_scheduler=schedulers)
    return dict(param_scheduler={
        name: ([] if name in frozen else [dict(s) for s in schedulers])
        for name in optimizer_names
    })


# ----------------------------------------------------------------- evaluation
def metric_names(metric: Any) -> List[str]:
    """0.x ``evaluation.metric`` (a name or a list of names) as a list."""
    return [metric] if isinstance(metric, str) else list(metric)


def metric_configs(metric: Any, options: dict) -> List[dict]:
    """0.x mmcls metric names -> mmpretrain metric configs."""
    names = metric_names(metric)
    metrics: List[dict] = []
    if 'accuracy' in names:
        metrics.append(
            dict(type='mmpretrain.Accuracy',
                 topk=tuple(options.get('topk', (1, 5)))))
    items = [n for n in names if n in ('precision', 'recall', 'f1_score')]
    if items:
        metrics.append(dict(type='mmpretrain.SingleLabelMetric', items=items))
    unknown = set(names) - {'accuracy', 'precision', 'recall', 'f1_score'}
    if unknown:
        raise Untranslatable(f'evaluation.metric={sorted(unknown)[0]!r}',
                             'an mmpretrain metric in val_evaluator')
    return metrics


#: 0.x ``evaluation`` keys that only concerned the old eval hook.
DROPPED_EVAL_KEYS = ('gpu_collect', 'tmpdir', 'by_epoch',
                     'broadcast_bn_buffer')


def translate_evaluation(evaluation: Optional[dict],
                         val_dataset: Optional[dict] = None
                         ) -> Dict[str, Any]:
    """0.x ``evaluation=dict(interval, metric, ...)`` -> ``val_evaluator``,
    ``val_cfg`` and the validation keys of ``train_cfg`` and the checkpoint
    hook.

    Args:
        evaluation (dict, optional): None: mmcls 0.x's defaults (accuracy
            after every epoch / iteration).
        val_dataset (dict, optional): The 0.x ``data.val`` (mmdet's COCO
            metric reads its ``ann_file``).

    Returns:
        dict: New top-level keys.
    """
    from .v0_detseg import dense_metric, is_dense_metric
    cfg = dict(evaluation or {})
    names = metric_names(cfg.pop('metric', 'accuracy'))
    options = cfg.pop('metric_options', None) or {}
    if is_dense_metric(names):
        # mmdet / mmseg: the metric's options are keys of `evaluation`
        metrics = [dense_metric(names, cfg, val_dataset)]
    else:
        metrics = metric_configs(names, options)
    train_cfg: Dict[str, Any] = dict(val_interval=cfg.pop('interval', 1))
    if cfg.get('start') is not None:
        train_cfg['val_begin'] = cfg.pop('start')
    cfg.pop('start', None)
    checkpoint: Dict[str, Any] = {}
    for key in ('save_best', 'rule'):
        if cfg.get(key) is not None:
            checkpoint[key] = cfg.pop(key)
        cfg.pop(key, None)
    for key in DROPPED_EVAL_KEYS:
        cfg.pop(key, None)
    if cfg:
        raise Untranslatable(f'evaluation.{sorted(cfg)[0]}',
                             'val_evaluator / val_cfg in a 1.x config')
    new: Dict[str, Any] = dict(
        val_evaluator=metrics if len(metrics) > 1 else metrics[0],
        val_cfg=dict(),
        train_cfg=train_cfg)
    if checkpoint:
        new['default_hooks'] = dict(checkpoint=checkpoint)
    return new
