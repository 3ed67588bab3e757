"""0.x ``data=dict(...)`` (mmcls 0.x datasets and pipelines) -> mmengine
dataloaders of mmpretrain 1.2 datasets and transforms.

The entry point is :func:`translate_data`; each 0.x transform has a small
handler in :data:`TRANSFORM_HANDLERS`, each dataset family one in
:data:`DATASET_FAMILIES`. Data sets of mmdet 2.x / mmseg 0.x and their
pipelines are translated by the tables of :mod:`.v0_detseg`.
"""
import copy
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from mmengine.logging import print_log

from .v0_errors import Untranslatable

#: Keys of the 0.x ``data`` dict that configure loaders, not data sets.
LOADER_KEYS = ('samples_per_gpu', 'workers_per_gpu', 'persistent_workers',
               'pin_memory', 'split', 'train_dataloader', 'val_dataloader',
               'test_dataloader')
SPLITS = ('train', 'val', 'test')


def log(msg: str) -> None:
    """Log one step of the translation of a 0.x config."""
    print_log(f'0.x config: {msg}', logger='current')


def short_type(cfg: dict) -> str:
    """The type name of a config dict without its scope (``mmcls.X`` ->
    ``X``)."""
    return str(cfg.get('type', '')).split('.')[-1]


# ----------------------------------------------------------------- pipelines
class PipelineState:
    """What the translation of one pipeline found.

    Attributes:
        where (str): The pipeline's key, for messages.
        task (str): ``'cls'``, ``'det'`` or ``'seg'`` (the data set's).
        normalize (dict | None): The arguments of its ``Normalize``.
        pad (dict): The arguments of its ``Pad`` (det / seg: the data
            preprocessor pads the batch).
        test_scale (tuple | None): The ``img_scale`` of the enclosing
            ``MultiScaleFlipAug`` while its transforms are translated.
        loads_annotations (bool): Whether it has ``LoadAnnotations``.
    """

    def __init__(self, where: str) -> None:
        self.where = where
        self.task = 'cls'
        self.normalize: Optional[dict] = None
        self.pad: Dict[str, Any] = {}
        self.test_scale: Optional[tuple] = None
        self.loads_annotations = False


Transform = Optional[dict]
TransformHandler = Callable[[dict, PipelineState], Transform]


def _renamed(cfg: dict, new_type: str,
             renames: Dict[str, str]) -> dict:
    """``cfg`` as ``new_type`` with its keys renamed by ``renames``."""
    out = {'type': new_type}
    for key, value in cfg.items():
        if key != 'type':
            out[renames.get(key, key)] = value
    return out


def _hw_to_wh(size: Any) -> Any:
    """An mmcls 0.x ``(h, w)`` size as mmcv's ``(w, h)``; ints unchanged."""
    if isinstance(size, (list, tuple)):
        return (size[1], size[0])
    return size


def _refuse_efficientnet_style(cfg: dict, state: PipelineState,
                               replacement: str) -> None:
    if cfg.get('efficientnet_style', False):
        raise Untranslatable(
            f'{state.where}: {cfg["type"]}(efficientnet_style=True)',
            f'mmpretrain.{replacement} in a 1.x config')


def random_resized_crop(cfg: dict, state: PipelineState) -> dict:
    """0.x ``RandomResizedCrop(size, scale, ratio)`` -> mmpretrain's
    ``(scale, crop_ratio_range, aspect_ratio_range)``."""
    _refuse_efficientnet_style(cfg, state, 'EfficientNetRandomCrop')
    cfg = {k: v for k, v in cfg.items()
           if k not in ('efficientnet_style', 'min_covered', 'crop_padding')}
    out = _renamed(cfg, 'mmpretrain.RandomResizedCrop', {
        'scale': 'crop_ratio_range',
        'ratio': 'aspect_ratio_range',
    })
    out['scale'] = _hw_to_wh(out.pop('size'))
    return out


def center_crop(cfg: dict, state: PipelineState) -> dict:
    """0.x ``CenterCrop(crop_size=(h, w))`` -> mmcv's ``(w, h)``."""
    _refuse_efficientnet_style(cfg, state, 'EfficientNetCenterCrop')
    return dict(
        type='mmpretrain.CenterCrop',
        crop_size=_hw_to_wh(cfg['crop_size']))


def resize(cfg: dict, state: PipelineState) -> dict:
    """0.x ``Resize(size)``: ``(s, -1)`` resizes the ``adaptive_side`` to
    ``s`` (-> ``ResizeEdge``); an int or ``(h, w)`` resizes to that size."""
    size = cfg['size']
    extra = {k: cfg[k] for k in ('backend', 'interpolation') if k in cfg}
    if isinstance(size, (list, tuple)) and size[1] == -1:
        return dict(
            type='mmpretrain.ResizeEdge',
            scale=size[0],
            edge=cfg.get('adaptive_side', 'short'),
            **extra)
    if isinstance(size, int):
        size = (size, size)
    return dict(type='mmpretrain.Resize', scale=_hw_to_wh(size), **extra)


def random_flip(cfg: dict, state: PipelineState) -> dict:
    """0.x ``RandomFlip(flip_prob)`` -> ``RandomFlip(prob)``."""
    out = _renamed(cfg, 'mmpretrain.RandomFlip', {'flip_prob': 'prob'})
    out.setdefault('prob', 0.5)  # the 0.x default
    return out


def random_crop(cfg: dict, state: PipelineState) -> dict:
    """0.x ``RandomCrop(size)`` -> ``RandomCrop(crop_size)`` (both (h, w))."""
    return _renamed(cfg, 'mmpretrain.RandomCrop', {'size': 'crop_size'})


def same_args(new_type: str) -> TransformHandler:
    """A handler for a transform whose arguments did not change."""

    def handler(cfg: dict, state: PipelineState) -> dict:
        return _renamed(cfg, new_type, {})

    handler.__doc__ = f'0.x transform -> {new_type}, same arguments.'
    return handler


def padded_after_normalize(new_type: str) -> TransformHandler:
    """A handler for a transform with ``pad_val`` that may come after
    ``Normalize``: its pad value is then mapped back to pixel values, as
    normalisation now happens in the model's data preprocessor."""

    def handler(cfg: dict, state: PipelineState) -> dict:
        out = _renamed(cfg, new_type, {})
        if state.normalize is not None and 'pad_val' in out:
            out['pad_val'] = pixel_value(out['pad_val'], state.normalize)
            log(f'{state.where}: {cfg["type"]} came after Normalize; its '
                f'pad_val is now {out["pad_val"]} in pixel values')
        return out

    handler.__doc__ = f'0.x transform -> {new_type}, pad value in pixels.'
    return handler


def pixel_value(value: Any, normalize: dict) -> Tuple[int, ...]:
    """The pixel value (channel order of the loaded image) whose normalised
    value is ``value``."""
    mean, std = normalize['mean'], normalize['std']
    values = value if isinstance(value, (list, tuple)) else [value] * len(
        mean)
    pixels = [round(v * s + m) for v, s, m in zip(values, std, mean)]
    if normalize.get('to_rgb', True):
        pixels.reverse()  # normalised RGB -> loaded BGR
    return tuple(int(p) for p in pixels)


def normalize(cfg: dict, state: PipelineState) -> None:
    """0.x ``Normalize``: moves to the model's data preprocessor."""
    state.normalize = dict(
        mean=list(cfg['mean']),
        std=list(cfg['std']),
        to_rgb=bool(cfg.get('to_rgb', True)))
    return None


def formatting(cfg: dict, state: PipelineState) -> None:
    """0.x ``ImageToTensor`` / ``ToTensor`` / ``Collect`` / ...: replaced by
    one ``PackInputs`` at the end of the pipeline."""
    return None


def load_image(cfg: dict, state: PipelineState) -> dict:
    """0.x ``LoadImageFromFile``: same arguments."""
    return _renamed(cfg, 'mmpretrain.LoadImageFromFile', {})


#: 0.x (mmcls) transform type -> handler returning the new transform
#: (None: dropped, see the handler).
TRANSFORM_HANDLERS: Dict[str, TransformHandler] = {
    'LoadImageFromFile': load_image,
    'RandomResizedCrop': random_resized_crop,
    'CenterCrop': center_crop,
    'Resize': resize,
    'RandomFlip': random_flip,
    'RandomCrop': random_crop,
    'ColorJitter': same_args('mmpretrain.ColorJitter'),
    'Lighting': same_args('mmpretrain.Lighting'),
    'RandomGrayscale': same_args('mmpretrain.RandomGrayscale'),
    'Cutout': padded_after_normalize('mmpretrain.Cutout'),
    'Normalize': normalize,
    'ImageToTensor': formatting,
    'ToTensor': formatting,
    'ToNumpy': formatting,
    'Transpose': formatting,
    'Collect': formatting,
}


def translate_pipeline(pipeline: Sequence[dict],
                       where: str) -> Tuple[List[dict], PipelineState]:
    """Translate one mmcls 0.x pipeline.

    Args:
        pipeline (list[dict]): The 0.x transforms.
        where (str): The pipeline's key (``data.train.pipeline``).

    Returns:
        tuple: The mmpretrain transforms (ending with ``PackInputs``) and
        what the pipeline found (``normalize``: the arguments of its
        ``Normalize``, None without one).

    Raises:
        Untranslatable: A transform has no known translation.
    """
    state = PipelineState(where)
    out = translate_transforms(pipeline, state, TRANSFORM_HANDLERS)
    out.append(dict(type='mmpretrain.PackInputs'))
    return out, state


def translate_transforms(pipeline: Sequence[dict], state: PipelineState,
                         table: Dict[str, Callable[..., Any]]) -> List[dict]:
    """Translate 0.x transforms with the handlers of ``table``.

    Args:
        pipeline (list[dict]): The 0.x transforms.
        state (PipelineState): What the pipeline found so far.
        table (dict): Transform type -> handler, returning the new
            transform, a list of them, or None (dropped).

    Returns:
        list[dict]: The new transforms (without the final pack).

    Raises:
        Untranslatable: A transform has no handler in ``table``.
    """
    out: List[dict] = []
    for i, cfg in enumerate(pipeline):
        name = short_type(cfg)
        handler = table.get(name)
        if handler is None:
            raise Untranslatable(
                f'{state.where}[{i}] (type={cfg.get("type")!r})',
                'its transform in a 1.x pipeline (known 0.x transforms: '
                f'{", ".join(sorted(table))})')
        new = handler(dict(cfg), state)
        if isinstance(new, list):
            out.extend(new)
        elif new is not None:
            out.append(new)
    return out


# ------------------------------------------------------------------ datasets
def folder_dataset(cfg: dict, where: str) -> dict:
    """0.x ``ImageNet`` / ``CustomDataset``: ``data_prefix`` (the image
    folder) and ``ann_file`` (relative to the working directory) keep their
    meaning with ``data_root=''``."""
    out = dict(cfg)
    out['data_root'] = ''
    out['data_prefix'] = cfg.get('data_prefix', '')
    out['ann_file'] = cfg.get('ann_file') or ''
    return out


#: Data sets whose mmpretrain class downloads missing files by default.
DOWNLOADING_DATASETS = ('CIFAR10', 'CIFAR100', 'MNIST', 'FashionMNIST')


def file_dataset(cfg: dict, where: str) -> dict:
    """0.x ``CIFAR10`` & co.: ``data_prefix`` is the ``data_root``, the split
    follows ``test_mode``; nothing is downloaded."""
    out = dict(cfg)
    if 'data_prefix' in out:
        out['data_root'] = out.pop('data_prefix')
    out.setdefault('split', 'test' if cfg.get('test_mode') else 'train')
    if short_type(cfg) in DOWNLOADING_DATASETS:
        out.setdefault('download', False)
    return out


#: Data set type -> handler of its arguments.
DATASET_FAMILIES: Dict[str, Callable[[dict, str], dict]] = {
    'ImageNet': folder_dataset,
    'ImageNet21k': folder_dataset,
    'CustomDataset': folder_dataset,
    'CIFAR10': file_dataset,
    'CIFAR100': file_dataset,
    'MNIST': file_dataset,
    'FashionMNIST': file_dataset,
    'FashionMNISTAsCIFAR': file_dataset,
}


def translate_dataset(cfg: dict,
                      where: str) -> Tuple[dict, Optional[PipelineState]]:
    """Translate one 0.x data set config (wrappers with ``dataset=``
    included).

    Args:
        cfg (dict): The 0.x data set.
        where (str): Its key (``data.train``), for messages.

    Returns:
        tuple: The data set config and what its pipeline found (None
        without a pipeline).
    """
    from . import v0_detseg
    cfg = copy.deepcopy(dict(cfg))
    if 'dataset' in cfg:  # RepeatDataset, ClassBalancedDataset, ...
        cfg['dataset'], state = translate_dataset(cfg['dataset'],
                                                  f'{where}.dataset')
        return cfg, state
    task = v0_detseg.task_of(short_type(cfg))
    if task is not None:
        return v0_detseg.translate_dense_dataset(cfg, where, task)
    handler = DATASET_FAMILIES.get(short_type(cfg))
    if handler is None:
        known = sorted(DATASET_FAMILIES) + sorted(
            name for t in v0_detseg.TASKS.values() for name in t.datasets)
        raise Untranslatable(
            f'{where} (type={cfg.get("type")!r})',
            'an mmpretrain / mmdet / mmseg data set in a 1.x config (known '
            f'0.x data sets: {", ".join(known)})')
    cfg = handler(cfg, where)
    state = None
    if 'pipeline' in cfg:
        cfg['pipeline'], state = translate_pipeline(cfg['pipeline'],
                                                    f'{where}.pipeline')
    return cfg, state


# --------------------------------------------------------------- dataloaders
def loader_overrides(data: dict, split: str) -> dict:
    """Batch size and workers of one split's loader: ``data`` defaults,
    ``data.<split>.samples_per_gpu`` and ``data.<split>_dataloader``."""
    opts = {
        'samples_per_gpu': data.get('samples_per_gpu'),
        'workers_per_gpu': data.get('workers_per_gpu'),
    }
    for key in ('persistent_workers', 'pin_memory'):
        if key in data:
            opts[key] = data[key]
    for key in ('samples_per_gpu', 'workers_per_gpu'):
        if key in data.get(split, {}):
            opts[key] = data[split][key]
    opts.update(data.get(f'{split}_dataloader', {}))
    return opts


def build_loader(dataset: dict, opts: dict, shuffle: bool) -> dict:
    """An mmengine dataloader config from 0.x loader options."""
    loader = dict(
        batch_size=opts.get('samples_per_gpu') or 1,
        num_workers=opts.get('workers_per_gpu') or 0,
        dataset=dataset,
        sampler=dict(type='DefaultSampler', shuffle=shuffle))
    for key in ('persistent_workers', 'pin_memory', 'drop_last'):
        if key in opts:
            loader[key] = opts[key]
    return loader


def split_in_halves(dataset: dict) -> List[dict]:
    """0.x ``data.split=True`` (DARTS): two halves of the training set, one
    for the weights and one for the architecture parameters."""
    return [
        dict(type='mmpretrain.KFoldDataset', dataset=copy.deepcopy(dataset),
             num_splits=2, fold=0, test_mode=test_mode)
        for test_mode in (False, True)
    ]


def translate_data(data: dict) -> Tuple[Dict[str, Any], Optional[dict]]:
    """Translate the 0.x ``data`` dict.

    Args:
        data (dict): ``dict(samples_per_gpu, workers_per_gpu, train, val,
            test, [split])``.

    Returns:
        tuple: The new top-level keys (``train_dataloader``,
        ``val_dataloader``, ``test_dataloader``) and the model's data
        preprocessor derived from the pipelines' ``Normalize`` (and
        ``Pad``), or None (mmcls pipelines without ``Normalize``).

    Raises:
        Untranslatable: An unknown key, data set or transform, or
            pipelines that normalise differently.
    """
    unknown = set(data) - set(SPLITS) - set(LOADER_KEYS)
    if unknown:
        raise Untranslatable(
            f'data.{sorted(unknown)[0]}',
            'the keys of train_dataloader / val_dataloader / '
            'test_dataloader in a 1.x config')
    new: Dict[str, Any] = {}
    states: Dict[str, PipelineState] = {}
    for split in SPLITS:
        if split not in data:
            continue
        dataset, state = translate_dataset(
            {k: v for k, v in data[split].items()
             if k not in ('samples_per_gpu', 'workers_per_gpu')},
            f'data.{split}')
        if state is not None:
            states[split] = state
        loader = build_loader(dataset, loader_overrides(data, split),
                              shuffle=split == 'train')
        new[f'{split}_dataloader'] = loader
    if data.get('split') and 'train_dataloader' in new:
        halves = split_in_halves(new['train_dataloader']['dataset'])
        new['train_dataloader'] = [
            dict(new['train_dataloader'], dataset=half) for half in halves
        ]
        log('data.split=True -> train_dataloader is a list of the two '
            'halves of the training set (mmpretrain.KFoldDataset)')
    return new, the_data_preprocessor(states)


def the_data_preprocessor(states: Dict[str, PipelineState]
                          ) -> Optional[dict]:
    """The model's data preprocessor: one for every split, from the
    pipelines' ``Normalize`` (and ``Pad`` for det / seg).

    Args:
        states (dict): Split -> what its pipeline found.

    Returns:
        dict | None: An ``mmpretrain.ClsDataPreprocessor`` (None without
        ``Normalize``), ``mmdet.DetDataPreprocessor`` or
        ``mmseg.SegDataPreProcessor`` config.
    """
    from . import v0_detseg
    tasks = sorted({state.task for state in states.values()})
    if len(tasks) > 1:
        raise Untranslatable(f'data.* (data sets of tasks {tasks})',
                             'data sets of one task')
    norm = the_normalize({
        split: state.normalize
        for split, state in states.items() if state.normalize is not None
    })
    if not tasks or tasks[0] == 'cls':
        return None if norm is None else dict(
            type='mmpretrain.ClsDataPreprocessor', **norm)
    return v0_detseg.data_preprocessor(tasks[0], norm, the_pad(states))


def the_pad(states: Dict[str, PipelineState]) -> Dict[str, Any]:
    """The ``Pad`` arguments of all pipelines (one preprocessor pads every
    split; a split without ``Pad`` takes the others')."""
    pads: Dict[str, Any] = {}
    for split, state in states.items():
        for key, value in state.pad.items():
            if key in pads and pads[key] != value:
                raise Untranslatable(
                    f'data.{split}.pipeline Pad({key}={value!r}) (another '
                    f'split pads with {pads[key]!r})',
                    'one padding in the model\'s data_preprocessor')
            pads[key] = value
    return pads


def the_normalize(norms: Dict[str, dict]) -> Optional[dict]:
    """The one ``Normalize`` of all pipelines (the model's data
    preprocessor normalises every split alike)."""
    distinct = {repr(sorted(n.items())) for n in norms.values()}
    if len(distinct) > 1:
        raise Untranslatable(
            'data.*.pipeline Normalize (differs between '
            f'{", ".join(sorted(norms))})',
            'one mean/std/to_rgb in model.data_preprocessor')
    return next(iter(norms.values()), None)
