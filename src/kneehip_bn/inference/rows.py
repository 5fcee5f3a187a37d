"""The batch-last row pass: a junction tree calibrated for a block of evidence rows at once.

:class:`BatchPlan` is the second compilation of a network, used by batches
(:meth:`~kneehip_bn.inference.engine.Engine.batch`,
:meth:`~kneehip_bn.inference.engine.Engine.expected_counts`): small cliques (no merging
beyond 8 entries), arrays with the batch as their *last* axis (long contiguous inner
loops, plain numpy broadcasting and sums, no BLAS). :class:`OrientedPlan` picks a root
and orientation per target set so that the downward pass visits only the cliques the
targets need, and computes upward messages of the other subtrees once per distinct
evidence sub-pattern (a finding's family clique sends one of ``card + 1`` messages),
gathered to the rows.

Examples
--------
>>> import numpy as np
>>> from kneehip_bn.inference.cache import get_engine
>>> eng = get_engine("knee_hip_basic")
>>> plan = eng.batch_plan()
>>> tree = plan.oriented((eng.index["knee_pathology"],))
>>> codes = np.array([[1], [-1]])
>>> beliefs, log_pe = tree.calibrate(eng.batch_phis(), codes, [eng.index["knee_effusion"]], False)
>>> m = tree.marginals(beliefs, [eng.index["knee_pathology"]])[eng.index["knee_pathology"]]
>>> m.shape, bool(np.allclose(m.sum(axis=1), 1.0)), bool(abs(log_pe[1]) < 1e-12)
((2, 2), True, True)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from kneehip_bn.inference.compile import (
    children_of,
    clique_tables,
    clique_tree,
    depths,
    orient,
)

__all__ = ["BATCH_MAX_STATES", "BatchPlan", "OrientedPlan"]

#: cliques of the batch compilation are merged only up to this many entries (measured on
#: knee_hip and ALARM: 1-8 is best; bigger cliques make every row pay for their size)
BATCH_MAX_STATES = 8


class BatchPlan:
    """The junction tree used for batches (structure only: no tables).

    Clique arrays have shape ``(*clique shape, rows)``: the batch is the last, contiguous
    axis, so multiplying by a message is a broadcast and projecting onto a separator is a
    ``sum`` over leading axes, both with long inner loops and without BLAS.
    """

    def __init__(self, families: Sequence[tuple[int, ...]], card: np.ndarray,
                 max_states: int) -> None:
        n = len(card)
        self.card = card
        has_child = {x for v, fam in enumerate(families) for x in fam if x != v}
        sets, self.nbrs = clique_tree(families, card, max_states,
                                      leaves=frozenset(range(n)) - has_child)
        self.vars = [tuple(sorted(c)) for c in sets]
        self.shape = [tuple(int(card[v]) for v in c) for c in self.vars]
        self.size = [math.prod(s) for s in self.shape]
        self.containing: list[list[int]] = [[] for _ in range(n)]
        for i, c in enumerate(self.vars):
            for v in c:
                self.containing[v].append(i)
        self.factor_home = [min((i for i in self.containing[f[0]] if set(f) <= set(self.vars[i])),
                                key=lambda i: self.size[i]) for f in families]
        self.ev_home = [min(self.containing[v], key=lambda i: self.size[i]) for v in range(n)]
        self.bytes_per_row = 3 * 8 * sum(self.size)
        self._trees: dict[tuple, Any] = {}  # oriented and shared-message plans
        # likelihood columns of each code: state k -> one-hot, -1 (missing) -> all ones
        self.lam = [np.hstack([np.eye(int(c)), np.ones((int(c), 1))]) for c in card]
        # the same by code + 1 (column 0 is missing), for the shared-message pass
        self.lam1 = [np.hstack([np.ones((int(c), 1)), np.eye(int(c))]) for c in card]

    def bshape(self, c: int, keep: Sequence[int] | set[int]) -> tuple[int, ...]:
        """Shape that broadcasts a table over ``keep`` (ascending) into clique ``c``."""
        return tuple(int(self.card[x]) if x in keep else 1 for x in self.vars[c])

    def phis(self, factors, do: Mapping[int, int] | None) -> list[np.ndarray]:
        """Clique tables (:func:`~kneehip_bn.inference.compile.clique_tables`), shape
        ``(*clique shape, 1)``: one column that broadcasts over the rows."""
        tables = clique_tables(self.vars, self.card, factors, self.factor_home, do)
        return [p[..., None] for p in tables]

    def oriented(self, targets: tuple[int, ...],
                 cliques: frozenset[int] = frozenset()) -> OrientedPlan:
        """The tree oriented for these targets (and cliques whose beliefs are needed)."""
        key = (frozenset(targets), cliques)
        return self.cached(key, lambda: OrientedPlan(self, key[0], cliques))

    def cached(self, key: tuple, make: Callable[[], Any]) -> Any:
        """A plan for ``key`` built by ``make`` once (at most 64 kept)."""
        plan = self._trees.get(key)
        if plan is None:
            if len(self._trees) >= 64:
                self._trees.clear()
            plan = self._trees[key] = make()
        return plan


class OrientedPlan:
    """A root, parent pointers, target homes and the cliques the downward pass visits,
    chosen (over every root) to minimise the total size of those cliques."""

    def __init__(self, plan: BatchPlan, targets: frozenset[int], must: frozenset[int]):
        self.plan = plan
        k = len(plan.vars)
        best = None
        # every clique is a candidate root on small trees; the 32 largest on big ones
        roots = range(k) if k <= 64 else sorted(range(k), key=lambda i: -plan.size[i])[:32]
        for root in roots:
            parent, order = orient(plan.nbrs, root, k)
            depth = depths(parent, order)
            need = set(must) | {root}
            for v in targets:
                c = min(plan.containing[v], key=lambda i: (depth[i], plan.size[i]))
                while c != -1 and c not in need:
                    need.add(c)
                    c = parent[c]
            for c in list(must):
                while c != -1:
                    need.add(c)
                    c = parent[c]
            cost = sum(plan.size[c] for c in need)
            if best is None or cost < best[0]:
                best = (cost, root, parent, order, need)
        assert best is not None
        _, self.root, self.parent, order, self.need = best
        # each target is read from the smallest clique the downward pass visits anyway
        self.home = {v: min((c for c in plan.containing[v] if c in self.need),
                            key=lambda c: plan.size[c]) for v in targets}
        self.topdown = order
        self.collect = [*reversed(order[1:]), self.root]
        self.children = children_of(self.parent, order)
        self.sum_child: list[tuple[int, ...]] = [()] * k
        self.sum_parent: list[tuple[int, ...]] = [()] * k
        self.bs_parent: list[tuple[int, ...]] = [()] * k
        self.bs_child: list[tuple[int, ...]] = [()] * k
        for c in order[1:]:
            p = self.parent[c]
            sep = set(plan.vars[c]) & set(plan.vars[p])
            self.sum_child[c] = tuple(a for a, v in enumerate(plan.vars[c]) if v not in sep)
            self.sum_parent[c] = tuple(a for a, v in enumerate(plan.vars[p]) if v not in sep)
            self.bs_parent[c] = plan.bshape(p, sep)
            self.bs_child[c] = plan.bshape(c, sep)

    # kernel: upward per sub-pattern, downward gathered to rows; one algorithm on shared locals
    def calibrate(
        self, phis: list[np.ndarray], codes: np.ndarray, col_idx: Sequence[int], rescale: bool
    ) -> tuple[dict[int, np.ndarray], np.ndarray]:
        """One pass over a chunk of rows: beliefs of the needed cliques, shape
        ``(*clique shape, rows or 1)`` (normalised per row; NaN where the evidence is
        impossible) and log P(evidence) per row."""
        plan = self.plan
        n = codes.shape[0]
        observed = codes >= 0
        at: dict[int, list[int]] = {}
        for j, v in enumerate(col_idx):
            if observed[:, j].any():
                at.setdefault(plan.ev_home[v], []).append(j)
        radix = [int(plan.card[v]) + 1 for v in col_idx]  # code + 1: 0 is missing
        bits = [math.log2(r) for r in radix]
        sub: dict[int, list[int]] = {}  # evidence columns in each clique's subtree
        up: dict[int, tuple] = {}  # clique -> (scaled msg, raw msg, rows->patterns, log scale)
        pots: dict[int, np.ndarray] = {}
        for c in self.collect:
            cols = list(at.get(c, ()))
            for ch in self.children[c]:
                cols += sub[ch]
            sub[c] = cols
            # the space the clique's upward pass works in: one column per row (rep and inv
            # None), or one column per distinct pattern of the subtree's evidence (inv maps
            # rows to patterns; the upward message depends on nothing else): one pattern
            # per state (+ missing) of a single column, the distinct keys otherwise (rep: a
            # row of each), or one pattern without evidence. The downward pass gathers
            # the patterns back to rows.
            rows, rep, inv, single = codes, None, None, False
            if c != self.root:
                if len(cols) == 1 and 2 * radix[cols[0]] <= n:
                    j = cols[0]
                    single, inv = True, codes[:, j] + 1
                    rows = np.full((radix[j], codes.shape[1]), -1, dtype=codes.dtype)
                    rows[:, j] = np.arange(-1, radix[j] - 1)
                elif cols and sum(bits[j] for j in cols) < 62:  # the key fits an int64
                    key = np.zeros(n, dtype=np.int64)
                    for j in cols:
                        key = key * radix[j] + (codes[:, j] + 1)
                    _, first, inv = np.unique(key, return_index=True, return_inverse=True)
                    if 2 * len(first) > n:
                        inv = None
                    else:
                        rep, rows = first, codes[first]
                elif not cols:
                    rep, inv = np.zeros(1, dtype=np.intp), np.zeros(n, dtype=np.intp)
                    rows = codes[rep]
            pc = phis[c]
            owned = False
            factors = []
            for j in at.get(c, ()):
                v = col_idx[j]
                lam = plan.lam[v][:, rows[:, j]]
                factors.append(lam.reshape((*plan.bshape(c, (v,)), lam.shape[-1])))
            logs = None
            for ch in self.children[c]:
                msg, _, inv_ch, logs_ch = up[ch]
                if single:  # the child sees the same single column (or none): same patterns
                    idx = None
                elif rep is None:
                    idx = inv_ch
                else:
                    idx = rep if inv_ch is None else inv_ch[rep]
                if idx is not None and msg.shape[-1] > 1:
                    msg = msg[..., idx]
                    if logs_ch is not None and logs_ch.shape[-1] > 1:
                        logs_ch = logs_ch[idx]
                factors.append(msg)
                if logs_ch is not None:
                    logs = logs_ch if logs is None else logs + logs_ch
            for x in factors:
                if owned and pc.shape[-1] >= x.shape[-1]:
                    np.multiply(pc, x, out=pc)
                else:
                    pc = pc * x
                    owned = True
            if c == self.root:
                break
            if c in self.need:
                pots[c] = pc
            raw = pc.sum(axis=self.sum_child[c]).reshape((*self.bs_parent[c], pc.shape[-1]))
            msg = raw
            if rescale:  # guard against underflow on very large networks
                s = raw.reshape(-1, raw.shape[-1]).sum(axis=0)
                ls = np.log(s)
                logs = ls if logs is None else logs + ls
                msg = raw / np.where(s > 0, s, 1.0)
            up[c] = (msg, raw, inv, logs)
        r = self.root
        z = pc.reshape(-1, pc.shape[-1]).sum(axis=0)
        log_pe = np.log(z) if logs is None else np.log(z) + logs
        beliefs = {r: pc / z}
        for c in self.topdown[1:]:
            if c not in self.need:
                continue
            m = beliefs[self.parent[c]].sum(axis=self.sum_parent[c])
            m = m.reshape((*self.bs_child[c], m.shape[-1]))
            _, u, inv, _ = up[c]
            p = pots[c]
            if inv is not None:  # patterns -> rows
                u = u[..., inv] if u.shape[-1] > 1 else u
                p = p[..., inv] if p.shape[-1] > 1 else p
            u = u.reshape((*self.bs_child[c], u.shape[-1]))
            # 0/0 -> 0: where the upward message is 0 the parent's belief is 0 too
            m = m / np.where(u > 0, u, 1.0)
            beliefs[c] = p * m
        return beliefs, np.broadcast_to(log_pe, (n,))

    def marginals(self, beliefs: dict[int, np.ndarray], vs: Sequence[int]) -> dict[int, np.ndarray]:
        """``{v: (rows or 1, card)}`` marginals; several targets in one clique share one
        pass over it (the other variables are summed out first)."""
        groups: dict[int, list[int]] = {}
        for v in vs:
            groups.setdefault(self.home[v], []).append(v)
        out = {}
        for h, group in groups.items():
            b, names = beliefs[h], self.plan.vars[h]
            if len(group) > 1 and len(group) < len(names):
                b = b.sum(axis=tuple(a for a, x in enumerate(names) if x not in group))
                names = tuple(x for x in names if x in group)
            for v in group:
                m = b.sum(axis=tuple(a for a, x in enumerate(names) if x != v))
                out[v] = m.reshape(-1, m.shape[-1]).T
        return out
