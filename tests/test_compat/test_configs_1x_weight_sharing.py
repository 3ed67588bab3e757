"""The weight-sharing NAS configs of the 1.x toolbox (BigNAS' attentive
MobileNetV3, Once-for-All, AutoFormer) read, trained, searched and fixed.

Each family has three configs: the supernet (trained by ``tools/train.py``
for one iteration on Fashion-MNIST exported as an ImageNet folder), the
search (1.x's ``EvolutionSearchLoop``, run by ``tools/train.py`` as 1.x ran
it, on two candidates) and the subnet (``sub_model`` fixed to the subnet
file the original repository publishes next to the config; its ``init_cfg``
URL is replaced by ``None`` and never fetched). Unit tests cover what the
translation of these configs needs: 1.x's ``AutoAugmentV2`` ops as
mmpretrain's, the BatchNorm re-calibrating validation loop, the search
loop's arguments.
"""
import json
import os.path as osp
import time
from collections import Counter
from typing import Any, Dict, List

import numpy as np
import pytest
import yaml
from mmengine.config import Config

from mmrazor.apis.config_compat import load_config, v1
from mmrazor.apis.config_compat.v1_augment import (OPS_1X, translate_augments,
                                                   translate_op)
from test_configs_1x import (REFERENCE, checkpoint_state, imagenet_options,
                             needs_reference, run_train)

ATTENTIVE = 'nas/mmcls/bignas/attentive_mobilenet_{}_in1k.py'
OFA = 'nas/mmcls/onceforall/ofa_mobilenet_{}_in1k.py'
AUTOFORMER = 'nas/mmcls/autoformer/autoformer_{}_in1k.py'

SUPERNETS = {
    'attentive': ATTENTIVE.format('supernet_32xb64'),
    'ofa': OFA.format('supernet_32xb64'),
    'autoformer': AUTOFORMER.format('supernet_32xb256'),
}
SEARCHES = {
    'attentive': ATTENTIVE.format('search_8xb128'),
    'ofa': OFA.format('search_8xb128'),
    'autoformer': AUTOFORMER.format('search_8xb128'),
}
SUBNETS = {
    'attentive': (ATTENTIVE.format('subnet_8xb256'),
                  'nas/mmcls/bignas/ATTENTIVE_SUBNET_A0.yaml'),
    'ofa': (OFA.format('subnet_8xb256'),
            'nas/mmcls/onceforall/OFA_SUBNET_NOTE8_LAT31.yaml'),
    'autoformer': (AUTOFORMER.format('subnet_8xb256'),
                   'nas/mmcls/autoformer/AUTOFORMER_SUBNET_B.yaml'),
}
#: Keys of the published files that the backbones derive from other
#: decisions (accepted and ignored when a file is loaded).
DERIVED_KEYS = ('expand_ratio_se', 'mutable_q_embed_dims', 'middle_channels')


@pytest.fixture(scope='module')
def imagenet_folder(tmp_path_factory) -> str:
    from mmrazor.datasets import export_fashion_mnist
    return export_fashion_mnist(str(
        tmp_path_factory.mktemp('fashion_imagenet_ws')),
                                per_class=1)


def read_yaml(path: str) -> dict:
    with open(path) as f:
        return yaml.safe_load(f)


# --------------------------------------------------- AutoAugmentV2 ops
def test_level_ops_become_mmpretrain_ranges():
    rotate = translate_op(
        dict(type='mmrazor.RotateV2', prob=0.6, magnitude=8,
             extra_params=dict(translate_const=100, img_mean=(1, 2, 3))),
        'here')
    assert rotate == dict(type='mmpretrain.Rotate', prob=0.6,
                          magnitude_level=8, magnitude_range=(0., 30.),
                          magnitude_std=0.5, total_level=10,
                          random_negative_prob=0.5, pad_val=0,
                          interpolation='nearest')
    color = translate_op(dict(type='mmrazor.Color', prob=0.4, magnitude=9),
                         'here')
    # 1.x factor = level / 10 * 1.8 + 0.1; mmpretrain's = 1 + magnitude
    assert color['type'] == 'mmpretrain.ColorTransform'
    low, high = color['magnitude_range']
    assert 1 + low + 9 / 10 * (high - low) == pytest.approx(9 / 10 * 1.8 +
                                                            0.1)
    assert color['random_negative_prob'] == 0.0
    assert translate_op(dict(type='EqualizeV2', prob=1.0, magnitude=3),
                        'here') == dict(type='mmpretrain.Equalize', prob=1.0)


@pytest.mark.parametrize('name', sorted(OPS_1X))
def test_each_1x_op_builds_and_transforms(name):
    from mmpretrain.registry import TRANSFORMS
    from mmrazor.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    op = TRANSFORMS.build(
        translate_op(dict(type=f'mmrazor.{name}', prob=1.0, magnitude=5),
                     'here'))
    img = np.random.RandomState(0).randint(0, 256, (16, 16, 3), np.uint8)
    out = op(dict(img=img.copy()))['img']
    assert out.shape == img.shape and out.dtype == np.uint8


def test_posterize_keeps_the_1x_bit_count():
    from mmpretrain.registry import TRANSFORMS
    from mmrazor.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    cfg = translate_op(dict(type='PosterizeV2', prob=1.0, magnitude=6), 'x')
    cfg['magnitude_std'] = 0.  # the nominal level
    op = TRANSFORMS.build(cfg)
    img = np.arange(256, dtype=np.uint8).reshape(16, 16, 1).repeat(3, 2)
    out = op(dict(img=img.copy()))['img']
    bits = int(6 / 10 * 4) + 4  # 1.x: int(level / 10 * 4) + 4 = 6
    assert len(np.unique(out)) == 2**bits


@pytest.mark.parametrize('op, message', [
    (dict(type='mmrazor.TranslateX', prob=0.5, magnitude=3), '250 pixels'),
    (dict(type='mmrazor.RotateV2', prob=0.5, magnitude=11), 'level in'),
    (dict(type='mmrazor.RotateV2', prob=0.5, magnitude=1, angle=3),
     r"keys \['angle'\]"),
    (dict(type='mmrazor.Color', prob=0.5, magnitude=1,
          extra_params=dict(fill=1)), r"extra_params keys \['fill'\]"),
])
def test_1x_ops_refused_by_name(op, message):
    with pytest.raises(ValueError, match=message):
        translate_augments(dict(pipeline=[op]), 'cfg', Counter())


def test_auto_augment_v2_becomes_auto_augment():
    log: Counter = Counter()
    node = translate_augments(
        dict(type='mmrazor.AutoAugmentV2',
             policies=[[
                 dict(type='mmrazor.ShearY', prob=0.8, magnitude=4),
                 dict(type='mmrazor.SolarizeAddV2', prob=0.6, magnitude=7)
             ]]), 'pipeline[3]', log)
    assert node['type'] == 'mmpretrain.AutoAugment'
    assert [op['type'] for op in node['policies'][0]] == \
        ['mmpretrain.Shear', 'mmpretrain.SolarizeAdd']
    assert node['policies'][0][0]['direction'] == 'vertical'
    assert any('AutoAugment' in change for change in log)


# ---------------------------------------------------- loops, by config
@needs_reference
def test_bignas_settings_translated():
    cfg = load_config(osp.join(REFERENCE, SUPERNETS['attentive']))
    augment = cfg.train_dataloader.dataset.pipeline[3]
    assert augment.type == 'mmpretrain.AutoAugment'
    assert len(augment.policies) == 25
    assert (cfg.val_cfg.type, cfg.val_cfg.calibrate_sample_num) == \
        ('mmrazor.CalibratedValLoop', 4096)
    assert cfg.model_wrapper_cfg.type == \
        'mmrazor.RazorDistributedDataParallel'


@needs_reference
@pytest.mark.parametrize('family, constraints, calib', [
    ('attentive', dict(flops=700e6), 4096 // 64),
    ('ofa', dict(flops=700e6), 4096 // 64),
    ('autoformer', dict(params=55e6), None),
])
def test_search_loop_translated(family, constraints, calib):
    cfg = load_config(osp.join(REFERENCE, SEARCHES[family]))
    loop = cfg.train_cfg
    assert loop.type == 'mmrazor.SearchLoop'
    assert loop.searcher.type == 'EvolutionSearcher'
    assert loop.searcher.constraints == constraints
    assert loop.searcher.get('calib_batches') == calib
    assert loop.searcher.score_key == 'accuracy/top1'
    assert loop.dataloader.dataset.data_prefix == 'val'
    assert loop.calib_dataloader.dataset.data_prefix == 'train'


def search_cfg(**loop: Any) -> Config:
    train_cfg = dict(type='mmrazor.EvolutionSearchLoop', dataloader=dict(),
                     evaluator=dict())
    train_cfg.update(loop)
    return Config(dict(train_cfg=train_cfg,
                       train_dataloader=dict(batch_size=8)))


@pytest.mark.parametrize('loop, message', [
    (dict(constraints_range=dict(flops=(100., 300.))), 'lower bound'),
    (dict(constraints_range=dict(energy=(0, 3))), "'energy'"),
    (dict(predictor_cfg=dict(type='MetricPredictor')), 'predictor_cfg'),
    (dict(crossover_prob=0.3), 'crossover_prob=0.3'),
    (dict(frobnicate=1), r"keys \['frobnicate'\]"),
])
def test_search_loop_arguments_refused_by_name(loop, message):
    with pytest.raises(ValueError, match=message):
        v1.translate_1x(search_cfg(**loop))


def test_search_loop_calibration_batches_round_up():
    cfg = v1.translate_1x(search_cfg(calibrate_sample_num=20))
    assert cfg.train_cfg.searcher.calib_batches == 3
    assert v1.translate_1x(search_cfg()).train_cfg.searcher.get(
        'calib_batches') is None


# ---------------------------------------------------------- supernets
def check_supernet(family: str, runner: Any, work_dir: str) -> None:
    from mmrazor.models.algorithms.nas.autoformer import Autoformer
    from mmrazor.models.algorithms.nas.bignas import BigNAS
    from mmrazor.models.mutators import NasMutator
    model = runner.model
    assert type(model) is (Autoformer if family == 'autoformer' else BigNAS)
    assert type(model.mutator) is NasMutator
    assert type(model.architecture).__name__ == 'SearchableImageClassifier'
    state = checkpoint_state(work_dir)
    assert any(k.startswith('architecture.backbone.') for k in state)
    if family != 'autoformer':
        assert type(runner.val_loop).__name__ == 'CalibratedValLoop'
        assert type(model.distill_loss).__name__ == 'KLDivergence'
        # drop-path of the largest subnet switched off after the step
        assert all(
            type(b.drop_path).__name__ == 'Identity'
            for b in model.architecture.backbone.modules()
            if hasattr(b, 'drop_path'))


#: The attentive supernet's input resizer draws sizes up to 288x288, slow on
#: CPU: with the long end-to-end tests.
BIGNAS_FAMILIES = ['ofa', pytest.param('attentive', marks=pytest.mark.e2e)]


@needs_reference
@pytest.mark.parametrize('family', BIGNAS_FAMILIES)
def test_train_bignas_supernets(family, imagenet_folder, tmp_path,
                                monkeypatch):
    runner = run_train(SUPERNETS[family], str(tmp_path),
                       imagenet_options(imagenet_folder), monkeypatch)
    check_supernet(family, runner, str(tmp_path))


@needs_reference
@pytest.mark.e2e
def test_train_autoformer_supernet(imagenet_folder, tmp_path, monkeypatch):
    runner = run_train(SUPERNETS['autoformer'], str(tmp_path),
                       imagenet_options(imagenet_folder), monkeypatch)
    check_supernet('autoformer', runner, str(tmp_path))


# ------------------------------------------------------------ subnets
def published_subnet(family: str) -> str:
    return osp.join(REFERENCE, SUBNETS[family][1])


def check_fixed_to(model: Any, subnet_file: str) -> None:
    """Every decision of ``model`` fixed, and equal to the file's (the
    file's other keys are derived ones)."""
    from mmrazor.structures import export_fix_subnet
    fixed, _ = export_fix_subnet(model)
    published = read_yaml(subnet_file)
    assert fixed and set(fixed) <= set(published)
    assert {k: v.chosen for k, v in fixed.items()} == \
        {k: published[k]['chosen'] for k in fixed}
    assert all(
        k.rsplit('.', 1)[-1] in DERIVED_KEYS
        for k in set(published) - set(fixed))


@needs_reference
@pytest.mark.parametrize('family', sorted(SUBNETS))
def test_subnet_configs_build_fixed_to_published_files(family):
    from mmrazor.registry import MODELS
    from mmrazor.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    config, _ = SUBNETS[family]
    cfg = load_config(osp.join(REFERENCE, config), {'model.init_cfg': None})
    # the relative path of the 1.x repository was found above the config
    assert osp.samefile(cfg.model.fix_subnet, published_subnet(family))
    model = MODELS.build(cfg.model)
    assert type(model).__name__ == 'SearchableImageClassifier'
    check_fixed_to(model, published_subnet(family))


@needs_reference
def test_train_ofa_subnet(imagenet_folder, tmp_path, monkeypatch):
    runner = run_train(SUBNETS['ofa'][0], str(tmp_path),
                       imagenet_options(imagenet_folder) +
                       ['model.init_cfg=None'], monkeypatch)
    check_fixed_to(runner.model, published_subnet('ofa'))
    assert type(runner.val_loop).__name__ == 'CalibratedValLoop'
    assert runner.val_loop.evaluate_fixed_subnet is False
    assert runner.test_loop.evaluate_fixed_subnet is True
    checkpoint_state(str(tmp_path))


# ------------------------------------------------------------ searches
def search_options(root: str) -> List[str]:
    """Two candidates, one epoch, the loop's own loader on the folder."""
    loader = 'train_cfg.dataloader'
    return imagenet_options(root) + [
        f'{loader}.dataset.data_root={root}',
        f'{loader}.dataset.indices=4', f'{loader}.batch_size=4',
        f'{loader}.num_workers=0', f'{loader}.persistent_workers=False',
        'train_cfg.num_candidates=2', 'train_cfg.top_k=1',
        'train_cfg.num_mutation=1', 'train_cfg.num_crossover=1'
    ]


def check_search(runner: Any, work_dir: str, bound: Dict[str, float]
                 ) -> None:
    from mmrazor.core.loops import SearchLoop
    assert type(runner.train_loop) is SearchLoop
    best = osp.join(work_dir, 'best_subnet.yaml')
    assert osp.isfile(best)
    assert osp.isfile(osp.join(work_dir, 'best_subnet_epoch_0.yaml'))
    with open(osp.join(work_dir, 'search_state.json')) as f:
        records = list(json.load(f)['evaluated'].values())
    assert len(records) == 2
    for record in records:
        for name, limit in bound.items():
            assert record['resources'][name] <= limit
    # the file holds a choice for every decision of the supernet
    subnet = read_yaml(best)
    assert set(subnet) >= set(runner.model.mutator.current_choices)


@needs_reference
@pytest.mark.parametrize('family', BIGNAS_FAMILIES)
def test_search_bignas_supernets(family, imagenet_folder, tmp_path,
                                 monkeypatch):
    runner = run_train(
        SEARCHES[family], str(tmp_path),
        search_options(imagenet_folder) + ['train_cfg.calibrate_sample_num=4'],
        monkeypatch)
    assert runner.train_loop.searcher.calib_batches == 1
    check_search(runner, str(tmp_path), dict(flops=700e6))


@needs_reference
@pytest.mark.e2e
def test_search_autoformer_supernet(imagenet_folder, tmp_path, monkeypatch):
    runner = run_train(SEARCHES['autoformer'], str(tmp_path),
                       search_options(imagenet_folder), monkeypatch)
    check_search(runner, str(tmp_path), dict(params=55e6))


@needs_reference
@pytest.mark.e2e
def test_search_config_through_tools_search(imagenet_folder, tmp_path,
                                            monkeypatch):
    """``tools/search.py CONFIG CHECKPOINT`` runs the 1.x search config
    too, loading the supernet trained by its supernet config."""
    import sys

    from tool_runs import default_scopes_restored, load_tool
    supernet_dir = str(tmp_path / 'supernet')
    run_train(SUPERNETS['ofa'], supernet_dir,
              imagenet_options(imagenet_folder), monkeypatch)
    search_dir = str(tmp_path / 'search')
    tool = load_tool('search.py')
    monkeypatch.setattr(sys, 'argv', [
        'search.py',
        osp.join(REFERENCE, SEARCHES['ofa']),
        osp.join(supernet_dir, 'epoch_1.pth'), '--work-dir', search_dir,
        '--cfg-options', *search_options(imagenet_folder),
        'train_cfg.calibrate_sample_num=4'
    ])
    started = time.time()
    with default_scopes_restored():
        tool.main()
    assert time.time() - started < 600
    assert osp.isfile(osp.join(search_dir, 'best_subnet.yaml'))
