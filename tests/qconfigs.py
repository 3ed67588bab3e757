"""Quantization configs the tests share, read from the repository's configs
(one copy of each ``global_qconfig``)."""
import os.path as osp
from typing import Dict

from mmengine.config import Config

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
OPENVINO_PTQ_CONFIG = osp.join(
    REPO, 'configs/quantization/ptq/ptq_openvino_resnet18-w16_fashion-mnist.py')


def openvino_qconfig() -> Dict:
    """The 1.x OpenVINO ``global_qconfig`` (per-channel symmetric int8
    weights, symmetric quint8 activations: zero point mid-grid, also after
    a ReLU), as the Fashion-MNIST PTQ config has it.

    Returns:
        dict: A fresh copy.
    """
    return Config.fromfile(OPENVINO_PTQ_CONFIG).global_qconfig.to_dict()
