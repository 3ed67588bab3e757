"""mmdet 2.x / mmseg 0.x data of 0.x configs -> mmdet 3.x / mmseg 1.x.

Called from :mod:`.v0_data` for the data sets listed in :data:`TASKS`.
Each 0.x transform has a small handler in :data:`DET_TRANSFORMS` /
:data:`SEG_TRANSFORMS`, each data set one in :data:`DET_DATASETS` /
:data:`SEG_DATASETS`, each metric name of ``evaluation`` one entry of
:data:`METRICS`.

What moved out of the pipelines: ``Normalize`` and ``Pad`` (the padding of
the batch) become the model's data preprocessor (see
:func:`data_preprocessor`); ``DefaultFormatBundle`` / ``ImageToTensor`` /
``Collect`` become one ``PackDetInputs`` / ``PackSegInputs``; a single-scale
``MultiScaleFlipAug`` without flipping becomes its inner transforms.

Only dicts are written here: mmdet / mmseg are not imported, so the module
loads without them.
"""
import copy
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from mmengine.fileio import list_from_file

from .v0_data import (PipelineState, _renamed, log, normalize, short_type,
                      translate_transforms)
from .v0_errors import Untranslatable

DET, SEG = 'det', 'seg'

DenseHandler = Callable[[dict, PipelineState], Any]


# --------------------------------------------------------------- transforms
def scoped(task: str, name: str) -> str:
    """``name`` in the registry scope of ``task`` (``mmdet.X`` /
    ``mmseg.X``)."""
    return f'mm{task}.{name}'


def load_image(task: str) -> DenseHandler:
    """A handler of ``LoadImageFromFile`` (same arguments)."""

    def handler(cfg: dict, state: PipelineState) -> dict:
        return _renamed(cfg, scoped(task, 'LoadImageFromFile'), {})

    handler.__doc__ = f'0.x ``LoadImageFromFile`` -> mm{task}, same args.'
    return handler


def det_load_annotations(cfg: dict, state: PipelineState) -> dict:
    """mmdet 2.x ``LoadAnnotations(with_bbox, with_label, with_mask,
    with_seg, poly2mask)``: same arguments in mmdet 3."""
    return _renamed(cfg, 'mmdet.LoadAnnotations', {})


def seg_load_annotations(cfg: dict, state: PipelineState) -> dict:
    """mmseg 0.x ``LoadAnnotations(reduce_zero_label=False,
    imdecode_backend='pillow')``; the 0.x default of ``reduce_zero_label``
    is written out (mmseg 1.x would take the data set's)."""
    out = _renamed(cfg, 'mmseg.LoadAnnotations', {})
    out.setdefault('reduce_zero_label', False)
    state.loads_annotations = True
    return out


def resize(task: str) -> DenseHandler:
    """A handler of the 0.x ``Resize`` of ``task`` (see
    :func:`translate_resize`)."""

    def handler(cfg: dict, state: PipelineState) -> dict:
        return translate_resize(cfg, state, task)

    handler.__doc__ = f'0.x ``Resize`` -> mm{task} ``Resize`` / ' \
        '``RandomResize`` / ``RandomChoiceResize``.'
    return handler


#: 0.x ``Resize`` arguments that keep their name and meaning.
RESIZE_KEPT_ARGS = ('backend', 'interpolation')


def translate_resize(cfg: dict, state: PipelineState, task: str) -> dict:
    """mmdet 2.x / mmseg 0.x ``Resize(img_scale, ratio_range,
    multiscale_mode, keep_ratio=True)``:

    * one scale -> ``Resize(scale, keep_ratio)``;
    * one scale and ``ratio_range`` -> ``RandomResize(scale, ratio_range,
      keep_ratio)``;
    * several scales, ``multiscale_mode='range'`` -> ``RandomResize(scale=
      [min, max])``; ``'value'`` -> ``RandomChoiceResize(scales)``.

    ``keep_ratio`` defaulted to True in 0.x (False now): it is written out.
    """
    cfg = dict(cfg)
    cfg.pop('type')
    scale = cfg.pop('img_scale', None)
    if scale is None:
        scale = state.test_scale
    if scale is None:
        raise Untranslatable(
            f'{state.where}: Resize without img_scale (outside '
            'MultiScaleFlipAug)', f'mm{task}.Resize(scale=...)')
    resize_args = dict(keep_ratio=cfg.pop('keep_ratio', True))
    for key in RESIZE_KEPT_ARGS:
        if key in cfg:
            resize_args[key] = cfg.pop(key)
    if 'bbox_clip_border' in cfg:
        resize_args['clip_object_border'] = cfg.pop('bbox_clip_border')
    ratio_range = cfg.pop('ratio_range', None)
    mode = cfg.pop('multiscale_mode', 'range')
    cfg.pop('override', None)  # 0.x: only for a second Resize
    if cfg:
        raise Untranslatable(f'{state.where}: Resize({sorted(cfg)[0]}=...)',
                             f'mm{task} Resize arguments in a 1.x pipeline')
    resize_type = scoped(task, 'Resize')
    if is_scale_list(scale) and len(scale) == 1:
        scale = scale[0]  # 0.x: a list of one scale is that scale
    scales = [tuple(s) for s in scale] if is_scale_list(scale) else None
    if scales is None and ratio_range is None:
        return dict(type=resize_type, scale=tuple(scale), **resize_args)
    if scales is None:
        return dict(type='RandomResize', scale=tuple(scale),
                    ratio_range=tuple(ratio_range), resize_type=resize_type,
                    **resize_args)
    if ratio_range is not None:
        raise Untranslatable(
            f'{state.where}: Resize(img_scale=[...], ratio_range=...)',
            'one img_scale with ratio_range (0.x ignored the list)')
    if mode == 'value':
        return dict(type='RandomChoiceResize', scales=scales,
                    resize_type=resize_type, **resize_args)
    return dict(type='RandomResize', scale=scales, resize_type=resize_type,
                **resize_args)


def is_scale_list(scale: Any) -> bool:
    """Whether ``scale`` is a list of ``(w, h)`` scales (not one scale)."""
    return isinstance(scale, (list, tuple)) and bool(scale) and isinstance(
        scale[0], (list, tuple))


def random_flip(task: str) -> DenseHandler:
    """A handler of the 0.x ``RandomFlip`` (see :func:`translate_flip`)."""

    def handler(cfg: dict, state: PipelineState) -> Optional[dict]:
        return translate_flip(cfg, state, task)

    handler.__doc__ = f'0.x ``RandomFlip`` -> mm{task} ``RandomFlip(prob)``.'
    return handler


def translate_flip(cfg: dict, state: PipelineState,
                   task: str) -> Optional[dict]:
    """mmdet 2.x ``RandomFlip(flip_ratio)`` / mmseg 0.x ``RandomFlip(prob)``
    -> ``RandomFlip(prob)``. Without a ratio 0.x never flipped (in a test
    pipeline ``MultiScaleFlipAug(flip=False)`` decided): it is dropped."""
    out = _renamed(cfg, scoped(task, 'RandomFlip'), {'flip_ratio': 'prob'})
    if out.get('prob') is None:
        log(f'{state.where}: RandomFlip without a ratio never flips: '
            'dropped')
        return None
    return out


def random_crop(cfg: dict, state: PipelineState) -> dict:
    """mmseg 0.x ``RandomCrop(crop_size, cat_max_ratio, ignore_index)``:
    same arguments (``crop_size`` is ``(h, w)`` in both)."""
    return _renamed(cfg, 'mmseg.RandomCrop', {})


def photo_metric_distortion(task: str) -> DenseHandler:
    """A handler of ``PhotoMetricDistortion`` (same arguments)."""

    def handler(cfg: dict, state: PipelineState) -> dict:
        return _renamed(cfg, scoped(task, 'PhotoMetricDistortion'), {})

    handler.__doc__ = f'0.x ``PhotoMetricDistortion`` -> mm{task}, same ' \
        'arguments.'
    return handler


def pad(cfg: dict, state: PipelineState) -> None:
    """0.x ``Pad(size | size_divisor, pad_val, seg_pad_val)`` after
    ``Normalize``: the batch is padded by the data preprocessor now (after
    normalisation too, so the pad values keep their meaning)."""
    if state.normalize is None:
        raise Untranslatable(
            f'{state.where}: Pad before Normalize (pads pixel values)',
            'Pad after Normalize, or the data preprocessor\'s pad values '
            'in a 1.x config')
    args = {k: v for k, v in cfg.items() if k != 'type'}
    unknown = set(args) - set(PAD_TO_PREPROCESSOR)
    if unknown:
        raise Untranslatable(f'{state.where}: Pad({sorted(unknown)[0]}=...)',
                             'the data preprocessor in a 1.x config')
    for key, value in args.items():
        state.pad[key] = value
    return None


#: 0.x ``Pad`` argument -> (mmdet DetDataPreprocessor, mmseg
#: SegDataPreProcessor) argument (None: not supported there).
PAD_TO_PREPROCESSOR: Dict[str, Tuple[Optional[str], Optional[str]]] = {
    'size_divisor': ('pad_size_divisor', 'size_divisor'),
    'size': (None, 'size'),
    'pad_val': ('pad_value', 'pad_val'),
    'seg_pad_val': ('seg_pad_value', 'seg_pad_val'),
}


def formatting(cfg: dict, state: PipelineState) -> None:
    """0.x ``DefaultFormatBundle`` / ``ImageToTensor`` / ``Collect`` / ...:
    replaced by one ``PackDetInputs`` / ``PackSegInputs`` at the end."""
    return None


def multi_scale_flip_aug(table: Dict[str, DenseHandler]) -> DenseHandler:
    """A handler of ``MultiScaleFlipAug`` whose inner transforms use
    ``table`` (see :func:`translate_multi_scale_flip_aug`)."""

    def handler(cfg: dict, state: PipelineState) -> List[dict]:
        return translate_multi_scale_flip_aug(cfg, state, table)

    handler.__doc__ = '0.x single-scale ``MultiScaleFlipAug(flip=False)`` ' \
        '-> its inner transforms, resized to its img_scale.'
    return handler


def translate_multi_scale_flip_aug(cfg: dict, state: PipelineState,
                                   table: Dict[str, DenseHandler]
                                   ) -> List[dict]:
    """One scale without flipping: the inner transforms, their ``Resize``
    at the wrapper's ``img_scale``. Test-time augmentation (several scales,
    ratios or flips) is refused."""
    scale = cfg.get('img_scale')
    if is_scale_list(scale) and len(scale) == 1:
        scale = scale[0]
    if (cfg.get('flip') or cfg.get('img_ratios') or cfg.get('scale_factor')
            or scale is None or is_scale_list(scale)):
        raise Untranslatable(
            f'{state.where}: MultiScaleFlipAug (test-time augmentation: '
            f'img_scale={cfg.get("img_scale")!r}, flip={cfg.get("flip")!r})',
            'one img_scale and flip=False, or TestTimeAug in a 1.x config')
    state.test_scale = tuple(scale)
    try:
        return translate_transforms(cfg.get('transforms', []), state, table)
    finally:
        state.test_scale = None


def common_transforms(task: str) -> Dict[str, DenseHandler]:
    """The 0.x transforms mmdet 2.x and mmseg 0.x share."""
    return {
        'LoadImageFromFile': load_image(task),
        'Resize': resize(task),
        'RandomFlip': random_flip(task),
        'PhotoMetricDistortion': photo_metric_distortion(task),
        'Normalize': normalize,
        'Pad': pad,
        'DefaultFormatBundle': formatting,
        'ImageToTensor': formatting,
        'ToTensor': formatting,
        'Collect': formatting,
    }


#: mmdet 2.x transform type -> handler (None returned: dropped).
DET_TRANSFORMS: Dict[str, DenseHandler] = dict(
    common_transforms(DET), LoadAnnotations=det_load_annotations)
DET_TRANSFORMS['MultiScaleFlipAug'] = multi_scale_flip_aug(DET_TRANSFORMS)

#: mmseg 0.x transform type -> handler (None returned: dropped).
SEG_TRANSFORMS: Dict[str, DenseHandler] = dict(
    common_transforms(SEG),
    LoadAnnotations=seg_load_annotations,
    RandomCrop=random_crop)
SEG_TRANSFORMS['MultiScaleFlipAug'] = multi_scale_flip_aug(SEG_TRANSFORMS)


def translate_dense_pipeline(pipeline: Sequence[dict], where: str,
                             task: str, evaluated: bool
                             ) -> Tuple[List[dict], PipelineState]:
    """Translate one mmdet 2.x / mmseg 0.x pipeline.

    An evaluated segmentation pipeline without ``LoadAnnotations`` (0.x
    test pipelines: the metric read the label maps itself) loads them after
    resizing, as ``IoUMetric`` reads them from the data samples.

    Args:
        pipeline (list[dict]): The 0.x transforms.
        where (str): The pipeline's key (``data.val.pipeline``).
        task (str): ``'det'`` or ``'seg'``.
        evaluated (bool): The pipeline of a validation / test data set.

    Returns:
        tuple: The new transforms (ending with the pack) and the state
        (``normalize``, ``pad``) for the data preprocessor.
    """
    state = PipelineState(where)
    out = translate_transforms(pipeline, state, TASKS[task].transforms)
    if task == SEG and evaluated and not state.loads_annotations:
        out.append(dict(type='mmseg.LoadAnnotations'))
        log(f'{where}: mmseg.LoadAnnotations added (IoUMetric reads the '
            'label maps from the data samples)')
    out.append(dict(type=TASKS[task].pack))
    return out, state


# ----------------------------------------------------------------- datasets
def read_classes(classes: Any, where: str) -> Tuple[str, ...]:
    """0.x ``classes``: a sequence of names or a file with one per line."""
    if isinstance(classes, str):
        names = tuple(list_from_file(classes))
        log(f'{where}.classes: {len(names)} names read from {classes}')
        return names
    if isinstance(classes, (list, tuple)):
        return tuple(classes)
    raise Untranslatable(f'{where}.classes={classes!r}',
                         'a tuple of class names in metainfo')


def move_metainfo(cfg: dict, out: dict, where: str) -> None:
    """0.x ``classes`` / ``palette`` -> ``metainfo``."""
    metainfo: Dict[str, Any] = {}
    if cfg.get('classes') is not None:
        metainfo['classes'] = read_classes(cfg['classes'], where)
    if cfg.get('palette') is not None:
        metainfo['palette'] = cfg['palette']
    if metainfo:
        out['metainfo'] = metainfo


def refuse_unknown(cfg: dict, known: Sequence[str], where: str,
                   instead: str) -> None:
    """Refuse the first key of ``cfg`` not in ``known``."""
    unknown = sorted(set(cfg) - set(known))
    if unknown:
        raise Untranslatable(f'{where}.{unknown[0]}', instead)


#: mmdet 2.x ``CocoDataset`` arguments the translation knows.
COCO_ARGS = ('type', 'ann_file', 'img_prefix', 'seg_prefix', 'data_root',
             'proposal_file', 'test_mode', 'filter_empty_gt', 'classes',
             'pipeline', 'file_client_args')


def coco_dataset(cfg: dict, where: str) -> dict:
    """mmdet 2.x ``CocoDataset(ann_file, img_prefix, seg_prefix, data_root,
    filter_empty_gt=True, classes)`` -> ``ann_file``, ``data_prefix=
    dict(img, seg)``, ``filter_cfg`` (2.x dropped images without boxes and
    smaller than 32 pixels in training) and ``metainfo``."""
    refuse_unknown(cfg, COCO_ARGS, where,
                   'the arguments of mmdet.CocoDataset in a 1.x config')
    out: Dict[str, Any] = dict(
        type='mmdet.' + short_type(cfg),
        data_root=cfg.get('data_root') or '',
        ann_file=cfg['ann_file'],
        data_prefix=dict(img=cfg.get('img_prefix') or ''))
    if cfg.get('seg_prefix'):
        out['data_prefix']['seg'] = cfg['seg_prefix']
    for key in ('proposal_file', 'file_client_args', 'pipeline'):
        if cfg.get(key) is not None:
            out[key] = cfg[key]
    if cfg.get('test_mode'):
        out['test_mode'] = True
    else:
        out['filter_cfg'] = dict(
            filter_empty_gt=cfg.get('filter_empty_gt', True), min_size=32)
    move_metainfo(cfg, out, where)
    return out


#: mmseg 0.x ``CustomDataset`` arguments the translation knows.
SEG_ARGS = ('type', 'data_root', 'img_dir', 'ann_dir', 'img_suffix',
            'seg_map_suffix', 'split', 'test_mode', 'ignore_index',
            'reduce_zero_label', 'classes', 'palette', 'pipeline',
            'file_client_args')


def seg_dataset(cfg: dict, where: str) -> dict:
    """mmseg 0.x ``CityscapesDataset`` & co. ``(data_root, img_dir,
    ann_dir, split, ...)`` -> ``data_prefix=dict(img_path, seg_map_path)``,
    ``ann_file`` (the split file) and ``metainfo``; suffixes,
    ``reduce_zero_label``, ``ignore_index`` keep their meaning."""
    refuse_unknown(cfg, SEG_ARGS, where,
                   'the arguments of the mmseg data set in a 1.x config')
    out: Dict[str, Any] = dict(
        type='mmseg.' + short_type(cfg),
        data_root=cfg.get('data_root') or '',
        data_prefix=dict(
            img_path=cfg.get('img_dir') or '',
            seg_map_path=cfg.get('ann_dir') or ''))
    if cfg.get('split'):
        out['ann_file'] = cfg['split']
    for key in ('img_suffix', 'seg_map_suffix', 'ignore_index',
                'reduce_zero_label', 'pipeline', 'test_mode'):
        if cfg.get(key) is not None:
            out[key] = cfg[key]
    if 'file_client_args' in cfg:
        log(f'{where}.file_client_args dropped: mmseg 1.x data sets read '
            'local files by default (backend_args)')
    move_metainfo(cfg, out, where)
    return out


#: mmdet 2.x data set type -> handler.
DET_DATASETS: Dict[str, Callable[[dict, str], dict]] = {
    'CocoDataset': coco_dataset,
}

#: mmseg 0.x data set type -> handler (their 1.x classes have the same
#: names).
SEG_DATASETS: Dict[str, Callable[[dict, str], dict]] = {
    name: seg_dataset
    for name in ('CityscapesDataset', 'ADE20KDataset', 'PascalVOCDataset',
                 'PascalContextDataset', 'PascalContextDataset59',
                 'COCOStuffDataset')
}


class Task:
    """The tables of one dense task.

    Args:
        datasets (dict): 0.x data set type -> handler.
        transforms (dict): 0.x transform type -> handler.
        pack (str): The transform ending every pipeline.
    """

    def __init__(self, datasets: Dict[str, Callable[[dict, str], dict]],
                 transforms: Dict[str, DenseHandler], pack: str) -> None:
        self.datasets = datasets
        self.transforms = transforms
        self.pack = pack


#: Dense task -> its tables.
TASKS: Dict[str, Task] = {
    DET: Task(DET_DATASETS, DET_TRANSFORMS, 'mmdet.PackDetInputs'),
    SEG: Task(SEG_DATASETS, SEG_TRANSFORMS, 'mmseg.PackSegInputs'),
}


def task_of(dataset_type: str) -> Optional[str]:
    """The dense task of a 0.x data set type (None: not a dense one)."""
    for task, tables in TASKS.items():
        if dataset_type in tables.datasets:
            return task
    return None


def translate_dense_dataset(cfg: dict, where: str,
                            task: str) -> Tuple[dict, PipelineState]:
    """Translate one mmdet 2.x / mmseg 0.x data set and its pipeline.

    The data sets of ``data.val`` / ``data.test`` are in test mode, as 0.x
    tools built them.

    Args:
        cfg (dict): The 0.x data set.
        where (str): Its key (``data.train``).
        task (str): ``'det'`` or ``'seg'`` (see :func:`task_of`).

    Returns:
        tuple: The data set config and the state of its pipeline.
    """
    cfg = copy.deepcopy(cfg)
    evaluated = not where.startswith('data.train')
    if evaluated:
        cfg.setdefault('test_mode', True)
    out = TASKS[task].datasets[short_type(cfg)](cfg, where)
    out['pipeline'], state = translate_dense_pipeline(
        out.get('pipeline', []), f'{where}.pipeline', task, evaluated)
    state.task = task
    return out, state


# --------------------------------------------------------- data preprocessor
def data_preprocessor(task: str, norm: Optional[dict],
                      pads: Dict[str, Any]) -> dict:
    """The detector's / segmentor's data preprocessor from the pipelines'
    ``Normalize`` and ``Pad``.

    Args:
        task (str): ``'det'`` or ``'seg'``.
        norm (dict, optional): ``mean``, ``std``, ``to_rgb`` (None: no
            normalisation).
        pads (dict): 0.x ``Pad`` arguments (:data:`PAD_TO_PREPROCESSOR`).

    Returns:
        dict: A ``mmdet.DetDataPreprocessor`` / ``mmseg.SegDataPreProcessor``
        config.
    """
    column = 0 if task == DET else 1
    name = 'mmdet.DetDataPreprocessor' if task == DET else \
        'mmseg.SegDataPreProcessor'
    out: Dict[str, Any] = dict(type=name)
    if norm is not None:
        out.update(mean=list(norm['mean']), std=list(norm['std']),
                   bgr_to_rgb=bool(norm.get('to_rgb', True)))
    for key, value in pads.items():
        new_key = PAD_TO_PREPROCESSOR[key][column]
        if new_key is None:
            raise Untranslatable(f'data.*.pipeline Pad({key}=...)',
                                 f'the arguments of {name}')
        if key == 'pad_val' and isinstance(value, dict):
            value = value.get('img', 0)  # mmdet 2.x: dict(img, masks, seg)
        out[new_key] = tuple(value) if isinstance(value, list) else value
    return out


# ------------------------------------------------------------------ metrics
def coco_metric(names: List[str], options: dict,
                val_dataset: Optional[dict]) -> dict:
    """mmdet 2.x ``evaluation=dict(metric='bbox' | 'segm' | 'proposal',
    classwise, iou_thrs, proposal_nums, metric_items, jsonfile_prefix)``
    -> ``mmdet.CocoMetric`` with the validation annotation file."""
    if not val_dataset or 'ann_file' not in val_dataset:
        raise Untranslatable(
            f'evaluation.metric={names!r} without data.val.ann_file',
            'mmdet.CocoMetric(ann_file=...) in val_evaluator')
    ann_file = val_dataset['ann_file']
    root = val_dataset.get('data_root')
    if root and not ann_file.startswith('/'):
        ann_file = root.rstrip('/') + '/' + ann_file
    metric: Dict[str, Any] = dict(type='mmdet.CocoMetric', ann_file=ann_file,
                                  metric=names[0] if len(names) == 1 else
                                  names)
    for key in ('classwise', 'iou_thrs', 'proposal_nums', 'metric_items'):
        if key in options:
            metric[key] = options.pop(key)
    if 'jsonfile_prefix' in options:
        metric['outfile_prefix'] = options.pop('jsonfile_prefix')
    return metric


def iou_metric(names: List[str], options: dict,
               val_dataset: Optional[dict]) -> dict:
    """mmseg 0.x ``evaluation=dict(metric='mIoU' | 'mDice' | 'mFscore',
    pre_eval, efficient_test)`` -> ``mmseg.IoUMetric(iou_metrics)`` (label
    maps come from the data samples; the 0.x ways to save memory are
    dropped)."""
    for key in ('pre_eval', 'efficient_test'):
        if options.pop(key, None) is not None:
            log(f'evaluation.{key} dropped: IoUMetric accumulates per-image '
                'results')
    return dict(type='mmseg.IoUMetric', iou_metrics=list(names))


#: 0.x metric name of mmdet / mmseg -> handler building the metric for all
#: names of its family.
METRICS: Dict[str, Callable[[List[str], dict, Optional[dict]], dict]] = {
    'bbox': coco_metric,
    'segm': coco_metric,
    'proposal': coco_metric,
    'mIoU': iou_metric,
    'mDice': iou_metric,
    'mFscore': iou_metric,
}


def is_dense_metric(names: Sequence[str]) -> bool:
    """Whether every name of ``names`` is an mmdet / mmseg metric."""
    return bool(names) and all(name in METRICS for name in names)


def dense_metric(names: List[str], options: dict,
                 val_dataset: Optional[dict]) -> dict:
    """The metric of mmdet / mmseg metric names (one family).

    Args:
        names (list[str]): 0.x metric names.
        options (dict): The other keys of ``evaluation``; those the metric
            takes are removed.
        val_dataset (dict, optional): The 0.x ``data.val``.

    Returns:
        dict: The metric config.
    """
    handlers = {METRICS[name] for name in names}
    if len(handlers) > 1:
        raise Untranslatable(f'evaluation.metric={names!r} (two toolboxes)',
                             'one mmdet or mmseg metric in val_evaluator')
    metric = handlers.pop()(names, options, val_dataset)
    log(f'evaluation.metric={names!r} -> {metric["type"]}')
    return metric
