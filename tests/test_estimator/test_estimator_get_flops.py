"""tools/get_flops.py on a SPOS config with a subnet file."""
import importlib.util
import os.path as osp

import yaml

from mmrazor.models.task_modules import ResourceEstimator

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

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


def load_tool():
    spec = importlib.util.spec_from_file_location(
        'get_flops', osp.join(REPO, 'tools', 'get_flops.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
    tool = load_tool()
    result = tool.main(
        [str(config), '--subnet',
         str(subnet_file), '--shape', '64', '48'])
    out = capsys.readouterr().out
    assert 'FLOPs:' in out and 'Params:' in out and 'backbone' in out
    assert 'aten.native_batch_norm' in out  # the uncounted ops are listed
    # the same numbers as the estimator on the fixed model
    from mmengine.config import Config
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
