"""The ProxylessNAS space and its published architectures."""
import pytest
import torch
from mmengine.analysis import get_model_complexity_info

from mmrazor.models.architectures.backbones import ProxylessNAS
from mmrazor.models.architectures.backbones.searchable_proxylessnas import \
    SEARCHED_ARCHS
from mmrazor.models.mutators import ValueMutator
from mmrazor.registry import MODELS
from mmrazor.structures import export_fix_subnet, load_fix_subnet

# Parameter counts of the released ProxylessNAS ImageNet models (1000
# classes), as listed for their public PyTorch ports.
PUBLISHED_PARAMS = {
    'proxyless-mobile': 4_080_512,
    'proxyless-gpu': 7_119_848,
    'proxyless-cpu': 4_361_648,
}


def num_params(model):
    return sum(p.numel() for p in model.parameters())


def test_proxyless_mobile_size_and_macs():
    model = ProxylessNAS.load_searched_model('proxyless-mobile').eval()
    assert num_params(model) == PUBLISHED_PARAMS['proxyless-mobile']
    info = get_model_complexity_info(
        model, (3, 224, 224), show_table=False, show_arch=False)
    # Published: "320M" multiply-adds (the paper's rounding); counting
    # every conv and the classifier gives 331M.
    assert 0.31e9 < info['flops'] < 0.34e9
    assert info['params'] == PUBLISHED_PARAMS['proxyless-mobile']
    out = model(torch.randn(1, 3, 64, 64))
    assert out.shape == (1, 1000)


@pytest.mark.parametrize('name', ['proxyless-gpu', 'proxyless-cpu'])
def test_proxyless_gpu_cpu_sizes(name):
    model = ProxylessNAS.load_searched_model(name)
    assert num_params(model) == PUBLISHED_PARAMS[name]
    assert model.stem.conv.out_channels == 40


@pytest.mark.parametrize('name', ['acenas-m1', 'acenas-m2', 'acenas-m3'])
def test_acenas_models(name):
    model = ProxylessNAS.load_searched_model(name, num_classes=10).eval()
    # AceNAS models live in the mobile-sized part of the space (~4.1-4.3M
    # parameters at 1000 classes).
    arch = SEARCHED_ARCHS[name]['arch']
    for stage in range(2, 8):
        depth = arch[f's{stage}_depth']
        blocks = model.blocks[stage - 1]
        assert len(blocks) == depth
        for j, block in enumerate(blocks):
            k, e = block.kernel_size, block.expand_ratio
            assert arch[f's{stage}_i{j}'] == f'k{k}e{e}'
            assert block.depthwise_conv.conv.kernel_size == (k, k)
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 10)
    big = ProxylessNAS.load_searched_model(name)
    assert 3.9e6 < num_params(big) < 4.5e6


def test_mobile_block_layout():
    model = ProxylessNAS.load_searched_model('proxyless-mobile')
    first = model.blocks[0]
    assert first.expand_conv is None and first.out_channels == 16
    stage3 = model.blocks[2]  # 40 channels, stride 2 then residual
    assert [b.out_channels for b in stage3] == [40] * 4
    assert stage3[0].stride == 2 and not stage3[0].with_res_shortcut
    assert all(b.with_res_shortcut for b in stage3[1:])
    assert stage3[0].mid_channels == 32 * 3
    assert model.blocks[4][0].stride == 1  # the 96-channel stage
    assert model.feature_mix_layer.conv.out_channels == 1280


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="'proxyless-tpu'"):
        ProxylessNAS.load_searched_model('proxyless-tpu')
    arch = dict(SEARCHED_ARCHS['proxyless-mobile']['arch'])
    arch['s2_i0'] = 'k9e3'
    with pytest.raises(ValueError, match="s2_i0.*'k9e3'"):
        ProxylessNAS(arch=arch)
    arch = dict(SEARCHED_ARCHS['proxyless-mobile']['arch'], s2_depth=5)
    with pytest.raises(ValueError, match="'s2_depth'.*5"):
        ProxylessNAS(arch=arch)
    arch = dict(SEARCHED_ARCHS['proxyless-gpu']['arch'], s2_i3='k3e3')
    with pytest.raises(KeyError, match='s2_i3'):
        ProxylessNAS(arch=arch)
    with pytest.raises(ValueError, match='9 widths'):
        ProxylessNAS(base_widths=(32, 16))


def test_supernet_subnet_exports_to_the_named_model():
    torch.manual_seed(0)
    supernet = MODELS.build(
        dict(type='ProxylessNAS', num_classes=10, width_mult=0.5)).eval()
    mutator = ValueMutator()
    mutator.prepare_from_supernet(supernet)
    # Per block a kernel/expand choice, per stage 2-6 a depth.
    assert len(mutator.search_groups) == 5 * 4 + 1 + 5
    arch = SEARCHED_ARCHS['proxyless-mobile']['arch']
    supernet.set_arch(arch)
    assert supernet.get_arch() == arch
    x = torch.randn(2, 3, 32, 32)
    y = supernet(x)
    subnet, static = export_fix_subnet(supernet, slice_weight=True)
    assert subnet['s3_i0'] == {'chosen': 'k7e3'}
    assert torch.allclose(static(x), y, atol=1e-5)
    for stage in range(2, 8):
        blocks = static.blocks[stage - 1]
        assert len(blocks) == arch.get(f's{stage}_depth', 1)
        for j, block in enumerate(blocks):
            assert arch[f's{stage}_i{j}'] == \
                f'k{block.kernel_size}e{block.expand_ratio}'
            assert block.mid_channels == block.in_channels * \
                block.expand_ratio
    # The exported weights fit the plain model built from the name.
    plain = ProxylessNAS(num_classes=10, width_mult=0.5, arch=arch).eval()
    plain.load_state_dict(static.state_dict(), strict=True)
    assert torch.allclose(plain(x), y, atol=1e-5)
    # Fixing from the subnet file shape works too.
    load_fix_subnet(supernet, subnet)
    assert torch.allclose(supernet(x), y, atol=1e-5)


def test_backbone_mode_without_head():
    model = ProxylessNAS(
        num_classes=None,
        arch=SEARCHED_ARCHS['proxyless-gpu']['arch'],
        width_mult=0.25).eval()
    outs = model(torch.randn(1, 3, 32, 32))
    assert isinstance(outs, tuple) and outs[0].shape[1] == model.widths[8]


def test_as_mmpretrain_backbone_from_config():
    model = MODELS.build(
        dict(
            type='mmpretrain.ImageClassifier',
            backbone=dict(
                _scope_='mmrazor',
                type='ProxylessNAS',
                num_classes=None,
                width_mult=0.25),
            neck=dict(type='GlobalAveragePooling'),
            head=dict(type='LinearClsHead', num_classes=5,
                      in_channels=320))).eval()
    assert model(torch.randn(1, 3, 32, 32), mode='tensor').shape == (1, 5)
    subnet, _ = export_fix_subnet(model)
    assert len(subnet) == 5 * 4 + 1 + 5
