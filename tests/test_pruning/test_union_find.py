"""The vectorised union-find against a plain one, on random edges."""
import numpy as np

from mmrazor.models.task_modules.channel_analysis.analyzer import \
    _source_groups
from mmrazor.models.task_modules.channel_analysis.union_find import (
    UnionFind, sorted_unique)


def _plain_roots(n, pairs):
    parent = list(range(n))

    def find(k):
        while parent[k] != k:
            k = parent[k]
        return k

    for a, b in pairs:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return [find(k) for k in range(n)]


def test_union_find_matches_plain_union_find():
    rng = np.random.default_rng(0)
    uf = UnionFind()
    chunks = [uf.add(int(k)) for k in rng.integers(1, 400, size=12)]
    n = len(uf)
    assert n > 1024  # the shared id range grew on the way
    assert np.array_equal(np.concatenate(chunks), np.arange(n))
    pairs = []
    for _ in range(30):
        a = rng.integers(-1, n, size=20)
        b = rng.integers(-1, n, size=20)
        uf.union_arrays(a, b)
        pairs += [(int(x), int(y)) for x, y in zip(a, b)
                  if x >= 0 and y >= 0]
    a = rng.integers(0, n, size=50)
    b = rng.integers(0, n, size=50)
    uf.link(a, b)  # the unchecked path
    pairs += list(zip(a.tolist(), b.tolist()))
    assert uf.roots().tolist() == _plain_roots(n, pairs)
    assert uf.find(n - 1) == _plain_roots(n, pairs)[n - 1]
    # ids handed out are read-only views: nothing can corrupt them
    assert not chunks[0].flags.writeable


def test_source_groups_match_components():
    rng = np.random.default_rng(1)
    num_src, n = 9, 60
    src_of = np.sort(rng.integers(0, num_src, size=n))
    uf = UnionFind()
    uf.add(n)
    for _ in range(6):
        i, j = rng.integers(0, n, size=2)
        uf.union_arrays(np.array([i]), np.array([j]))
    roots = uf.roots()
    # two sources are in one group iff some unit holds ids of both
    pairs = [(int(src_of[i]), int(src_of[j])) for i in range(n)
             for j in range(n) if roots[i] == roots[j]]
    assert _source_groups(num_src, src_of, roots).tolist() == \
        _plain_roots(num_src, pairs)


def test_sorted_unique():
    values = np.array([5, 3, 5, -1, 3, 9])
    assert sorted_unique(values).tolist() == [-1, 3, 5, 9]
    assert sorted_unique(np.array([], dtype=np.int64)).tolist() == []
