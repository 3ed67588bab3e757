"""Group Fisher pruning with the configuration keys of MMRazor 1.x
(``GroupFisherAlgorithm`` with a ``GroupFisherChannelMutator``), on the
importance pruning of :class:`ImportancePruningAlgorithm`."""
from typing import Any, Dict, Optional, Sequence, Tuple, Union

from torch import nn

from mmengine.logging import print_log

from mmrazor.registry import MODELS
from .importance_pruning import ImportancePruningAlgorithm
from .ite_prune import PruneDeploySubModel

#: 1.x ``normalization_type`` -> ``ImportancePruner.cost_normalization``.
NORMALIZATION_TYPES = {'flops': 'flops', 'act': 'act', None: None,
                       'none': None}


def _bare(kind: Any) -> str:
    return str(kind).rsplit('.', 1)[-1]


def _demo_shape(parse_cfg: Dict[str, Any]) -> Optional[Tuple[int, ...]]:
    """The input shape of a 1.x ``parse_cfg`` (``demo_input`` as a shape
    or as ``dict(type='DefaultDemoInput', input_shape=...)``)."""
    demo = parse_cfg.get('demo_input', None)
    if demo is None:
        return None
    if isinstance(demo, dict):
        shape = demo.get('input_shape', None)
        return tuple(shape) if shape is not None else None
    return tuple(demo)


def pruner_of_group_fisher_mutator(
    mutator: Dict[str, Any]
) -> Tuple[Dict[str, Any], Optional[Tuple[int, ...]], bool]:
    """Translate a 1.x ``GroupFisherChannelMutator`` config into an
    ``ImportancePruner`` config.

    Args:
        mutator (dict): ``dict(type='GroupFisherChannelMutator',
            parse_cfg=dict(type='ChannelAnalyzer', demo_input=...,
            tracer_type=...), channel_unit_cfg=dict(
            type='GroupFisherChannelUnit', default_args=dict(
            normalization_type='flops' | 'act', mutate_linear=False)))``.

    Returns:
        tuple: The pruner config, the analysis input shape (or None) and
        ``mutate_linear`` (whether linear layers' outputs may be pruned).

    Raises:
        ValueError: A type, key or value this translation does not know
            (the message names it).
    """
    cfg = dict(mutator)
    kind = _bare(cfg.pop('type', 'GroupFisherChannelMutator'))
    if kind != 'GroupFisherChannelMutator':
        raise ValueError(f'GroupFisherAlgorithm: mutator type {kind!r} is '
                         'not GroupFisherChannelMutator')
    parse_cfg = dict(cfg.pop('parse_cfg', None) or {})
    unit_cfg = dict(cfg.pop('channel_unit_cfg', None) or {})
    if not cfg.get('custom_groups'):
        cfg.pop('custom_groups', None)
    if cfg:
        raise ValueError(f'GroupFisherAlgorithm: mutator keys '
                         f'{sorted(cfg)} are not supported (known: '
                         'parse_cfg, channel_unit_cfg)')
    parser = _bare(parse_cfg.pop('type', 'ChannelAnalyzer'))
    if parser != 'ChannelAnalyzer':
        raise ValueError(f'GroupFisherAlgorithm: parse_cfg type {parser!r} '
                         'is not ChannelAnalyzer (the channel graph is '
                         'always traced)')
    shape = _demo_shape(parse_cfg)
    # the tracer kind of 1.x (BackwardTracer / FxTracer) picks nothing
    # here: there is one analysis
    parse_cfg.pop('demo_input', None)
    parse_cfg.pop('tracer_type', None)
    if parse_cfg:
        raise ValueError(f'GroupFisherAlgorithm: parse_cfg keys '
                         f'{sorted(parse_cfg)} are not supported')
    unit = _bare(unit_cfg.pop('type', 'GroupFisherChannelUnit'))
    if unit != 'GroupFisherChannelUnit':
        raise ValueError(f'GroupFisherAlgorithm: channel_unit_cfg type '
                         f'{unit!r} is not GroupFisherChannelUnit')
    args = dict(unit_cfg.pop('default_args', None) or {})
    unit_cfg.pop('units', None)
    if unit_cfg:
        raise ValueError(f'GroupFisherAlgorithm: channel_unit_cfg keys '
                         f'{sorted(unit_cfg)} are not supported')
    normalization = args.pop('normalization_type', 'flops')
    if normalization not in NORMALIZATION_TYPES:
        raise ValueError(f'GroupFisherAlgorithm: normalization_type='
                         f'{normalization!r} is not one of '
                         "['flops', 'act', None]")
    mutate_linear = args.pop('mutate_linear', False)
    if args:
        raise ValueError(f'GroupFisherAlgorithm: GroupFisherChannelUnit '
                         f'arguments {sorted(args)} are not supported')
    pruner = dict(
        type='ImportancePruner',
        importance=dict(type='GroupFisherImportance'),
        cost_normalization=NORMALIZATION_TYPES[normalization],
        except_start_keys=[])
    return pruner, shape, bool(mutate_linear)


@MODELS.register_module()
class GroupFisherAlgorithm(ImportancePruningAlgorithm):
    """Group Fisher pruning (Liu et al., ICML 2021) as MMRazor 1.x
    configures it: every ``interval`` iterations the one channel unit with
    the least Fisher information per FLOP (``normalization_type='flops'``)
    or per activation memory (``'act'``) is removed, while training goes
    on; the Fisher information restarts after each removal.

    Take the checkpoint of the pruning run at the FLOPs you want
    (``ResourceInfoHook(save_ckpt_thr=[0.5])`` writes it with its subnet
    file), then fine-tune it (``GroupFisherSubModel``). ``target`` (not in
    1.x) stops the pruning at a cost instead, and training goes on as the
    fine-tuning.

    Args:
        architecture (dict | nn.Module): The model to prune.
        mutator (dict): The 1.x ``GroupFisherChannelMutator`` config (see
            :func:`pruner_of_group_fisher_mutator`).
        interval (int): Iterations between two removals. Defaults to 10.
        target (dict, optional): See :class:`ImportancePruningAlgorithm`.
        input_shape (Sequence[int], optional): Analysis input; defaults to
            the mutator's ``parse_cfg.demo_input``, else ``(1, 3, 224,
            224)``.
        data_preprocessor (dict | nn.Module, optional): See
            :class:`BaseAlgorithm`.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 architecture: Union[dict, nn.Module],
                 mutator: Dict[str, Any] = dict(
                     type='GroupFisherChannelMutator',
                     parse_cfg=dict(type='ChannelAnalyzer'),
                     channel_unit_cfg=dict(type='GroupFisherChannelUnit')),
                 interval: int = 10,
                 target: Optional[Dict[str, float]] = None,
                 input_shape: Optional[Sequence[int]] = None,
                 data_preprocessor: Optional[Union[dict, nn.Module]] = None,
                 init_cfg: Optional[dict] = None) -> None:
        pruner, shape, mutate_linear = pruner_of_group_fisher_mutator(mutator)
        if isinstance(architecture, dict):
            architecture = MODELS.build(architecture)
        if not mutate_linear:  # 1.x default: linear outputs stay whole
            pruner['excluded'] = [
                name for name, module in architecture.named_modules()
                if isinstance(module, nn.Linear)
            ]
        super().__init__(
            architecture,
            pruner=pruner,
            target=target,
            interval=interval,
            step_units=1,
            input_shape=input_shape or shape,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)


@MODELS.register_module()
def GroupFisherSubModel(algorithm: Union[dict, GroupFisherAlgorithm],
                        data_preprocessor: Optional[dict] = None,
                        **kwargs: Any) -> nn.Module:
    """The fine-tuning model of a Group Fisher run (MMRazor 1.x's
    ``GroupFisherSubModel``): the algorithm is built and initialised (its
    ``init_cfg``, e.g. ``dict(type='Pretrained', checkpoint=...)`` of the
    pruning run, restores weights *and* masks), then its architecture is
    pruned physically and returned.

    Args:
        algorithm (dict | GroupFisherAlgorithm): The pruning algorithm (or
            its config, e.g. ``_base_.model`` of the pruning config).
        data_preprocessor (dict, optional): The Runner's default, used
            when the algorithm config has none.
        **kwargs: 1.x arguments without effect here are refused by name.

    Returns:
        nn.Module: The pruned architecture (its checkpoints hold the
        pruned shapes; ``GroupFisherDeploySubModel`` builds them again).
    """
    if kwargs:
        raise ValueError(f'GroupFisherSubModel: arguments {sorted(kwargs)} '
                         'are not supported')
    if isinstance(algorithm, dict):
        algorithm = dict(algorithm)
        if data_preprocessor is not None:
            algorithm.setdefault('data_preprocessor', data_preprocessor)
        algorithm = MODELS.build(algorithm)
    if not isinstance(algorithm, ImportancePruningAlgorithm):
        raise TypeError('GroupFisherSubModel: algorithm must be a '
                        'GroupFisherAlgorithm (or ImportancePruningAlgorithm)'
                        f', got {type(algorithm).__name__}')
    algorithm.init_weights()
    print_log(
        'GroupFisherSubModel: the pruned structure (fix_subnet of '
        f'GroupFisherDeploySubModel): {algorithm.fix_subnet_1x()}',
        'current')
    architecture = algorithm.architecture
    algorithm.pruner.deploy_subnet(architecture)
    return architecture


# MMRazor 1.x's deploy configs of Group Fisher (and of the l1-norm
# pruning) build the pruned structure from a fix_subnet of unit names
MODELS.register_module(
    name='GroupFisherDeploySubModel', module=PruneDeploySubModel)
