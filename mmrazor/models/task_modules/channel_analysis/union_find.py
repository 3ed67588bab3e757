"""Disjoint sets over integer channel ids, vectorised with numpy."""
from typing import List, Optional

import numpy as np


def sorted_unique(values: np.ndarray) -> np.ndarray:
    """``np.unique`` of a 1-d int array, by sorting (numpy 2's hash-based
    ``np.unique`` costs a fixed ~0.2 ms per call, which adds up over the
    many small arrays of a channel analysis).

    Args:
        values (np.ndarray): 1-d array.

    Returns:
        np.ndarray: The distinct values, ascending.
    """
    ordered = np.sort(values)
    if len(ordered) < 2:
        return ordered
    first = np.empty(len(ordered), dtype=bool)
    first[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    return ordered[first]


def connected_labels(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Label every node ``0..n-1`` by the smallest node of its component.

    Args:
        n (int): Number of nodes.
        a (np.ndarray): Edge ends (int64).
        b (np.ndarray): The other edge ends.

    Returns:
        np.ndarray: ``label[i]`` = smallest node connected to ``i``.
    """
    label = np.arange(n, dtype=np.int64)
    if not len(a):
        return label
    for _ in range(64 + int(np.log2(n + 1)) * 4):
        la, lb = label[a], label[b]
        if np.array_equal(la, lb):
            return label
        low = np.minimum(la, lb)
        np.minimum.at(label, la, low)
        np.minimum.at(label, lb, low)
        while True:  # pointer jumping: labels point at their label's label
            jumped = label[label]
            if np.array_equal(jumped, label):
                break
            label = jumped
    raise RuntimeError('connected_labels did not converge')


def _read_only(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


class UnionFind:
    """Disjoint sets over the ints ``0..n-1`` (grown with :meth:`add`).

    Every traced channel gets an id; channels that must be pruned together
    end up in one set. Unions are recorded as edges and resolved in one
    vectorised pass by :meth:`roots`; the representative of a set is its
    smallest (oldest) id.
    """

    def __init__(self) -> None:
        self._n = 0
        self._ids = _read_only(np.arange(1024, dtype=np.int64))
        self._a: List[np.ndarray] = []
        self._b: List[np.ndarray] = []
        self._roots: Optional[np.ndarray] = None

    def __len__(self) -> int:
        return self._n

    def add(self, count: int) -> np.ndarray:
        """Allocate ``count`` new singleton ids.

        Args:
            count (int): How many.

        Returns:
            np.ndarray: The new ids (int64, ascending).
        """
        start = self._n
        end = self._n = start + count
        self._roots = None
        if end > len(self._ids):  # new ids are views of one read-only range
            self._ids = _read_only(
                np.arange(max(end, 2 * len(self._ids)), dtype=np.int64))
        return self._ids[start:end]

    def union(self, a: int, b: int) -> None:
        """Put ``a`` and ``b`` in one set."""
        self.union_arrays(np.array([a]), np.array([b]))

    def union_arrays(self, a: np.ndarray, b: np.ndarray) -> None:
        """Union ``a[i]`` with ``b[i]`` wherever both are ids (``>= 0``)."""
        a = np.asarray(a, dtype=np.int64).ravel()
        b = np.asarray(b, dtype=np.int64).ravel()
        if not len(a):
            return
        if a.min() >= 0 and b.min() >= 0:  # the usual case: all traced
            self.link(a, b)
            return
        keep = (a >= 0) & (b >= 0) & (a != b)
        if keep.any():
            self._a.append(a[keep])
            self._b.append(b[keep])
            self._roots = None

    def link(self, a: np.ndarray, b: np.ndarray) -> None:
        """Union ``a[i]`` with ``b[i]``; both must be 1-d arrays of ids
        (``>= 0``) of equal length (no checks: the fast path of
        :meth:`union_arrays`)."""
        self._a.append(a)
        self._b.append(b)
        self._roots = None

    def union_along(self, table: np.ndarray, axis: int) -> None:
        """Union every slice of ``table`` along ``axis`` with the first
        slice, element by element (``-1`` entries are skipped).

        Args:
            table (np.ndarray): Ids.
            axis (int): The axis whose slices are tied together.
        """
        table = np.moveaxis(np.asarray(table), axis, 0)
        if table.shape[0] > 1:
            rest = table[1:]
            self.union_arrays(np.broadcast_to(table[:1], rest.shape), rest)

    def roots(self) -> np.ndarray:
        """The representative of every id, as an array."""
        if self._roots is None:
            a = np.concatenate(self._a) if self._a else np.zeros(0, np.int64)
            b = np.concatenate(self._b) if self._b else np.zeros(0, np.int64)
            self._roots = connected_labels(self._n, a, b)
            self._a, self._b = [a], [b]
        return self._roots

    def find(self, x: int) -> int:
        """The representative of ``x``'s set."""
        return int(self.roots()[x])
