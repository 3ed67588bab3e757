"""Small numeric helpers shared across the toolbox."""
from typing import Optional


def make_divisible(value: float,
                   divisor: int,
                   min_value: Optional[int] = None,
                   min_ratio: float = 0.9) -> int:
    """Round ``value`` to the nearest multiple of ``divisor`` (channels).

    The result is at least ``min_value`` (``divisor`` by default) and never
    below ``min_ratio * value``: then one more ``divisor`` is added, as
    MobileNet-style width multipliers do.

    Args:
        value (float): The raw number of channels.
        divisor (int): The multiple to round to.
        min_value (int, optional): Smallest result. Defaults to ``divisor``.
        min_ratio (float): Smallest ratio of result to ``value``.
            Defaults to 0.9.

    Returns:
        int: The rounded number of channels.
    """
    if divisor <= 0:
        raise ValueError(f'divisor must be positive, got {divisor}')
    if min_value is None:
        min_value = divisor
    new_value = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new_value < min_ratio * value:
        new_value += divisor
    return new_value
