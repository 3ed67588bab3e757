"""Packing of the CRD sample indices into the data sample."""
from typing import Dict

import numpy as np
import torch
from mmpretrain.datasets.transforms import PackInputs

from mmrazor.registry import TRANSFORMS

#: Result keys that become long-tensor data fields of the data sample.
CRD_KEYS = ('sample_idx', 'contrast_sample_idxs')


@TRANSFORMS.register_module()
class PackCRDClsInputs(PackInputs):
    """mmpretrain's ``PackInputs`` plus the indices of ``CRDDataset``.

    ``sample_idx`` (a 0-d tensor) and ``contrast_sample_idxs`` (a 1-d
    tensor: the positive then the negatives) are set as *data* fields of
    the ``DataSample`` (long tensors, stacked by ``CRDLoss``) instead of
    meta information.

    Args:
        input_key (str): Key of the input. Defaults to ``'img'``.
        algorithm_keys (Sequence[str]): Further data fields.
        meta_keys (Sequence[str]): Meta information keys (``sample_idx`` is
            never meta information here).
    """

    def transform(self, results: Dict) -> Dict:
        """Pack ``results``.

        Args:
            results (dict): The pipeline's results.

        Returns:
            dict: ``inputs`` and ``data_samples``.
        """
        rest = {k: v for k, v in results.items() if k not in CRD_KEYS}
        packed = super().transform(rest)
        data_sample = packed['data_samples']
        for key in CRD_KEYS:
            if key in results:
                value = np.asarray(results[key])
                if not np.issubdtype(value.dtype, np.integer):
                    raise TypeError(f'PackCRDClsInputs: {key} must hold '
                                    f'integers, got {results[key]!r}')
                data_sample.set_field(
                    torch.from_numpy(value.astype(np.int64)), key)
        return packed
