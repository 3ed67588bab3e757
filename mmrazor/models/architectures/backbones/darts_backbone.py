"""The DARTS cell search space."""
import copy
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule, build_norm_layer
from mmengine.model import BaseModule

from mmrazor.models.mutables.placeholder import mark_placeholder
from mmrazor.registry import MODELS

_OP_NORM = dict(type='BN', affine=False)

#: The eight DARTS candidate operations, as a mixed op.
DARTS_MIXED_OP_CFG: Dict = dict(
    type='DiffMutableOP',
    candidates=dict(
        zero=dict(type='DartsZero'),
        skip_connect=dict(type='DartsSkipConnect', norm_cfg=_OP_NORM),
        max_pool_3x3=dict(
            type='DartsPoolBN', pool_type='max', norm_cfg=_OP_NORM),
        avg_pool_3x3=dict(
            type='DartsPoolBN', pool_type='avg', norm_cfg=_OP_NORM),
        sep_conv_3x3=dict(
            type='DartsSepConv', kernel_size=3, norm_cfg=_OP_NORM),
        sep_conv_5x5=dict(
            type='DartsSepConv', kernel_size=5, norm_cfg=_OP_NORM),
        dil_conv_3x3=dict(
            type='DartsDilConv', kernel_size=3, norm_cfg=_OP_NORM),
        dil_conv_5x5=dict(
            type='DartsDilConv', kernel_size=5, norm_cfg=_OP_NORM)))

#: Each node keeps two of its input edges.
DARTS_ROUTE_CFG: Dict = dict(
    type='DiffChoiceRoute', num_chosen=2, with_arch_param=False)


def _relu_conv_bn(in_channels: int, out_channels: int,
                  norm_cfg: Dict, act_cfg: Dict) -> ConvModule:
    return ConvModule(
        in_channels,
        out_channels,
        1,
        bias=False,
        norm_cfg=norm_cfg,
        act_cfg=act_cfg,
        inplace=False,
        order=('act', 'conv', 'norm'))


class DartsCell(nn.Module):
    """A DARTS cell: two preprocessed inputs and ``num_nodes`` nodes, each
    summing mixed ops over its chosen input edges; output is the concat of
    the nodes.

    Op decisions are aliased ``{cell_type}_n{node}_p{input}`` and edge
    decisions ``{cell_type}_n{node}``, so all cells of one type share them
    (the published DARTS subnet files use these names). Edges are the
    places of the older placeholder group ``'node'`` and nodes of
    ``'node_edge'``: a mutator's ``placeholder_mapping`` with those groups
    replaces them (same decision keys).

    Args:
        cell_type (str): ``'normal'`` or ``'reduce'``.
        num_nodes (int): Intermediate nodes.
        prev_prev_channels (int): Channels of the input two cells back.
        prev_channels (int): Channels of the previous cell's output.
        channels (int): Channels of every node.
        prev_reduction (bool): Whether the previous cell reduced.
        mutable_cfg (dict): Config of the mutable on every edge.
        route_cfg (dict): Config of the input-edge choice of every node.
        norm_cfg (dict): Norm config of the preprocessing.
        act_cfg (dict): Activation config of the preprocessing.
    """

    def __init__(self, cell_type: str, num_nodes: int,
                 prev_prev_channels: int, prev_channels: int, channels: int,
                 prev_reduction: bool, mutable_cfg: Dict, route_cfg: Dict,
                 norm_cfg: Dict, act_cfg: Dict) -> None:
        super().__init__()
        if cell_type not in ('normal', 'reduce'):
            raise ValueError(f"cell_type must be 'normal' or 'reduce', got "
                             f'{cell_type!r}')
        reduction = cell_type == 'reduce'
        if prev_reduction:
            self.preprocess0 = MODELS.build(
                dict(
                    type='DartsSkipConnect',
                    in_channels=prev_prev_channels,
                    out_channels=channels,
                    stride=2,
                    norm_cfg=norm_cfg,
                    act_cfg=act_cfg))
        else:
            self.preprocess0 = _relu_conv_bn(prev_prev_channels, channels,
                                             norm_cfg, act_cfg)
        self.preprocess1 = _relu_conv_bn(prev_channels, channels, norm_cfg,
                                         act_cfg)
        self.nodes = nn.ModuleList()
        for node in range(2, num_nodes + 2):
            edges = OrderedDict()
            for src in range(node):
                name = f'{cell_type}_n{node}_p{src}'
                cfg = copy.deepcopy(mutable_cfg)
                kwargs = dict(cfg.pop('module_kwargs', None) or {})
                kwargs.update(
                    in_channels=channels,
                    out_channels=channels,
                    stride=2 if reduction and src < 2 else 1)
                cfg.update(alias=name, module_kwargs=kwargs)
                # The older configs fill these places by a mutator's
                # placeholder_mapping (groups 'node' and 'node_edge').
                edges[name] = mark_placeholder(
                    MODELS.build(cfg), 'node', name, kwargs)
            route = copy.deepcopy(route_cfg)
            route.update(
                edges=nn.ModuleDict(edges), alias=f'{cell_type}_n{node}')
            self.nodes.append(
                mark_placeholder(
                    MODELS.build(route),
                    'node_edge',
                    f'{cell_type}_n{node}',
                    takes_candidates=True))
        self.out_channels = num_nodes * channels

    def forward(self, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        states: List[torch.Tensor] = [
            self.preprocess0(s0), self.preprocess1(s1)
        ]
        for node in self.nodes:
            states.append(node(states))
        return torch.cat(states[2:], dim=1)


class DartsAuxiliaryHead(nn.Module):
    """The auxiliary tower of DARTS (retraining), on a 8x8 feature map.

    ReLU, 5x5 average pooling with stride 3 (to 2x2), 1x1 conv to
    ``channels``, norm, ReLU, 2x2 conv to ``out_channels`` (to 1x1), norm,
    ReLU. A classifier head turns its output into the auxiliary logits.

    Args:
        in_channels (int): Channels of the cell output it reads.
        channels (int): Channels of the 1x1 conv.
        out_channels (int): Channels of the output.
        norm_cfg (dict): Norm config. Defaults to ``dict(type='BN')``.
    """

    def __init__(self,
                 in_channels: int,
                 channels: int,
                 out_channels: int,
                 norm_cfg: Dict = dict(type='BN')) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.ReLU(),
            nn.AvgPool2d(5, stride=3, padding=0, count_include_pad=False),
            nn.Conv2d(in_channels, channels, 1, bias=False),
            build_norm_layer(norm_cfg, channels)[1],
            nn.ReLU(),
            nn.Conv2d(channels, out_channels, 2, bias=False),
            build_norm_layer(norm_cfg, out_channels)[1],
            nn.ReLU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Auxiliary features, shape ``(N, out_channels, h, w)`` (1x1 on a
        8x8 input)."""
        return self.net(x)


@MODELS.register_module()
class DartsBackbone(BaseModule):
    """The DARTS search space: a stem and ``num_layers`` cells, reduction
    cells (stride 2, double channels) at 1/3 and 2/3 of the depth.

    Every edge of a cell is built from ``mutable_cfg`` with
    ``module_kwargs=dict(in_channels, out_channels, stride)`` and alias
    ``{normal|reduce}_n{node}_p{input}``; every node from ``route_cfg``
    with ``edges`` and alias ``{normal|reduce}_n{node}`` (the keys of the
    published DARTS subnet files).

    With ``auxliary=True`` (the 1.x spelling) a :class:`DartsAuxiliaryHead`
    (``self.auxliary_module``) reads the output of cell ``2 * num_layers //
    3`` (the second reduction cell); in training mode its output comes
    first in the returned tuple, before the ``out_indices`` outputs.

    Args:
        in_channels (int): Image channels. Defaults to 3.
        base_channels (int): Node channels of the first cells. Defaults to
            16.
        mutable_cfg (dict, optional): Config of the mutable on every edge.
            Defaults to the eight DARTS ops in a ``DiffMutableOP``.
        route_cfg (dict, optional): Input-edge choice of every node.
            Defaults to a ``DiffChoiceRoute`` keeping 2 edges.
        num_layers (int): Number of cells. Defaults to 8.
        num_nodes (int): Nodes per cell. Defaults to 4.
        stem_multiplier (int): Stem channels are ``stem_multiplier *
            base_channels``. Defaults to 3.
        out_indices (Sequence[int]): Cells whose outputs are returned.
            Defaults to the last one.
        auxliary (bool): Add the auxiliary head. Defaults to False.
        aux_channels (int, optional): Channels of its 1x1 conv (DARTS:
            128); required with ``auxliary``.
        aux_out_channels (int, optional): Its output channels (DARTS: 768);
            required with ``auxliary``.
        norm_cfg (dict): Norm config of stem, preprocessing and auxiliary
            head. Defaults to ``dict(type='BN')``.
        act_cfg (dict): Activation config. Defaults to ReLU.
        init_cfg (dict | list[dict], optional): Initialisation config.
        mixed_op_cfg (dict, optional): Former name of ``mutable_cfg``;
            give one of the two.
    """

    def __init__(self,
                 in_channels: int = 3,
                 base_channels: int = 16,
                 mutable_cfg: Optional[Dict] = None,
                 route_cfg: Optional[Dict] = None,
                 num_layers: int = 8,
                 num_nodes: int = 4,
                 stem_multiplier: int = 3,
                 out_indices: Optional[Sequence[int]] = None,
                 auxliary: bool = False,
                 aux_channels: Optional[int] = None,
                 aux_out_channels: Optional[int] = None,
                 norm_cfg: Dict = dict(type='BN'),
                 act_cfg: Dict = dict(type='ReLU'),
                 init_cfg: Optional[Union[Dict, List[Dict]]] = None,
                 mixed_op_cfg: Optional[Dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if mutable_cfg is not None and mixed_op_cfg is not None:
            raise ValueError('DartsBackbone got both mutable_cfg and '
                             'mixed_op_cfg (its former name); give one')
        if mutable_cfg is None:
            mutable_cfg = mixed_op_cfg
        mutable_cfg = DARTS_MIXED_OP_CFG if mutable_cfg is None \
            else mutable_cfg
        route_cfg = DARTS_ROUTE_CFG if route_cfg is None else route_cfg
        out_indices = (num_layers - 1, ) if out_indices is None \
            else tuple(out_indices)
        for i in out_indices:
            if not isinstance(i, int) or not 0 <= i < num_layers:
                raise ValueError(f'out_indices entry {i!r} is out of range '
                                 f'for {num_layers} cells')
        if auxliary and (aux_channels is None or aux_out_channels is None):
            raise ValueError('auxliary=True needs aux_channels and '
                             f'aux_out_channels, got {aux_channels!r} and '
                             f'{aux_out_channels!r}')
        self.out_indices = out_indices
        self.num_layers = num_layers
        self.auxliary = auxliary

        stem_channels = stem_multiplier * base_channels
        self.stem = ConvModule(
            in_channels,
            stem_channels,
            3,
            padding=1,
            bias=False,
            norm_cfg=norm_cfg,
            act_cfg=None)
        reductions = {num_layers // 3, 2 * num_layers // 3}
        prev_prev, prev, channels = stem_channels, stem_channels, \
            base_channels
        prev_reduction = False
        self.cells = nn.ModuleList()
        self.auxliary_indice: Optional[int] = None
        for i in range(num_layers):
            reduction = i in reductions
            if reduction:
                channels *= 2
            cell = DartsCell('reduce' if reduction else 'normal', num_nodes,
                             prev_prev, prev, channels, prev_reduction,
                             mutable_cfg, route_cfg, norm_cfg, act_cfg)
            self.cells.append(cell)
            prev_prev, prev = prev, cell.out_channels
            prev_reduction = reduction
            if auxliary and i == 2 * num_layers // 3:
                self.auxliary_indice = i
                self.auxliary_module = DartsAuxiliaryHead(
                    prev, aux_channels, aux_out_channels, norm_cfg)
        self.out_channels = prev

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Stem and cells.

        Args:
            x (Tensor): Images, shape ``(N, in_channels, H, W)``.

        Returns:
            tuple[Tensor]: In training mode with the auxiliary head, its
            output first; then the outputs of the ``out_indices`` cells.
        """
        s0 = s1 = self.stem(x)
        outs = []
        aux = None
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1)
            if i in self.out_indices:
                outs.append(s1)
            if i == self.auxliary_indice and self.training:
                aux = self.auxliary_module(s1)
        if aux is not None:
            outs.insert(0, aux)
        return tuple(outs)
