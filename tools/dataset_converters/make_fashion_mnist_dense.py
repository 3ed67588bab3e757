"""Make small detection / segmentation data from Fashion-MNIST items.

Every canvas is a ``size x size`` black image with 2 to 4 Fashion-MNIST items
pasted at random positions and scales (each 28x28 item resized to a side of
``--min-side`` .. ``--max-side`` pixels). A placement whose ink box overlaps
an earlier one with IoU above ``--max-iou`` is redrawn (a bounded number of
times). Training canvases take their items from the training split of the
Fashion-MNIST subset shipped with mmrazor, validation canvases from its test
split.

Outputs, under ``--out``::

    images/{train,val}/000000.png     grey canvases
    masks/{train,val}/000000.png      uint8 label maps: 0 background,
                                      k + 1 for Fashion-MNIST class k
    annotations/instances_{train,val}.json   COCO boxes, category ids 1..10

A box is the exact ink bounding box (pixels above ``--threshold``) of the
pasted item. Where an item's ink lies, its pixels and its label overwrite
those of earlier items, so ``(image > threshold) == (mask > 0)`` everywhere.

Each canvas draws from its own random generator seeded by
``(seed, split, index)``, so a single canvas can be regenerated alone
(:func:`make_canvas`), and the output is byte-identical across runs.

Example:
    python tools/dataset_converters/make_fashion_mnist_dense.py \
        --seed 0 --out data/fashion_mnist_dense
"""
import argparse
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Tuple

import numpy as np
from PIL import Image

from mmrazor.datasets import (FASHION_MNIST_CLASSES,
                              SUBSET_FASHION_MNIST_ROOT, read_idx)

#: Canvas split -> (Fashion-MNIST file prefix, code mixed into the seed).
SPLITS = {'train': ('train', 0), 'val': ('t10k', 1)}

Box = Tuple[int, int, int, int]  # x0, y0, x1, y1, inclusive pixel indices


def resize_bilinear(img: np.ndarray, side: int) -> np.ndarray:
    """Resize a square grey image to ``side x side`` by bilinear sampling.

    Pixel centres are aligned as in ``align_corners=False`` (half-pixel
    offsets). Pure numpy, so the result does not depend on an imaging
    library's version.

    Args:
        img (np.ndarray): uint8 array (H, W).
        side (int): Output height and width.

    Returns:
        np.ndarray: uint8 array (side, side).
    """
    src = img.astype(np.float64)
    h, w = src.shape

    def coords(n_in: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        pos = (np.arange(side) + 0.5) * (n_in / side) - 0.5
        pos = np.clip(pos, 0, n_in - 1)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, n_in - 1)
        return lo, hi, pos - lo

    y0, y1, wy = coords(h)
    x0, x1, wx = coords(w)
    top = src[y0][:, x0] * (1 - wx) + src[y0][:, x1] * wx
    bottom = src[y1][:, x0] * (1 - wx) + src[y1][:, x1] * wx
    out = top * (1 - wy)[:, None] + bottom * wy[:, None]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def ink_box(ink: np.ndarray) -> Optional[Box]:
    """The inclusive bounding box ``(x0, y0, x1, y1)`` of a boolean mask.

    Args:
        ink (np.ndarray): bool array (H, W).

    Returns:
        tuple | None: The box, or None when the mask is empty.
    """
    rows = np.flatnonzero(ink.any(axis=1))
    cols = np.flatnonzero(ink.any(axis=0))
    if rows.size == 0:
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]), int(rows[-1])


def box_iou(a: Box, b: Box) -> float:
    """IoU of two inclusive pixel boxes ``(x0, y0, x1, y1)``.

    Args:
        a (tuple): First box.
        b (tuple): Second box.

    Returns:
        float: Intersection over union, in [0, 1].
    """
    iw = min(a[2], b[2]) - max(a[0], b[0]) + 1
    ih = min(a[3], b[3]) - max(a[1], b[1]) + 1
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    area_a = (a[2] - a[0] + 1) * (a[3] - a[1] + 1)
    area_b = (b[2] - b[0] + 1) * (b[3] - b[1] + 1)
    return inter / (area_a + area_b - inter)


def canvas_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The random generator of one canvas.

    Args:
        seed (int): The global seed (``--seed``).
        split (str): ``'train'`` or ``'val'``.
        index (int): Index of the canvas in its split.

    Returns:
        np.random.Generator: A generator seeded by ``(seed, split, index)``.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {sorted(SPLITS)}, "
                         f'got {split!r}')
    return np.random.default_rng([seed, SPLITS[split][1], index])


def make_canvas(items: np.ndarray,
                labels: np.ndarray,
                rng: np.random.Generator,
                size: int = 96,
                min_items: int = 2,
                max_items: int = 4,
                min_side: int = 20,
                max_side: int = 44,
                max_iou: float = 0.2,
                threshold: int = 30,
                max_tries: int = 50) -> Tuple[np.ndarray, np.ndarray, List]:
    """Paste random items on one black canvas.

    Args:
        items (np.ndarray): uint8 Fashion-MNIST images (N, 28, 28).
        labels (np.ndarray): Their classes (N,), in 0..9.
        rng (np.random.Generator): The canvas' generator
            (see :func:`canvas_rng`).
        size (int): Canvas height and width. Defaults to 96.
        min_items (int): Fewest items per canvas. Defaults to 2.
        max_items (int): Most items per canvas. Defaults to 4.
        min_side (int): Smallest side of a resized item. Defaults to 20.
        max_side (int): Largest side of a resized item. Defaults to 44.
        max_iou (float): Largest IoU allowed between the ink boxes of two
            items. Defaults to 0.2.
        threshold (int): Pixels above it are ink. Defaults to 30.
        max_tries (int): Draws per item before giving the item up.
            Defaults to 50.

    Returns:
        tuple: ``(image, mask, instances)``: the uint8 canvas (size, size),
        the uint8 label map (size, size) and, in pasting order, one
        ``dict(bbox=(x0, y0, x1, y1), label=k, index=i)`` per item (``i``
        indexes ``items``).
    """
    if max_side > size:
        raise ValueError(f'max_side={max_side} exceeds the canvas size {size}')
    image = np.zeros((size, size), np.uint8)
    mask = np.zeros((size, size), np.uint8)
    instances: List[Dict] = []
    num_items = int(rng.integers(min_items, max_items + 1))
    for _ in range(num_items):
        for _ in range(max_tries):
            index = int(rng.integers(len(items)))
            side = int(rng.integers(min_side, max_side + 1))
            x = int(rng.integers(0, size - side + 1))
            y = int(rng.integers(0, size - side + 1))
            patch = resize_bilinear(items[index], side)
            ink = patch > threshold
            local = ink_box(ink)
            if local is None:
                continue
            box = (x + local[0], y + local[1], x + local[2], y + local[3])
            if all(box_iou(box, inst['bbox']) <= max_iou
                   for inst in instances):
                break
        else:
            continue  # no acceptable placement for this item
        region = (slice(y, y + side), slice(x, x + side))
        # Faint pixels blend by maximum; ink overwrites earlier items.
        image[region] = np.where(ink, patch,
                                 np.maximum(image[region], patch))
        mask[region][ink] = labels[index] + 1
        instances.append(dict(bbox=box, label=int(labels[index]),
                              index=index))
    if len(instances) < min_items:
        raise RuntimeError(
            f'placed only {len(instances)} of at least {min_items} items on '
            f'a {size}x{size} canvas in {max_tries} tries each; lower '
            '--max-side or raise --max-iou')
    return image, mask, instances


def load_split(data_root: str, split: str) -> Tuple[np.ndarray, np.ndarray]:
    """Read the Fashion-MNIST images and labels that feed a canvas split.

    Args:
        data_root (str): Folder of the IDX files.
        split (str): ``'train'`` (Fashion-MNIST train) or ``'val'``
            (Fashion-MNIST test).

    Returns:
        tuple: uint8 images (N, 28, 28) and int labels (N,).
    """
    prefix = SPLITS[split][0]
    arrays = []
    for stem in (f'{prefix}-images-idx3-ubyte', f'{prefix}-labels-idx1-ubyte'):
        for name in (stem + '.gz', stem):
            if osp.isfile(osp.join(data_root, name)):
                arrays.append(read_idx(osp.join(data_root, name)))
                break
        else:
            raise FileNotFoundError(
                f'{stem}(.gz) not found in {data_root!r}; pass the folder of '
                f'the Fashion-MNIST IDX files with --src')
    return arrays[0], arrays[1].astype(np.int64)


def save_png(array: np.ndarray, path: str) -> None:
    """Write a uint8 grey image as PNG (no metadata, so bytes are stable)."""
    Image.fromarray(array, mode='L').save(path, format='PNG', optimize=True)


def make_split(items: np.ndarray, labels: np.ndarray, split: str,
               num: int, out: str, seed: int, **canvas_kwargs) -> Dict:
    """Generate and write one split; return its COCO dict.

    Args:
        items (np.ndarray): Fashion-MNIST images of the source split.
        labels (np.ndarray): Their labels.
        split (str): ``'train'`` or ``'val'``.
        num (int): Number of canvases.
        out (str): Output root.
        seed (int): Global seed.
        **canvas_kwargs: Passed to :func:`make_canvas`.

    Returns:
        dict: The COCO ``instances`` content of the split.
    """
    img_dir = osp.join(out, 'images', split)
    mask_dir = osp.join(out, 'masks', split)
    os.makedirs(img_dir, exist_ok=True)
    os.makedirs(mask_dir, exist_ok=True)
    coco_images, coco_anns = [], []
    for i in range(num):
        image, mask, instances = make_canvas(
            items, labels, canvas_rng(seed, split, i), **canvas_kwargs)
        name = f'{i:06d}.png'
        save_png(image, osp.join(img_dir, name))
        save_png(mask, osp.join(mask_dir, name))
        coco_images.append(
            dict(id=i + 1, file_name=name, width=image.shape[1],
                 height=image.shape[0]))
        for inst in instances:
            x0, y0, x1, y1 = inst['bbox']
            w, h = x1 - x0 + 1, y1 - y0 + 1
            coco_anns.append(
                dict(id=len(coco_anns) + 1, image_id=i + 1,
                     category_id=inst['label'] + 1, bbox=[x0, y0, w, h],
                     area=w * h, iscrowd=0,
                     segmentation=[[x0, y0, x0 + w, y0, x0 + w, y0 + h,
                                    x0, y0 + h]]))
    categories = [
        dict(id=k + 1, name=name)
        for k, name in enumerate(FASHION_MNIST_CLASSES)
    ]
    return dict(images=coco_images, annotations=coco_anns,
                categories=categories)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--src', default=SUBSET_FASHION_MNIST_ROOT,
                        help='folder of the Fashion-MNIST IDX files')
    parser.add_argument('--out', default='data/fashion_mnist_dense')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--num-train', type=int, default=800)
    parser.add_argument('--num-val', type=int, default=200)
    parser.add_argument('--size', type=int, default=96)
    parser.add_argument('--min-side', type=int, default=20)
    parser.add_argument('--max-side', type=int, default=44)
    parser.add_argument('--max-iou', type=float, default=0.2)
    parser.add_argument('--threshold', type=int, default=30)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    canvas_kwargs = dict(size=args.size, min_side=args.min_side,
                         max_side=args.max_side, max_iou=args.max_iou,
                         threshold=args.threshold)
    os.makedirs(osp.join(args.out, 'annotations'), exist_ok=True)
    for split, num in (('train', args.num_train), ('val', args.num_val)):
        items, labels = load_split(args.src, split)
        coco = make_split(items, labels, split, num, args.out, args.seed,
                          **canvas_kwargs)
        ann_file = osp.join(args.out, 'annotations',
                            f'instances_{split}.json')
        with open(ann_file, 'w') as f:
            json.dump(coco, f, separators=(',', ':'))
            f.write('\n')
        print(f'{split}: {num} canvases, {len(coco["annotations"])} items '
              f'-> {args.out}')


if __name__ == '__main__':
    main()
