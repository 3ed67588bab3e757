"""The subnet files the original toolbox published, through
``tools/get_flops.py`` with the original configs, against the published
sizes (README tables of the original configs; FLOPs in the mmcv convention
the toolbox used, params within 1 %, FLOPs within 3 %).

The files and configs are read from ``../shared`` (next to the checkout, as
in CI); the tests are skipped when it is not there.
"""
import os.path as osp

import pytest
import yaml
from tool_runs import load_tool

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SHARED = osp.join(osp.dirname(REPO), 'shared')
CONFIGS_0X = osp.join(SHARED, 'reference', 'mmrazor-0.x', 'configs')
SUBNETS_0X = osp.join(SHARED, 'peer', 'subnets', '0.x', 'configs')
CONFIGS_1X = osp.join(SHARED, 'reference', 'mmrazor-1.x', 'configs')
SUBNETS_1X = osp.join(SHARED, 'peer', 'subnets', '1.x', 'configs')

pytestmark = pytest.mark.skipif(
    not osp.isdir(CONFIGS_0X) or not osp.isdir(SUBNETS_0X),
    reason='../shared (reference configs, published subnets) not found')


def get_flops(argv):
    return load_tool('get_flops.py').main(argv)


def run(config, key, subnet, *extra):
    """get_flops on an original 0.x config with ``--subnet FILE``, which
    replaces the subnet the config names as ``algorithm.<key>`` (a URL,
    never fetched)."""
    with open(osp.join(CONFIGS_0X, config)) as f:
        text = f.read()
    # what --subnet replaces
    assert f'{key} = ' in text and 'https://' in text
    return get_flops([
        osp.join(CONFIGS_0X, config), '--convention', 'mmcv', '--subnet',
        osp.join(SUBNETS_0X, subnet), *extra
    ])


def assert_close(value, published, rel):
    assert abs(value - published) <= rel * published, \
        f'{value} is not within {rel:.0%} of the published {published}'


@pytest.mark.parametrize('flops, subnet, params', [
    (220e6, 'AUTOSLIM_MBV2_220M_OFFICIAL.yaml', 4.13e6),
    (320e6, 'AUTOSLIM_MBV2_320M_OFFICIAL.yaml', 5.77e6),
    (530e6, 'AUTOSLIM_MBV2_530M_OFFICIAL.yaml', 6.5e6),
])
def test_autoslim_mbv2_channel_cfgs(flops, subnet, params):
    result = run('pruning/autoslim/autoslim_mbv2_subnet_8xb256_in1k.py',
                 'channel_cfg', f'pruning/autoslim/{subnet}')
    assert_close(result['params'], params, 0.01)
    assert_close(result['flops_mmcv'], flops, 0.03)


def test_darts_cifar_subnet_with_auxiliary_head():
    # README: 3.83M params (with the auxiliary head), 0.55G FLOPs at 32x32
    result = run('nas/darts/darts_subnet_1xb96_cifar10.py', 'mutable_cfg',
                 'nas/darts/DARTS_SUBNET_CIFAR_PAPER.yaml', '--shape', '32')
    assert_close(result['params'], 3.83e6, 0.01)
    assert_close(result['flops_mmcv'], 0.55e9, 0.03)


def shufflenet_subnet_params(chosen, num_classes=1000):
    """Parameters of a SPOS ShuffleNetV2 subnet, written out from the
    architecture (stem 16, stages 64/160/320/640 of 4/4/8/4 blocks, first
    block of a stage with stride 2, last 1x1 conv to 1024, linear head;
    every conv without bias and followed by BN of 2 params per channel)."""

    def conv(cin, cout, k=1, groups=1):
        return cin // groups * cout * k * k + 2 * cout

    def block(kind, cin, cout, stride):
        c = cout // 2
        k = 3 if kind == 'shuffle_xception' else int(kind[-1])
        proj = conv(cin, cin, k, cin) + conv(cin, c) if stride == 2 else 0
        main_in = cin if stride == 2 else c
        if kind == 'shuffle_xception':
            main = conv(main_in, main_in, 3, main_in) + conv(main_in, c) + \
                2 * (conv(c, c, 3, c) + conv(c, c))
        else:
            main = conv(main_in, c) + conv(c, c, k, c) + conv(c, c)
        return proj + main

    total = conv(3, 16, 3) + conv(640, 1024) + 1024 * num_classes + \
        num_classes
    cin = 16
    for stage, (cout, blocks) in enumerate([(64, 4), (160, 4), (320, 8),
                                            (640, 4)]):
        for i in range(blocks):
            kind = chosen[f'stage_{stage}_block_{i}']
            total += block(kind, cin, cout, 2 if i == 0 else 1)
            cin = cout
    return total


def read_chosen(path):
    with open(path) as f:
        data = yaml.safe_load(f)
    return {key: value['chosen'][0] for key, value in data.items()}


def test_spos_mmrazor_searched_subnet_1x_keys():
    """The subnet MMRazor searched (README: 3.35M params, 0.33G FLOPs),
    published with 1.x keys (``backbone.layers.i.j``), through the 1.x
    config (its ``mmcls::`` / ``mmrazor::`` bases resolved)."""
    result = get_flops([
        osp.join(CONFIGS_1X, 'nas/mmcls/spos/'
                 'spos_shufflenet_subnet_8xb128_in1k.py'), '--convention',
        'mmcv', '--subnet',
        osp.join(SUBNETS_1X, 'nas/mmcls/spos/SPOS_SUBNET.yaml')
    ])
    assert_close(result['params'], 3.35e6, 0.01)
    assert_close(result['flops_mmcv'], 330e6, 0.03)
    with open(osp.join(SUBNETS_1X, 'nas/mmcls/spos/SPOS_SUBNET.yaml')) as f:
        chosen = {
            'stage_{}_block_{}'.format(*key.split('.')[2:4]): value['chosen']
            for key, value in yaml.safe_load(f).items()
        }
    assert result['params'] == shufflenet_subnet_params(chosen)


@pytest.mark.parametrize('config, subnet, flops', [
    ('nas/spos/spos_subnet_shufflenetv2_8xb128_in1k.py',
     'nas/spos/SPOS_SHUFFLENETV2_330M_IN1k_PAPER.yaml', 330e6),
    ('nas/detnas/detnas_subnet_shufflenetv2_8xb128_in1k.py',
     'nas/detnas/DETNAS_FRCNN_SHUFFLENETV2_340M_COCO_MMRAZOR.yaml', 340e6),
])
def test_spos_paper_and_detnas_shufflenet_subnets(config, subnet, flops):
    """FLOPs against the figures the files are named by (the SPOS paper's
    subnet, 330M; DetNAS, 340M for the backbone: the classifier head adds
    about 1M).

    Params are checked against the architecture counted by hand: no README
    gives them for the paper's SPOS subnet (the 3.35M of the SPOS table is
    MMRazor's own searched subnet, tested above), and the DetNAS table's
    "3.35M (backbone)" — the SPOS figure again — is not the backbone of any
    reading of the architecture (the classifier head alone holds 1.02M of
    the SPOS 3.35M); see docs/migration.md.
    """
    result = run(config, 'mutable_cfg', subnet)
    assert_close(result['flops_mmcv'], flops, 0.03)
    chosen = read_chosen(osp.join(SUBNETS_0X, subnet))
    assert result['params'] == shufflenet_subnet_params(chosen)


# ------------------------------------------- weight-sharing NAS (1.x files)
def run_1x(config, subnet):
    """get_flops on an original 1.x subnet config (``type='sub_model'``)
    with ``--subnet FILE`` replacing its ``fix_subnet``; the input is
    resized inside the model to the file's ``input_shape``."""
    return get_flops([
        osp.join(CONFIGS_1X, 'nas/mmcls', config), '--convention', 'mmcv',
        '--subnet',
        osp.join(SUBNETS_1X, 'nas/mmcls', subnet)
    ])


ATTENTIVE = 'bignas/attentive_mobilenet_subnet_8xb256_in1k.py'
OFA = 'onceforall/ofa_mobilenet_subnet_8xb256_in1k.py'
AUTOFORMER = 'autoformer/autoformer_subnet_8xb256_in1k.py'


@pytest.mark.parametrize('config, subnet, params, flops', [
    # README of configs/nas/mmcls/bignas (AttentiveNAS-A6)
    (ATTENTIVE, 'bignas/ATTENTIVE_SUBNET_A6.yaml', 15.594e6, 927e6),
    # README of configs/nas/mmcls/onceforall (note8 lat@22ms, lat@31ms)
    (OFA, 'onceforall/OFA_SUBNET_NOTE8_LAT22.yaml', 4.3e6, 70.9e6),
    (OFA, 'onceforall/OFA_SUBNET_NOTE8_LAT31.yaml', 4.6e6, 105.4e6),
    # README of configs/nas/mmcls/autoformer (AutoFormer-B)
    (AUTOFORMER, 'autoformer/AUTOFORMER_SUBNET_B.yaml', 54.319e6, 10.57e9),
])
def test_weight_sharing_subnets(config, subnet, params, flops):
    result = run_1x(config, subnet)
    assert_close(result['params'], params, 0.01)
    assert_close(result['flops_mmcv'], flops, 0.03)


def test_attentive_nas_a0():
    # README: 8.854M params, 212M FLOPs at 192x192
    result = run_1x(ATTENTIVE, 'bignas/ATTENTIVE_SUBNET_A0.yaml')
    assert_close(result['flops_mmcv'], 212e6, 0.03)
    # The README's 8.854M is not met: the A0 architecture of the file,
    # written out by hand as a plain PyTorch model in
    # tests/test_models/test_nas/test_attentive_mobilenet_v3.py, has
    # 8.954M (+1.1%), with the same code that meets A6's 15.594M exactly
    # and both files' FLOPs. The README's figure looks like a digit slip.
    assert abs(result['params'] - 8.854e6) > 0.01 * 8.854e6
    assert_close(result['params'], 8.954e6, 0.001)


@pytest.mark.parametrize('subnet, macs', [
    # multiply-accumulates the AttentiveNAS paper (Wang et al., CVPR 2021)
    # gives for its models A1-A5; the README publishes only A0 and A6
    ('ATTENTIVE_SUBNET_A1.yaml', 279e6),
    ('ATTENTIVE_SUBNET_A2.yaml', 317e6),
    ('ATTENTIVE_SUBNET_A3.yaml', 357e6),
    ('ATTENTIVE_SUBNET_A4.yaml', 444e6),
    ('ATTENTIVE_SUBNET_A5.yaml', 491e6),
])
def test_attentive_nas_a1_to_a5_macs(subnet, macs):
    result = run_1x(ATTENTIVE, 'bignas/' + subnet)
    assert_close(result['macs'], macs, 0.03)
