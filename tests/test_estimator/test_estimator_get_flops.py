"""tools/get_flops.py on a SPOS config with a subnet file."""
import yaml
from mmengine.config import Config

from mmrazor.models.task_modules import ResourceEstimator
from tool_runs import load_tool

CONFIG = """
model = dict(
    type='mmpretrain.ImageClassifier',
    backbone=dict(
        type='SearchableShuffleNetV2',
        arch_setting=[[32, 1], [64, 2]],
        last_channels=128),
    neck=dict(type='mmpretrain.GlobalAveragePooling'),
    head=dict(
        type='mmpretrain.LinearClsHead',
        num_classes=10,
        in_channels=128,
        loss=dict(type='mmpretrain.CrossEntropyLoss')))
"""


def test_get_flops_with_subnet(tmp_path, capsys):
    config = tmp_path / 'spos_tiny.py'
    config.write_text(CONFIG)
    subnet = {
        'backbone.layers.0.0': {
            'chosen': 'shuffle_7x7'
        },
        'backbone.layers.1.0': {
            'chosen': 'shuffle_xception'
        },
        'backbone.layers.1.1': {
            'chosen': 'shuffle_3x3'
        },
    }
    subnet_file = tmp_path / 'subnet.yaml'
    subnet_file.write_text(yaml.safe_dump(subnet))
    tool = load_tool('get_flops.py')
    result = tool.main(
        [str(config), '--subnet',
         str(subnet_file), '--shape', '64', '48'])
    out = capsys.readouterr().out
    assert 'FLOPs:' in out and 'Params:' in out and 'backbone' in out
    assert 'aten.native_batch_norm' in out  # the uncounted ops are listed
    # the same numbers as the estimator on the fixed model
    from mmrazor.structures import load_fix_subnet
    model = tool.build_model(Config.fromfile(str(config)))
    load_fix_subnet(model, str(subnet_file))
    expected = ResourceEstimator(input_shape=(1, 3, 64, 48)).estimate(model)
    assert result['flops'] == expected['flops']
    assert result['params'] == expected['params']
    assert f'FLOPs: {tool.human(expected["flops"])}' in out

    backbone = tool.main(
        [str(config), '--subnet',
         str(subnet_file), '--module', 'backbone'])
    assert backbone['flops'] < ResourceEstimator().estimate(model)['flops']


def test_get_flops_mmcv_convention(tmp_path, capsys):
    """--convention mmcv adds the mmcv-convention FLOPs, those of
    ``estimate(flops_params_cfg=...)`` in raw counts, and keeps the
    default figure."""
    config = tmp_path / 'spos_tiny.py'
    config.write_text(CONFIG)
    tool = load_tool('get_flops.py')
    result = tool.main([str(config), '--shape', '32'])
    assert 'flops_mmcv' not in result
    assert 'mmcv convention' not in capsys.readouterr().out
    mmcv = tool.main([str(config), '--shape', '32', '--convention', 'mmcv'])
    assert 'mmcv convention' in capsys.readouterr().out
    assert mmcv['flops'] == result['flops']  # the default figure is kept
    # BN, ReLU and pooling come on top of the MACs
    assert mmcv['flops_mmcv'] > mmcv['flops']
    model = tool.build_model(Config.fromfile(str(config)))
    expected = ResourceEstimator(input_shape=(1, 3, 32, 32)).estimate(
        model, flops_params_cfg=dict(units=None))
    assert mmcv['flops_mmcv'] == expected['flops']
