"""FLOPs in the mmcv convention (MMRazor 1.x, ``get_model_complexity_info``).

The estimator counts multiply-accumulates (MACs) of convolutions, linear
layers and matrix products. The mmcv convention, which MMRazor 1.x reported
as ``flops``, counts per layer type:

============================  =============================================
layer                         mmcv FLOPs of one call
============================  =============================================
convolution (incl. transp.)   MACs + (with a bias) one add per output value
linear                        MACs (``prod(input.shape) * out_features``)
batch/group/instance/layer    ``numel(input)``, twice that when affine
norm
ReLU, ReLU6, PReLU, ELU,      ``numel(output)``
LeakyReLU
max/avg pooling (adaptive     ``numel(input)``
too)
upsample                      ``numel(output)``
anything else                 nothing, not even matrix products run outside
                              these layers (attention's ``q @ k^T`` and
                              ``attn @ v``): mmcv hooks layers only
============================  =============================================

So ``mmcv FLOPs = MACs + extra`` where *extra* holds the element-wise terms
minus the MACs of products that ran outside convolution and linear layers.
:func:`collect_extras` gets the extra terms from forward hooks on the modules
that really run in one forward pass (and a dispatcher-level counter for the
products outside those layers): for a supernet only the chosen candidates
run, so the extras follow the current subnet.

A rule applies to a module whose type is, or derives from, the rule's types
(mmcv matches exact types only): the dynamic ops of a supernet and the mmcv
wrappers of these layers are counted like the layer they stand for. When
rule modules are nested, only the outermost running one is counted.
"""
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.conv import _ConvNd
from torch.nn.modules.instancenorm import _InstanceNorm
from torch.nn.modules.pooling import (_AdaptiveAvgPoolNd, _AdaptiveMaxPoolNd,
                                      _AvgPoolNd, _MaxPoolNd)

from .counter import OpCounter, track_modules

#: ``(module, input tensor, output tensor) -> extra FLOPs of one call``.
ExtraFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], int]


@dataclass(frozen=True)
class Rule:
    """How mmcv counts one family of layers.

    Attributes:
        name (str): Family name (for documentation and error messages).
        types (tuple[type]): Module types of the family (subclasses too).
        extra (callable): ``(module, input, output) -> int``: what the
            mmcv convention counts on top of the MACs of one call.
        has_macs (bool): Whether the MACs of the family's calls are part of
            its mmcv FLOPs (convolutions, linear layers); a disabled counter
            then removes them too.
    """
    name: str
    types: Tuple[type, ...]
    extra: ExtraFn
    has_macs: bool = False


def _bias_adds(module: nn.Module, inp: torch.Tensor,
               out: torch.Tensor) -> int:
    """One add per output value when the layer has a bias."""
    return out.numel() if getattr(module, 'bias', None) is not None else 0


def _nothing(module: nn.Module, inp: torch.Tensor, out: torch.Tensor) -> int:
    """No term beyond the MACs."""
    return 0


def _norm(module: nn.Module, inp: torch.Tensor, out: torch.Tensor) -> int:
    """One op per input value, two with an affine transform."""
    affine = bool(
        getattr(module, 'affine', False)
        or getattr(module, 'elementwise_affine', False))
    return inp.numel() * (2 if affine else 1)


def _output_size(module: nn.Module, inp: torch.Tensor,
                 out: torch.Tensor) -> int:
    """One op per output value."""
    return out.numel()


def _input_size(module: nn.Module, inp: torch.Tensor,
                out: torch.Tensor) -> int:
    """One op per input value."""
    return inp.numel()


#: The per-layer-type rules of the mmcv convention, first match wins.
RULES: List[Rule] = [
    Rule('convolution', (_ConvNd, ), _bias_adds, has_macs=True),
    Rule('linear', (nn.Linear, ), _nothing, has_macs=True),
    Rule('normalization',
         (_BatchNorm, _InstanceNorm, nn.GroupNorm, nn.LayerNorm), _norm),
    Rule('activation',
         (nn.ReLU, nn.ReLU6, nn.PReLU, nn.ELU, nn.LeakyReLU), _output_size),
    Rule('pooling', (_MaxPoolNd, _AvgPoolNd, _AdaptiveMaxPoolNd,
                     _AdaptiveAvgPoolNd), _input_size),
    Rule('upsample', (nn.Upsample, ), _output_size),
]


def rule_of(module: nn.Module) -> Optional[Rule]:
    """The rule counting ``module``, None when mmcv does not count it.

    Args:
        module (nn.Module): Any module.

    Returns:
        Rule, optional: The first rule whose types ``module`` is an
        instance of.
    """
    for rule in RULES:
        if isinstance(module, rule.types):
            return rule
    return None


def counter_names(module: nn.Module) -> List[str]:
    """The MMRazor 1.x counter names that may disable ``module``.

    1.x named a counter after the class it counts (``'Conv2dCounter'``,
    ``'BatchNorm2dCounter'``); here the class and each of its module base
    classes give one name, so that ``'BatchNorm2dCounter'`` also disables
    the dynamic batch norms deriving from ``nn.BatchNorm2d``.

    Args:
        module (nn.Module): Any module.

    Returns:
        list[str]: ``'<Class>Counter'`` for the classes of its MRO.
    """
    return [
        f'{cls.__name__}Counter' for cls in type(module).__mro__
        if issubclass(cls, nn.Module) and cls is not nn.Module
    ]


@dataclass
class Extras:
    """What mmcv counts beyond the MACs, found in one forward pass.

    Attributes:
        by_module (dict): Module name -> extra FLOPs of its own calls
            (negative for the MACs of products run directly in a module
            that mmcv does not count, e.g. an attention's matmuls).
        disabled (list): Names of the running modules whose counter is
            disabled and whose MACs must be removed from the total (only
            families with ``has_macs``).
    """
    by_module: Dict[str, int] = field(default_factory=dict)
    disabled: List[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        """All extra FLOPs."""
        return sum(self.by_module.values())


def _first_tensor(args: Tuple[Any, ...],
                  kwargs: Dict[str, Any]) -> Optional[torch.Tensor]:
    for value in list(args) + list(kwargs.values()):
        if isinstance(value, torch.Tensor):
            return value
    return None


def _output_tensor(output: Any) -> Optional[torch.Tensor]:
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)):
        for item in output:
            if isinstance(item, torch.Tensor):
                return item
    return None


class _Collector:
    """Forward hooks adding the extra FLOPs of each rule module that runs.

    Args:
        disabled_counters (iterable[str]): 1.x counter names to leave out.
    """

    def __init__(self, disabled_counters: Iterable[str]) -> None:
        self.disabled = frozenset(disabled_counters)
        self.extras = Extras()
        self.depth = 0  # rule modules running now
        self.handles: List[Any] = []

    def install(self, model: nn.Module) -> None:
        """Hook every module of ``model`` that a rule counts."""
        for name, module in model.named_modules():
            rule = rule_of(module)
            if rule is None:
                continue
            off = not self.disabled.isdisjoint(counter_names(module))
            self.handles.append(
                module.register_forward_pre_hook(
                    self._pre_hook, with_kwargs=True))
            self.handles.append(
                module.register_forward_hook(
                    self._make_hook(name, rule, off), with_kwargs=True))

    def remove(self) -> None:
        """Remove the hooks."""
        for handle in self.handles:
            handle.remove()
        self.handles = []

    def _pre_hook(self, module: nn.Module, args: Tuple,
                  kwargs: Dict) -> None:
        self.depth += 1

    def _make_hook(self, name: str, rule: Rule, off: bool) -> Callable:

        def hook(module: nn.Module, args: Tuple, kwargs: Dict,
                 output: Any) -> None:
            self.depth -= 1
            if self.depth > 0:
                return  # inside another counted module
            if off:
                if rule.has_macs and name not in self.extras.disabled:
                    self.extras.disabled.append(name)
                return
            inp = _first_tensor(args, kwargs)
            out = _output_tensor(output)
            if inp is None or out is None:
                return
            extra = int(rule.extra(module, inp, out))
            self.extras.by_module[name] = \
                self.extras.by_module.get(name, 0) + extra

        return hook


class _MacsOutsideLayers(OpCounter):
    """Counts the MACs of products that run outside every layer a rule
    counts (``collector.depth == 0``), by innermost running module."""

    def __init__(self, collector: _Collector) -> None:
        super().__init__()
        self.collector = collector

    def _record(self, macs: int, uncounted: Optional[str]) -> None:
        if uncounted is None and macs and self.collector.depth == 0:
            super()._record(macs, None)


def collect_extras(model: nn.Module,
                   run: Callable[[], Any],
                   disabled_counters: Iterable[str] = ()) -> Extras:
    """Run ``run()`` once with hooks on ``model`` and collect the extra
    FLOPs of the mmcv convention.

    Args:
        model (nn.Module): The model (its modules get temporary hooks).
        run (callable): One forward pass of ``model``.
        disabled_counters (iterable[str]): 1.x counter names (e.g.
            ``'ReLUCounter'``) whose layers are left out.

    Returns:
        Extras: Extra FLOPs by module name and the disabled MAC layers.
    """
    collector = _Collector(disabled_counters)
    collector.install(model)
    outside = _MacsOutsideLayers(collector)
    try:
        with track_modules(model, outside), outside:
            run()
    finally:
        collector.remove()
    extras = collector.extras
    for name, bucket in outside.by_module.items():
        if bucket.macs:
            extras.by_module[name] = extras.by_module.get(name, 0) - \
                bucket.macs
    return extras
