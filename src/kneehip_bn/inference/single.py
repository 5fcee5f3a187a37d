"""The flat pass for one query: every clique table a row vector, messages by BLAS.

The single-query compilation of :class:`~kneehip_bn.inference.engine.Engine` merges
neighbouring cliques up to 1024 entries (few numpy calls per query) and lays every
clique table out flat, shape ``(rows, size)``. Index maps give, for each flat entry, the
state of a variable or the flat index into a sub-table (:func:`sub_index`), so evidence
is a 0/1 mask and a message to or from a separator is one projection (:class:`Proj`: a
dense 0/1 matrix product, ``bincount`` for one row, a sparse product for big tables).
:func:`calibrate` passes the messages towards the root and back (Hugin-style).

All clique arrays keep their variables in one global order, so a separator's variables
appear in the same relative order in both cliques and messages move between cliques by
index maps alone.

Examples
--------
>>> from kneehip_bn import load_spec
>>> from kneehip_bn.inference.engine import Engine
>>> eng = Engine(load_spec("knee_hip_basic"))
>>> beliefs, log_pe = calibrate(eng, eng.clique_tables(), [], None)
>>> float(log_pe[0]), round(float(beliefs[eng.root].sum()), 12)
(0.0, 1.0)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Clique", "Proj", "calibrate", "sub_index"]


@dataclass
class Clique:
    """One clique of the single-query junction tree."""

    vars: tuple[int, ...]  # global variable indices, ascending
    shape: tuple[int, ...]
    size: int


class Proj:
    """Sum a batch of flat clique tables onto a sub-table (e.g. a separator).

    Small tables use a dense 0/1 matrix (one BLAS call for the whole batch); one row uses
    ``bincount``; large tables fall back to a sparse matrix.
    """

    def __init__(self, idx: np.ndarray, size: int) -> None:
        self.idx = idx
        self.size = size
        n = idx.shape[0]
        self.sparse: Any = None
        if n * size <= 2**21:
            self.dense = np.zeros((n, size))
            self.dense[np.arange(n), idx] = 1.0
        else:
            self.dense = None  # the sparse matrix is made on the first batch (_sparse)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if x.shape[0] == 1:
            return np.bincount(self.idx, weights=x[0], minlength=self.size)[None]
        if self.dense is not None:
            return x @ self.dense
        return np.asarray((self._sparse() @ x.T).T)

    def _sparse(self) -> Any:
        """The 0/1 projection as a sparse matrix, made when first needed: importing
        ``scipy.sparse`` costs 0.2-0.4 s, which one query (one row, ``bincount``) on a
        model with big cliques, as ``kneehip diagnose`` on the second edition, never pays."""
        if self.sparse is None:
            from scipy import sparse

            n = self.idx.shape[0]
            self.sparse = sparse.csr_matrix((np.ones(n), (self.idx, np.arange(n))),
                                            shape=(self.size, n))
        return self.sparse


def sub_index(clique: Clique, grid: np.ndarray, card: np.ndarray,
              sub: Sequence[int]) -> tuple[np.ndarray, int]:
    """For each flat entry of ``clique`` (whose state grid is ``grid``, one row per
    variable), the flat index into the table over ``sub``; and that table's size."""
    idx = np.zeros(clique.size, dtype=np.intp)
    size = 1
    for v in sorted(sub):
        idx = idx * int(card[v]) + grid[clique.vars.index(v)]
        size *= int(card[v])
    return idx, size


def calibrate(
    tree: Any,
    phis: Sequence[np.ndarray],
    lam: Sequence[tuple[int, np.ndarray]],
    need: set[int] | None = None,
) -> tuple[list[np.ndarray], np.ndarray]:
    """One collect/distribute pass over the flat junction tree of ``tree`` (an
    :class:`~kneehip_bn.inference.engine.Engine`: its cliques, orientation and
    projections).

    ``phis``: the clique tables, shape ``(1, size)``; ``lam``: (clique, (nrows, clique
    size)) evidence factors; ``need``: the cliques whose beliefs are wanted (default: all;
    the downward pass visits only them and the cliques between them and the root).

    Returns per-clique beliefs (normalised per row, shape (nrows, size); NaN rows where
    the evidence is impossible) and log P(evidence) per row.
    """
    pots: list[np.ndarray] = list(phis)
    for h, x in lam:
        pots[h] = pots[h] * x
    logz = np.zeros(1)
    k = len(tree.cliques)
    up: list[np.ndarray] = [None] * k  # type: ignore[list-item]
    raw: list[np.ndarray] = [None] * k  # type: ignore[list-item]
    with np.errstate(divide="ignore", invalid="ignore"):
        for c in tree.collect:
            pc = pots[c]
            for ch in tree.children[c]:
                pc = pc * up[ch][:, tree.sep_in_parent[ch]]
            pots[c] = pc
            msg = raw[c] = tree.up_proj[c](pc)
            if tree.rescale:  # guard against underflow on very large networks
                s = msg.sum(axis=1)
                logz = logz + np.log(s)
                s[s == 0] = 1.0
                msg = msg / s[:, None]
            up[c] = msg
        r = tree.root
        pr = pots[r]
        for ch in tree.children[r]:
            pr = pr * up[ch][:, tree.sep_in_parent[ch]]
        z = pr.sum(axis=1)
        log_pe = logz + np.log(z)
        beliefs: list[np.ndarray] = [None] * k  # type: ignore[list-item]
        beliefs[r] = pr / z[:, None]
        # Hugin distribution: with a normalised root every belief is P(clique | e)
        for c in tree.topdown[1:]:
            if need is not None and c not in need:
                continue
            m = tree.down_proj[c](beliefs[tree.parent[c]])
            u = raw[c]  # pots[c] projects to the unscaled message
            # 0/0 -> 0: where the upward message is 0 the parent's belief is 0 too
            m = m / np.where(u > 0, u, 1.0)
            beliefs[c] = pots[c] * m[:, tree.sep_in_child[c]]
    return beliefs, log_pe
