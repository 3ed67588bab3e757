"""An image classifier over a weight-sharing supernet (the 1.x
``SearchableImageClassifier``): a searched input resolution and a head
that follows the backbone's output width."""
from typing import Any, Dict, List, Optional, Sequence

import torch
from mmpretrain.models.classifiers import ImageClassifier

from mmrazor.models.mutables import BaseMutable, OneShotMutableValue
from mmrazor.registry import MODELS
from .dynamic_ops.input_resizer import DynamicInputResizer

#: The subnet key of the searched input resolution (as in the published
#: subnet files of MMRazor 1.x).
INPUT_SHAPE_KEY = 'input_shape'


def _input_sizes(input_resizer_cfg: Dict[str, Any]) -> List[List[int]]:
    sizes = input_resizer_cfg.get('input_sizes')
    if not isinstance(sizes, Sequence) or not sizes:
        raise ValueError('input_resizer_cfg needs input_sizes, a non-empty '
                         f'list of [H, W], got {sizes!r}')
    checked = []
    for size in sizes:
        if (not isinstance(size, Sequence) or len(size) != 2
                or not all(isinstance(s, int) and s > 0 for s in size)):
            raise ValueError('input_resizer_cfg.input_sizes entries must be '
                             f'[H, W] of positive ints, got {size!r}')
        checked.append([int(size[0]), int(size[1])])
    return checked


def resolve_attr(root: Any, path: str) -> Any:
    """``root.a.b.c`` for ``path='a.b.c'`` (module list indices allowed).

    Raises:
        AttributeError: Naming the part of ``path`` that does not exist.
    """
    obj = root
    for i, part in enumerate(path.split('.')):
        if not hasattr(obj, part):
            raise AttributeError(
                f'{".".join(path.split(".")[:i]) or type(root).__name__} '
                f'has no attribute {part!r} (resolving {path!r})')
        obj = getattr(obj, part)
    return obj


@MODELS.register_module()
class SearchableImageClassifier(ImageClassifier):
    """mmpretrain's ``ImageClassifier`` for weight-sharing supernets.

    Two additions to ``ImageClassifier``:

    * ``input_resizer_cfg=dict(input_sizes=[[H, W], ...])``: the input
      resolution is searched too. Images are resized (bicubic by default;
      ``interpolation_type`` / ``align_corners`` in the same dict) by
      ``self.input_resizer`` before the backbone, to the choice of a
      :class:`OneShotMutableValue` keyed ``input_shape`` in subnet files.
      It starts at the largest size.
    * ``connect_head=dict(connect_with_backbone='backbone.<attr>')``: the
      head's input width follows the mutable found at that attribute path
      of the classifier (e.g. ``backbone.last_mutable_channels``), through
      the head's ``connect_with_backbone`` (see ``DynamicLinearClsHead``).

    Args:
        backbone (dict): As for ``ImageClassifier``.
        neck (dict, optional): As for ``ImageClassifier``.
        head (dict, optional): As for ``ImageClassifier``.
        pretrained (str, optional): As for ``ImageClassifier``.
        train_cfg (dict, optional): As for ``ImageClassifier``.
        data_preprocessor (dict, optional): As for ``ImageClassifier``.
        init_cfg (dict, optional): As for ``ImageClassifier``.
        input_resizer_cfg (dict, optional): See above. Defaults to None (no
            resizing).
        connect_head (dict, optional): See above. Defaults to None.
    """

    def __init__(self,
                 backbone: dict,
                 neck: Optional[dict] = None,
                 head: Optional[dict] = None,
                 pretrained: Optional[str] = None,
                 train_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None,
                 input_resizer_cfg: Optional[dict] = None,
                 connect_head: Optional[dict] = None) -> None:
        super().__init__(
            backbone=backbone,
            neck=neck,
            head=head,
            pretrained=pretrained,
            train_cfg=train_cfg,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
        self.input_resizer: Optional[DynamicInputResizer] = None
        if input_resizer_cfg is not None:
            self.input_resizer = self._build_input_resizer(input_resizer_cfg)
        if connect_head is not None:
            self._connect_head(connect_head)

    @staticmethod
    def _build_input_resizer(cfg: Dict[str, Any]) -> DynamicInputResizer:
        cfg = dict(cfg)
        sizes = _input_sizes(cfg)
        unknown = set(cfg) - {'input_sizes', 'interpolation_type',
                              'align_corners'}
        if unknown:
            raise ValueError(
                f'input_resizer_cfg: unknown key(s) {sorted(unknown)}; '
                'known: input_sizes, interpolation_type, align_corners')
        resizer = DynamicInputResizer(
            interpolation_type=cfg.get('interpolation_type', 'bicubic'),
            align_corners=cfg.get('align_corners', False))
        shape = OneShotMutableValue(value_list=sizes, alias=INPUT_SHAPE_KEY)
        resizer.register_mutable_attr('shape', shape)
        return resizer

    def _connect_head(self, connect_head: Dict[str, Any]) -> None:
        unknown = set(connect_head) - {'connect_with_backbone'}
        if unknown:
            raise ValueError(f'connect_head: unknown key(s) {sorted(unknown)}'
                             '; known: connect_with_backbone')
        path = connect_head.get('connect_with_backbone')
        if not isinstance(path, str):
            raise ValueError('connect_head.connect_with_backbone must be an '
                             f'attribute path such as '
                             f"'backbone.last_mutable_channels', got {path!r}")
        mutable = resolve_attr(self, path)
        if not isinstance(mutable, BaseMutable):
            raise TypeError(f'connect_head: {path} is a '
                            f'{type(mutable).__name__}, not a mutable')
        if not hasattr(self.head, 'connect_with_backbone'):
            raise TypeError(
                f'connect_head: the head {type(self.head).__name__} has no '
                'connect_with_backbone (use DynamicLinearClsHead)')
        self.head.connect_with_backbone(mutable)

    def extract_feat(self, inputs: torch.Tensor, stage: str = 'neck'
                     ) -> Any:
        if self.input_resizer is not None:
            inputs = self.input_resizer(inputs)
        return super().extract_feat(inputs, stage=stage)
