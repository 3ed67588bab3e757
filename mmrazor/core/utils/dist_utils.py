"""Distributed helpers that also work in a single process."""
from typing import Any, List

import torch.distributed as dist


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and \
        dist.get_world_size() > 1


def broadcast_object_list(object_list: List[Any], src: int = 0) -> None:
    """Broadcast picklable objects from rank ``src`` to every rank, in place.

    A no-op in a single process.

    Args:
        object_list (list): On ``src`` the objects to send; on other ranks
            a list of the same length, overwritten.
        src (int): The sending rank. Defaults to 0.
    """
    if _distributed():
        dist.broadcast_object_list(object_list, src=src)


def all_gather_objects(obj: Any) -> List[Any]:
    """Gather one picklable object from every rank, in rank order.

    Args:
        obj: This rank's object.

    Returns:
        list: One object per rank (``[obj]`` in a single process).
    """
    if not _distributed():
        return [obj]
    gathered: List[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, obj)
    return gathered


def get_dist_info() -> 'tuple[int, int]':
    """``(rank, world_size)``; ``(0, 1)`` outside distributed runs."""
    if _distributed():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1
