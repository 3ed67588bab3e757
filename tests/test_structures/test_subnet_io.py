"""The one reader/writer of subnet files and the views of a subnet.

Every older shape is round-tripped through ``mmrazor.structures``:
load -> flat -> dump in the same view -> load again, equal. Expected values
are written by hand here (or read from the published files with plain
``yaml``/``json``), never produced by the code under test.
"""
import ast
import glob
import json
import os
import os.path as osp

import numpy as np
import pytest
import torch
import yaml

from mmrazor.models.pruners import dump_channel_cfg, load_channel_cfg
from mmrazor.structures import (SubnetError, detect_view, dump_subnet,
                                dump_subnet_yaml, load_subnet,
                                load_subnet_yaml, to_flat, to_view)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PUBLISHED = osp.join(osp.dirname(REPO), 'shared', 'peer', 'subnets')
THE_MODULE = osp.join('mmrazor', 'structures', 'subnet', 'subnet_file.py')

# ---------------------------------------------------------------------------
# Every older shape, written by hand: (view name, the shape, its flat sample,
# the shape as the module writes it back).
MODULE_FLAT = {
    'backbone.layers.0.0': 'shuffle_7x7',
    'normal_n2': ['normal_n2_p1', 'normal_n2_p0'],
    'expand_ratio': 6,
    'mlp_ratio': 3.5,
    'use_se': False,
    'conv1.mask': [True, False, True],
}
SHAPES = [
    ('flat', dict(MODULE_FLAT), MODULE_FLAT, dict(MODULE_FLAT)),
    ('chosen', {
        'backbone.layers.0.0': {'chosen': 'shuffle_7x7'},
        'normal_n2': {'chosen': ['normal_n2_p1', 'normal_n2_p0']},
        'expand_ratio': {'chosen': 6},
        'mlp_ratio': {'chosen': 3.5},
        'use_se': {'chosen': False},
        'conv1.mask': {'chosen': [True, False, True]},
    }, MODULE_FLAT, None),
    # 0.x: every choice a list, one-element lists of names.
    ('chosen_list', {
        'stage_0_block_0': {'chosen': ['shuffle_7x7']},
        'stage_0_block_1': {'chosen': ['mb_k3e1']},
        'normal_n2': {'chosen': ['normal_n2_p1', 'normal_n2_p0']},
    }, {
        'stage_0_block_0': 'shuffle_7x7',
        'stage_0_block_1': 'mb_k3e1',
        'normal_n2': ['normal_n2_p1', 'normal_n2_p0'],
    }, None),
    ('modules', {
        'modules': {'backbone.layers.0.0': {'chosen': 'shuffle_5x5'},
                    'backbone.layers.0.1': 'shuffle_3x3'},
        'channels': {'backbone.conv1': 8},
    }, {
        'backbone.layers.0.0': 'shuffle_5x5',
        'backbone.layers.0.1': 'shuffle_3x3',
        'backbone.conv1': 8,
    }, {
        'modules': {'backbone.layers.0.0': 'shuffle_5x5',
                    'backbone.layers.0.1': 'shuffle_3x3',
                    'backbone.conv1': 8},
        'channels': {},
    }),
    ('modules', {
        'modules': {'layers.0.0': 'shuffle_xception'},
        'channels': None,
    }, {'layers.0.0': 'shuffle_xception'}, {
        'modules': {'layers.0.0': 'shuffle_xception'},
        'channels': {},
    }),
    # AutoSlim (0.x) channel config.
    ('channel_cfg', {
        'backbone.conv1.bn': {'out_channels': 8, 'raw_out_channels': 48},
        'backbone.conv1.conv': {'in_channels': 3, 'out_channels': 8,
                                'raw_in_channels': 3,
                                'raw_out_channels': 48},
    }, {
        'backbone.conv1.bn.out_channels': 8,
        'backbone.conv1.bn.raw_out_channels': 48,
        'backbone.conv1.conv.in_channels': 3,
        'backbone.conv1.conv.out_channels': 8,
        'backbone.conv1.conv.raw_in_channels': 3,
        'backbone.conv1.conv.raw_out_channels': 48,
    }, None),
    # The pruners' channel config (a non-leading group records kept_units).
    ('channel_cfg', {
        'conv1': {'in_channels': 3, 'out_channels': 4, 'raw_in_channels': 3,
                  'raw_out_channels': 8, 'kept_units': [0, 2, 4, 6]},
        'fc1': {'in_channels': 80, 'out_channels': 5, 'raw_in_channels': 80,
                'raw_out_channels': 7},
    }, {
        'conv1.in_channels': 3,
        'conv1.out_channels': 4,
        'conv1.raw_in_channels': 3,
        'conv1.raw_out_channels': 8,
        'conv1.kept_units': [0, 2, 4, 6],
        'fc1.in_channels': 80,
        'fc1.out_channels': 5,
        'fc1.raw_in_channels': 80,
        'fc1.raw_out_channels': 7,
    }, None),
    # 1.x channel-mutator JSON (DMCP / DCFF); init_args are not choices.
    ('units', {
        'type': 'DMCPChannelMutator',
        'channel_unit_cfg': {
            'type': 'DMCPChannelUnit',
            'units': {
                'backbone.conv1_(0, 64)_64': {
                    'init_args': {'num_channels': 64, 'divisor': 1},
                    'choice': 52},
                'backbone.layer1.0.conv1_(0, 64)_64': {
                    'init_args': {'num_channels': 64},
                    'choice': 0.640625},
            }
        }
    }, {
        'backbone.conv1_(0, 64)_64': 52,
        'backbone.layer1.0.conv1_(0, 64)_64': 0.640625,
    }, {
        'channel_unit_cfg': {'units': {
            'backbone.conv1_(0, 64)_64': {'choice': 52},
            'backbone.layer1.0.conv1_(0, 64)_64': {'choice': 0.640625},
        }}
    }),
]
IDS = [f'{view}-{i}' for i, (view, *_) in enumerate(SHAPES)]


def read_raw(path):
    """A file as plain yaml / json read it (independent of mmrazor)."""
    with open(path, encoding='utf-8') as f:
        return json.load(f) if path.endswith('.json') else yaml.safe_load(f)


@pytest.mark.parametrize('view,shape,flat,written', SHAPES, ids=IDS)
def test_every_older_shape_reads_as_the_flat_sample(view, shape, flat,
                                                    written):
    assert detect_view(shape) == view
    assert to_flat(shape) == flat
    assert load_subnet(shape) == flat
    assert to_view(flat, view) == (shape if written is None else written)


@pytest.mark.parametrize('ext', ['yaml', 'yml', 'json'])
@pytest.mark.parametrize('view,shape,flat,written', SHAPES, ids=IDS)
def test_every_older_shape_round_trips_through_a_file(
        tmp_path, ext, view, shape, flat, written):
    first = str(tmp_path / f'first.{ext}')
    dump_subnet(shape, first, view=view)
    # The file holds the older shape itself, as plain yaml/json reads it.
    assert read_raw(first) == (shape if written is None else written)
    loaded = load_subnet(first)
    assert loaded == flat
    # flat -> the same view -> file -> flat again
    second = str(tmp_path / f'second.{ext}')
    dump_subnet(loaded, second, view=view)
    assert load_subnet(second) == flat
    assert read_raw(second) == read_raw(first)
    assert load_subnet(second, view='auto') == read_raw(first)


def test_types_survive_yaml_and_json(tmp_path):
    flat = {'ratio': 1.0, 'count': 1, 'on': True, 'name': '1'}
    for ext in ('yaml', 'json'):
        path = str(tmp_path / f's.{ext}')
        dump_subnet(flat, path, view='flat')
        back = load_subnet(path)
        assert back == flat
        assert [type(v) for v in back.values()] == [float, int, bool, str]


def test_masks_of_tensors_and_arrays_are_written_as_plain_lists(tmp_path):
    masks = {
        'space_0': torch.tensor([True, False, False]),
        'space_1': np.array([0, 1, 1]),
        'space_2': (True, True),
        'width': np.int64(12),
    }
    # In memory the values are left as they are.
    assert to_flat(masks)['space_0'] is masks['space_0']
    for ext in ('yaml', 'json'):
        path = str(tmp_path / f'masks.{ext}')
        dump_subnet(masks, path, view='flat')
        expected = {
            'space_0': [True, False, False],
            'space_1': [0, 1, 1],
            'space_2': [True, True],
            'width': 12
        }
        assert read_raw(path) == expected
        assert load_subnet(path) == expected
        dump_subnet(load_subnet(path), path, view='flat')
        assert load_subnet(path) == expected
    assert type(load_subnet(path)['width']) is int


# ---------------------------------------------------------------------------
# Small files written by hand, in the published shapes.
HAND_WRITTEN = [
    ('spos_0x.yaml', 'stage_0_block_0:\n  chosen:\n  - shuffle_7x7\n'
     'stage_0_block_1:\n  chosen:\n  - shuffle_xception\n',
     {'stage_0_block_0': 'shuffle_7x7', 'stage_0_block_1': 'shuffle_xception'},
     'chosen_list'),
    ('spos_1x.yaml', 'backbone.layers.0.0:\n  chosen: shuffle_5x5\n'
     'backbone.layers.0.1:\n  chosen: shuffle_3x3\n',
     {'backbone.layers.0.0': 'shuffle_5x5',
      'backbone.layers.0.1': 'shuffle_3x3'}, 'chosen'),
    ('bignas.yaml', 'backbone.first_channels:\n  chosen: 16\n'
     'backbone.blocks.0.mlp_ratio:\n  chosen: 3.5\n',
     {'backbone.first_channels': 16, 'backbone.blocks.0.mlp_ratio': 3.5},
     'chosen'),
    ('autoslim.yaml', 'backbone.conv1.bn:\n  out_channels: 8\n'
     '  raw_out_channels: 48\n',
     {'backbone.conv1.bn.out_channels': 8,
      'backbone.conv1.bn.raw_out_channels': 48}, 'channel_cfg'),
    ('subnet_1x.json', '{"backbone.layers.0.0": {"chosen": "shuffle_7x7"}}',
     {'backbone.layers.0.0': 'shuffle_7x7'}, 'chosen'),
    ('masks.json', '{"s0": [true, false], "s1": [false, true]}',
     {'s0': [True, False], 's1': [False, True]}, 'flat'),
    ('dcff.json', '{"type": "DCFFChannelMutator", "channel_unit_cfg": '
     '{"units": {"backbone.conv1_(0, 64)_64": {"init_args": {}, '
     '"choice": 1.0}}}}', {'backbone.conv1_(0, 64)_64': 1.0}, 'units'),
    # a JSON document in a .yaml file (YAML parses JSON)
    ('as_json.yaml', '{"a": {"chosen": ["op"]}}', {'a': 'op'},
     'chosen_list'),
]


@pytest.mark.parametrize('name,text,flat,view', HAND_WRITTEN,
                         ids=[h[0] for h in HAND_WRITTEN])
def test_hand_written_files_round_trip(tmp_path, name, text, flat, view):
    path = tmp_path / name
    path.write_text(text)
    assert load_subnet(str(path)) == flat
    assert load_subnet(path) == flat  # a Path works too
    out = str(tmp_path / ('out' + osp.splitext(name)[1]))
    dump_subnet(load_subnet(str(path)), out, view=view)
    assert load_subnet(out) == flat
    assert detect_view(read_raw(out)) == view


# ---------------------------------------------------------------------------
def published_files():
    return sorted(
        p for p in glob.glob(osp.join(PUBLISHED, '**', '*'), recursive=True)
        if osp.isfile(p) and p.endswith(('.yaml', '.json')))


def expected_flat(raw):
    """The flat sample of a published file, by the rules of its shape."""
    if 'channel_unit_cfg' in raw:
        return {
            name: unit['choice']
            for name, unit in raw['channel_unit_cfg']['units'].items()
        }
    first = next(iter(raw.values()))
    if 'chosen' not in first:  # channel config
        return {
            f'{layer}.{attr}': n
            for layer, entry in raw.items() for attr, n in entry.items()
        }
    flat = {}
    for key, entry in raw.items():
        chosen = entry['chosen']
        one_name = isinstance(chosen, list) and len(chosen) == 1 \
            and isinstance(chosen[0], str)
        flat[key] = chosen[0] if one_name else chosen
    return flat


@pytest.mark.skipif(
    not osp.isdir(PUBLISHED), reason='no published subnet files here')
def test_published_files_round_trip(tmp_path):
    files = published_files()
    assert len(files) >= 25  # 0.x and 1.x, YAML and JSON
    views = set()
    for i, path in enumerate(files):
        raw = read_raw(path)
        flat = load_subnet(path)
        assert flat == expected_flat(raw), path
        view = detect_view(raw)
        views.add(view)
        out = str(tmp_path / f'{i}{osp.splitext(path)[1]}')
        dump_subnet(flat, out, view=view)
        assert load_subnet(out) == flat, path
        if view != 'units':  # units drop their init_args
            assert read_raw(out) == raw, path
            assert load_subnet(path, view='auto') == raw, path
    assert views == {'chosen', 'chosen_list', 'channel_cfg', 'units'}


@pytest.mark.skipif(
    not osp.isdir(PUBLISHED), reason='no published subnet files here')
def test_published_values_read_as_published():
    # Values copied from the files by hand.
    spos = load_subnet(
        osp.join(PUBLISHED, '0.x', 'configs', 'nas', 'spos',
                 'SPOS_SHUFFLENETV2_330M_IN1k_PAPER.yaml'))
    assert spos['stage_0_block_0'] == 'shuffle_7x7'
    assert spos['stage_1_block_0'] == 'shuffle_7x7'
    assert len(spos) == 20
    autoslim = load_subnet(
        osp.join(PUBLISHED, '0.x', 'configs', 'pruning', 'autoslim',
                 'AUTOSLIM_MBV2_320M_OFFICIAL.yaml'), view='channel_cfg')
    assert autoslim['backbone.conv1.conv'] == dict(
        in_channels=3, out_channels=8, raw_in_channels=3,
        raw_out_channels=48)
    assert load_channel_cfg(
        osp.join(PUBLISHED, '0.x', 'configs', 'pruning', 'autoslim',
                 'AUTOSLIM_MBV2_320M_OFFICIAL.yaml')) == autoslim
    dmcp = load_subnet(
        osp.join(PUBLISHED, '1.x', 'configs', 'pruning', 'mmcls', 'dmcp',
                 'DMCP_MBV2_100M.json'))
    assert dmcp['backbone.conv1.conv_(0, 32)_32'] == 9
    darts = load_subnet(
        osp.join(PUBLISHED, '1.x', 'configs', 'nas', 'mmcls', 'darts',
                 'DARTS_SUBNET_CIFAR_MMRAZOR_97.32.yaml'))
    assert darts['normal_n2'] == ['normal_n2_p0', 'normal_n2_p1']
    assert darts['normal_n2_p0'] == 'sep_conv_3x3'


# ---------------------------------------------------------------------------
BAD_FILES = [
    ('none.yaml', 'layers.0.0:\n  chosen: null\n', r'layers\.0\.0.*None'),
    ('typo.yaml', 'layers.0.0:\n  choosen: shuffle_3x3\n',
     r'layers\.0\.0.*choosen'),
    ('nested.yaml', 'layers.0.0:\n  chosen: {a: 1}\n', r"layers\.0\.0.*'a'"),
    ('date.yaml', 'layers.0.0:\n  chosen: 2020-01-01\n',
     r'layers\.0\.0.*2020'),
    ('count.yaml', 'conv1:\n  out_channels: eight\n',
     r'conv1\.out_channels.*eight'),
    ('negative.json', '{"conv1": {"out_channels": -3}}',
     r'conv1\.out_channels.*-3'),
    ('attr.yaml', 'conv1:\n  out_channels: 8\n  groups: 2\n',
     r'conv1\.groups.*groups'),
    ('kept.yaml', 'conv1:\n  out_channels: 2\n  kept_units: [a, b]\n',
     r'conv1\.kept_units'),
    ('unit.json', '{"channel_unit_cfg": {"units": {"u1": {"init_args": {}}}}}',
     r"u1.*choice"),
    ('both.yaml', 'modules: {a: op}\nchannels: {a: 8}\n', r"'a'.*both"),
    ('list.yaml', '- a\n- b\n', r'mapping'),
    ('empty.yaml', '', r'mapping'),
    ('syntax.yaml', 'a: [b\n', r'not a valid'),
    ('syntax.json', '{"a": ', r'not a valid'),
]


@pytest.mark.parametrize('name,text,match', BAD_FILES,
                         ids=[b[0] for b in BAD_FILES])
def test_bad_files_name_the_file_key_and_value(tmp_path, name, text, match):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(SubnetError, match=match) as info:
        load_subnet(str(path))
    assert str(path) in str(info.value)
    assert isinstance(info.value, KeyError)
    assert isinstance(info.value, ValueError)


def test_missing_file_is_reported():
    with pytest.raises(FileNotFoundError, match='no_such_subnet.yaml'):
        load_subnet('no_such_subnet.yaml')


def test_bad_writes_name_the_key_and_leave_the_old_file(tmp_path):
    path = tmp_path / 'subnet.yaml'
    dump_subnet({'a': 'op1'}, path)
    before = path.read_text()
    with pytest.raises(SubnetError, match=r"'b'.*object"):
        dump_subnet({'a': 'op2', 'b': object()}, path)
    with pytest.raises(SubnetError, match=r"'b'.*None"):
        dump_subnet({'a': 'op2', 'b': {'chosen': None}}, path)
    with pytest.raises(SubnetError, match=r"'conv1'.*<layer>"):
        dump_subnet({'conv1': 8}, path, view='channel_cfg')
    with pytest.raises(SubnetError, match=r"conv1\.width"):
        dump_subnet({'conv1.width': 8}, path, view='channel_cfg')
    with pytest.raises(SubnetError, match='view'):
        dump_subnet({'a': 'op2'}, path, view='nested')
    assert path.read_text() == before
    with pytest.raises(SubnetError, match=r'subnet\.txt'):
        dump_subnet({'a': 'op1'}, tmp_path / 'subnet.txt')
    assert not (tmp_path / 'subnet.txt').exists()


def test_dump_is_atomic_and_creates_the_folder(tmp_path):
    path = tmp_path / 'deep' / 'er' / 'subnet.json'
    written = dump_subnet({'a': 'op1'}, path)
    assert written == {'a': {'chosen': 'op1'}}
    dump_subnet({'a': 'op2'}, path)
    assert os.listdir(path.parent) == ['subnet.json']  # no temporary left
    assert read_raw(str(path)) == {'a': {'chosen': 'op2'}}


def test_older_names_keep_their_meaning(tmp_path):
    # dump_subnet_yaml writes {key: {chosen: v}}; load_subnet_yaml returns
    # the file as stored.
    path = str(tmp_path / 'subnet.yaml')
    dump_subnet_yaml({'a': 'op1', 'b': [1, 2]}, path)
    assert read_raw(path) == {'a': {'chosen': 'op1'}, 'b': {'chosen': [1, 2]}}
    assert load_subnet_yaml(path) == read_raw(path)
    old = tmp_path / 'old.yaml'
    old.write_text('s0:\n  chosen:\n  - op\n')
    assert load_subnet_yaml(str(old)) == {'s0': {'chosen': ['op']}}
    # the pruners' channel configs
    cfg = {'conv1': dict(in_channels=3, out_channels=np.int64(4),
                         raw_in_channels=3, raw_out_channels=8,
                         kept_units=(0, 2, 5, 7))}
    cfg_path = str(tmp_path / 'cfg.yaml')
    dump_channel_cfg(cfg, cfg_path)
    expected = {'conv1': dict(in_channels=3, out_channels=4,
                              raw_in_channels=3, raw_out_channels=8,
                              kept_units=[0, 2, 5, 7])}
    assert read_raw(cfg_path) == expected
    assert load_channel_cfg(cfg_path) == expected
    with pytest.raises(ValueError, match='subnet.yaml'):
        load_channel_cfg(path)  # not a channel config


# ---------------------------------------------------------------------------
# Nothing but the one module reads or writes subnet files.
#: Files that may use ``json`` for what is not a subnet file: search state,
#: candidate tables, result lists, latency tables, deploy artefacts
#: (``model_spec.json``, ``structure.json``, ``deploy_report.json``).
JSON_ALLOWED = {
    osp.join('mmrazor', 'core', 'searchers', 'base.py'),
    osp.join('mmrazor', 'models', 'task_modules', 'estimators', 'latency.py'),
    osp.join('mmrazor', 'models', 'task_modules', 'deploy.py'),
    # the report of tools/prune.py
    osp.join('mmrazor', 'apis', 'prune.py'),
}
#: Modules reading YAML that is not a subnet file -> what they read.
OTHER_YAML_READERS = {
    osp.join('mmrazor', 'apis', 'config_compat', 'v1.py'):
    "the model-index metafiles of a sibling toolbox's configs",
}
#: Former writers of subnet files, which must now call ``dump_subnet``.
FORMER_WRITERS = [
    osp.join('mmrazor', 'core', 'hooks', 'search_subnet.py'),
    osp.join('mmrazor', 'core', 'runners', 'multi_loader.py'),
    osp.join('mmrazor', 'core', 'searchers', 'base.py'),
    osp.join('mmrazor', 'models', 'pruners', 'utils.py'),
]


def serializer_uses(source: str):
    """``(line, what)`` of every use of yaml, json or mmengine's file
    dump/load in ``source``."""
    tree = ast.parse(source)
    uses = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split('.')[0] in ('yaml', 'json'):
                    uses.append((node.lineno, f'import {alias.name}'))
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ''
            names = {a.name for a in node.names}
            mmengine_io = module.startswith('mmengine') and bool(
                names & {'dump', 'load'})
            if module.split('.')[0] in ('yaml', 'json') or mmengine_io:
                uses.append((node.lineno, f'from {module} import ...'))
        elif isinstance(node, ast.Attribute) and node.attr in (
                'dump', 'load') and isinstance(node.value, ast.Name) and \
                node.value.id in ('mmengine', 'fileio'):
            uses.append((node.lineno, f'{node.value.id}.{node.attr}'))
    return uses


def python_files(*folders):
    for folder in folders:
        for d, _, files in os.walk(osp.join(REPO, folder)):
            for f in sorted(files):
                if f.endswith('.py'):
                    yield osp.relpath(osp.join(d, f), REPO)


def test_checker_sees_yaml_json_and_mmengine_io():
    assert serializer_uses('import yaml\nyaml.safe_dump({})\n')
    assert serializer_uses('def f():\n    from json import dumps\n')
    assert serializer_uses('import mmengine\nmmengine.dump({}, "a.yaml")\n')
    assert serializer_uses('from mmengine.fileio import load\n')
    assert not serializer_uses('import os\nos.path.join("a.yaml")\n')


def test_only_one_module_reads_or_writes_subnet_files():
    offenders = []
    for rel in python_files('mmrazor', 'tools'):
        if rel == THE_MODULE:
            continue
        with open(osp.join(REPO, rel), encoding='utf-8') as f:
            uses = serializer_uses(f.read())
        for line, what in uses:
            is_json = 'json' in what
            if rel.startswith('mmrazor') and is_json and rel in JSON_ALLOWED:
                continue  # state / tables / latency, not subnet files
            if rel.startswith('tools') and is_json:
                continue  # tools' reports are not subnet files
            if rel in OTHER_YAML_READERS and what.startswith('from mmengine'):
                continue  # see OTHER_YAML_READERS
            offenders.append(f'{rel}:{line}: {what}')
    assert offenders == [], (
        'subnet files are read and written by mmrazor.structures '
        '(load_subnet / dump_subnet) only:\n' + '\n'.join(offenders))
    with open(osp.join(REPO, THE_MODULE), encoding='utf-8') as f:
        assert {w for _, w in serializer_uses(f.read())} == {
            'import yaml', 'import json'
        }


@pytest.mark.parametrize('rel', FORMER_WRITERS)
def test_former_writers_call_the_module(rel):
    with open(osp.join(REPO, rel), encoding='utf-8') as f:
        tree = ast.parse(f.read())
    called = {
        node.func.id if isinstance(node.func, ast.Name) else
        getattr(node.func, 'attr', None)
        for node in ast.walk(tree) if isinstance(node, ast.Call)
    }
    assert called & {'dump_subnet', 'load_subnet'}, rel
