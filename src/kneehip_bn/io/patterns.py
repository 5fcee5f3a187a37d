"""Distinct rows and their counts: the mixed-radix pattern key and the grouping.

The count table of distinct observed patterns (blanks included) is the exact sufficient
statistic of a fit (see :mod:`kneehip_bn.io.counts`); every path that counts an audit
groups its codes here, or in a database with the same key order.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["group_patterns", "pattern_keys"]


def pattern_keys(codes: np.ndarray, cards: Sequence[int]) -> np.ndarray:
    """One int64 key per row: mixed radix with ``card + 1`` digits per column (blank = 0).

    When the key would overflow int64, the digits so far are first compressed to their
    rank among the distinct prefixes (``np.unique`` of a 1-D array), so any number of
    columns works and keys still sort like the rows.
    """
    codes = np.asarray(codes)
    n = codes.shape[0]
    key = np.zeros(n, dtype=np.int64)
    bound = 1
    for j, c in enumerate(cards):
        r = int(c) + 1
        if bound * r >= 2**62:
            _, key = np.unique(key, return_inverse=True)
            key = key.astype(np.int64).reshape(-1)
            bound = int(key.max()) + 1 if n else 1
        key *= r
        key += codes[:, j]
        key += 1
        bound *= r
    return key


def group_patterns(
    codes: np.ndarray, cards: Sequence[int], weights: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct rows of ``codes`` with their counts.

    Returns
    -------
    patterns : ndarray, shape (m, k)
        The distinct rows, sorted by their key.
    counts : ndarray, shape (m,)
        How many rows (or the summed ``weights``) share each pattern.
    inverse : ndarray, shape (n,)
        For each input row, the index of its pattern (``patterns[inverse] == codes``).

    Examples
    --------
    >>> import numpy as np
    >>> p, c, inv = group_patterns(np.array([[0, 1], [-1, 1], [0, 1]]), [2, 2])
    >>> p.tolist(), c.tolist(), inv.tolist()
    ([[-1, 1], [0, 1]], [1.0, 2.0], [1, 0, 1])
    """
    codes = np.asarray(codes)
    if codes.shape[0] == 0:
        return codes[:0], np.zeros(0), np.zeros(0, dtype=np.intp)
    key = pattern_keys(codes, cards)
    n = key.shape[0]
    order = np.argsort(key)  # patterns sorted by key; ids by a flag at each new key
    sk = key[order]
    del key
    new = np.empty(n, dtype=bool)
    new[0] = True
    np.not_equal(sk[1:], sk[:-1], out=new[1:])
    del sk  # memory: the pattern table of a big audit is merged through here
    ids = np.cumsum(new)
    ids -= 1
    inverse = np.empty(n, dtype=np.intp)
    inverse[order] = ids
    del ids
    first = order[new]  # a row of each pattern
    del order, new
    m = first.shape[0]
    if weights is None:
        counts = np.bincount(inverse, minlength=m).astype(float)
    else:
        counts = np.bincount(inverse, weights=np.asarray(weights, float), minlength=m)
    # column by column (codes from the encoder are column-major): (m, k), columns contiguous
    return np.take(codes.T, first, axis=1).T, counts, inverse
