"""Dataset wrapper giving each sample its CRD contrast indices."""
import copy
from typing import Any, Dict, List, Optional, Union

import numpy as np
from mmengine.dataset import BaseDataset

from mmrazor.registry import DATASETS

SAMPLE_MODES = ('exact', 'random')


@DATASETS.register_module()
class CRDDataset:
    """Wrap a classification dataset for Contrastive Representation
    Distillation.

    Every training sample gets ``sample_idx`` (its index, the row of the
    ``CRDLoss`` memories) and ``contrast_sample_idxs``: one positive index
    followed by ``neg_num`` negatives drawn (anew at every access) from the
    samples of *other* classes, so a sample's own class never appears among
    its negatives. Test-mode datasets only get ``sample_idx``. Pack both
    with ``PackCRDClsInputs``.

    Args:
        dataset (BaseDataset | dict): The wrapped dataset or its config; it
            must give ``gt_label`` per sample.
        neg_num (int): Negatives per sample.
        percent (float): In ``(0, 1)``: each class keeps only this random
            fraction of its negative pool (drawn once); otherwise all.
        lazy_init (bool): Defer loading the annotations. Defaults to False.
        num_classes (int, optional): Number of classes; None: the largest
            label + 1.
        sample_mode (str): The positive: ``'exact'`` (the sample itself) or
            ``'random'`` (a random sample of the same class). Defaults to
            ``'exact'``.
    """

    def __init__(self,
                 dataset: Union[BaseDataset, dict],
                 neg_num: int,
                 percent: float,
                 lazy_init: bool = False,
                 num_classes: Optional[int] = None,
                 sample_mode: str = 'exact') -> None:
        if sample_mode not in SAMPLE_MODES:
            raise ValueError(f'CRDDataset: sample_mode={sample_mode!r} is '
                             f'not supported; use one of {SAMPLE_MODES}')
        if neg_num < 1:
            raise ValueError(
                f'CRDDataset: neg_num must be >= 1, got {neg_num}')
        if isinstance(dataset, dict):
            dataset = DATASETS.build(dataset)
        if not hasattr(dataset, 'get_data_info'):
            raise TypeError('CRDDataset: `dataset` must be a dataset config or '
                            f'a BaseDataset, got {type(dataset).__name__}')
        self.dataset = dataset
        self.neg_num = int(neg_num)
        self.percent = float(percent)
        self.num_classes = num_classes
        self.sample_mode = sample_mode
        self._fully_initialized = False
        if not lazy_init:
            self.full_init()

    @property
    def metainfo(self) -> dict:
        """The wrapped dataset's meta information."""
        return copy.deepcopy(self.dataset.metainfo)

    @property
    def test_mode(self) -> bool:
        """Whether the wrapped dataset is a test set."""
        return bool(getattr(self.dataset, 'test_mode', False))

    def _gt_labels(self) -> np.ndarray:
        """The class of every sample."""
        if hasattr(self.dataset, 'get_gt_labels'):
            return np.asarray(self.dataset.get_gt_labels(), dtype=np.int64)
        return np.asarray([
            int(self.dataset.get_data_info(i)['gt_label'])
            for i in range(len(self.dataset))
        ], dtype=np.int64)

    def full_init(self) -> None:
        """Load the wrapped dataset and index its samples by class."""
        if self._fully_initialized:
            return
        if hasattr(self.dataset, 'full_init'):
            self.dataset.full_init()
        if not self.test_mode:
            self._build_class_pools()
        self._fully_initialized = True

    def _build_class_pools(self) -> None:
        """``cls_positive[c]``: indices of class ``c``; ``cls_negative[c]``:
        indices of every other class (a ``percent`` fraction of them)."""
        self.gt_labels = self._gt_labels()
        num_classes = self.num_classes
        if num_classes is None:
            num_classes = int(self.gt_labels.max()) + 1
        if self.gt_labels.min() < 0 or self.gt_labels.max() >= num_classes:
            raise ValueError(
                f'CRDDataset: labels range over [{self.gt_labels.min()}, '
                f'{self.gt_labels.max()}] but num_classes={num_classes}')
        indices = np.arange(len(self.gt_labels))
        self.cls_positive: List[np.ndarray] = [
            indices[self.gt_labels == c] for c in range(num_classes)
        ]
        self.cls_negative: List[np.ndarray] = [
            indices[self.gt_labels != c] for c in range(num_classes)
        ]
        if 0 < self.percent < 1:
            self.cls_negative = [
                np.random.permutation(pool)[:int(len(pool) * self.percent)]
                for pool in self.cls_negative
            ]

    def contrast_indices(self, idx: int) -> np.ndarray:
        """The positive and ``neg_num`` negatives of sample ``idx``.

        Args:
            idx (int): The sample.

        Returns:
            np.ndarray: ``neg_num + 1`` indices (int64), positive first.
        """
        label = self.gt_labels[idx]
        if self.sample_mode == 'exact':
            positive = idx
        else:
            positive = np.random.choice(self.cls_positive[label])
        pool = self.cls_negative[label]
        if len(pool) == 0:
            raise ValueError(f'CRDDataset: sample {idx} (class {label}) has '
                             'no negatives: the dataset has a single class')
        negatives = np.random.choice(
            pool, self.neg_num, replace=self.neg_num > len(pool))
        return np.concatenate([[positive], negatives]).astype(np.int64)

    def get_data_info(self, idx: int) -> Dict:
        """The wrapped annotation plus ``sample_idx`` (and, for training,
        ``contrast_sample_idxs``).

        Args:
            idx (int): The sample.

        Returns:
            dict: The annotation.
        """
        self.full_init()
        data_info = self.dataset.get_data_info(idx)
        data_info['sample_idx'] = idx
        if not self.test_mode:
            data_info['contrast_sample_idxs'] = self.contrast_indices(idx)
        return data_info

    def __getitem__(self, idx: int) -> Any:
        """The ``idx``-th sample through the wrapped dataset's pipeline.

        Args:
            idx (int): The sample.

        Returns:
            Any: What the pipeline returns.
        """
        max_refetch = getattr(self.dataset, 'max_refetch', 0)
        for _ in range(max_refetch + 1):
            data = self.dataset.pipeline(self.get_data_info(idx))
            if data is not None:
                return data
            if self.test_mode:
                break
            idx = self.dataset._rand_another()
        raise RuntimeError(
            f'CRDDataset: the pipeline returned None for sample {idx}')

    def __len__(self) -> int:
        """Number of samples."""
        self.full_init()
        return len(self.dataset)
