"""Fake-quants under their 1.x names.

torch.ao's fake-quants are registered as they are (``mmrazor.FakeQuantize``
is ``torch.ao.quantization.FakeQuantize``). New here:
:class:`LearnableFakeQuantize` (also registered as ``LSQFakeQuantize``), the
LSQ fake-quant with a learned step size.
"""
from typing import Tuple

import torch
from torch import nn
from torch.ao.quantization import fake_quantize as torch_fake_quantize

from mmrazor.registry import MODELS

TORCH_FAKE_QUANTS = ('FakeQuantize', 'FixedQParamsFakeQuantize',
                     'FusedMovingAvgObsFakeQuantize')

for _name in TORCH_FAKE_QUANTS:
    MODELS.register_module(
        name=_name, module=getattr(torch_fake_quantize, _name))

_SYMMETRIC = (torch.per_tensor_symmetric, torch.per_channel_symmetric)
_PER_CHANNEL = (torch.per_channel_symmetric, torch.per_channel_affine)


def lsq_grad_factor(numel: int, quant_max: int) -> float:
    """LSQ's gradient scale ``g = 1 / sqrt(numel * quant_max)``."""
    return 1.0 / (numel * quant_max)**0.5


@MODELS.register_module(name=['LearnableFakeQuantize', 'LSQFakeQuantize'])
class LearnableFakeQuantize(torch_fake_quantize.FakeQuantizeBase):
    """LSQ fake-quant: learned step size (and optionally zero point).

    Forward, with ``s`` the scale and ``z`` the zero point::

        x_hat = (clamp(round(x / s) + z, quant_min, quant_max) - z) * s

    Backward (Esser et al., ICLR 2020): straight-through for ``x`` inside the
    range and 0 outside; for the scale, with ``v = x / s``::

        d x_hat / d s = round(v + z) - z - v   inside the range
                        quant_min - z          below it
                        quant_max - z          above it

    times ``g = 1 / sqrt(x.numel() * quant_max)`` when ``use_grad_scaling``.
    The kernels are ``torch._fake_quantize_learnable_per_tensor_affine`` /
    ``..._per_channel_affine``.

    While the observer is enabled, each forward observes ``x`` and copies the
    observer's scale / zero point into the parameters (with an
    :class:`LSQObserver`: ``s = 2 * mean(|x|) / sqrt(quant_max)``); disable
    it (``disable_observer()``) to learn them. With a symmetric qscheme the
    zero point is fixed at 0, as in the paper: a ``qint8`` scheme gives the
    signed grid ``[quant_min, quant_max] * s``, a ``quint8`` one the unsigned
    grid ``[0, quant_max] * s`` (for non-negative inputs such as ReLU
    outputs).

    Args:
        observer (type): Observer class (or ``with_args`` partial) that
            initialises the quantization parameters.
        quant_min (int): Lowest integer level. Defaults to 0.
        quant_max (int): Highest integer level. Defaults to 255.
        scale (float): Initial scale. Defaults to 1.
        zero_point (float): Initial zero point. Defaults to 0.
        use_grad_scaling (bool): Multiply the scale (and zero point) gradient
            by ``g``. Defaults to True.
        zero_point_trainable (bool): Learn the zero point too (affine
            qschemes only). Defaults to False.
        **observer_kwargs: Passed to ``observer`` (``dtype``, ``qscheme``,
            ``ch_axis``, ...), together with ``quant_min`` / ``quant_max``.
    """

    def __init__(self,
                 observer,
                 quant_min: int = 0,
                 quant_max: int = 255,
                 scale: float = 1.,
                 zero_point: float = 0.,
                 use_grad_scaling: bool = True,
                 zero_point_trainable: bool = False,
                 **observer_kwargs) -> None:
        super().__init__()
        if quant_min >= quant_max:
            raise ValueError('LearnableFakeQuantize: quant_min must be less '
                             f'than quant_max, got quant_min={quant_min}, '
                             f'quant_max={quant_max}')
        if scale <= 0:
            raise ValueError('LearnableFakeQuantize: scale must be positive, '
                             f'got {scale!r}')
        self.quant_min = quant_min
        self.quant_max = quant_max
        self.use_grad_scaling = use_grad_scaling
        self.zero_point_trainable = zero_point_trainable
        observer_kwargs.update(quant_min=quant_min, quant_max=quant_max)
        self.activation_post_process = observer(**observer_kwargs)
        self.dtype = self.activation_post_process.dtype
        self.qscheme = self.activation_post_process.qscheme
        self.ch_axis = getattr(self.activation_post_process, 'ch_axis', -1)
        if zero_point_trainable and self.qscheme in _SYMMETRIC:
            raise ValueError(
                'LearnableFakeQuantize: zero_point_trainable=True needs an '
                f'affine qscheme, got qscheme={self.qscheme} (set '
                'is_symmetry=False in the qscheme)')
        # a symmetric grid is centred on 0: zero point 0 for a signed
        # range, the middle level for an unsigned one (torch's observers
        # give the same), so negative inputs of quint8 keep their sign
        self.symmetric_zero_point = 0 if quant_min < 0 else \
            (quant_min + quant_max) // 2
        self.scale = nn.Parameter(torch.tensor([float(scale)]))
        self.zero_point = nn.Parameter(
            torch.tensor([float(zero_point)]),
            requires_grad=zero_point_trainable)
        self.register_buffer('eps',
                             torch.tensor([torch.finfo(torch.float32).eps]))

    @property
    def is_per_channel(self) -> bool:
        """Whether there is one scale per slice along ``ch_axis``."""
        return self.qscheme in _PER_CHANNEL

    @staticmethod
    def _copy_resized(param: nn.Parameter, value: torch.Tensor) -> None:
        if param.shape != value.shape:
            param.data = torch.empty_like(value, dtype=param.dtype,
                                          device=param.device)
        param.data.copy_(value)

    def _observe(self, x: torch.Tensor) -> None:
        self.activation_post_process(x.detach())
        scale, zero_point = self.activation_post_process.calculate_qparams()
        self._copy_resized(self.scale, scale.to(self.scale.device))
        self._copy_resized(self.zero_point,
                           zero_point.to(self.zero_point.device).float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Observe (if enabled), then fake-quantize (if enabled) ``x``."""
        if self.observer_enabled[0] == 1:
            self._observe(x)
        else:
            self.scale.data.clamp_(min=self.eps.item())
        if self.fake_quant_enabled[0] != 1:
            return x
        if self.qscheme in _SYMMETRIC:
            self.zero_point.data.fill_(self.symmetric_zero_point)
        grad_factor = (
            lsq_grad_factor(x.numel(), self.quant_max)
            if self.use_grad_scaling else 1.0)
        if self.is_per_channel:
            return torch._fake_quantize_learnable_per_channel_affine(
                x, self.scale, self.zero_point, self.ch_axis, self.quant_min,
                self.quant_max, grad_factor)
        return torch._fake_quantize_learnable_per_tensor_affine(
            x, self.scale, self.zero_point, self.quant_min, self.quant_max,
            grad_factor)

    @torch.jit.export
    def calculate_qparams(self) -> Tuple[torch.Tensor, torch.Tensor]:
        """The current scale and integer zero point.

        Returns:
            tuple[Tensor, Tensor]: ``scale`` (clamped to at least ``eps``) and
            ``zero_point`` (rounded, clamped to the range, int64).
        """
        scale = self.scale.detach().clamp(min=self.eps.item())
        zero_point = self.zero_point.detach().round().clamp(
            self.quant_min, self.quant_max).long()
        return scale, zero_point

    @torch.jit.export
    def observe_quant_params(self) -> Tuple[torch.Tensor, torch.Tensor]:
        """The learned (float) scale and zero point, detached."""
        return self.scale.detach(), self.zero_point.detach()

    @torch.jit.export
    def extra_repr(self) -> str:
        return (f'fake_quant_enabled={self.fake_quant_enabled}, '
                f'observer_enabled={self.observer_enabled}, '
                f'quant_min={self.quant_min}, quant_max={self.quant_max}, '
                f'dtype={self.dtype}, qscheme={self.qscheme}, '
                f'ch_axis={self.ch_axis}, '
                f'use_grad_scaling={self.use_grad_scaling}, '
                f'zero_point_trainable={self.zero_point_trainable}, '
                f'scale={self.scale.detach()}, '
                f'zero_point={self.zero_point.detach()}')

    def _load_from_state_dict(self, state_dict, prefix, local_metadata,
                              strict, missing_keys, unexpected_keys,
                              error_msgs) -> None:
        # per-channel parameters take their length from the first
        # observation: follow the checkpoint's length
        for name in ('scale', 'zero_point'):
            key = prefix + name
            if key in state_dict:
                param = getattr(self, name)
                if param.shape != state_dict[key].shape:
                    param.data = torch.empty_like(
                        state_dict[key], dtype=param.dtype,
                        device=param.device)
        super()._load_from_state_dict(state_dict, prefix, local_metadata,
                                      strict, missing_keys, unexpected_keys,
                                      error_msgs)
