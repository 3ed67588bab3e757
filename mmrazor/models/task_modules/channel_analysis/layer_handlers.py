"""One handler per kind of layer, in one table.

A *layer* is a module that owns channel weights: a conv, a linear, a norm,
or a user's own module. Everything the toolbox knows about one kind of layer
lives in its :class:`LayerHandler`:

* **tracing**: which dims of its input and output hold channels, whether it
  creates new channels (a conv) or passes them through (a norm), what it
  ties (conv groups), and a *shape-only* forward the channel tracer may run
  instead of the real one;
* **masking**: how the masked model computes it when its statistics mix
  channels (LayerNorm);
* **slicing**: which dim of each of its tensors holds input or output
  channels, and which size attributes to update when it is made smaller;
* **counting**: its multiply-accumulates and parameters for given kept
  input/output channels;
* **deploying**: which size attributes an artefact records, and how to tell
  that they went stale.

The channel tracer, the pruners' masks and slicing, the estimator's channel
costs and the deploy artefact all ask :func:`handler_of`; none of them names
a layer class. Supporting a new kind of layer is one handler, registered
for its classes with :func:`register_layer_handler` from any file::

    from mmrazor.models.task_modules import (MixingHandler,
                                             register_layer_handler)

    @register_layer_handler(ScaledLinear)
    class ScaledLinearHandler(MixingHandler):
        in_dim = out_dim = -1          # channels on the last dim

        def channels(self, module):
            out_features, in_features = module.weight.shape
            return in_features, out_features, 1

        def tensor_dims(self, module):
            # (input channel dim, output channel dim) of every tensor
            return {'weight': (1, 0), 'scale': (None, 0)}

A module class (or instance) may instead declare that it behaves like a
built-in kind with the attribute ``_channel_leaf_kind`` (``'conv'``,
``'linear'``, ``'norm'``, ``'layernorm'``, ...).
"""
import math
from typing import (TYPE_CHECKING, Callable, Dict, Iterator, List,
                    NamedTuple, Optional, Sequence, Tuple, Type, Union)

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

if TYPE_CHECKING:  # pragma: no cover
    from .tracer import ChannelTracer, LayerRecord

#: Instance attribute of a plain ``torch.nn`` layer that a deployment put in
#: place of a layer of another class (a weight-standardised conv whose
#: inputs were pruned becomes an ``nn.Conv2d``): its class name, so that
#: :func:`~mmrazor.models.task_modules.deploy.structure_of` records it and
#: ``load_deployed`` builds it in a fresh model.
REPLACED_BY_KEY = '_deployed_as_torch_nn'

#: ``tensor attribute -> (input channel dim, output channel dim)``; None
#: where the tensor does not follow that side.
TensorDims = Dict[str, Tuple[Optional[int], Optional[int]]]


class LayerCall(NamedTuple):
    """One call of a layer, as the tracer saw it.

    Attributes:
        name (str): Module path.
        module (nn.Module): The layer.
        x (torch.Tensor): Its input.
        x_ids (np.ndarray): Channel ids of ``x`` (see :mod:`.tracer`).
        out (torch.Tensor): Its output.
        reason (str): How reports name the layer (its class).
    """
    name: str
    module: nn.Module
    x: torch.Tensor
    x_ids: np.ndarray
    out: torch.Tensor
    reason: str


# ------------------------------------------------------- slicing helpers
def keep_index(keep: np.ndarray, device: torch.device) -> torch.Tensor:
    """Indices of the kept channels, on ``device``.

    Args:
        keep (np.ndarray): Keep-flags.
        device (torch.device): Where the indices go.

    Returns:
        torch.Tensor: ``int64`` indices.
    """
    return torch.from_numpy(np.flatnonzero(keep)).to(device)


def slice_tensor(module: nn.Module, attr: str, keep: np.ndarray,
                 dim: int) -> None:
    """Replace a parameter or buffer of ``module`` by its kept slice
    along ``dim`` (a parameter stays a parameter; missing or None
    attributes are left alone).

    Args:
        module (nn.Module): The owner.
        attr (str): The attribute name, e.g. ``'weight'``.
        keep (np.ndarray): Keep-flags along ``dim``.
        dim (int): The sliced dimension.
    """
    old = getattr(module, attr, None)
    if not isinstance(old, torch.Tensor) or keep.all():
        return
    # index_select returns a new tensor: nothing shares the old storage
    new = old.detach().index_select(dim, keep_index(keep, old.device))
    if isinstance(old, nn.Parameter):
        setattr(module, attr, nn.Parameter(new,
                                           requires_grad=old.requires_grad))
    else:
        module._buffers[attr] = new


def kept_numel(shape: Sequence[int], dims: Tuple[Optional[int],
                                                 Optional[int]], cin: int,
               cout: int) -> int:
    """Elements of a tensor of ``shape`` once sliced to ``cin`` input and
    ``cout`` output channels along ``dims``."""
    n = math.prod(shape)
    din, dout = dims
    if din is not None and shape[din]:
        n = n // shape[din] * cin
    if dout is not None and shape[dout]:
        n = n // shape[dout] * cout
    return n


def own_parameters(module: nn.Module
                   ) -> Iterator[Tuple[str, nn.Parameter]]:
    """``module.named_parameters()``, quicker for a module without
    children (most layers)."""
    if module._modules:
        return module.named_parameters()
    return ((k, p) for k, p in module._parameters.items() if p is not None)


def _whole_rows(keep: np.ndarray, rows: int, where: str) -> np.ndarray:
    """Kept rows of ``keep`` cut in ``rows`` equal parts, each of which must
    be kept or pruned as a whole."""
    table = keep.reshape(rows, -1)
    whole = table.all(1) | ~table.any(1)
    if not whole.all():
        raise RuntimeError(f'{where}: every group must be kept or pruned '
                           'as a whole')
    return table.all(1)


def _stale(found: List[str], attr: str, value, expected) -> None:
    if value != expected:
        found.append(f'{attr}={value} but weight says {expected}')


# ------------------------------------------------------------ the base
class LayerHandler:
    """What the toolbox knows about one kind of layer.

    Subclass one of the built-in handlers (:class:`MixingHandler` for
    layers whose outputs mix input channels, :class:`NormHandler` for
    per-channel layers) or this class, and register it with
    :func:`register_layer_handler`.

    Attributes:
        kind (str): The name of the kind (reports, ``_channel_leaf_kind``).
        size_attrs (tuple[str]): Attributes holding the layer's size,
            recorded in a deploy artefact (``structure.json``) and restored
            when it is loaded.
    """

    kind: str = ''
    size_attrs: Tuple[str, ...] = ()

    def applies(self, module: nn.Module) -> bool:
        """Whether ``module`` (of a registered class) is a layer at all
        (e.g. a PReLU only with one parameter per channel).

        Args:
            module (nn.Module): The module.

        Returns:
            bool: Defaults to True.
        """
        return True

    # ------------------------------------------------------- tracing
    def shape_only(self, module: nn.Module
                   ) -> Optional[Callable[..., torch.Tensor]]:
        """A function ``(x, *args, **kwargs) -> tensor shaped like
        module(x)`` the tracer may run instead of the layer's forward (the
        analysis needs shapes, not values), or None to run the real forward.

        Args:
            module (nn.Module): The layer.

        Returns:
            Callable | None: Defaults to None.
        """
        return None

    def trace(self, tracer: 'ChannelTracer', call: LayerCall,
              rec: Optional['LayerRecord']) -> None:
        """Record one call of the layer: read the channel ids of its input,
        tie or create channels, add the layer (first call) and give the
        output its channel ids.

        Args:
            tracer (ChannelTracer): Offers ``channel_ids``, ``new_channels``,
                ``union_rows``, ``add_layer``, ``repeat_call``, ``set_ids``
                and ``block``.
            call (LayerCall): The call.
            rec (LayerRecord, optional): The layer's record when it ran
                before (shared weights), else None.
        """
        raise NotImplementedError(f'{type(self).__name__}.trace')

    def positions(self, rec: 'LayerRecord', x: torch.Tensor,
                  out: torch.Tensor) -> int:
        """Positions per sample one call computes (``H*W`` of a conv's
        output, tokens of a linear), for :meth:`macs`.

        Args:
            rec (LayerRecord): The layer.
            x (torch.Tensor): Its input.
            out (torch.Tensor): Its output.

        Returns:
            int: Output elements per sample and output channel.
        """
        shape = out.shape
        if len(shape) >= 2 and shape[0] > 0:
            return out.numel() // (shape[0] * shape[rec.out_dim])
        return 0

    # ------------------------------------------------------- masking
    def masked_forward(self, module: nn.Module, x: torch.Tensor,
                       keep: np.ndarray, dim: int) -> torch.Tensor:
        """The output of the masked layer when its statistics mix channels
        (a record with ``masked_stats``): computed over the kept channels
        only, zeros elsewhere.

        Args:
            module (nn.Module): The layer.
            x (torch.Tensor): Its (masked) input.
            keep (np.ndarray): Keep-flags of its channels.
            dim (int): The channel dim of ``x``.

        Returns:
            torch.Tensor: Like ``module(x)``.
        """
        raise NotImplementedError(f'{type(self).__name__}.masked_forward')

    # ------------------------------------------------------- slicing
    def tensor_dims(self, module: nn.Module) -> TensorDims:
        """The channel dims of the layer's own tensors.

        Args:
            module (nn.Module): The layer.

        Returns:
            dict: ``attr -> (input channel dim, output channel dim)``, None
            for a side the tensor does not follow. Tensors not named keep
            their size (and count in full).
        """
        return {}

    def needs_slicing(self, module: nn.Module, in_keep: np.ndarray,
                      out_keep: np.ndarray) -> bool:
        """Whether :meth:`slice` must run (by default: a channel is
        pruned).

        Args:
            module (nn.Module): The layer.
            in_keep (np.ndarray): Keep-flags of its input channels.
            out_keep (np.ndarray): Keep-flags of its output channels.

        Returns:
            bool: True when the layer changes.
        """
        return not (in_keep.all() and out_keep.all())

    def resize(self, module: nn.Module, in_keep: np.ndarray,
               out_keep: np.ndarray, where: str) -> None:
        """Update the size attributes before the tensors are sliced (raise
        here when the kept channels do not fit the layer).

        Args:
            module (nn.Module): The layer.
            in_keep (np.ndarray): Keep-flags of its input channels.
            out_keep (np.ndarray): Keep-flags of its output channels.
            where (str): How errors name the layer.
        """

    def slice(self, module: nn.Module, in_keep: np.ndarray,
              out_keep: np.ndarray, where: str) -> Optional[nn.Module]:
        """Physically remove the pruned channels, in place: the tensors of
        :meth:`tensor_dims` are sliced after :meth:`resize`.

        Args:
            module (nn.Module): The layer.
            in_keep (np.ndarray): Keep-flags of its input channels.
            out_keep (np.ndarray): Keep-flags of its output channels.
            where (str): How errors name the layer.

        Returns:
            nn.Module | None: A module to put in the layer's place, or None
            to keep it.
        """
        dims = self.tensor_dims(module)
        self.resize(module, in_keep, out_keep, where)
        for attr, (din, dout) in dims.items():
            if din is not None:
                slice_tensor(module, attr, in_keep, din)
            if dout is not None:
                slice_tensor(module, attr, out_keep, dout)
        return None

    # ------------------------------------------------------ counting
    def macs(self, module: nn.Module, cin: int, cout: int,
             positions: int) -> int:
        """Multiply-accumulates per sample with ``cin``/``cout`` kept
        channels (the convention of the estimator: convs and matrix
        products only).

        Args:
            module (nn.Module): The layer.
            cin (int): Kept input channels.
            cout (int): Kept output channels.
            positions (int): :meth:`positions`, summed over calls.

        Returns:
            int: Defaults to 0.
        """
        return 0

    def params(self, module: nn.Module, cin: int, cout: int) -> int:
        """Parameters with ``cin``/``cout`` kept channels, as the deployed
        layer will hold them.

        Args:
            module (nn.Module): The layer.
            cin (int): Kept input channels.
            cout (int): Kept output channels.

        Returns:
            int: The parameters of :meth:`tensor_dims` sliced, the others
            in full.
        """
        dims = self.tensor_dims(module)
        total = 0
        for name, p in own_parameters(module):
            d = dims.get(name)
            total += p.numel() if d is None else kept_numel(
                p.shape, d, cin, cout)
        return total

    # ------------------------------------------------------ deploying
    def stale(self, module: nn.Module) -> List[str]:
        """Size attributes that disagree with the weights.

        Args:
            module (nn.Module): A (deployed) layer.

        Returns:
            list[str]: ``'attr=value but weight says ...'`` per problem.
        """
        return []


# ------------------------------------------------------------ the table
_HANDLERS: Dict[type, LayerHandler] = {}
#: handlers of classes of optional packages, by ``module.QualName`` (so
#: that the package need not be imported)
_HANDLERS_BY_NAME: Dict[str, LayerHandler] = {}
_KINDS: Dict[str, LayerHandler] = {}
_CACHE: Dict[type, Optional[LayerHandler]] = {}

HandlerLike = Union[Type[LayerHandler], LayerHandler]


def register_layer_handler(*layer_types: type, force: bool = False
                           ) -> Callable[[HandlerLike], HandlerLike]:
    """Register a handler for layer classes (subclasses match too, the
    most specific registration wins).

    Use it as a decorator on a handler class, or call it on a handler
    class or instance: ``register_layer_handler(MyLayer)(MyHandler)``.
    The first handler registered under a ``kind`` is the one a
    ``_channel_leaf_kind`` of that name selects.

    Args:
        *layer_types (type): ``nn.Module`` classes.
        force (bool): Replace another handler already registered for one of
            the classes. Defaults to False.

    Returns:
        Callable: Registers its argument and returns it.

    Raises:
        KeyError: A class already has another handler and ``force`` is
            False.
    """
    for cls in layer_types:
        if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
            raise TypeError(f'register_layer_handler: {cls!r} is not an '
                            'nn.Module class')

    def register(handler: HandlerLike) -> HandlerLike:
        obj = handler() if isinstance(handler, type) else handler
        if not isinstance(obj, LayerHandler):
            raise TypeError(f'register_layer_handler: {handler!r} is not a '
                            'LayerHandler')
        for cls in layer_types:
            old = _HANDLERS.get(cls)
            if old is not None and not force and _name(old) != _name(obj):
                raise KeyError(f'{cls.__name__} already has the layer '
                               f'handler {_name(old)}; pass force=True to '
                               'replace it')
            _HANDLERS[cls] = obj
        if obj.kind:
            _KINDS.setdefault(obj.kind, obj)
        _CACHE.clear()
        return handler

    return register


def register_layer_handler_by_name(*qualnames: str
                                   ) -> Callable[[HandlerLike], HandlerLike]:
    """Register a handler for classes named ``'package.module.Class'``
    (classes of optional packages, which are then never imported; a
    handler registered for the class itself wins).

    Args:
        *qualnames (str): ``f'{cls.__module__}.{cls.__qualname__}'``.

    Returns:
        Callable: Registers its argument and returns it.
    """

    def register(handler: HandlerLike) -> HandlerLike:
        obj = handler() if isinstance(handler, type) else handler
        for qualname in qualnames:
            _HANDLERS_BY_NAME[qualname] = obj
        if obj.kind:
            _KINDS.setdefault(obj.kind, obj)
        _CACHE.clear()
        return handler

    return register


def _name(handler: LayerHandler) -> str:
    cls = type(handler)
    return f'{cls.__module__}.{cls.__qualname__}'


def _kind_handler(kind: str, where: type) -> LayerHandler:
    handler = _KINDS.get(kind)
    if handler is None:
        raise KeyError(f'{where.__name__}._channel_leaf_kind = {kind!r} is '
                       f'not a layer kind; known kinds: {sorted(_KINDS)}')
    return handler


def _handler_of_type(cls: type) -> Optional[LayerHandler]:
    for klass in cls.__mro__:
        handler = _HANDLERS.get(klass)
        if handler is not None:
            return handler
        handler = _HANDLERS_BY_NAME.get(
            f'{klass.__module__}.{klass.__qualname__}')
        if handler is not None:
            return handler
        declared = klass.__dict__.get('_channel_leaf_kind')
        if declared:
            return _kind_handler(declared, cls)
    return None


_UNKNOWN = object()


def handler_of(module: nn.Module) -> Optional[LayerHandler]:
    """The handler of ``module``, or None when it is not a layer.

    Args:
        module (nn.Module): Any module. An instance attribute
            ``_channel_leaf_kind`` overrides its class.

    Returns:
        LayerHandler | None: The registered handler (looked up once per
        class).
    """
    declared = module.__dict__.get('_channel_leaf_kind')
    if declared:
        handler = _kind_handler(declared, type(module))
    else:
        cls = type(module)
        handler = _CACHE.get(cls, _UNKNOWN)
        if handler is _UNKNOWN:
            handler = _CACHE[cls] = _handler_of_type(cls)
    if handler is not None and handler.applies(module):
        return handler
    return None


# ------------------------------------------- layers that mix channels
class MixingHandler(LayerHandler):
    """Layers whose every output channel mixes input channels (convs,
    linears): their outputs are new channels (one channel source), or
    follow their inputs group by group when grouped.

    Subclasses give :meth:`channels` and :meth:`tensor_dims`; the channel
    dims of the input and output are the class attributes ``in_dim`` and
    ``out_dim`` (negative: counted from the end). The MACs are the kept
    elements of ``weight`` times :meth:`positions`.
    """

    kind = 'mixing'
    in_dim = 1
    out_dim = 1

    def channels(self, module: nn.Module) -> Tuple[int, int, int]:
        """``(in channels, out channels, groups)`` of the layer.

        Args:
            module (nn.Module): The layer.

        Returns:
            tuple[int, int, int]: Groups are 1 unless input and output
            channels are cut in groups that only see each other.
        """
        raise NotImplementedError(f'{type(self).__name__}.channels')

    def trace(self, tracer: 'ChannelTracer', call: LayerCall,
              rec: Optional['LayerRecord']) -> None:
        cin, cout, groups = self.channels(call.module)
        reason = call.reason
        in1d = tracer.channel_ids(call.x_ids, self.in_dim, cin, reason)
        if rec is not None:
            tracer.repeat_call(rec, in1d, reason)
            in1d = rec.in_ids
        if groups == 1:
            out1d = tracer.new_channels(call.name, cout) if rec is None \
                else rec.out_ids
        else:
            # Whole groups are kept or pruned; the outputs of a group
            # follow its inputs.
            reps = tracer.union_rows(in1d, groups, reason)
            out1d = np.repeat(reps, cout // groups)
            if rec is not None:
                tracer.uf.union_arrays(rec.out_ids, out1d)
                out1d = rec.out_ids
        if rec is None:
            tracer.add_layer(call.name, call.module, self, in1d, out1d,
                             self.in_dim, self.out_dim)
        out = call.out
        shape = [1] * out.dim()
        shape[self.out_dim] = cout
        tracer.set_ids(out, out1d.reshape(shape), check=False)

    def macs(self, module: nn.Module, cin: int, cout: int,
             positions: int) -> int:
        weight = getattr(module, 'weight', None)
        dims = self.tensor_dims(module).get('weight')
        if not isinstance(weight, torch.Tensor) or dims is None:
            raise NotImplementedError(
                f'{type(self).__name__}: the layer has no `weight` in '
                'tensor_dims(); override macs()')
        return kept_numel(weight.shape, dims, cin, cout) * positions


class LinearHandler(MixingHandler):
    """``nn.Linear``: channels on the last dim."""

    kind = 'linear'
    in_dim = out_dim = -1
    size_attrs = ('in_features', 'out_features')

    def channels(self, module: nn.Module) -> Tuple[int, int, int]:
        return module.in_features, module.out_features, 1

    def shape_only(self, module: nn.Module
                   ) -> Optional[Callable[..., torch.Tensor]]:
        if type(module).forward is not nn.Linear.forward:
            return None
        width = (module.out_features, )
        return lambda x: x.new_zeros(x.shape[:-1] + width)

    def tensor_dims(self, module: nn.Module) -> TensorDims:
        return {'weight': (1, 0), 'bias': (None, 0)}

    def resize(self, module: nn.Module, in_keep: np.ndarray,
               out_keep: np.ndarray, where: str) -> None:
        module.in_features = int(in_keep.sum())
        module.out_features = int(out_keep.sum())

    def stale(self, module: nn.Module) -> List[str]:
        found: List[str] = []
        shape = tuple(module.weight.shape)
        _stale(found, 'in_features', module.in_features, shape[1])
        _stale(found, 'out_features', module.out_features, shape[0])
        return found


class ConvHandler(MixingHandler):
    """``nn.Conv1d/2d/3d``: channels on dim 1; grouped and depthwise convs
    keep or prune whole conv groups."""

    kind = 'conv'
    size_attrs = ('in_channels', 'out_channels', 'groups')
    #: classes whose forward is the plain convolution (shape-only tracing)
    plain_types: Tuple[type, ...] = (nn.Conv1d, nn.Conv2d, nn.Conv3d)

    def channels(self, module: nn.Module) -> Tuple[int, int, int]:
        return module.in_channels, module.out_channels, module.groups

    def tensor_dims(self, module: nn.Module) -> TensorDims:
        # grouped: the weight's dim 1 holds the channels of one group,
        # whole groups go with the output channels
        return {'weight': (1 if module.groups == 1 else None, 0),
                'bias': (None, 0)}

    def shape_only(self, module: nn.Module
                   ) -> Optional[Callable[..., torch.Tensor]]:
        if type(module) not in self.plain_types:
            return None
        out_shape = self._output_shape(module)
        return lambda x, *args, **kwargs: x.new_zeros(
            out_shape(x, *args, **kwargs))

    def _output_shape(self, module: nn.Module
                      ) -> Callable[..., Tuple[int, ...]]:
        """``x -> shape of module(x)`` (the attributes are read once)."""
        # (not ``weight.dim()``: a Parameter's methods take torch's slow
        # Python dispatch path)
        nd = len(module.kernel_size)
        cin, cout = module.in_channels, module.out_channels
        same = module.padding == 'same'
        # per spatial dim: out = (size + pad2 - span) // stride + 1
        dims = []
        for i in range(nd):
            p = 0 if module.padding in ('valid', 'same') else \
                module.padding[i]
            span = module.dilation[i] * (module.kernel_size[i] - 1) + 1
            dims.append((2 * p - span, module.stride[i]))
        kind = type(module).__name__

        def shape(x: torch.Tensor) -> Tuple[int, ...]:
            size = x.shape
            if len(size) != nd + 2 or size[1] != cin:
                raise ValueError(f'{kind} expected {cin} channels, got '
                                 f'input of shape {tuple(size)}')
            if same:
                return (size[0], cout) + tuple(size[2:])
            return (size[0], cout) + tuple(
                (n + extra) // stride + 1
                for n, (extra, stride) in zip(size[2:], dims))

        return shape

    def resize(self, module: nn.Module, in_keep: np.ndarray,
               out_keep: np.ndarray, where: str) -> None:
        groups = module.groups
        if groups > 1:
            kept_in = _whole_rows(in_keep, groups, where)
            kept_out = _whole_rows(out_keep, groups, where)
            if not np.array_equal(kept_in, kept_out):
                raise RuntimeError(f'{where}: input and output groups '
                                   'disagree')
            module.groups = int(kept_in.sum())
        module.in_channels = int(in_keep.sum())
        module.out_channels = int(out_keep.sum())

    def stale(self, module: nn.Module) -> List[str]:
        found: List[str] = []
        shape = tuple(module.weight.shape)
        _stale(found, 'out_channels', module.out_channels, shape[0])
        _stale(found, 'in_channels', module.in_channels,
               shape[1] * module.groups)
        return found


class ConvTransposeHandler(ConvHandler):
    """``nn.ConvTranspose1d/2d/3d``: the weight holds input channels on
    dim 0 and the output channels of one group on dim 1; every input
    position is multiplied with the whole weight."""

    kind = 'conv_transpose'
    plain_types = (nn.ConvTranspose1d, nn.ConvTranspose2d,
                   nn.ConvTranspose3d)

    def tensor_dims(self, module: nn.Module) -> TensorDims:
        return {'weight': (0, 1 if module.groups == 1 else None),
                'bias': (None, 0)}

    def positions(self, rec: 'LayerRecord', x: torch.Tensor,
                  out: torch.Tensor) -> int:
        shape = x.shape
        if len(shape) >= 2 and shape[0] > 0:
            return x.numel() // (shape[0] * shape[rec.in_dim])
        return 0

    def _output_shape(self, module: nn.Module
                      ) -> Callable[..., Tuple[int, ...]]:
        nd = len(module.kernel_size)
        cin, cout = module.in_channels, module.out_channels
        # per spatial dim: out = (size - 1) * stride + extra
        dims = [(module.stride[i],
                 module.dilation[i] * (module.kernel_size[i] - 1) -
                 2 * module.padding[i] + module.output_padding[i] + 1)
                for i in range(nd)]
        kind = type(module).__name__

        def shape(x: torch.Tensor,
                  output_size: Optional[Sequence[int]] = None
                  ) -> Tuple[int, ...]:
            size = x.shape
            if len(size) != nd + 2 or size[1] != cin:
                raise ValueError(f'{kind} expected {cin} channels, got '
                                 f'input of shape {tuple(size)}')
            if output_size is not None:
                return (size[0], cout) + tuple(output_size)[-nd:]
            return (size[0], cout) + tuple(
                (n - 1) * stride + extra
                for n, (stride, extra) in zip(size[2:], dims))

        return shape

    def stale(self, module: nn.Module) -> List[str]:
        found: List[str] = []
        shape = tuple(module.weight.shape)
        _stale(found, 'in_channels', module.in_channels, shape[0])
        _stale(found, 'out_channels', module.out_channels,
               shape[1] * module.groups)
        return found


class StdConvHandler(ConvHandler):
    """Convolutions that standardise their weight over each output
    channel's inputs in their forward (timm ``StdConv2d`` and
    ``ScaledStdConv2d`` of BiT and NF-nets, the latter with a learnable
    per-output-channel ``gain``).

    Output channels are pruned like a conv's (``gain`` is sliced with
    them). The weight statistics run over all input channels, so when
    input channels are pruned the deployed layer becomes a plain
    ``nn.Conv2d`` holding the standardised weight of the kept channels
    (what the masked model computes with); the variants with dynamic
    "same" padding cannot be folded so, and their input channels are
    blocked, naming the layer.
    """

    kind = 'std_conv'
    plain_types = ()
    #: classes whose standardised weight :meth:`effective_weight` knows
    foldable = ('StdConv2d', 'ScaledStdConv2d')

    def trace(self, tracer: 'ChannelTracer', call: LayerCall,
              rec: Optional['LayerRecord']) -> None:
        super().trace(tracer, call, rec)
        module = call.module
        if module.in_channels // module.groups > 1 and \
                type(module).__name__ not in self.foldable:
            tracer.block(call.x_ids, call.reason + ' (standardises its '
                         'weight over the input channels and pads '
                         'dynamically, so it cannot be folded into a plain '
                         'conv; only its output channels can be pruned)')

    def tensor_dims(self, module: nn.Module) -> TensorDims:
        dims = super().tensor_dims(module)
        gain = getattr(module, 'gain', None)
        if isinstance(gain, torch.Tensor) and gain.dim() >= 1:
            dims['gain'] = (None, 0)
        return dims

    @staticmethod
    def effective_weight(module: nn.Module) -> torch.Tensor:
        """The standardised weight the layer convolves with.

        Args:
            module (nn.Module): A ``StdConv2d`` / ``ScaledStdConv2d``.

        Returns:
            torch.Tensor: Shaped like ``module.weight``.
        """
        weight = module.weight.detach()
        gain = getattr(module, 'gain', None)
        scale = (gain.detach() * getattr(module, 'scale', 1.0)).reshape(-1) \
            if gain is not None else None
        return F.batch_norm(
            weight.reshape(1, weight.shape[0], -1),
            None,
            None,
            weight=scale,
            training=True,
            momentum=0.,
            eps=module.eps).reshape_as(weight)

    def slice(self, module: nn.Module, in_keep: np.ndarray,
              out_keep: np.ndarray, where: str) -> Optional[nn.Module]:
        if in_keep.all() or module.in_channels // module.groups <= 1:
            return super().slice(module, in_keep, out_keep, where)
        weight = self.effective_weight(module)
        plain = nn.Conv2d(
            module.in_channels,
            module.out_channels,
            module.kernel_size,
            stride=module.stride,
            padding=module.padding,
            dilation=module.dilation,
            groups=module.groups,
            bias=module.bias is not None,
            padding_mode=module.padding_mode).to(weight)
        with torch.no_grad():
            plain.weight.copy_(weight)
            if module.bias is not None:
                plain.bias.copy_(module.bias)
        ConvHandler().slice(plain, in_keep, out_keep, where)
        plain.train(module.training)
        plain.__dict__[REPLACED_BY_KEY] = 'Conv2d'
        return plain


# ------------------------------------------------ per-channel layers
_PLAIN_BN_FORWARD = nn.modules.batchnorm._BatchNorm.forward


class NormHandler(LayerHandler):
    """Per-channel layers (BatchNorm, InstanceNorm, and the kind
    ``'norm'`` a custom module may declare): channels on dim 1 pass
    through; every tensor the layer owns holds one entry per channel along
    its dim 0."""

    kind = 'norm'
    size_attrs = ('num_features', )

    def shape_only(self, module: nn.Module
                   ) -> Optional[Callable[..., torch.Tensor]]:
        if type(module).forward is not _PLAIN_BN_FORWARD:
            return None
        # A new tensor object over the input's memory: no allocation. The
        # values are meaningless to the analysis; in-place changes of shape
        # or strides on it do not reach the input.
        return torch.Tensor.detach

    def tie(self, tracer: 'ChannelTracer', module: nn.Module,
            in1d: np.ndarray, reason: str) -> bool:
        """Tie channels the layer mixes (norm groups).

        Args:
            tracer (ChannelTracer): The tracer.
            module (nn.Module): The layer.
            in1d (np.ndarray): Ids of its channels.
            reason (str): How reports name the layer.

        Returns:
            bool: Whether its statistics mix all channels (the masked
            model must then use :meth:`masked_forward`).
        """
        return False

    def trace(self, tracer: 'ChannelTracer', call: LayerCall,
              rec: Optional['LayerRecord']) -> None:
        x, x_ids = call.x, call.x_ids
        if x.dim() < 2:
            tracer.block(x_ids, call.reason + ' (input without channel dim)')
            return
        in1d = tracer.channel_ids(x_ids, 1, x.shape[1], call.reason)
        masked_stats = self.tie(tracer, call.module, in1d, call.reason)
        if rec is None:
            tracer.add_layer(call.name, call.module, self, in1d, in1d, 1, 1,
                             masked_stats=masked_stats)
        else:
            tracer.repeat_call(rec, in1d, call.reason)
        if call.out.shape == x.shape:  # ids of ``x`` fit ``out``
            tracer.set_ids(call.out, x_ids, check=False)

    def tensor_dims(self, module: nn.Module) -> TensorDims:
        return {
            name: (None, 0)
            for store in (module._parameters, module._buffers)
            for name, t in store.items() if t is not None and t.dim() >= 1
        }

    def resize(self, module: nn.Module, in_keep: np.ndarray,
               out_keep: np.ndarray, where: str) -> None:
        if hasattr(module, 'num_features'):
            module.num_features = int(out_keep.sum())

    def stale(self, module: nn.Module) -> List[str]:
        found: List[str] = []
        w = getattr(module, 'weight', None)
        if isinstance(w, torch.Tensor) and hasattr(module, 'num_features'):
            _stale(found, 'num_features', module.num_features, w.shape[0])
        return found


class GroupNormHandler(NormHandler):
    """``nn.GroupNorm``: whole norm groups are kept or pruned; with one
    group its statistics mix every channel."""

    kind = 'groupnorm'
    size_attrs = ('num_channels', 'num_groups')

    def shape_only(self, module: nn.Module
                   ) -> Optional[Callable[..., torch.Tensor]]:
        if type(module).forward is not nn.GroupNorm.forward:
            return None
        return torch.Tensor.detach

    def tie(self, tracer: 'ChannelTracer', module: nn.Module,
            in1d: np.ndarray, reason: str) -> bool:
        if 1 < module.num_groups < len(in1d):
            tracer.union_rows(in1d, module.num_groups, reason)
        return module.num_groups == 1

    def masked_forward(self, module: nn.Module, x: torch.Tensor,
                       keep: np.ndarray, dim: int) -> torch.Tensor:
        idx = keep_index(keep, x.device)
        weight = None if module.weight is None else module.weight[idx]
        bias = None if module.bias is None else module.bias[idx]
        y = F.group_norm(x.index_select(1, idx), 1, weight, bias,
                         module.eps)
        return torch.zeros_like(x).index_copy_(1, idx, y)

    def resize(self, module: nn.Module, in_keep: np.ndarray,
               out_keep: np.ndarray, where: str) -> None:
        count = int(out_keep.sum())
        if 1 < module.num_groups < module.num_channels:
            module.num_groups = int(
                _whole_rows(out_keep, module.num_groups, where).sum())
        elif module.num_groups == module.num_channels:
            module.num_groups = count
        module.num_channels = count

    def stale(self, module: nn.Module) -> List[str]:
        w = module.weight
        if not isinstance(w, torch.Tensor):
            return []
        if module.num_channels != w.shape[0] or \
                module.num_channels % module.num_groups:
            return [f'num_channels={module.num_channels}, num_groups='
                    f'{module.num_groups} but weight has {w.shape[0]}']
        return []


class PReLUHandler(NormHandler):
    """``nn.PReLU`` with one parameter per channel (a layer only then)."""

    kind = 'prelu'
    size_attrs = ('num_parameters', )

    def applies(self, module: nn.Module) -> bool:
        return module.num_parameters > 1

    def shape_only(self, module: nn.Module
                   ) -> Optional[Callable[..., torch.Tensor]]:
        return None

    def resize(self, module: nn.Module, in_keep: np.ndarray,
               out_keep: np.ndarray, where: str) -> None:
        module.num_parameters = int(out_keep.sum())

    def stale(self, module: nn.Module) -> List[str]:
        found: List[str] = []
        _stale(found, 'num_parameters', module.num_parameters,
               module.weight.numel())
        return found


class LayerNormHandler(LayerHandler):
    """``nn.LayerNorm`` over one dim (the last, or dim 1): its statistics
    mix every channel, so the masked model normalises over the kept
    channels only."""

    kind = 'layernorm'
    size_attrs = ('normalized_shape', )

    def shape_only(self, module: nn.Module
                   ) -> Optional[Callable[..., torch.Tensor]]:
        if type(module).forward is not nn.LayerNorm.forward:
            return None
        return torch.Tensor.detach

    def trace(self, tracer: 'ChannelTracer', call: LayerCall,
              rec: Optional['LayerRecord']) -> None:
        x, x_ids, reason = call.x, call.x_ids, call.reason
        shape = tuple(call.module.normalized_shape)
        if len(shape) != 1:
            tracer.block(x_ids, reason + f' (normalises over {shape})')
            return
        c = shape[0]
        if x.shape[-1] == c:
            dim = x.dim() - 1
        elif x.dim() >= 2 and x.shape[1] == c:
            dim = 1
        else:
            tracer.block(x_ids, reason + ' (cannot find its channel dim)')
            return
        in1d = tracer.channel_ids(x_ids, dim, c, reason)
        if rec is None:
            tracer.add_layer(call.name, call.module, self, in1d, in1d, dim,
                             dim, masked_stats=True)
        else:
            tracer.repeat_call(rec, in1d, reason)
        if tuple(call.out.shape) == tuple(x.shape):
            tracer.set_ids(call.out, x_ids)

    def masked_forward(self, module: nn.Module, x: torch.Tensor,
                       keep: np.ndarray, dim: int) -> torch.Tensor:
        idx = keep_index(keep, x.device)
        weight = None if module.weight is None else module.weight[idx]
        bias = None if module.bias is None else module.bias[idx]
        y = F.layer_norm(
            x.movedim(dim, -1).index_select(-1, idx), (len(idx), ), weight,
            bias, module.eps)
        out = torch.zeros_like(x)
        moved = out.movedim(dim, -1)
        moved.index_copy_(moved.dim() - 1, idx, y)
        return out

    def tensor_dims(self, module: nn.Module) -> TensorDims:
        return {'weight': (None, 0), 'bias': (None, 0)}

    def resize(self, module: nn.Module, in_keep: np.ndarray,
               out_keep: np.ndarray, where: str) -> None:
        module.normalized_shape = (int(out_keep.sum()), )

    def stale(self, module: nn.Module) -> List[str]:
        w = module.weight
        if isinstance(w, torch.Tensor) and \
                tuple(module.normalized_shape) != tuple(w.shape):
            return [f'normalized_shape={tuple(module.normalized_shape)} '
                    f'but weight is {tuple(w.shape)}']
        return []


# ----------------------------------------------------- built-in table
register_layer_handler(nn.Conv1d, nn.Conv2d, nn.Conv3d)(ConvHandler)
register_layer_handler(nn.ConvTranspose1d, nn.ConvTranspose2d,
                       nn.ConvTranspose3d)(ConvTransposeHandler)
register_layer_handler(nn.Linear)(LinearHandler)
register_layer_handler(nn.modules.batchnorm._NormBase)(NormHandler)
register_layer_handler(nn.GroupNorm)(GroupNormHandler)
register_layer_handler(nn.PReLU)(PReLUHandler)
register_layer_handler(nn.LayerNorm)(LayerNormHandler)
register_layer_handler_by_name(
    *(f'timm.layers.std_conv.{name}'
      for name in ('StdConv2d', 'StdConv2dSame', 'ScaledStdConv2d',
                   'ScaledStdConv2dSame')))(StdConvHandler)
