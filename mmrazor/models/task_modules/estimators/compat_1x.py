"""The MMRazor 1.x options of :class:`ResourceEstimator`.

MMRazor 1.x called ``estimate(model, flops_params_cfg=..., latency_cfg=...)``
and got FLOPs in the mmcv convention (see :mod:`.mmcv_convention`), per
image, in millions, rounded to 3 decimals. This module checks those
configs and formats the results; the counting is the estimator's.
"""
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple, Union

#: Keys of ``flops_params_cfg`` accepted here.
FLOPS_PARAMS_KEYS = ('input_shape', 'units', 'as_strings', 'precision',
                     'print_per_layer_stat', 'disabled_counters')
#: Keys of ``latency_cfg`` accepted here (``log_interval`` is ignored).
LATENCY_KEYS = ('max_iter', 'num_warmup', 'log_interval', 'unit',
                'input_shape', 'as_strings', 'repeat_num')
#: Units of FLOPs/params: '' or None for raw counts.
SCALES = {'': 1, 'K': 1e3, 'M': 1e6, 'G': 1e9, 'T': 1e12}
#: Latency units.
TIME_SCALES = {'ms': 1.0, 's': 1e-3}

Number = Union[int, float]


@dataclass
class FlopsParamsCfg:
    """A checked 1.x ``flops_params_cfg``.

    Attributes:
        input_shape (tuple[int], optional): Dummy input shape (batch
            included).
        units (dict): ``flops``/``params`` -> unit ('' for raw counts).
        as_strings (bool): Return ``'44.158 M'``-like strings.
        precision (int): Decimals kept.
        print_per_layer_stat (bool): Print the per-module costs.
        disabled_counters (list[str]): 1.x counter names to leave out.
    """
    input_shape: Optional[Tuple[int, ...]] = None
    units: Dict[str, str] = field(
        default_factory=lambda: dict(flops='M', params='M'))
    as_strings: bool = False
    precision: int = 3
    print_per_layer_stat: bool = False
    disabled_counters: List[str] = field(default_factory=list)


@dataclass
class LatencyCfg:
    """A checked 1.x ``latency_cfg``.

    Attributes:
        max_iter (int, optional): Timed runs.
        num_warmup (int, optional): Untimed runs first.
        unit (str): 'ms' or 's'.
        input_shape (tuple[int], optional): Dummy input shape.
        as_strings (bool, optional): Return ``'1.234 ms'``-like strings.
        repeat_num (int): Measurements averaged.
    """
    max_iter: Optional[int] = None
    num_warmup: Optional[int] = None
    unit: str = 'ms'
    input_shape: Optional[Tuple[int, ...]] = None
    as_strings: Optional[bool] = None
    repeat_num: int = 1


def _check_keys(cfg: Dict[str, Any], accepted: Tuple[str, ...],
                what: str) -> None:
    """Raise ValueError naming the first key of ``cfg`` not accepted."""
    if not isinstance(cfg, dict):
        raise TypeError(f'{what} must be a dict, got {type(cfg).__name__}')
    for key in cfg:
        if key == 'input_constructor':
            raise ValueError(
                f'{what}: `input_constructor` is not supported; give the '
                'ResourceEstimator a `forward_fn(model, inputs)` instead')
        if key not in accepted:
            raise ValueError(f'{what}: unknown key {key!r}; accepted keys '
                             f'are {list(accepted)}')


def _check_units(units: Union[None, str, Dict[str, Optional[str]]]
                 ) -> Dict[str, str]:
    """``{'flops': unit, 'params': unit}`` from a unit or a dict of them."""
    if units is None or isinstance(units, str):
        units = dict(flops=units, params=units)
    if not isinstance(units, dict):
        raise TypeError(f'units must be a str or a dict, got {units!r}')
    result = {}
    for key in ('flops', 'params'):
        unit = units.get(key, 'M') or ''
        if unit not in SCALES:
            raise ValueError(f'unknown unit {unit!r} for {key!r}; use one '
                             f'of {list(SCALES)} (or None)')
        result[key] = unit
    return result


def parse_flops_params_cfg(cfg: Dict[str, Any],
                           default_units: Optional[Dict[str, Any]] = None,
                           default_as_strings: bool = False
                           ) -> FlopsParamsCfg:
    """Check a 1.x ``flops_params_cfg``.

    Args:
        cfg (dict): The config (keys of :data:`FLOPS_PARAMS_KEYS`).
        default_units (dict, optional): Units when ``cfg`` gives none
            (the estimator's); 'M' for what they leave out.
        default_as_strings (bool): ``as_strings`` when ``cfg`` gives none.

    Returns:
        FlopsParamsCfg: The checked config.
    """
    _check_keys(cfg, FLOPS_PARAMS_KEYS, 'flops_params_cfg')
    units = cfg['units'] if 'units' in cfg else (default_units or {})
    precision = int(cfg.get('precision', 3))
    if precision < 0:
        raise ValueError(f'precision must be >= 0, got {precision}')
    disabled = cfg.get('disabled_counters') or []
    if isinstance(disabled, str) or not all(
            isinstance(n, str) for n in disabled):
        raise TypeError('disabled_counters must be a list of counter names '
                        f"such as 'ReLUCounter', got {disabled!r}")
    shape = cfg.get('input_shape')
    return FlopsParamsCfg(
        input_shape=tuple(shape) if shape is not None else None,
        units=_check_units(units),
        as_strings=bool(cfg.get('as_strings', default_as_strings)),
        precision=precision,
        print_per_layer_stat=bool(cfg.get('print_per_layer_stat', False)),
        disabled_counters=list(disabled))


def parse_latency_cfg(cfg: Dict[str, Any]) -> LatencyCfg:
    """Check a 1.x ``latency_cfg``.

    Args:
        cfg (dict): The config (keys of :data:`LATENCY_KEYS`).

    Returns:
        LatencyCfg: The checked config.
    """
    _check_keys(cfg, LATENCY_KEYS, 'latency_cfg')
    unit = cfg.get('unit', 'ms')
    if unit not in TIME_SCALES:
        raise ValueError(f'unknown latency unit {unit!r}; use one of '
                         f'{list(TIME_SCALES)}')
    shape = cfg.get('input_shape')
    as_strings = cfg.get('as_strings')
    return LatencyCfg(
        max_iter=_positive(cfg, 'max_iter'),
        num_warmup=_positive(cfg, 'num_warmup', minimum=0),
        unit=unit,
        input_shape=tuple(shape) if shape is not None else None,
        as_strings=None if as_strings is None else bool(as_strings),
        repeat_num=_positive(cfg, 'repeat_num') or 1)


def _positive(cfg: Dict[str, Any], key: str,
              minimum: int = 1) -> Optional[int]:
    if cfg.get(key) is None:
        return None
    value = int(cfg[key])
    if value < minimum:
        raise ValueError(f'latency_cfg: {key} must be >= {minimum}, got '
                         f'{value}')
    return value


def convert(value: Number, unit: str, precision: int,
            as_strings: bool) -> Union[Number, str]:
    """A count in ``unit``, rounded, as a number or a ``'1.5 M'`` string.

    Args:
        value (int | float): The raw count.
        unit (str): A key of :data:`SCALES`.
        precision (int): Decimals kept.
        as_strings (bool): Return a string.

    Returns:
        int | float | str: The converted value.
    """
    scaled = round(value / SCALES[unit], precision)
    if unit == '' and float(scaled).is_integer():
        scaled = int(scaled)
    if as_strings:
        return f'{scaled} {unit}'.rstrip()
    return scaled
