"""Feature-map pictures of what recorders see while a model is tested (the
1.x ``RazorVisualizationHook``)."""
import os
import os.path as osp
from typing import Any, Dict, Optional, Sequence

import mmcv
import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.visualization import Visualizer

from mmrazor.models.task_modules.recorder import RecorderManager
from mmrazor.registry import HOOKS

#: Keys of one entry of ``mappings``.
MAPPING_KEYS = ('recorder', 'record_idx', 'data_idx')

#: ``Visualizer.draw_featmap`` arguments and their defaults here.
DRAW_DEFAULTS = dict(
    channel_reduction='pixel_wise_max',
    topk=20,
    arrangement=(4, 5),
    resize_shape=None,
    alpha=0.5)


def _image_of(data_batch: Any, index: int) -> Optional[np.ndarray]:
    """The ``index``-th input image of a batch as an ``(H, W, 3)`` uint8
    array, or None when the batch holds no image tensor."""
    inputs = data_batch.get('inputs') if isinstance(data_batch,
                                                     dict) else None
    if isinstance(inputs, torch.Tensor):
        image = inputs[index]
    elif isinstance(inputs, (list, tuple)) and len(inputs) > index:
        image = inputs[index]
    else:
        return None
    if not isinstance(image, torch.Tensor) or image.dim() != 3:
        return None
    image = image.detach().cpu().float()
    if image.shape[0] == 1:
        image = image.expand(3, -1, -1)
    image = image[:3].permute(1, 2, 0).numpy()
    if image.max() <= 1.0:
        image = image * 255
    return np.clip(image, 0, 255).astype(np.uint8)


def draw_featmap(featmap: torch.Tensor, image: Optional[np.ndarray],
                 cfg: Dict[str, Any]) -> np.ndarray:
    """mmengine's ``Visualizer.draw_featmap`` plus the 1.x reduction
    ``'pixel_wise_max'`` (the largest value over the channels at each
    position), which mmengine lacks.

    Args:
        featmap (Tensor): ``(C, H, W)``.
        image (np.ndarray, optional): ``(H', W', 3)`` uint8 to draw over.
        cfg (dict): ``draw_featmap`` arguments (:data:`DRAW_DEFAULTS`).

    Returns:
        np.ndarray: The RGB picture.
    """
    cfg = dict(cfg)
    if cfg.get('channel_reduction') == 'pixel_wise_max':
        featmap = featmap.max(dim=0, keepdim=True).values
        cfg['channel_reduction'] = 'squeeze_mean'  # of one channel: itself
    return Visualizer.draw_featmap(featmap, overlaid_image=image, **cfg)


def _name_of(data_batch: Any, index: int, batch_idx: int) -> str:
    """A file stem for the ``index``-th sample of a batch: its image file
    name when the data sample has one, else ``'<batch>_<index>'``."""
    samples = data_batch.get('data_samples') if isinstance(
        data_batch, dict) else None
    if samples is not None and len(samples) > index:
        path = getattr(samples[index], 'img_path', None)
        if path is None and hasattr(samples[index], 'metainfo'):
            path = samples[index].metainfo.get('img_path')
        if isinstance(path, str):
            return osp.splitext(osp.basename(path))[0]
    return f'{batch_idx}_{index}'


@HOOKS.register_module()
class RazorVisualizationHook(Hook):
    """Draw the feature maps that recorders record while the model is
    tested, one picture per image and per ``mappings`` entry.

    The recorders are those of a ``ConfigurableDistiller``: their
    ``source`` is relative to the runner's model (an algorithm:
    ``'architecture.neck'``). During each test iteration they record; after
    it, every mapping picks one recorded tensor (``recorder``,
    ``record_idx=0``, ``data_idx=None``: e.g. one FPN level of the neck's
    outputs) and mmengine's ``Visualizer.draw_featmap`` draws its first
    image's map, overlaid on the input image (``is_overlaid``). Pictures
    go to ``out_dir`` (relative paths are under the runner's log dir) as
    ``<image>_<mapping>.png``, ``<image>`` being the image file's name, or
    ``<batch index>_0`` when the data sample has none.

    Args:
        recorders (dict): Name -> recorder config.
        mappings (dict): Picture name -> ``dict(recorder, record_idx=0,
            data_idx=None)``.
        enabled (bool): Draw at all. Defaults to False (as 1.x: the hook
            costs nothing unless turned on).
        out_dir (str, optional): Where the pictures go. Defaults to
            ``'vis_featmaps'`` under the log dir.
        interval (int): Draw every ``interval`` test iterations.
            Defaults to 1.
        is_overlaid (bool): Draw over the input image. Defaults to True.
        visualization_cfg (dict): Arguments of ``draw_featmap``
            (``channel_reduction``, ``topk``, ``arrangement``,
            ``resize_shape``, ``alpha``); see :data:`DRAW_DEFAULTS`.
        use_norm (bool): Batch-normalise the map (per channel, over its
            positions) before drawing. Defaults to False.
        show (bool): Also show each picture (needs a display). Defaults to
            False.
        wait_time (float): Seconds a shown picture stays. Defaults to 0.1.
    """

    priority = 'NORMAL'

    def __init__(self,
                 recorders: Dict[str, dict],
                 mappings: Dict[str, dict],
                 enabled: bool = False,
                 out_dir: Optional[str] = None,
                 interval: int = 1,
                 is_overlaid: bool = True,
                 visualization_cfg: Optional[dict] = None,
                 use_norm: bool = False,
                 show: bool = False,
                 wait_time: float = 0.1) -> None:
        self.recorders = RecorderManager(recorders)
        if not isinstance(mappings, dict) or not mappings:
            raise TypeError('RazorVisualizationHook: `mappings` must be a '
                            'non-empty dict of picture name -> '
                            f'dict(recorder=...), got {mappings!r}')
        for name, spec in mappings.items():
            where = f'RazorVisualizationHook: mappings[{name!r}]'
            if not isinstance(spec, dict):
                raise TypeError(f'{where} must be a dict, got {spec!r}')
            unknown = set(spec) - set(MAPPING_KEYS)
            if unknown:
                raise KeyError(f'{where} has unknown keys {sorted(unknown)}; '
                               f'allowed keys are {list(MAPPING_KEYS)}')
            if spec.get('recorder') not in self.recorders.recorders:
                raise KeyError(
                    f'{where}: recorder {spec.get("recorder")!r} is not one '
                    f'of the recorders {sorted(self.recorders.recorders)}')
        self.mappings = mappings
        unknown = set(visualization_cfg or {}) - set(DRAW_DEFAULTS)
        if unknown:
            raise KeyError(f'RazorVisualizationHook: visualization_cfg has '
                           f'unknown keys {sorted(unknown)}; allowed keys '
                           f'are {list(DRAW_DEFAULTS)}')
        self.draw_cfg = dict(DRAW_DEFAULTS, **(visualization_cfg or {}))
        if interval < 1:
            raise ValueError('RazorVisualizationHook: interval must be >= 1, '
                             f'got {interval}')
        self.enabled = enabled
        self.out_dir = out_dir
        self.interval = interval
        self.is_overlaid = is_overlaid
        self.use_norm = use_norm
        self.show = show
        self.wait_time = wait_time
        self._prepared = False
        self._recording = False
        self.written: Sequence[str] = []

    def _active(self, batch_idx: int) -> bool:
        return self.enabled and batch_idx % self.interval == 0

    def before_test_iter(self, runner: Any, batch_idx: int,
                         data_batch: Any = None) -> None:
        """Start recording (on the iterations that draw)."""
        if not self._active(batch_idx):
            return
        if not self._prepared:
            model = runner.model
            if is_model_wrapper(model):
                model = model.module
            self.recorders.prepare_from_model(model)
            self._prepared = True
        self.recorders.__enter__()
        self._recording = True

    def after_test_iter(self,
                        runner: Any,
                        batch_idx: int,
                        data_batch: Any = None,
                        outputs: Any = None) -> None:
        """Stop recording and draw the pictures of the batch's first
        image."""
        if not self._recording:
            return
        self.recorders.__exit__(None, None, None)
        self._recording = False
        try:
            self._draw(runner, batch_idx, data_batch)
        finally:
            self.recorders.reset_data()

    def _draw(self, runner: Any, batch_idx: int, data_batch: Any) -> None:
        out_dir = self.out_dir or 'vis_featmaps'
        if not osp.isabs(out_dir):
            out_dir = osp.join(runner.log_dir, out_dir)
        os.makedirs(out_dir, exist_ok=True)
        image = _image_of(data_batch, 0) if self.is_overlaid else None
        stem = _name_of(data_batch, 0, batch_idx)
        written = list(self.written)
        for name, spec in self.mappings.items():
            feature = self.recorders.get_recorder(
                spec['recorder']).get_record_data(
                    spec.get('record_idx', 0), spec.get('data_idx'))
            if not isinstance(feature, torch.Tensor) or feature.dim() != 4:
                raise TypeError(
                    f'RazorVisualizationHook: mappings[{name!r}] gives a '
                    f'{type(feature).__name__}'
                    f'{tuple(getattr(feature, "shape", ()))}, not an (N, C, '
                    'H, W) feature map; choose data_idx')
            featmap = feature[0].detach().float().cpu()
            if self.use_norm:
                featmap = torch.nn.functional.batch_norm(
                    featmap[None], None, None, training=True)[0]
            picture = draw_featmap(featmap, image, self.draw_cfg)
            path = osp.join(out_dir, f'{stem}_{name}.png')
            if self.show:
                Visualizer.get_current_instance().show(
                    picture, wait_time=self.wait_time)
            mmcv.imwrite(picture[..., ::-1], path)  # RGB -> BGR file
            written.append(path)
        self.written = written
