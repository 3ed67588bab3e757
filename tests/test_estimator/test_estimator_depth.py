"""Supernets with a searched depth: the estimate of the current subnet
(FLOPs and parameters) equals the count of the exported static model, and
does not depend on what was estimated or chosen before."""
import random
from typing import Dict, List, Tuple, Union

import pytest
import torch
from torch import nn

from mmrazor.models.architectures.backbones import SearchableMobileNetV2
from mmrazor.models.architectures.backbones.searchable_proxylessnas import (
    PROXYLESS_BLOCK_CHOICES, ProxylessNAS)
from mmrazor.models.architectures.dynamic_ops import (DynamicConv2d,
                                                      DynamicMixin,
                                                      DynamicSequential)
from mmrazor.models.mutables import OneShotMutableValue
from mmrazor.models.task_modules import ResourceEstimator
from mmrazor.structures import export_fix_subnet

SHAPE = (1, 3, 32, 32)
Arch = Dict[str, Union[int, str]]


def random_arch(rng: random.Random) -> Arch:
    """A random ProxylessNAS architecture (depths 1-4, stage 7 one
    block)."""
    arch: Arch = {}
    for stage in range(2, 8):
        depth = 1 if stage == 7 else rng.randint(1, 4)
        arch[f's{stage}_depth'] = depth
        for j in range(depth):
            arch[f's{stage}_i{j}'] = rng.choice(PROXYLESS_BLOCK_CHOICES)
    return arch


def set_all_blocks(model: ProxylessNAS, choice: str) -> None:
    """Set every block choice, also of blocks beyond a stage's depth (which
    ``set_arch`` leaves as they are)."""
    for key, mutable in model.mutables.items():
        if not key.endswith('_depth'):
            mutable.current_choice = choice


def exported_count(estimator: ResourceEstimator,
                   model: nn.Module) -> Dict[str, object]:
    _, static = export_fix_subnet(model, slice_weight=True)
    return estimator.count_static(static)


@pytest.fixture(scope='module')
def proxyless() -> ProxylessNAS:
    torch.manual_seed(0)
    return ProxylessNAS(num_classes=10, width_mult=0.25)


@pytest.fixture(scope='module')
def proxyless_archs() -> List[Arch]:
    rng = random.Random(0)
    archs = [random_arch(rng) for _ in range(3)]
    shallow = {'s7_depth': 1, 's7_i0': 'k3e3'}
    for stage in range(2, 7):
        shallow.update({f's{stage}_depth': 1, f's{stage}_i0': 'k3e3'})
    return archs + [shallow]


def test_proxylessnas_subnets_equal_exported_static_model(
        proxyless, proxyless_archs):
    estimator = ResourceEstimator(input_shape=SHAPE)
    a, b, c, shallow = proxyless_archs
    deepest: Arch = {'s7_depth': 1, 's7_i0': 'k7e6'}
    for stage in range(2, 7):
        deepest[f's{stage}_depth'] = 4
        deepest.update({f's{stage}_i{j}': 'k7e6' for j in range(4)})
    for arch in (deepest, a, shallow, b, a, c, shallow):
        proxyless.set_arch(arch)
        ours = estimator.estimate(proxyless)
        assert ours == exported_count(estimator, proxyless), arch
    assert estimator.explain(proxyless).startswith('cached')


def test_proxylessnas_estimate_does_not_depend_on_history(
        proxyless, proxyless_archs):
    a, b, c, shallow = proxyless_archs
    # one estimator sees ``a`` first, the other after the other subnets,
    # and blocks beyond the depths of ``a`` hold other choices each time
    first = ResourceEstimator(input_shape=SHAPE)
    later = ResourceEstimator(input_shape=SHAPE)
    results = []
    set_all_blocks(proxyless, 'k3e3')
    proxyless.set_arch(a)
    results.append(first.estimate(proxyless))
    for arch in (b, shallow, c):
        proxyless.set_arch(arch)
        later.estimate(proxyless)
        first.estimate(proxyless)
    for fill in ('k7e6', 'k5e3'):
        set_all_blocks(proxyless, fill)
        proxyless.set_arch(a)
        results.append(first.estimate(proxyless))
        results.append(later.estimate(proxyless))
    assert all(r == results[0] for r in results[1:]), results
    assert results[0] == exported_count(first, proxyless)


def test_proxylessnas_breakdown_leaves_out_dropped_blocks(
        proxyless, proxyless_archs):
    shallow = proxyless_archs[3]
    proxyless.set_arch(shallow)
    estimator = ResourceEstimator(input_shape=SHAPE)
    result = estimator.estimate(proxyless, by_module=True)
    table = result['by_module']
    _, static = export_fix_subnet(proxyless, slice_weight=True)
    for i, stage in enumerate(static.blocks):
        own = sum(p.numel() for p in stage.parameters())
        assert table[f'blocks.{i}']['params'] == own, i
    assert table['']['params'] == result['params']
    # stage 2 (blocks.1) runs its first block only
    assert 'blocks.1.0' in table
    assert not any(name.startswith('blocks.1.1') for name in table)
    blocks = estimator.estimate(proxyless, module='blocks')
    assert blocks['params'] == sum(p.numel()
                                   for p in static.blocks.parameters())
    assert blocks['flops'] == table['blocks']['flops']


def test_searchable_mobilenet_v2_subnets_equal_exported_static_model():
    torch.manual_seed(0)
    model = SearchableMobileNetV2(
        arch_setting=[[1, 8, 1, 1], [6, 16, 2, 2], [6, 24, 2, 2]],
        first_channels=16,
        last_channels=32)
    rng = random.Random(1)
    subnets = []
    for _ in range(3):
        subnets.append({
            key: rng.choice(mutable.choices)
            for key, mutable in model.mutables.items()
        })
    estimator = ResourceEstimator(input_shape=SHAPE)
    seen = {}
    for index in (0, 1, 2, 1, 0):
        for key, choice in subnets[index].items():
            model.mutables[key].current_choice = choice
        ours = estimator.estimate(model)
        assert ours == exported_count(estimator, model), index
        assert seen.setdefault(index, ours) == ours


class DepthAndKernelNet(nn.Module):
    """A searched depth whose mutable is also read by a dynamic op (the
    kernel size of ``head``): the depth still decides which blocks belong
    to the subnet."""

    def __init__(self) -> None:
        super().__init__()
        self.choice = OneShotMutableValue([1, 3], default_value=3)
        self.blocks = DynamicSequential(
            *[nn.Conv2d(4, 4, 3, padding=1, bias=False) for _ in range(3)])
        self.blocks.register_mutable_attr('depth', self.choice)
        self.head = DynamicConv2d(4, 2, 3, padding=1)
        self.head.register_mutable_attr('kernel_size', self.choice)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(x))


def test_depth_mutable_shared_with_a_dynamic_op():
    model = DepthAndKernelNet()
    estimator = ResourceEstimator(input_shape=(1, 4, 8, 8))
    for value in (3, 1, 3, 1):
        model.choice.current_choice = value
        result = estimator.estimate(model)
        block = 64 * 4 * 4 * 9
        head = 64 * 2 * 4 * value * value
        assert result['flops'] == value * block + head
        assert result['params'] == value * 144 + 2 * 4 * value**2 + 2
        assert result == exported_count(estimator, model)


class EveryOther(nn.Module, DynamicMixin):
    """A dynamic container not known to the estimator: with ``keep`` 1 it
    runs every child, with 2 every other one (its export keeps the same
    children, as the same objects)."""

    mutable_attr_names = ('keep', )

    def __init__(self, *children: nn.Module) -> None:
        super().__init__()
        self.layers = nn.ModuleList(children)
        self._init_mutable_attrs()

    def _kept(self) -> List[nn.Module]:
        step = int(self.get_mutable_attr('keep').current_choice)
        return list(self.layers)[::step]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self._kept():
            x = layer(x)
        return x

    def to_static_op(self) -> nn.Sequential:
        return nn.Sequential(*self._kept())


class UnknownContainerNet(nn.Module):

    def __init__(self) -> None:
        super().__init__()
        self.keep = OneShotMutableValue([1, 2])
        self.body = nn.ModuleList([
            EveryOther(*[nn.Conv2d(4, 4, 1) for _ in range(4)])
            for _ in range(2)
        ])
        for part in self.body:
            part.register_mutable_attr('keep', self.keep)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for part in self.body:
            x = part(x)
        return x


def test_unregistered_container_is_read_through_its_export():
    model = UnknownContainerNet()
    estimator = ResourceEstimator(input_shape=(1, 4, 4, 4))
    # the container drops single layers of its ModuleList, not the list
    for keep in (2, 1, 2):
        model.keep.current_choice = keep
        layers = 2 * 4 // keep
        result = estimator.estimate(model)
        assert result['flops'] == layers * 16 * 16
        assert result['params'] == layers * 20
        assert result == exported_count(estimator, model)


def _depth_net(widths: List[int]) -> Tuple[DynamicSequential,
                                           OneShotMutableValue]:
    """1x1 convs from 3 channels through ``widths``, the depth searched."""
    ins = [3] + widths[:-1]
    seq = DynamicSequential(
        *[nn.Conv2d(cin, cout, 1) for cin, cout in zip(ins, widths)])
    depth = OneShotMutableValue(list(range(1, len(widths) + 1)))
    seq.register_mutable_attr('depth', depth)
    return seq, depth


def test_depth_traced_once_at_the_largest():
    """Blocks keeping their input's shape: one trace, at the largest depth,
    serves every depth."""
    seq, depth = _depth_net([4, 4, 4])
    est = ResourceEstimator(input_shape=(1, 3, 4, 4))
    for d in (2, 1, 3, 2):
        depth.current_choice = d
        got = est.estimate(seq)
        ref = est.count_static(seq[:d])
        assert (got['macs'], got['params'], got['uncounted']) == (
            ref['macs'], ref['params'], ref['uncounted']), d
    entry, structure = est._structure(seq)
    assert structure.depth_mutables == [depth]
    assert len(entry['plans']) == 1
    assert depth.current_choice == 2  # restored after the trace


def test_depth_of_shape_changing_blocks_is_keyed():
    """A block the depth drops changes its input's shape: the depth is
    part of the plan key again (one trace per depth), still exact."""
    seq, depth = _depth_net([4, 5, 6])
    est = ResourceEstimator(input_shape=(1, 3, 4, 4))
    for d in (2, 1, 3, 2):
        depth.current_choice = d
        got = est.estimate(seq)
        ref = est.count_static(seq[:d])
        assert (got['macs'], got['params']) == (ref['macs'], ref['params'])
    entry, structure = est._structure(seq)
    assert structure.depth_mutables == []
    assert len(entry['plans']) == 3
