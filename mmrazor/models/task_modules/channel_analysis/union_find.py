"""A small union-find over integer channel ids."""
from typing import List

import numpy as np


class UnionFind:
    """Disjoint sets over the ints ``0..n-1`` (grown with :meth:`add`).

    Every traced channel gets an id; channels that must be pruned together
    end up in one set.
    """

    def __init__(self) -> None:
        self.parent: List[int] = []

    def __len__(self) -> int:
        return len(self.parent)

    def add(self, count: int) -> np.ndarray:
        """Allocate ``count`` new singleton ids.

        Args:
            count (int): How many.

        Returns:
            np.ndarray: The new ids (int64, ascending).
        """
        start = len(self.parent)
        self.parent.extend(range(start, start + count))
        return np.arange(start, start + count, dtype=np.int64)

    def find(self, x: int) -> int:
        """The representative of ``x``'s set."""
        parent = self.parent
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(self, a: int, b: int) -> int:
        """Merge the sets of ``a`` and ``b``; the smaller root wins (so the
        representative of a set is its oldest id)."""
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return ra
        if rb < ra:
            ra, rb = rb, ra
        self.parent[rb] = ra
        return ra

    def union_arrays(self, a: np.ndarray, b: np.ndarray) -> None:
        """Union ``a[i]`` with ``b[i]`` wherever both are ids (``>= 0``)."""
        a = np.asarray(a).ravel()
        b = np.asarray(b).ravel()
        both = (a >= 0) & (b >= 0) & (a != b)
        if not both.any():
            return
        pairs = np.unique(np.stack([a[both], b[both]], 1), axis=0)
        for x, y in pairs.tolist():
            self.union(x, y)

    def roots(self) -> np.ndarray:
        """The representative of every id, as an array."""
        return np.array([self.find(i) for i in range(len(self.parent))],
                        dtype=np.int64)
