"""Small helpers shared across the toolbox: channel rounding and finding
the latest checkpoint of a work dir."""
import os
import os.path as osp
import re
import warnings
from typing import Dict, Optional, Tuple


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


def find_latest_checkpoint(path: str, suffix: str = 'pth') -> Optional[str]:
    """Find the latest checkpoint in a work dir (the 0.x helper).

    ``latest.{suffix}`` wins if it exists. Otherwise the checkpoint with the
    highest number among ``epoch_N.{suffix}`` / ``iter_N.{suffix}`` is
    returned. Other files are ignored. If the directory holds both epoch and
    iteration checkpoints (two runs of different kinds), their numbers are
    not comparable: the more recently modified of the two highest is
    returned and a warning says so.

    Args:
        path (str): The work dir to look in.
        suffix (str): File extension of the checkpoints, without the dot.
            Defaults to 'pth'.

    Returns:
        str, optional: The path of the latest checkpoint (``path`` joined
        with the file name), or None if ``path`` does not exist or holds no
        checkpoint (a warning says which).
    """
    if not osp.isdir(path):
        warnings.warn(f'The path of checkpoints does not exist: {path}')
        return None
    latest = osp.join(path, f'latest.{suffix}')
    if osp.isfile(latest):
        return latest

    pattern = re.compile(r'^(epoch|iter)_(\d+)\.' + re.escape(suffix) + '$')
    best: Dict[str, Tuple[int, str]] = {}
    for name in os.listdir(path):
        match = pattern.match(name)
        full = osp.join(path, name)
        if match is None or not osp.isfile(full):
            continue
        kind, count = match.group(1), int(match.group(2))
        if kind not in best or count > best[kind][0]:
            best[kind] = (count, full)

    if not best:
        warnings.warn(f'There are no checkpoints (latest.{suffix}, '
                      f'epoch_N.{suffix} or iter_N.{suffix}) in {path}')
        return None
    if len(best) == 1:
        return next(iter(best.values()))[1]
    chosen = max((ckpt for _, ckpt in best.values()), key=osp.getmtime)
    warnings.warn(f'{path} holds both epoch_N.{suffix} and iter_N.{suffix} '
                  f'checkpoints; returning the more recently modified '
                  f'{osp.basename(chosen)}')
    return chosen
