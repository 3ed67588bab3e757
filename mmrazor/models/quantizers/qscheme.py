"""``QSchemeHandler``: a 1.x ``w_qscheme`` / ``a_qscheme`` dict read as the
keyword arguments of a ``torch.ao.quantization`` observer or fake-quant.

The integer range a scheme gives (``b`` = ``bit``):

==========  ==================  ===========================================
qdtype      is_symmetric_range  [quant_min, quant_max]
==========  ==================  ===========================================
``qint8``   False               [-2^(b-1), 2^(b-1) - 1]  (8 bit: [-128, 127])
``qint8``   True                [-(2^(b-1) - 1), 2^(b-1) - 1]  ([-127, 127])
``quint8``  False               [0, 2^b - 1]  (8 bit: [0, 255])
``quint8``  True                [0, 2^b - 2]  (8 bit: [0, 254])
==========  ==================  ===========================================

A symmetric range has as many levels above the zero point as below it, which
is what OpenVINO and TensorRT expect of int8 weights (-127..127). ``bit``
selects the range only: the storage dtype is ``torch.qint8`` /
``torch.quint8`` up to 8 bit and ``torch.int16`` / ``torch.uint16`` for 9 to
16 bit.
"""
import numbers
from typing import Any, Dict, Tuple

import torch

QDTYPES = ('qint8', 'quint8')
MIN_BIT, MAX_BIT = 1, 16


def quant_range(qdtype: str, bit: int,
                is_symmetric_range: bool = False) -> Tuple[int, int]:
    """The integer range ``[quant_min, quant_max]`` of a quantization scheme.

    Args:
        qdtype (str): ``'qint8'`` (signed) or ``'quint8'`` (unsigned).
        bit (int): Number of bits, 1 to 16.
        is_symmetric_range (bool): Drop the lowest signed level
            (``-2^(bit-1)``), or the highest unsigned level (``2^bit - 1``),
            so that the range has an odd number of levels centred on the
            zero point. Defaults to False.

    Returns:
        tuple[int, int]: ``(quant_min, quant_max)``.
    """
    if qdtype == 'qint8':
        quant_min, quant_max = -2**(bit - 1), 2**(bit - 1) - 1
        if is_symmetric_range:
            quant_min += 1
    else:
        quant_min, quant_max = 0, 2**bit - 1
        if is_symmetric_range:
            quant_max -= 1
    if quant_min >= quant_max:
        raise ValueError(
            f'qdtype={qdtype!r}, bit={bit}, is_symmetric_range='
            f'{is_symmetric_range} leaves the empty range '
            f'[{quant_min}, {quant_max}]; use more bits or '
            'is_symmetric_range=False')
    return quant_min, quant_max


def _check_bool(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f'qscheme key {key!r} must be True or False, '
                        f'got {value!r}')
    return value


class QSchemeHandler:
    """A 1.x quantization scheme (``w_qscheme`` / ``a_qscheme``).

    Args:
        qdtype (str): ``'qint8'`` (signed integers) or ``'quint8'``
            (unsigned). Defaults to ``'quint8'``.
        bit (int): Number of bits, 1 to 16. Defaults to 8.
        is_symmetry (bool): Symmetric quantization (``|x|`` max decides the
            scale; the zero point is 0 for ``qint8`` and the middle of the
            range for ``quint8``) instead of affine (min and max decide scale
            and zero point). Defaults to True.
        is_per_channel (bool): One scale / zero point per slice along
            ``ch_axis`` (the 1.x quantizers set it when the observer's name
            contains ``PerChannel``). Defaults to False.
        is_symmetric_range (bool): See :func:`quant_range`. Defaults to
            False.
        **kwargs: Further observer arguments passed through unchanged, e.g.
            ``averaging_constant`` (in (0, 1]), ``ch_axis`` (int), ``eps``,
            ``bins``, ``percentile``. Whether the chosen observer accepts them
            is checked by :class:`QConfigHandler`.
    """

    def __init__(self,
                 qdtype: str = 'quint8',
                 bit: int = 8,
                 is_symmetry: bool = True,
                 is_per_channel: bool = False,
                 is_symmetric_range: bool = False,
                 **kwargs) -> None:
        if qdtype not in QDTYPES:
            raise ValueError(f'qscheme key \'qdtype\' must be one of '
                             f'{QDTYPES}, got {qdtype!r}')
        if (isinstance(bit, bool) or not isinstance(bit, numbers.Integral)
                or not MIN_BIT <= bit <= MAX_BIT):
            raise ValueError(f'qscheme key \'bit\' must be an integer in '
                             f'[{MIN_BIT}, {MAX_BIT}], got {bit!r}')
        self.qdtype = qdtype
        self.bit = int(bit)
        self.is_symmetry = _check_bool('is_symmetry', is_symmetry)
        self.is_per_channel = _check_bool('is_per_channel', is_per_channel)
        self.is_symmetric_range = _check_bool('is_symmetric_range',
                                              is_symmetric_range)
        self.quant_min, self.quant_max = quant_range(qdtype, self.bit,
                                                     is_symmetric_range)
        self._check_extra_kwargs(kwargs)
        self.kwargs = kwargs

    @staticmethod
    def _check_extra_kwargs(kwargs: Dict[str, Any]) -> None:
        reserved = ('dtype', 'qscheme', 'quant_min', 'quant_max')
        for key in reserved:
            if key in kwargs:
                raise ValueError(
                    f'qscheme key {key!r}={kwargs[key]!r} is derived from '
                    'qdtype / bit / is_symmetry / is_per_channel / '
                    'is_symmetric_range; do not set it directly')
        if 'averaging_constant' in kwargs:
            value = kwargs['averaging_constant']
            if (isinstance(value, bool)
                    or not isinstance(value, numbers.Real)
                    or not 0 < value <= 1):
                raise ValueError('qscheme key \'averaging_constant\' must be '
                                 f'a number in (0, 1], got {value!r}')
        if 'ch_axis' in kwargs:
            value = kwargs['ch_axis']
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError('qscheme key \'ch_axis\' must be an int, '
                                 f'got {value!r}')

    @property
    def torch_dtype(self) -> torch.dtype:
        """The torch dtype of the quantized values."""
        if self.bit <= 8:
            return torch.qint8 if self.qdtype == 'qint8' else torch.quint8
        return torch.int16 if self.qdtype == 'qint8' else torch.uint16

    @property
    def torch_qscheme(self) -> torch.qscheme:
        """The torch qscheme (per-tensor / per-channel, affine /
        symmetric)."""
        if self.is_per_channel:
            return (torch.per_channel_symmetric
                    if self.is_symmetry else torch.per_channel_affine)
        return (torch.per_tensor_symmetric
                if self.is_symmetry else torch.per_tensor_affine)

    def to_observer_params(self) -> Dict[str, Any]:
        """Keyword arguments of a torch observer / fake-quant.

        Returns:
            dict: ``dtype``, ``quant_min``, ``quant_max``, ``qscheme``,
            ``reduce_range=False``, ``ch_axis`` (per-channel only, default
            0, the output channels of a conv / linear weight) and the
            pass-through keys.
        """
        params = dict(
            dtype=self.torch_dtype,
            quant_min=self.quant_min,
            quant_max=self.quant_max,
            qscheme=self.torch_qscheme,
            reduce_range=False)
        if self.is_per_channel:
            params['ch_axis'] = 0
        params.update(self.kwargs)
        return params

    def __repr__(self) -> str:
        extra = ''.join(f', {k}={v!r}' for k, v in self.kwargs.items())
        return (f'{type(self).__name__}(qdtype={self.qdtype!r}, '
                f'bit={self.bit}, is_symmetry={self.is_symmetry}, '
                f'is_per_channel={self.is_per_channel}, '
                f'is_symmetric_range={self.is_symmetric_range}{extra})')
