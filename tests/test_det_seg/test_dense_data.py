"""The generated Fashion-MNIST dense data: consistency of images, masks and
boxes, and determinism of the generator (numpy only, no mmcv ops)."""
import filecmp
import importlib.util
import json
import os
import os.path as osp
import sys

import numpy as np
import pytest
from PIL import Image

from mmrazor.datasets import FASHION_MNIST_CLASSES

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SCRIPT = osp.join(REPO, 'tools', 'dataset_converters',
                  'make_fashion_mnist_dense.py')
SUBSET = osp.join(REPO, 'data', 'fashion_mnist_subset')
THRESHOLD = 30
NUM = {'train': 800, 'val': 200}


@pytest.fixture(scope='module')
def generator():
    spec = importlib.util.spec_from_file_location('make_dense', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _read(path: str) -> np.ndarray:
    with Image.open(path) as img:
        assert img.mode == 'L', path
        return np.array(img)


def _load_split(root: str, split: str):
    with open(osp.join(root, 'annotations', f'instances_{split}.json')) as f:
        coco = json.load(f)
    by_image = {img['id']: [] for img in coco['images']}
    for ann in coco['annotations']:
        by_image[ann['image_id']].append(ann)
    return coco, by_image


@pytest.mark.parametrize('split', ['train', 'val'])
def test_coco_structure(dense_root, split):
    coco, by_image = _load_split(dense_root, split)
    assert [c['name'] for c in coco['categories']] == list(
        FASHION_MNIST_CLASSES)
    assert [c['id'] for c in coco['categories']] == list(range(1, 11))
    assert len(coco['images']) == NUM[split]
    assert sorted(i['id'] for i in coco['images']) == list(
        range(1, NUM[split] + 1))
    ann_ids = [a['id'] for a in coco['annotations']]
    assert len(set(ann_ids)) == len(ann_ids)
    for img in coco['images']:
        assert osp.isfile(
            osp.join(dense_root, 'images', split, img['file_name']))
        assert osp.isfile(
            osp.join(dense_root, 'masks', split, img['file_name']))
        assert 2 <= len(by_image[img['id']]) <= 4
    labels = {a['category_id'] for a in coco['annotations']}
    assert labels == set(range(1, 11))  # every class occurs


@pytest.mark.parametrize('split', ['train', 'val'])
def test_boxes_images_and_masks_agree(dense_root, split):
    coco, by_image = _load_split(dense_root, split)
    for img in coco['images']:
        name = img['file_name']
        image = _read(osp.join(dense_root, 'images', split, name))
        mask = _read(osp.join(dense_root, 'masks', split, name))
        assert image.shape == mask.shape == (img['height'], img['width'])
        # Ink and labelled pixels coincide exactly.
        np.testing.assert_array_equal(image > THRESHOLD, mask > 0,
                                      err_msg=f'{split}/{name}')
        assert mask.max() <= 10
        anns = by_image[img['id']]
        covered = np.zeros((11, ) + mask.shape, bool)
        for ann in anns:
            x, y, w, h = ann['bbox']
            assert w > 0 and h > 0 and x >= 0 and y >= 0
            assert x + w <= img['width'] and y + h <= img['height']
            assert ann['area'] == w * h and ann['iscrowd'] == 0
            covered[ann['category_id'], y:y + h, x:x + w] = True
        # Every labelled pixel lies in a box of its class.
        for label in range(1, 11):
            outside = (mask == label) & ~covered[label]
            assert not outside.any(), (
                f'{split}/{name}: class {label} pixels outside its boxes')
        # The item pasted last covers all others: inside its box, its class
        # spans exactly the box (the box is the ink box).
        top = max(anns, key=lambda a: a['id'])
        x, y, w, h = top['bbox']
        ys, xs = np.nonzero(mask[y:y + h, x:x + w] == top['category_id'])
        assert (xs.min(), ys.min(), xs.max(), ys.max()) == (0, 0, w - 1,
                                                            h - 1), name


@pytest.mark.parametrize('split,index', [('train', 0), ('train', 517),
                                         ('val', 199)])
def test_canvases_regenerate_identically(generator, dense_root, split, index):
    items, labels = generator.load_split(SUBSET, split)
    image, mask, instances = generator.make_canvas(
        items, labels, generator.canvas_rng(0, split, index))
    name = f'{index:06d}.png'
    shipped_image = _read(osp.join(dense_root, 'images', split, name))
    shipped_mask = _read(osp.join(dense_root, 'masks', split, name))
    assert image.tobytes() == shipped_image.tobytes()
    assert mask.tobytes() == shipped_mask.tobytes()
    _, by_image = _load_split(dense_root, split)
    anns = sorted(by_image[index + 1], key=lambda a: a['id'])
    assert [a['category_id'] - 1 for a in anns] == [
        i['label'] for i in instances
    ]
    # The source items' own labels (read independently of the generator).
    assert [int(labels[i['index']]) for i in instances] == [
        i['label'] for i in instances
    ]
    for ann, inst in zip(anns, instances):
        x0, y0, x1, y1 = inst['bbox']
        assert ann['bbox'] == [x0, y0, x1 - x0 + 1, y1 - y0 + 1]
    # Another seed gives another canvas.
    other, _, _ = generator.make_canvas(items, labels,
                                        generator.canvas_rng(1, split, index))
    assert other.tobytes() != image.tobytes()


def test_script_is_deterministic(generator, tmp_path, monkeypatch,
                                 dense_root):
    outs = []
    for run in range(2):
        out = tmp_path / f'run{run}'
        monkeypatch.setattr(sys, 'argv', [
            SCRIPT, '--src', SUBSET, '--out',
            str(out), '--num-train', '3', '--num-val', '2'
        ])
        generator.main()
        outs.append(out)
    files = sorted(
        osp.relpath(osp.join(d, f), outs[0]) for d, _, fs in os.walk(outs[0])
        for f in fs)
    assert len(files) == 2 * (3 + 2) + 2
    match, mismatch, errors = filecmp.cmpfiles(
        outs[0], outs[1], files, shallow=False)
    assert not mismatch and not errors
    # The first canvases equal the shipped ones, pixel for pixel.
    for split, num in (('train', 3), ('val', 2)):
        for i in range(num):
            for kind in ('images', 'masks'):
                rel = osp.join(kind, split, f'{i:06d}.png')
                assert (_read(str(outs[0] / rel)).tobytes() == _read(
                    osp.join(dense_root, rel)).tobytes()), rel


def test_resize_and_iou_helpers(generator):
    # Up-scaling a constant image keeps it constant; a 2x2 checker scaled
    # to 4x4 keeps its corners (bilinear, half-pixel centres).
    flat = np.full((28, 28), 77, np.uint8)
    assert (generator.resize_bilinear(flat, 40) == 77).all()
    checker = np.array([[0, 200], [200, 0]], np.uint8)
    big = generator.resize_bilinear(checker, 4)
    assert big[0, 0] == 0 and big[0, 3] == 200 and big[3, 0] == 200
    assert big[0, 1] == 50  # 0.75 * 0 + 0.25 * 200
    assert generator.box_iou((0, 0, 9, 9), (0, 0, 9, 9)) == 1.0
    assert generator.box_iou((0, 0, 9, 9), (10, 0, 19, 9)) == 0.0
    # 10x10 boxes overlapping in a 5x10 strip: 50 / 150.
    assert generator.box_iou((0, 0, 9, 9),
                             (5, 0, 14, 9)) == pytest.approx(1 / 3)
    ink = np.zeros((6, 6), bool)
    ink[1:3, 2:5] = True
    assert generator.ink_box(ink) == (2, 1, 4, 2)
    assert generator.ink_box(np.zeros((3, 3), bool)) is None
