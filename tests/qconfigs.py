"""Quantization configs the tests share, read from the repository's configs
(one copy of each ``global_qconfig``), and the calibration they share."""
import os.path as osp
from typing import Dict

import torch
from mmengine.config import Config
from torch import nn

from mmrazor.core.loops.quantization_loops import calibrate_prepared

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


def native_qconfig(w_fake_quant: str = 'mmrazor.FakeQuantize',
                   a_fake_quant: str = 'mmrazor.FakeQuantize',
                   a_symmetry: bool = True,
                   w_bit: int = 8) -> Dict:
    """A ``global_qconfig`` of per-channel min-max symmetric ``w_bit``-bit
    weights and moving-average min-max quint8 activations.

    Args:
        w_fake_quant (str): The weight fake-quant type.
        a_fake_quant (str): The activation fake-quant type.
        a_symmetry (bool): Symmetric (zero point mid-grid) or affine
            activations.
        w_bit (int): Weight bits.

    Returns:
        dict: A fresh ``global_qconfig``.
    """
    return dict(
        w_observer=dict(type='mmrazor.PerChannelMinMaxObserver'),
        a_observer=dict(type='mmrazor.MovingAverageMinMaxObserver'),
        w_fake_quant=dict(type=w_fake_quant),
        a_fake_quant=dict(type=a_fake_quant),
        w_qscheme=dict(
            qdtype='qint8', bit=w_bit, is_symmetry=True,
            is_symmetric_range=True),
        a_qscheme=dict(qdtype='quint8', bit=8, is_symmetry=a_symmetry))


def calibrated(quantizer, model: nn.Module,
               images: torch.Tensor) -> nn.Module:
    """``quantizer.prepare(model)`` with observers run on ``images`` (fake
    quantization off meanwhile), then frozen, fake quantization on.

    Args:
        quantizer: A quantizer (``prepare(model)`` -> prepared module).
        model (nn.Module): The float model.
        images (torch.Tensor): One calibration batch.

    Returns:
        nn.Module: The prepared model in eval mode.
    """
    return calibrate_prepared(quantizer.prepare(model), [images])
