"""FLOPs (multiply-accumulates), parameters and latency of models and of the
current subnet of a supernet, without deep-copying it.

How a supernet is estimated
---------------------------
One forward pass (per input shape) under :class:`~.counter.OpCounter`
splits the model into

* **module units**: single-path module mutables (``OneShotMutableOP``). The
  pass records what each receives; each candidate is then counted *alone*
  on inputs of that shape, once, and cached. A subnet's cost sums the cached
  costs of the chosen candidates;
* **dynamic units**: dynamic ops with mutable channels/kernel. Their cost is
  computed analytically from the active channels and the recorded output
  size (see :mod:`.analytic`);
* the **static part**: everything else, counted in that pass and cached;
* **dynamic containers** (``DynamicSequential``: a searched depth): static
  modules that drop some of their children from the subnet. Dropped
  children neither run nor belong to the exported model: nothing under
  them (static modules or units) is counted, parameters included. Which
  children are dropped is read from the container's ``active_*``
  attributes at each estimate (see :mod:`.analytic`), never cached.

The static part does not depend on module choices (all candidates of a
module mutable must give outputs of one shape; this is checked). When the
model also holds value/channel mutables that are not only read by dynamic
ops (e.g. a searched input resolution), the static part is cached per
choice of those (always on the mutables of dynamic containers); it is also
keyed on the channel choices when it holds activation-by-activation
products (attention), whose size can follow channels. When those mutables
have few choices together (``_EAGER_PLANS``), the first estimate traces
them all.

Searched depths (containers registered ``trailing``, e.g.
``DynamicSequential``, whose depth mutable nothing else reads) are not
part of that key: the pass runs at the largest depths and records the
static costs under each child a smaller depth drops, which are then
subtracted. This holds only when every such child gives an output of its
input's shape (checked in the pass; otherwise the depths are keyed like
the other mutables). The costs of dynamic units are cached per choice of
their source mutables, and computed for all those choices with each plan
(``_PREFILL_CHOICES``), so that a new candidate is only look-ups.

Anything that cannot be split
safely (nested mutables inside a candidate, a mutable whose cost in the
pass differs from its candidate counted alone) makes the estimator count
the whole model in a forward pass each time, which is always correct, only
slower.

MMRazor 1.x face
----------------
Given a ``flops_params_cfg`` (see :mod:`.compat_1x`), ``flops`` follow the
mmcv convention: the MACs above (cached as usual) plus the element-wise
terms of :mod:`.mmcv_convention`, collected by hooks in one forward pass of
the current subnet.
"""
import itertools
import time
import weakref
from collections import Counter, defaultdict
from contextlib import contextmanager
from typing import (Any, Callable, Dict, FrozenSet, Iterable, Iterator, List,
                    Optional, Sequence, Set, Tuple, Union)

import torch
from torch import nn

from mmrazor.registry import TASK_UTILS
from mmrazor.structures import Searchable, is_decision
from .analytic import (InactiveFn, analytic_cost_of, drops_trailing_children,
                       inactive_children_of)
from .counter import (CountBucket, OpCounter, build_from_spec, count_call,
                      spec_key, tensor_spec, track_modules)
from .compat_1x import (FlopsParamsCfg, LatencyCfg, TIME_SCALES, convert,
                        parse_flops_params_cfg, parse_latency_cfg)
from .mmcv_convention import collect_extras
from .op_counters import OP_COUNTERS

ForwardFn = Callable[[nn.Module, torch.Tensor], Any]


# --------------------------------------------------------------- helpers
def is_single_path_mutable(module: nn.Module) -> bool:
    """Whether ``module`` is a module mutable whose forward runs only its
    chosen candidate(s): a :class:`~mmrazor.structures.Searchable` declaring
    ``single_path = True`` (``OneShotMutableModule`` and subclasses) with
    an ``nn.ModuleDict`` of candidates."""
    return isinstance(module, Searchable) and module.single_path and \
        isinstance(getattr(module, 'candidates', None), nn.ModuleDict)


def chosen_candidates(mutable: nn.Module) -> List[str]:
    """Names of the candidates a single-path mutable runs now (all of them
    when it has no current choice)."""
    if hasattr(mutable, 'chosen_names'):
        return list(mutable.chosen_names())
    choice = mutable.current_choice
    if choice is None:
        return list(mutable.candidates.keys())
    return list(choice) if isinstance(choice, (list, tuple)) else [choice]


def _hashable(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return ('tensor', tuple(value.flatten().tolist()))
    if isinstance(value, (list, tuple)):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _hashable(v)) for k, v in value.items()))
    return value


def _unique_params(module: nn.Module) -> int:
    seen: Set[int] = set()
    total = 0
    for p in module.parameters():
        if id(p) not in seen:
            seen.add(id(p))
            total += p.numel()
    return total


def _params_by_module(module: nn.Module, prefix: str) -> Dict[str, int]:
    """Parameters of ``module`` and each of its sub-modules (by name)."""
    result: Dict[str, int] = defaultdict(int)
    seen: Set[int] = set()
    for name, sub in module.named_modules(prefix=prefix):
        own = 0
        for p in sub.parameters(recurse=False):
            if id(p) not in seen:
                seen.add(id(p))
                own += p.numel()
        if own:
            parts = name[len(prefix):].lstrip('.').split('.') if \
                name != prefix else []
            result[prefix] += own
            for i in range(len(parts)):
                result[_join(prefix, '.'.join(parts[:i + 1]))] += own
    return dict(result)


def _aggregate(exclusive: Dict[str, CountBucket]) -> Dict[str, CountBucket]:
    """Add each module's own ops to all its ancestors, by name (so that
    containers that never run themselves, e.g. ``nn.ModuleList``, get the
    cost of their children)."""
    result: Dict[str, CountBucket] = defaultdict(CountBucket)
    for name, bucket in exclusive.items():
        for anc in _ancestors(name):
            result[anc].add(bucket)
    return dict(result)


def _ancestors(name: str) -> List[str]:
    """``'a.b.c'`` -> ``['', 'a', 'a.b', 'a.b.c']``."""
    if not name:
        return ['']
    parts = name.split('.')
    return [''] + ['.'.join(parts[:i + 1]) for i in range(len(parts))]


def _join(prefix: str, name: str) -> str:
    if not prefix:
        return name
    return f'{prefix}.{name}' if name else prefix


def default_forward(model: nn.Module, inputs: torch.Tensor) -> Any:
    """Run ``model`` on a dummy image batch the way FLOPs tools do:
    ``forward_dummy`` when the model has one, ``mode='tensor'`` for an
    mmengine ``BaseModel``, else a plain call."""
    if hasattr(model, 'forward_dummy'):
        return model.forward_dummy(inputs)
    try:
        from mmengine.model import BaseModel
    except ImportError:  # pragma: no cover
        BaseModel = ()
    if isinstance(model, BaseModel):
        return model(inputs, mode='tensor')
    return model(inputs)


class _EvalMode:
    """Put a model in eval mode and restore every module's flag after."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.flags: List[Tuple[nn.Module, bool]] = []

    def __enter__(self) -> None:
        self.flags = [(m, m.training) for m in self.model.modules()]
        self.model.eval()

    def __exit__(self, *exc: Any) -> None:
        for module, flag in self.flags:
            module.training = flag


# --------------------------------------------------------------- the plan
class _Unit:
    """A separately estimated part of a supernet.

    Attributes:
        name (str): Module path in the estimated model.
        module (nn.Module): The mutable or dynamic op.
        kind (str): ``'module'`` (single-path module mutable) or
            ``'dynamic'`` (dynamic op with analytic costs).
        cache (dict): ``(choice, input key) -> (CountBucket, by_module)``
            of module units (valid for any plan: keyed by the input).
        params_cache (dict): Choice -> parameters of that candidate (module
            units), or :meth:`choice_key` -> active parameters (dynamic
            units).
        analytic (tuple, optional): MACs and params functions of a dynamic
            unit.
        sources (list): The source mutables of every mutable attribute of
            a dynamic unit and of its sub-modules: its active sizes, hence
            its costs for given output sizes, follow their choices.
    """

    def __init__(self, name: str, module: nn.Module, kind: str) -> None:
        self.name = name
        self.module = module
        self.kind = kind
        self.cache: Dict[Any, Tuple[CountBucket, Dict[str, CountBucket]]] = {}
        self.params_cache: Dict[Any, int] = {}
        self.analytic = analytic_cost_of(module) if kind == 'dynamic' \
            else None
        self.sources = _source_mutables(module) if kind == 'dynamic' \
            else []

    def choice_key(self) -> Tuple:
        """The current choices of :attr:`sources`."""
        return tuple(_hashable(m.current_choice) for m in self.sources)


def _source_mutables(module: nn.Module) -> List[nn.Module]:
    """The source mutables (derived ones expanded) of the mutable
    attributes of ``module`` and of its sub-modules, each once."""
    result: List[nn.Module] = []
    seen: Set[int] = set()
    for sub in module.modules():
        for mutable in getattr(sub, 'mutable_attrs', {}).values():
            for m in (mutable.source_mutables if getattr(
                    mutable, 'derived', False) else [mutable]):
                if id(m) not in seen:
                    seen.add(id(m))
                    result.append(m)
    return result


class _UnitState:
    """What one forward pass (one plan) saw of a unit.

    Attributes:
        calls (list): Per call: ``(input spec, output spec, input key)``
            (module units) or the output shape (dynamic units).
        inputs (list): Input specs of the calls of a dynamic unit.
        uncounted (Counter): Uncounted ops of the calls of a dynamic unit
            (those of the plain op it stands for).
        overhead (dict): Uncounted ops of a module unit itself (e.g. the
            sum of several chosen outputs), by number of chosen candidates.
        macs (dict): :meth:`_Unit.choice_key` -> MACs of the calls of a
            dynamic unit.
    """

    def __init__(self) -> None:
        self.calls: List[Any] = []
        self.inputs: List[Any] = []
        self.uncounted: Counter = Counter()
        self.overhead: Dict[int, Counter] = {}
        self.macs: Dict[Tuple, int] = {}


class _Structure:
    """What a walk over the model finds (independent of the input and of
    the current choices).

    Attributes:
        units (dict): Name -> :class:`_Unit` (module mutables and dynamic
            ops with analytic costs), in walk order.
        static_modules (dict): Name -> every other module visited.
        containers (list): ``(name, module, inactive_fn)`` of the dynamic
            containers (static modules that drop children from the subnet),
            parents before children.
        free_mutables (list): Mutables the static part depends on: those
            not only read by dynamic ops, and those of dynamic containers.
        dynamic_mutables (list): Source mutables read by dynamic ops.
        nested (bool): Whether a candidate holds mutables or dynamic ops.
        static_params (dict): Parameters of the static part by module name
            (each module with everything static under it), containers not
            applied (the whole supernet).
        static_owners (list): ``(ancestors, params)`` of each static module
            owning parameters (shared ones counted once).
    """

    def __init__(self, model: nn.Module) -> None:
        self.units: Dict[str, _Unit] = {}
        self.static_modules: Dict[str, nn.Module] = {}
        self.containers: List[Tuple[str, nn.Module, InactiveFn]] = []
        self.free_mutables: List[nn.Module] = []
        self.dynamic_mutables: List[nn.Module] = []
        self.nested = False
        seen_dyn: Set[int] = set()

        def sources_of(op: nn.Module) -> List[nn.Module]:
            result = []
            for mutable in op.mutable_attrs.values():
                result.extend(mutable.source_mutables if getattr(
                    mutable, 'derived', False) else [mutable])
            return result

        def add_dynamic_sources(op: nn.Module) -> None:
            for m in sources_of(op):
                if id(m) not in seen_dyn:
                    seen_dyn.add(id(m))
                    self.dynamic_mutables.append(m)

        found_mutables: List[nn.Module] = []
        # mutables deciding which children of a container are in the subnet
        structural: List[nn.Module] = []

        # (parent, attribute, module) of every unit and top static module,
        # to notice a model changed in place (see :meth:`is_stale`)
        self.links: List[Tuple[nn.Module, str, nn.Module]] = []
        # where each mutable outside dynamic ops is registered
        mutable_paths: Dict[int, List[str]] = defaultdict(list)
        # paths of mutables in plain ``nn.ModuleDict``/``nn.ModuleList``
        # registries (e.g. a backbone's ``mutables``), which read nothing
        registries: Set[str] = set()

        def visit(module: nn.Module, name: str) -> None:
            for child_name, child in module.named_children():
                if is_single_path_mutable(child) or \
                        analytic_cost_of(child) is not None:
                    self.links.append((module, child_name, child))
            if is_single_path_mutable(module):
                self.units[name] = _Unit(name, module, 'module')
                for sub in module.candidates.modules():
                    if isinstance(sub, Searchable) or \
                            analytic_cost_of(sub) is not None:
                        self.nested = True
                return
            if analytic_cost_of(module) is not None:
                self.units[name] = _Unit(name, module, 'dynamic')
                add_dynamic_sources(module)
                return
            self.static_modules[name] = module
            inactive_fn = inactive_children_of(module)
            if inactive_fn is not None:
                self.containers.append((name, module, inactive_fn))
                structural.extend(sources_of(module))
            if is_decision(module) and not hasattr(module, 'candidates'):
                found_mutables.append(module)
                mutable_paths[id(module)].append(name)
            for child_name, child in module.named_children():
                path = _join(name, child_name)
                if type(module) in (nn.ModuleDict, nn.ModuleList) and \
                        is_decision(child) and _attr_owner(path) is None:
                    registries.add(path)
            for child_name, child in module.named_children():
                visit(child, _join(name, child_name))

        visit(model, '')
        keyed: Set[int] = set()
        for m in [m for m in found_mutables if id(m) not in seen_dyn
                  ] + structural:
            if id(m) not in keyed:
                keyed.add(id(m))
                self.free_mutables.append(m)
        for paths in mutable_paths.values():
            paths[:] = [p for p in paths if p not in registries]
        self.depth_mutables = _depth_mutables(self.containers, mutable_paths,
                                              found_mutables, seen_dyn)
        depth_ids = {id(m) for m in self.depth_mutables}
        # the plan key: free mutables but the depths traced at their largest
        self.key_mutables = [
            m for m in self.free_mutables if id(m) not in depth_ids
        ]
        self.trailing = [(name, module, fn)
                         for name, module, fn in self.containers
                         if _only_depths(module, depth_ids)]
        # params of the static part, per module (aggregated upwards)
        self.static_params: Dict[str, int] = defaultdict(int)
        self.static_owners: List[Tuple[FrozenSet[str], int]] = []
        seen: Set[int] = set()
        for name, module in self.static_modules.items():
            own = 0
            for p in module.parameters(recurse=False):
                if id(p) not in seen:
                    seen.add(id(p))
                    own += p.numel()
            if own:
                ancestors = _ancestors(name)
                self.static_owners.append((frozenset(ancestors), own))
                for anc in ancestors:
                    self.static_params[anc] += own
        self.static_params.setdefault('', 0)
        self.unit_ancestors: Dict[str, FrozenSet[str]] = {
            name: frozenset(_ancestors(name))
            for name in self.units
        }

    def trailing_children(self) -> Dict[int, str]:
        """``id -> name`` of the children of the containers whose depth is
        traced at its largest (see :func:`_depth_mutables`)."""
        return {
            id(child): _join(name, child_name)
            for name, module, _ in self.trailing
            for child_name, child in module.named_children()
            if child_name != 'mutable_attrs'
        }

    def dropped(self) -> FrozenSet[str]:
        """Names of the modules dynamic containers drop from the current
        subnet (everything under them is dropped too)."""
        dropped: Set[str] = set()
        for name, module, inactive_fn in self.containers:
            if not dropped.isdisjoint(_ancestors(name)):
                continue  # inside a dropped module: does not matter
            dropped.update(_join(name, child) for child in inactive_fn(module))
        return frozenset(dropped)

    def active_units(self, dropped: FrozenSet[str]) -> List[_Unit]:
        """The units of the current subnet (not under a dropped module)."""
        if not dropped:
            return list(self.units.values())
        return [
            unit for name, unit in self.units.items()
            if dropped.isdisjoint(self.unit_ancestors[name])
        ]

    def active_static_params(self, dropped: FrozenSet[str]) -> int:
        """Parameters of the static part of the current subnet."""
        if not dropped:
            return self.static_params['']
        return sum(own for ancestors, own in self.static_owners
                   if dropped.isdisjoint(ancestors))

    def active_static_params_by_module(self, dropped: FrozenSet[str]
                                       ) -> Dict[str, int]:
        """Parameters of the static part of the current subnet, by module
        name (each module with everything static under it)."""
        result: Dict[str, int] = dict.fromkeys(self.static_modules, 0)
        if not dropped:
            result.update(self.static_params)
            return result
        for name in self.static_modules:
            if not dropped.isdisjoint(_ancestors(name)):
                del result[name]
        for ancestors, own in self.static_owners:
            if dropped.isdisjoint(ancestors):
                for anc in ancestors:
                    result[anc] += own
        return result

    def key_on_depths(self) -> None:
        """Stop tracing depths at their largest: key plans on them too."""
        self.depth_mutables = []
        self.key_mutables = list(self.free_mutables)
        self.trailing = []

    def is_stale(self) -> bool:
        """Whether a mutable or dynamic op was replaced in the model since
        the walk (e.g. by an in-place export to a static model)."""
        return any(parent._modules.get(attr) is not child
                   for parent, attr, child in self.links)


def _depth_mutables(containers: List[Tuple[str, nn.Module, InactiveFn]],
                    mutable_paths: Dict[int, List[str]],
                    found_mutables: List[nn.Module],
                    seen_dyn: Set[int]) -> List[nn.Module]:
    """The mutables that only decide how many trailing children containers
    drop (searched depths): registered only in the ``mutable_attrs`` of
    containers declared ``trailing`` (see
    :func:`~.analytic.register_inactive_children`), read by no dynamic op
    and the source of no other mutable. A plan traces them at their largest
    choice and takes the dropped children out of it; the others are part
    of the plan key."""
    derived_sources: Set[int] = set()
    for m in found_mutables:
        if getattr(m, 'derived', False):
            derived_sources.update(id(s) for s in m.source_mutables)
    trailing = {name for name, module, _ in containers
                if drops_trailing_children(module)}
    result: List[nn.Module] = []
    seen: Set[int] = set()
    for name, module, _ in containers:
        if name not in trailing:
            continue
        for m in module.mutable_attrs.values():
            paths = mutable_paths.get(id(m), [])
            usable = bool(paths) and all(
                _attr_owner(p) in trailing for p in paths) and \
                not getattr(m, 'derived', False) and \
                id(m) not in seen_dyn and id(m) not in derived_sources and \
                all(isinstance(c, int) for c in getattr(m, 'choices', [None]))
            if usable and id(m) not in seen:
                seen.add(id(m))
                result.append(m)
    return result


@contextmanager
def _traced_depths(structure: _Structure) -> Iterator[FrozenSet[str]]:
    """Set the traced depths (see :func:`_depth_mutables`) to their largest
    choice for a trace, and give the names of the children their smallest
    choice drops; choices are restored after."""
    movable = [m for m in structure.depth_mutables
               if not getattr(m, 'is_fixed', False)]
    saved = [m.current_choice for m in movable]
    children = set(structure.trailing_children().values())
    try:
        for m in movable:
            m.current_choice = min(m.choices)
        droppable = structure.dropped() & children
        for m in movable:
            m.current_choice = max(m.choices)
        yield frozenset(droppable)
    finally:
        for m, choice in zip(movable, saved):
            m.current_choice = choice


def _attr_owner(path: str) -> Optional[str]:
    """``'a.b.mutable_attrs.depth'`` -> ``'a.b'``; None for a path outside
    a ``mutable_attrs``."""
    head, sep, tail = ('.' + path).rpartition('.mutable_attrs.')
    return head[1:] if sep and '.' not in tail else None


def _only_depths(module: nn.Module, depth_ids: Set[int]) -> bool:
    """Whether ``module`` is a container whose mutables are all depths
    traced at their largest choice."""
    attrs = getattr(module, 'mutable_attrs', None)
    return bool(attrs) and drops_trailing_children(module) and all(
        id(m) in depth_ids for m in attrs.values())


class _Plan:
    """Costs of the static part for one input shape (and one choice of the
    mutables the static part depends on)."""

    def __init__(self) -> None:
        self.total = CountBucket()
        self.by_module: Dict[str, CountBucket] = {}
        self.states: Dict[str, _UnitState] = {}
        self.fast = True
        self.reason = ''
        self.weight_bound = True
        # what the trace at the largest depths dropped anyway, and the
        # static costs under each child a smaller depth drops
        self.traced_dropped: FrozenSet[str] = frozenset()
        self.dropped_static: Dict[str, CountBucket] = {}
        self.depths_ok = True


# --------------------------------------------------------------- estimator
@TASK_UTILS.register_module()
class ResourceEstimator:
    """Estimate FLOPs, MACs, parameters and latency of a model.

    ``flops`` and ``macs`` are both multiply-accumulate counts: ``flops``
    follows the OpenMMLab convention of published tables (e.g. "0.33G
    FLOPs" of SPOS, "4.09G" of ResNet-50; one multiply-add is one "FLOP"),
    ``macs`` says so explicitly. Counted: convolutions, linear layers and all
    matrix products (``mm``/``addmm``/``bmm``/``baddbmm``/``matmul``,
    ``einsum`` through its decomposition, fused scaled-dot-product and
    multi-head attention kernels), of the input: computations on weights
    alone (e.g. Once-for-All's kernel transformation) are no inference cost
    and are neither counted nor reported. Not counted, and reported under
    ``uncounted`` with their number of calls: normalisation, activations,
    element-wise arithmetic, pooling and softmax — as in the published
    tables of torchvision and OpenMMLab.

    For a supernet the estimate is that of its current subnet, built from
    cached per-candidate costs without copying the model (see the module
    docstring); :meth:`estimate` gives the same number as counting the
    exported static subnet.

    Args:
        input_shape (tuple[int]): Shape of the dummy input, batch included.
            Defaults to ``(1, 3, 224, 224)``.
        forward_fn (callable, optional): ``(model, inputs) -> output``; by
            default :func:`default_forward`.
        units (dict, optional): Divide the results: e.g.
            ``dict(flops='G', params='M', latency='ms')``; keys left out keep
            raw counts (latency is always in ms). Defaults to raw counts.
        latency_warmup (int): Untimed runs before measuring. Defaults to 5.
        latency_runs (int): Timed runs; the median is reported.
            Defaults to 20.
        latency_lut (LatencyLUT, optional): A look-up table; when given,
            results also hold ``latency_lut`` (ms predicted from it).
        as_strings (bool): MMRazor 1.x option: results as strings such as
            ``'44.158 M'``. Giving True turns on the 1.x convention (as an
            empty ``flops_params_cfg`` would). Defaults to False.
        flops_params_cfg (dict, optional): MMRazor 1.x option: when given
            (here or to :meth:`estimate`), ``flops`` follow the mmcv
            convention (see :mod:`.mmcv_convention`), per image, in 'M'
            (unless ``units`` say otherwise) rounded to 3 decimals. Keys:
            ``input_shape``, ``units`` (a unit or a dict of them),
            ``as_strings``, ``precision``, ``print_per_layer_stat``,
            ``disabled_counters`` (1.x names such as ``'ReLUCounter'``).
            Defaults to None (multiply-accumulates, raw counts).
        latency_cfg (dict, optional): MMRazor 1.x option: defaults of the
            ``latency_cfg`` of :meth:`estimate` (``max_iter``,
            ``num_warmup``, ``log_interval``, ``unit``, ``input_shape``,
            ``as_strings``, ``repeat_num``). Defaults to None.
    """

    _SCALE = {'': 1, 'K': 1e3, 'M': 1e6, 'G': 1e9, 'T': 1e12}
    #: plans of all choices of the key mutables are built at once up to
    #: this many (see :meth:`_add_plans_per_choice`)
    _EAGER_PLANS = 16
    #: dynamic units with at most this many choices of their mutables get
    #: all their costs computed with each plan (see :meth:`_prefill`)
    _PREFILL_CHOICES = 256

    def __init__(self,
                 input_shape: Sequence[int] = (1, 3, 224, 224),
                 forward_fn: Optional[ForwardFn] = None,
                 units: Optional[Dict[str, str]] = None,
                 latency_warmup: int = 5,
                 latency_runs: int = 20,
                 latency_lut: Optional[Any] = None,
                 as_strings: bool = False,
                 flops_params_cfg: Optional[Dict[str, Any]] = None,
                 latency_cfg: Optional[Dict[str, Any]] = None) -> None:
        self.input_shape = self._check_shape(input_shape)
        self._units_given = units is not None
        self.as_strings = bool(as_strings)
        if flops_params_cfg is None and self.as_strings:
            flops_params_cfg = {}
        self.flops_params_cfg = None if flops_params_cfg is None else dict(
            flops_params_cfg)
        self.latency_cfg = dict(latency_cfg or {})
        if self.flops_params_cfg is not None:  # fail early on bad keys
            parse_flops_params_cfg(self.flops_params_cfg)
        parse_latency_cfg(self.latency_cfg)
        self.forward_fn = forward_fn or default_forward
        self.units = dict(units or {})
        for key, unit in self.units.items():
            if key in ('flops', 'macs', 'params') and unit not in self._SCALE:
                raise ValueError(f'unknown unit {unit!r} for {key!r}; use '
                                 f'one of {list(self._SCALE)}')
        self.latency_warmup = int(latency_warmup)
        self.latency_runs = int(latency_runs)
        if self.latency_runs < 1:
            raise ValueError(f'latency_runs must be >= 1, got {latency_runs}')
        self.latency_lut = latency_lut
        # model -> {'structure': _Structure, shape -> {key: _Plan}}
        self._cache: 'weakref.WeakKeyDictionary' = \
            weakref.WeakKeyDictionary()

    # ------------------------------------------------------------ public
    @staticmethod
    def _check_shape(shape: Sequence[int]) -> Tuple[int, ...]:
        try:
            shape = tuple(int(s) for s in shape)
        except (TypeError, ValueError):
            raise TypeError(f'input_shape must be a sequence of ints, got '
                            f'{shape!r}') from None
        if not shape or any(s <= 0 for s in shape):
            raise ValueError(f'input_shape must hold positive ints, got '
                             f'{shape!r}')
        return shape

    def clear_cache(self, model: Optional[nn.Module] = None) -> None:
        """Forget cached costs (of ``model``, or of every model).

        Replacing a mutable or dynamic op in place is noticed
        automatically; call it after other in-place changes of a model's
        structure (replacing plain layers). Choices never need it.
        """
        if model is None:
            self._cache = weakref.WeakKeyDictionary()
        else:
            self._cache.pop(model, None)

    def estimate(self,
                 model: nn.Module,
                 measure_latency: bool = False,
                 module: Optional[str] = None,
                 input_shape: Optional[Sequence[int]] = None,
                 by_module: bool = False,
                 flops_params_cfg: Optional[Dict[str, Any]] = None,
                 latency_cfg: Optional[Dict[str, Any]] = None
                 ) -> Dict[str, Any]:
        """Estimate the resources of ``model`` (its current subnet).

        Args:
            model (nn.Module): A static model, or a supernet whose mutables
                hold the subnet to estimate.
            measure_latency (bool): Also time the forward pass (ms, median
                of ``latency_runs``). Defaults to False.
            module (str, optional): Name of a sub-module (e.g.
                ``'backbone'``): only its share is reported. The whole model
                still runs, so necks and heads get their real inputs.
            input_shape (tuple[int], optional): Overrides the estimator's.
            by_module (bool): Also return ``by_module``: module name ->
                ``{'flops', 'params', 'uncounted'}``. Defaults to False.
            flops_params_cfg (dict, optional): MMRazor 1.x option (see the
                class): merged over the estimator's; when given, ``flops``
                follow the mmcv convention. Defaults to None.
            latency_cfg (dict, optional): MMRazor 1.x option: measure the
                latency with these settings (merged over the estimator's;
                ``max_iter`` timed runs, ``num_warmup`` untimed ones,
                ``unit`` 'ms' or 's'). Defaults to None.

        Returns:
            dict: ``flops``, ``macs`` (multiply-accumulates), ``params``,
            ``uncounted`` (op name -> calls that ran but were not counted),
            and ``latency`` (ms) when measured. With ``flops_params_cfg``:
            ``flops`` (mmcv convention), ``macs`` (both per image),
            ``params``, ``latency`` when measured, converted as configured.
        """
        lat_cfg = None
        if latency_cfg is not None:
            lat_cfg = parse_latency_cfg({**self.latency_cfg, **latency_cfg})
        elif measure_latency and self.latency_cfg:
            lat_cfg = parse_latency_cfg(self.latency_cfg)
        if flops_params_cfg is not None or self.flops_params_cfg is not None:
            cfg = parse_flops_params_cfg(
                {
                    **(self.flops_params_cfg or {}),
                    **(flops_params_cfg or {})
                },
                default_units=self.units if self._units_given else None,
                default_as_strings=self.as_strings)
            if measure_latency and lat_cfg is None:
                lat_cfg = LatencyCfg()
            return self._estimate_1x(model, cfg, lat_cfg, module,
                                     input_shape, by_module)
        if lat_cfg is not None:
            result = self.estimate(model, False, module, input_shape,
                                   by_module)
            shape = lat_cfg.input_shape or input_shape or self.input_shape
            result['latency'] = self._latency_1x(model, module, shape,
                                                 lat_cfg, None, False)
            return result
        shape = self._check_shape(input_shape) if input_shape is not None \
            else self.input_shape
        if module is not None:
            self._check_module_name(model, module)
        total, params, breakdown = self._costs(
            model, shape, want_breakdown=by_module or module is not None)
        if module is not None:
            entry = breakdown.get(module)
            total = entry[0] if entry else CountBucket()
            params = entry[1] if entry else 0
        result: Dict[str, Any] = dict(
            flops=self._scale(total.macs, 'flops'),
            macs=self._scale(total.macs, 'macs'),
            params=self._scale(params, 'params'),
            uncounted=dict(sorted(total.uncounted.items())))
        if by_module:
            prefix = module
            result['by_module'] = {
                name: dict(
                    flops=self._scale(bucket.macs, 'flops'),
                    params=self._scale(p, 'params'),
                    uncounted=dict(bucket.uncounted))
                for name, (bucket, p) in breakdown.items()
                if prefix is None or name == prefix or name.startswith(
                    prefix + '.')
            }
        if measure_latency:
            result['latency'] = self.measure_latency(
                model, module=module, input_shape=shape)
        if self.latency_lut is not None:
            result['latency_lut'] = self.latency_lut.predict(
                model, input_shape=shape)
        return result

    def _estimate_1x(self, model: nn.Module, cfg: FlopsParamsCfg,
                     lat_cfg: Optional[LatencyCfg], module: Optional[str],
                     input_shape: Optional[Sequence[int]],
                     by_module: bool) -> Dict[str, Any]:
        """:meth:`estimate` with a ``flops_params_cfg``: FLOPs in the mmcv
        convention (our MACs plus the element-wise terms of
        :mod:`.mmcv_convention`), per image, converted as configured."""
        shape = self._check_shape(
            next(s for s in (input_shape, cfg.input_shape, self.input_shape)
                 if s is not None))
        if module is not None:
            self._check_module_name(model, module)
        want = bool(by_module or module is not None or
                    cfg.print_per_layer_stat or cfg.disabled_counters)
        total, params, breakdown = self._costs(model, shape, want)
        extra = self._mmcv_extras(model, shape, cfg.disabled_counters,
                                  breakdown)
        macs = total.macs
        if module is not None:
            entry = breakdown.get(module)
            macs, params = (entry[0].macs, entry[1]) if entry else (0, 0)
        batch = shape[0]

        def flops_of(name: str, name_macs: int) -> Union[int, float]:
            return (name_macs + extra.get(name, 0)) / batch

        def out(value: Union[int, float], key: str) -> Any:
            return convert(value, cfg.units[key], cfg.precision,
                           cfg.as_strings)

        root = module or ''
        result: Dict[str, Any] = dict(
            flops=out(flops_of(root, macs), 'flops'),
            macs=out(macs / batch, 'flops'),
            params=out(params, 'params'))
        table = {
            name: dict(
                flops=out(flops_of(name, bucket.macs), 'flops'),
                params=out(p, 'params'))
            for name, (bucket, p) in breakdown.items()
            if not root or name == root or name.startswith(root + '.')
        }
        if by_module:
            result['by_module'] = table
        if cfg.print_per_layer_stat:
            self._print_table(model, table)
        if lat_cfg is not None:
            result['latency'] = self._latency_1x(
                model, module, lat_cfg.input_shape or shape, lat_cfg,
                cfg.precision, cfg.as_strings)
        if self.latency_lut is not None:
            result['latency_lut'] = self.latency_lut.predict(
                model, input_shape=shape)
        return result

    def _mmcv_extras(self, model: nn.Module, shape: Tuple[int, ...],
                     disabled_counters: Sequence[str],
                     breakdown: Dict[str, Tuple[CountBucket, int]]
                     ) -> Dict[str, int]:
        """FLOPs the mmcv convention adds to our MACs (negative for the
        MACs of disabled layers), by module name, each module with
        everything under it (one forward pass of the current subnet)."""
        inputs = self._dummy_input(model, shape)
        with _EvalMode(model), torch.no_grad():
            extras = collect_extras(model,
                                    lambda: self.forward_fn(model, inputs),
                                    disabled_counters)
        own = dict(extras.by_module)
        for name in extras.disabled:
            entry = breakdown.get(name)
            own[name] = own.get(name, 0) - (entry[0].macs if entry else 0)
        result: Dict[str, int] = defaultdict(int)
        for name, value in own.items():
            for anc in _ancestors(name):
                result[anc] += value
        return dict(result)

    @staticmethod
    def _print_table(model: nn.Module, table: Dict[str, Dict[str,
                                                             Any]]) -> None:
        """Print the per-module FLOPs and parameters (1.x
        ``print_per_layer_stat``)."""
        types = {name: type(m).__name__ for name, m in model.named_modules()}
        for name in sorted(table):
            entry = table[name]
            print(f'{name or "(model)"} ({types.get(name, "?")}): '
                  f'FLOPs {entry["flops"]}, params {entry["params"]}')

    def _latency_1x(self, model: nn.Module, module: Optional[str],
                    shape: Sequence[int], cfg: LatencyCfg,
                    precision: Optional[int],
                    as_strings: bool) -> Union[float, str]:
        """Latency measured as a 1.x ``latency_cfg`` says (mean of
        ``repeat_num`` medians), in its unit."""
        times = [
            self.measure_latency(
                model,
                module=module,
                input_shape=shape,
                warmup=cfg.num_warmup,
                runs=cfg.max_iter) for _ in range(cfg.repeat_num)
        ]
        value = sum(times) / len(times) * TIME_SCALES[cfg.unit]
        if precision is not None:
            value = round(value, precision)
        if cfg.as_strings if cfg.as_strings is not None else as_strings:
            return f'{value} {cfg.unit}'
        return value

    def count_static(self,
                     model: nn.Module,
                     input_shape: Optional[Sequence[int]] = None
                     ) -> Dict[str, Any]:
        """Count ``model`` in one forward pass, with no supernet logic.

        The reference the supernet path is checked against (parameters are
        all of ``model.parameters()``).

        Args:
            model (nn.Module): Any model.
            input_shape (tuple[int], optional): Overrides the estimator's.

        Returns:
            dict: ``flops``, ``macs``, ``params`` and ``uncounted``.
        """
        shape = self._check_shape(input_shape) if input_shape is not None \
            else self.input_shape
        with _EvalMode(model):
            counter = OpCounter()
            inputs = self._dummy_input(model, shape)
            with torch.no_grad(), counter:
                self.forward_fn(model, inputs)
        macs = counter.total.macs
        return dict(
            flops=self._scale(macs, 'flops'),
            macs=self._scale(macs, 'macs'),
            params=self._scale(_unique_params(model), 'params'),
            uncounted=dict(sorted(counter.total.uncounted.items())))

    def prepare(self,
                model: nn.Module,
                input_shape: Optional[Sequence[int]] = None) -> int:
        """Count every candidate of every module mutable now, so that later
        estimates of any subnet are pure look-ups.

        Args:
            model (nn.Module): A supernet.
            input_shape (tuple[int], optional): Overrides the estimator's.

        Returns:
            int: Number of (candidate, input shape) costs measured.
        """
        shape = self._check_shape(input_shape) if input_shape is not None \
            else self.input_shape
        measured = 0
        structure, plan = self._get_plan(model, shape)
        if not plan.fast:
            return 0
        for unit in structure.units.values():
            if unit.kind != 'module':
                continue
            for choice in list(unit.module.candidates.keys()):
                for call in plan.states[unit.name].calls:
                    key = (choice, call[2])
                    if key in unit.cache:
                        continue
                    try:
                        self._measure_candidate(unit, choice, call)
                    except _ShapeChanged as err:
                        plan.fast = False
                        plan.reason = str(err)
                        return measured
                    measured += 1
        return measured

    def measure_latency(self,
                        model: nn.Module,
                        module: Optional[str] = None,
                        input_shape: Optional[Sequence[int]] = None,
                        warmup: Optional[int] = None,
                        runs: Optional[int] = None) -> float:
        """Median wall-clock time of one forward pass, in ms.

        Args:
            model (nn.Module): The model (its current subnet runs).
            module (str, optional): Time only this sub-module, on the inputs
                it receives in a forward pass of the whole model.
            input_shape (tuple[int], optional): Overrides the estimator's.
            warmup (int, optional): Overrides ``latency_warmup``.
            runs (int, optional): Overrides ``latency_runs``.

        Returns:
            float: Milliseconds.
        """
        shape = self._check_shape(input_shape) if input_shape is not None \
            else self.input_shape
        inputs = self._dummy_input(model, shape)
        with _EvalMode(model), torch.no_grad():
            if module is None:
                def run():
                    return self.forward_fn(model, inputs)
            else:
                sub = self._check_module_name(model, module)
                captured: List[Any] = []

                def grab(mod, args, kwargs):
                    if not captured:
                        captured.append((args, kwargs))

                handle = sub.register_forward_pre_hook(grab, with_kwargs=True)
                try:
                    self.forward_fn(model, inputs)
                finally:
                    handle.remove()
                if not captured:
                    raise RuntimeError(f'sub-module {module!r} did not run in '
                                       'the forward pass')
                args, kwargs = captured[0]

                def run():
                    return sub(*args, **kwargs)

            return time_function(
                run, self.latency_warmup if warmup is None else warmup,
                self.latency_runs if runs is None else runs, inputs.device)

    # ------------------------------------------------------------ internal
    def _scale(self, value: float, key: str) -> Union[int, float]:
        unit = self.units.get(key)
        if not unit:
            return value
        return value / self._SCALE[unit]

    @staticmethod
    def _check_module_name(model: nn.Module, name: str) -> nn.Module:
        modules = dict(model.named_modules())
        if name not in modules:
            top = [n for n in modules if n and '.' not in n]
            raise KeyError(f'the model has no sub-module {name!r}; its '
                           f'top-level modules are {top}')
        return modules[name]

    @staticmethod
    def _dummy_input(model: nn.Module,
                     shape: Tuple[int, ...]) -> torch.Tensor:
        param = next(model.parameters(), None)
        if param is None:
            param = next(model.buffers(), None)
        device = param.device if param is not None else torch.device('cpu')
        dtype = param.dtype if param is not None and \
            param.dtype.is_floating_point else torch.float32
        return torch.randn(shape, device=device, dtype=dtype)

    def _structure(self, model: nn.Module) -> Tuple[Dict, _Structure]:
        entry = self._cache.get(model)
        if entry is None or entry['structure'].is_stale():
            entry = {'structure': _Structure(model), 'plans': {}}
            self._cache[model] = entry
        return entry, entry['structure']

    def _plan_key(self, structure: _Structure, shape: Tuple[int, ...],
                  weight_bound: Optional[bool]) -> Tuple:
        key: List[Any] = [shape]
        for m in structure.key_mutables:
            key.append(_hashable(m.current_choice))
        if weight_bound is False:
            key.append('channels')
            for m in structure.dynamic_mutables:
                key.append(_hashable(m.current_choice))
        return tuple(key)

    def _get_plan(self, model: nn.Module,
                  shape: Tuple[int, ...]) -> Tuple[_Structure, _Plan]:
        entry, structure = self._structure(model)
        weight_bound = entry.get(('weight_bound', shape))
        key = self._plan_key(structure, shape, weight_bound)
        plan = entry['plans'].get(key)
        if plan is None:
            plan = self._add_plan(model, entry, shape)
            if plan.fast and entry[('weight_bound', shape)]:
                self._add_plans_per_choice(model, entry, shape)
        return structure, plan

    def _add_plan(self, model: nn.Module, entry: Dict,
                  shape: Tuple[int, ...]) -> _Plan:
        """Build the plan of the current choices and cache it. Depths are
        traced at their largest choice, unless a child they drop changes
        the shape of its input: then they are part of the key from now
        on, as other free mutables."""
        structure: _Structure = entry['structure']
        with _traced_depths(structure) as droppable:
            plan = self._build_plan(model, structure, shape, droppable)
        if not plan.depths_ok:
            structure.key_on_depths()
            entry['plans'].clear()
            plan = self._build_plan(model, structure, shape)
        entry.setdefault(('weight_bound', shape), plan.weight_bound)
        key = self._plan_key(structure, shape,
                             entry[('weight_bound', shape)])
        entry['plans'][key] = plan
        if plan.fast and entry[('weight_bound', shape)]:
            self._prefill(structure, plan)
        return plan

    def _add_plans_per_choice(self, model: nn.Module, entry: Dict,
                              shape: Tuple[int, ...]) -> None:
        """Build at once the plans of every choice of the key mutables
        (e.g. a searched input resolution) when they have at most
        ``_EAGER_PLANS`` combinations, so that later candidates never run
        a forward pass; choices are restored after."""
        structure: _Structure = entry['structure']
        mutables = [m for m in structure.key_mutables
                    if not getattr(m, 'is_fixed', False)]
        combos = 1
        for m in mutables:
            combos *= len(getattr(m, 'choices', None) or [])
        if not mutables or not 1 < combos <= self._EAGER_PLANS:
            return
        saved = [m.current_choice for m in mutables]
        try:
            for choices in itertools.product(*(m.choices for m in mutables)):
                for m, choice in zip(mutables, choices):
                    m.current_choice = choice
                key = self._plan_key(structure, shape,
                                     entry[('weight_bound', shape)])
                if key not in entry['plans']:
                    self._add_plan(model, entry, shape)
        finally:
            for m, choice in zip(mutables, saved):
                m.current_choice = choice

    def _build_plan(self, model: nn.Module, structure: _Structure,
                    shape: Tuple[int, ...],
                    droppable: FrozenSet[str] = frozenset()) -> _Plan:
        """One forward pass: static costs, unit inputs/outputs, checks.

        ``droppable`` names the children of traced depths (see
        :func:`_traced_depths`) that a smaller depth drops."""
        plan = _Plan()
        if structure.nested:
            plan.fast = False
            plan.reason = 'a candidate holds mutables or dynamic ops'
            return plan
        plan.states = {name: _UnitState() for name in structure.units}
        counter = _PlanCounter()
        units_by_id = {id(u.module): u for u in structure.units.values()}
        pending: Dict[int, List[Any]] = defaultdict(list)
        children = structure.trailing_children()
        child_calls: Dict[str, List[Any]] = defaultdict(list)

        def on_enter(name, module, args, kwargs):
            child = children.get(id(module))
            if child is not None:
                child_calls[child].append(
                    [spec_key(tensor_spec(args)), bool(kwargs), None])
            unit = units_by_id.get(id(module))
            if unit is None or counter.unit is not None:
                return
            counter.unit = unit.name
            pending[id(module)].append(
                (tensor_spec(args), tensor_spec(kwargs)))

        def on_exit(name, module, output):
            child = children.get(id(module))
            if child is not None and child_calls[child]:
                child_calls[child][-1][2] = spec_key(tensor_spec((output, )))
            unit = units_by_id.get(id(module))
            if unit is None or counter.unit != unit.name:
                return
            spec_in = pending[id(module)].pop()
            state = plan.states[unit.name]
            if unit.kind == 'module':
                state.calls.append(
                    (spec_in, tensor_spec(output), spec_key(spec_in)))
            else:
                state.calls.append(tuple(output.shape))
                state.inputs.append(spec_in)
            counter.unit = None

        inputs = self._dummy_input(model, shape)
        skip = {id(u.module) for u in structure.units.values()}
        with _EvalMode(model), torch.no_grad(), counter, track_modules(
                model, counter, skip=skip, on_enter=on_enter,
                on_exit=on_exit):
            self.forward_fn(model, inputs)
        plan.total = counter.total
        plan.by_module = dict(counter.by_module)
        plan.weight_bound = counter.weight_bound
        plan.traced_dropped = structure.dropped()
        self._record_droppable(plan, droppable - plan.traced_dropped,
                               child_calls)
        # check each unit against its separate estimate
        for unit in structure.units.values():
            seen = counter.units.get(unit.name, CountBucket())
            state = plan.states[unit.name]
            if unit.kind == 'dynamic':
                expected = sum(
                    unit.analytic[0](unit.module, out) for out in state.calls)
                # the dynamic op's own bookkeeping (masks to indices) is not
                # part of the subnet: take the uncounted ops of the plain op
                # it stands for (their number does not follow channels)
                static_op, state.uncounted = self._static_op_cost(
                    unit, state)
                if static_op != seen.macs:
                    expected = None
            else:
                alone = CountBucket()
                chosen = chosen_candidates(unit.module)
                try:
                    for choice in chosen:
                        for call in state.calls:
                            alone.add(
                                self._candidate_cost(unit, choice, call)[0])
                except _ShapeChanged as err:
                    plan.fast = False
                    plan.reason = str(err)
                    break
                expected = alone.macs
                extra = Counter(seen.uncounted)
                extra.subtract(alone.uncounted)
                if any(v < 0 for v in extra.values()):
                    expected = None  # the candidates ran differently
                state.overhead = {
                    len(chosen): Counter({k: v
                                          for k, v in extra.items() if v})
                }
            if expected != seen.macs:
                plan.fast = False
                plan.reason = (f'{unit.name!r}: counted alone it costs '
                               f'{expected} MACs, in the model {seen.macs}')
                break
        return plan

    @staticmethod
    def _record_droppable(plan: _Plan, droppable: FrozenSet[str],
                          child_calls: Dict[str, List[Any]]) -> None:
        """Static costs under each child a smaller depth drops; the plan
        cannot drop a child that ran other than once on one input whose
        shape it keeps (``plan.depths_ok`` turns False)."""
        for name in droppable:
            calls = child_calls.get(name, [])
            if len(calls) != 1 or calls[0][1] or \
                    calls[0][0] != calls[0][2]:
                plan.depths_ok = False
                return
        under: Dict[str, CountBucket] = {
            name: CountBucket() for name in droppable}
        for name, bucket in plan.by_module.items():
            for anc in _ancestors(name):
                if anc in under:
                    under[anc].add(bucket)
        plan.dropped_static = under

    @staticmethod
    def _static_op_cost(unit: _Unit,
                        state: _UnitState) -> Tuple[int, Counter]:
        """MACs and uncounted ops of the plain op a dynamic op stands for
        (current choice), on the inputs recorded in the forward pass."""
        macs, uncounted = 0, Counter()
        convert = getattr(unit.module, 'to_static_op', None)
        if not callable(convert):
            return -1, uncounted
        static_op = convert()
        static_op.eval()
        for args_spec, kwargs_spec in state.inputs:
            bucket, _ = count_call(static_op, *build_from_spec(args_spec),
                                   **build_from_spec(kwargs_spec))
            macs += bucket.macs
            uncounted.update(bucket.uncounted)
        return macs, uncounted

    def _candidate_cost(self, unit: _Unit, choice: str, call: Any
                        ) -> Tuple[CountBucket, Dict[str, CountBucket]]:
        key = (choice, call[2])
        cached = unit.cache.get(key)
        if cached is None:
            cached = self._measure_candidate(unit, choice, call)
        return cached

    def _measure_candidate(self, unit: _Unit, choice: str, call: Any
                           ) -> Tuple[CountBucket, Dict[str, CountBucket]]:
        (args_spec, kwargs_spec), out_spec = call[0], call[1]
        candidate = unit.module.candidates[choice]
        counter = OpCounter()
        prefix = _join(unit.name, f'candidates.{choice}')
        args = build_from_spec(args_spec)
        kwargs = build_from_spec(kwargs_spec)
        with _EvalMode(candidate), torch.no_grad(), counter, track_modules(
                candidate, counter, prefix=prefix):
            out = candidate(*args, **kwargs)
        if spec_key(tensor_spec(out)) != spec_key(out_spec):
            raise _ShapeChanged(
                f'candidate {choice!r} of {unit.name!r} gives '
                f'{tensor_spec(out)!r}, but the forward pass saw '
                f'{out_spec!r}')
        result = (counter.total, dict(counter.by_module))
        unit.cache[(choice, call[2])] = result
        return result

    @staticmethod
    def _dynamic_costs(unit: _Unit, state: _UnitState) -> Tuple[int, int]:
        """MACs (of the calls in ``state``) and parameters of a dynamic unit
        for its current choices, computed once per choice of its source
        mutables."""
        key = unit.choice_key()
        macs = state.macs.get(key)
        if macs is None:
            macs = sum(unit.analytic[0](unit.module, out)
                       for out in state.calls)
            state.macs[key] = macs
        params = unit.params_cache.get(key)
        if params is None:
            params = unit.analytic[1](unit.module)
            unit.params_cache[key] = params
        return macs, params

    def _prefill(self, structure: _Structure, plan: _Plan) -> None:
        """Compute the costs of each dynamic unit for every choice of its
        source mutables (units with at most ``_PREFILL_CHOICES`` of them),
        so that estimating a new candidate is a look-up; choices are
        restored after. Choices a unit rejects are left to later."""
        for unit in structure.units.values():
            movable = [m for m in unit.sources
                       if not getattr(m, 'is_fixed', False)]
            combos = 1
            for m in movable:
                combos *= len(getattr(m, 'choices', None) or [])
            if not movable or not 0 < combos <= self._PREFILL_CHOICES:
                continue
            state = plan.states[unit.name]
            saved = [m.current_choice for m in movable]
            try:
                for choices in itertools.product(*(m.choices
                                                   for m in movable)):
                    for m, choice in zip(movable, choices):
                        m.current_choice = choice
                    try:
                        self._dynamic_costs(unit, state)
                    except (RuntimeError, ValueError):
                        continue  # e.g. widths a depthwise conv forbids
            finally:
                for m, choice in zip(movable, saved):
                    m.current_choice = choice

    def _unit_params(self, unit: _Unit) -> int:
        if unit.kind == 'dynamic':
            key = unit.choice_key()
            params = unit.params_cache.get(key)
            if params is None:
                params = unit.analytic[1](unit.module)
                unit.params_cache[key] = params
            return params
        total = 0
        for choice in chosen_candidates(unit.module):
            if choice not in unit.params_cache:
                unit.params_cache[choice] = _unique_params(
                    unit.module.candidates[choice])
            total += unit.params_cache[choice]
        return total

    def _costs(self, model: nn.Module, shape: Tuple[int, ...],
               want_breakdown: bool
               ) -> Tuple[CountBucket, int, Dict[str, Tuple[CountBucket,
                                                             int]]]:
        """Total bucket, params and (optionally) the per-module breakdown."""
        structure, plan = self._get_plan(model, shape)
        if plan.fast:
            try:
                return self._fast_costs(structure, plan, want_breakdown)
            except _Untraced:
                pass  # this subnet only: count it in a forward pass
            except _ShapeChanged as err:
                plan.fast = False
                plan.reason = str(err)
        return self._slow_costs(model, structure, shape, want_breakdown)

    @staticmethod
    def _static_total(plan: _Plan, dropped: FrozenSet[str]) -> CountBucket:
        """The static costs of the plan, less those under the children
        that the current depths drop and its trace ran."""
        if not plan.traced_dropped <= dropped:
            raise _Untraced('the trace dropped a module the subnet keeps')
        total = plan.total.copy()
        for name in dropped - plan.traced_dropped:
            under = plan.dropped_static.get(name)
            if under is None:
                raise _Untraced(f'{name!r} is dropped but was not traced '
                                'as droppable')
            total.add(under, -1)
        total.uncounted = +total.uncounted  # drop emptied entries
        return total

    def _fast_costs(self, structure: _Structure, plan: _Plan,
                    want_breakdown: bool):
        dropped = structure.dropped()
        total = self._static_total(plan, dropped)
        params = structure.active_static_params(dropped)
        unit_costs = []
        for unit in structure.active_units(dropped):
            state = plan.states[unit.name]
            if unit.kind == 'dynamic':
                bucket = CountBucket()
                bucket.macs, p = self._dynamic_costs(unit, state)
                bucket.uncounted = state.uncounted
                inner: List[Dict[str, CountBucket]] = []
            else:
                p = self._unit_params(unit)
                bucket = CountBucket()
                inner = []
                chosen = chosen_candidates(unit.module)
                for choice in chosen:
                    for call in state.calls:
                        cost, sub = self._candidate_cost(unit, choice, call)
                        bucket.add(cost)
                        inner.append(sub)
                overhead = state.overhead.get(len(chosen))
                if overhead is None and len(chosen) > 1:
                    raise _ShapeChanged(
                        f'{unit.name!r} now runs {len(chosen)} candidates; '
                        'the cost of combining them was not measured')
                if overhead:
                    bucket.uncounted.update(overhead)
            params += p
            total.add(bucket)
            if want_breakdown:
                unit_costs.append((unit, bucket, p, inner))
        breakdown = {}
        if want_breakdown:
            static_by_module = {
                name: bucket
                for name, bucket in plan.by_module.items()
                if dropped.isdisjoint(_ancestors(name))
            }
            breakdown = self._breakdown(structure, static_by_module,
                                        unit_costs, dropped)
        return total, params, breakdown

    def _breakdown(self, structure: _Structure,
                   static_by_module: Dict[str, CountBucket],
                   unit_costs: Iterable,
                   dropped: FrozenSet[str]) -> Dict[str, Tuple[CountBucket,
                                                               int]]:
        """Per-module costs (each module with everything under it) of the
        modules of the current subnet."""
        exclusive: Dict[str, CountBucket] = defaultdict(CountBucket)
        for name, bucket in static_by_module.items():
            exclusive[name].add(bucket)
        params: Dict[str, int] = defaultdict(int)
        params.update(structure.active_static_params_by_module(dropped))
        for unit, bucket, p, inner in unit_costs:
            for anc in _ancestors(unit.name):
                params[anc] += p
            rest = bucket.copy()
            for sub in inner:
                for name, b in sub.items():
                    exclusive[name].add(b)
                    rest.macs -= b.macs
                    rest.uncounted.subtract(b.uncounted)
            rest.uncounted = +rest.uncounted  # drop emptied entries
            exclusive[unit.name].add(rest)
            if unit.kind == 'module':
                for choice in chosen_candidates(unit.module):
                    prefix = _join(unit.name, f'candidates.{choice}')
                    own = _params_by_module(unit.module.candidates[choice],
                                            prefix)
                    for name, n in own.items():
                        params[name] += n
                    params[_join(unit.name, 'candidates')] += own.get(
                        prefix, 0)
        buckets = _aggregate(exclusive)
        return {
            name: (buckets.get(name, CountBucket()), params.get(name, 0))
            for name in set(buckets) | set(params)
        }

    def _slow_costs(self, model: nn.Module, structure: _Structure,
                    shape: Tuple[int, ...], want_breakdown: bool):
        """Count everything in one forward pass (always correct)."""
        counter = OpCounter()
        inputs = self._dummy_input(model, shape)
        with _EvalMode(model), torch.no_grad(), counter, track_modules(
                model, counter):
            self.forward_fn(model, inputs)
        dropped = structure.dropped()
        params = structure.active_static_params(dropped)
        unit_params = {}
        for unit in structure.active_units(dropped):
            unit_params[unit.name] = self._unit_params(unit)
            params += unit_params[unit.name]
        breakdown = {}
        if want_breakdown:
            bparams: Dict[str, int] = defaultdict(int)
            bparams.update(
                structure.active_static_params_by_module(dropped))
            for name, p in unit_params.items():
                for anc in _ancestors(name):
                    bparams[anc] += p
            buckets = _aggregate(counter.by_module)
            breakdown = {
                n: (buckets.get(n, CountBucket()), bparams.get(n, 0))
                for n in set(buckets) | set(bparams)
            }
        return counter.total, params, breakdown

    def explain(self, model: nn.Module,
                input_shape: Optional[Sequence[int]] = None) -> str:
        """How the model is estimated: fast (cached per choice) or by a
        forward pass each time, and why.

        Args:
            model (nn.Module): The model.
            input_shape (tuple[int], optional): Overrides the estimator's.

        Returns:
            str: A one-line explanation.
        """
        shape = self._check_shape(input_shape) if input_shape is not None \
            else self.input_shape
        structure, plan = self._get_plan(model, shape)
        kinds = Counter(u.kind for u in structure.units.values())
        if plan.fast:
            return (f'cached: {kinds["module"]} module mutable(s) and '
                    f'{kinds["dynamic"]} dynamic op(s) estimated separately')
        return f'forward pass each time: {plan.reason}'


class _ShapeChanged(RuntimeError):
    """A candidate's output differs from what the forward pass saw."""


class _Untraced(RuntimeError):
    """The current depths drop a module the plan cannot take out."""


class _PlanCounter(OpCounter):
    """An :class:`OpCounter` that also notes whether every counted op of
    the static part multiplies by a weight (then its size cannot follow
    channel choices)."""

    def __init__(self) -> None:
        super().__init__()
        self.weight_bound = True

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        # before the call: it may mark its outputs weight-only
        if self.unit is None and self.weight_bound and \
                func.overloadpacket in OP_COUNTERS:
            weights = [
                self.is_weight_only(a) for a in args
                if isinstance(a, torch.Tensor)
            ]
            # a product of weights alone is not counted; one of
            # activations alone (attention) follows the channel choices
            if not all(weights) and not any(weights):
                self.weight_bound = False
        return super().__torch_dispatch__(func, types, args, kwargs)


def time_function(fn: Callable[[], Any], warmup: int, runs: int,
                  device: Optional[torch.device] = None) -> float:
    """Median wall-clock time of ``fn()`` in ms.

    Args:
        fn (callable): What to time.
        warmup (int): Untimed calls first.
        runs (int): Timed calls.
        device (torch.device, optional): CUDA devices are synchronised
            around each call.

    Returns:
        float: Milliseconds (median).
    """
    cuda = device is not None and torch.device(device).type == 'cuda'
    for _ in range(max(0, warmup)):
        fn()
    times = []
    for _ in range(max(1, runs)):
        if cuda:
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        fn()
        if cuda:
            torch.cuda.synchronize(device)
        times.append((time.perf_counter() - start) * 1e3)
    times.sort()
    mid = len(times) // 2
    if len(times) % 2:
        return times[mid]
    return (times[mid - 1] + times[mid]) / 2
