"""A user's own layer and its layer handler, in the user's file.

Nothing here is part of mmrazor: this file plays the part of a user's code
base that teaches the channel analysis, the pruners, the estimator and the
deploy artefact about a layer of its own (see docs/pruning.md, "Your own
layers").
"""
from typing import Dict, Optional, Tuple

import torch
from torch import nn

from mmrazor.models.task_modules import MixingHandler, register_layer_handler


class ScaledLinear(nn.Module):
    """``y = (x @ weight.T) * scale`` on the last dim: a linear layer with a
    per-output-channel scale and no bias, holding its own parameters (not a
    subclass of any torch layer).

    Args:
        in_features (int): Input channels.
        out_features (int): Output channels.
    """

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(
            torch.randn(out_features, in_features) / in_features**0.5)
        self.scale = nn.Parameter(torch.rand(out_features) + 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.weight.t() * self.scale


@register_layer_handler(ScaledLinear)
class ScaledLinearHandler(MixingHandler):
    """Channels on the last dim; ``weight`` is ``(out, in)``, ``scale`` has
    one entry per output channel. Tracing, masking, slicing and counting
    (``macs`` = kept ``weight`` elements x tokens) come from
    :class:`MixingHandler`."""

    kind = 'scaled_linear'
    in_dim = out_dim = -1

    def channels(self, module: nn.Module) -> Tuple[int, int, int]:
        out_features, in_features = module.weight.shape
        return in_features, out_features, 1

    def tensor_dims(self, module: nn.Module
                    ) -> Dict[str, Tuple[Optional[int], Optional[int]]]:
        return {'weight': (1, 0), 'scale': (None, 0)}
