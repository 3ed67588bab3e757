"""Observers under their 1.x names.

torch.ao's observers are registered as they are (``mmrazor.MinMaxObserver``
is ``torch.ao.quantization.MinMaxObserver``). New here: the LSQ observers,
which initialise the step size as ``2 * mean(|x|) / sqrt(quant_max)``
(Esser et al., *Learned Step Size Quantization*, ICLR 2020), and a percentile
observer that clips outliers.
"""
import math
from typing import Tuple

import torch
from torch.ao.quantization import observer as torch_observer

from mmrazor.registry import MODELS

TORCH_OBSERVERS = (
    'MinMaxObserver', 'MovingAverageMinMaxObserver',
    'PerChannelMinMaxObserver', 'MovingAveragePerChannelMinMaxObserver',
    'HistogramObserver', 'FixedQParamsObserver', 'NoopObserver',
    'PlaceholderObserver', 'RecordingObserver', 'ReuseInputObserver')

for _name in TORCH_OBSERVERS:
    MODELS.register_module(name=_name, module=getattr(torch_observer, _name))


def _lsq_scale(tensor_norm: torch.Tensor, quant_max: int) -> torch.Tensor:
    """LSQ's initial step size ``2 * mean(|x|) / sqrt(quant_max)``."""
    return 2 * tensor_norm / math.sqrt(quant_max)


@MODELS.register_module()
class LSQObserver(torch_observer.MinMaxObserver):
    """Per-tensor LSQ observer.

    Records the running min / max (for the zero point, as
    :class:`MinMaxObserver`) and ``tensor_norm = mean(|x|)`` of the latest
    batch, from which the scale is ``2 * tensor_norm / sqrt(quant_max)``.

    Args:
        *args, **kwargs: Those of ``torch.ao.quantization.MinMaxObserver``
            (``dtype``, ``qscheme``, ``quant_min``, ``quant_max``, ...).
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.register_buffer('tensor_norm', torch.tensor(float('nan')))

    def forward(self, x_orig: torch.Tensor) -> torch.Tensor:
        """Record min, max and mean absolute value of ``x_orig``."""
        if x_orig.numel() == 0:
            return x_orig
        x = x_orig.detach().to(self.min_val.dtype)
        self.tensor_norm.copy_(x.abs().mean())
        return super().forward(x_orig)

    @torch.jit.export
    def calculate_qparams(self) -> Tuple[torch.Tensor, torch.Tensor]:
        """Scale from ``tensor_norm``, zero point from min / max.

        Returns:
            tuple[Tensor, Tensor]: ``scale`` and ``zero_point`` (shape 1).
        """
        scale, zero_point = super().calculate_qparams()
        if torch.isnan(self.tensor_norm):  # nothing observed yet
            return scale, zero_point
        lsq_scale = _lsq_scale(self.tensor_norm, self.quant_max)
        lsq_scale = torch.clamp(lsq_scale, min=self.eps.item())
        return lsq_scale.reshape(1).to(scale.device), zero_point


@MODELS.register_module()
class LSQPerChannelObserver(torch_observer.PerChannelMinMaxObserver):
    """Per-channel LSQ observer: :class:`LSQObserver` per slice along
    ``ch_axis``.

    Args:
        *args, **kwargs: Those of
            ``torch.ao.quantization.PerChannelMinMaxObserver`` (``ch_axis``,
            ``dtype``, ``qscheme``, ``quant_min``, ``quant_max``, ...).
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.register_buffer('tensor_norm', torch.tensor([]))

    def forward(self, x_orig: torch.Tensor) -> torch.Tensor:
        """Record per-channel min, max and mean absolute value."""
        if x_orig.numel() == 0:
            return x_orig
        x = x_orig.detach().to(self.min_val.dtype)
        per_channel = x.transpose(0, self.ch_axis).flatten(1)
        norm = per_channel.abs().mean(dim=1)
        self.tensor_norm.resize_(norm.shape)
        self.tensor_norm.copy_(norm)
        return super().forward(x_orig)

    @torch.jit.export
    def calculate_qparams(self) -> Tuple[torch.Tensor, torch.Tensor]:
        """Per-channel scale from ``tensor_norm``, zero point from min / max.

        Returns:
            tuple[Tensor, Tensor]: ``scale`` and ``zero_point`` (one each per
            channel).
        """
        scale, zero_point = super().calculate_qparams()
        if self.tensor_norm.numel() == 0:  # nothing observed yet
            return scale, zero_point
        lsq_scale = _lsq_scale(self.tensor_norm, self.quant_max)
        lsq_scale = torch.clamp(lsq_scale, min=self.eps.item())
        return lsq_scale.to(scale.device), zero_point

    def _load_from_state_dict(self, state_dict, prefix, local_metadata,
                              strict, missing_keys, unexpected_keys,
                              error_msgs) -> None:
        key = prefix + 'tensor_norm'
        if key in state_dict:
            self.tensor_norm.resize_(state_dict[key].shape)
        super()._load_from_state_dict(state_dict, prefix, local_metadata,
                                      strict, missing_keys, unexpected_keys,
                                      error_msgs)


def kth_largest_rank(numel: int, percentile: float) -> int:
    """Rank (1-based, ascending) of the ``percentile`` value of ``numel``
    sorted values: ``ceil(percentile / 100 * numel)``, at least 1."""
    return max(1, math.ceil(percentile / 100 * numel))


@MODELS.register_module()
class PercentileObserver(torch_observer.MinMaxObserver):
    """Per-tensor observer that clips outliers at a percentile.

    In each batch of ``n`` values sorted ascending, with
    ``k = ceil(percentile / 100 * n)``: the batch maximum is the ``k``-th
    value and the batch minimum the ``(n + 1 - k)``-th (the ``k``-th from the
    top). ``min_val`` / ``max_val`` are the means of those over all observed
    batches; scale and zero point follow from them as for
    :class:`MinMaxObserver`.

    Args:
        percentile (float): In (50, 100]; 100 gives the plain min / max.
            Defaults to 99.99.
        **kwargs: Those of ``torch.ao.quantization.MinMaxObserver``.
    """

    def __init__(self, percentile: float = 99.99, **kwargs) -> None:
        if not 50 < percentile <= 100:
            raise ValueError('PercentileObserver: percentile must be in '
                             f'(50, 100], got {percentile!r}')
        super().__init__(**kwargs)
        self.percentile = percentile
        self.register_buffer('num_batches', torch.tensor(0))

    def forward(self, x_orig: torch.Tensor) -> torch.Tensor:
        """Update the running means of the clipped min and max."""
        if x_orig.numel() == 0:
            return x_orig
        x = x_orig.detach().to(self.min_val.dtype).flatten()
        rank = kth_largest_rank(x.numel(), self.percentile)
        high = torch.kthvalue(x, rank).values
        low = torch.kthvalue(x, x.numel() + 1 - rank).values
        count = int(self.num_batches)
        if count == 0:
            self.min_val.copy_(low)
            self.max_val.copy_(high)
        else:
            self.min_val.copy_((self.min_val * count + low) / (count + 1))
            self.max_val.copy_((self.max_val * count + high) / (count + 1))
        self.num_batches += 1
        return x_orig

    def extra_repr(self) -> str:
        return f'percentile={self.percentile}, ' + super().extra_repr()
