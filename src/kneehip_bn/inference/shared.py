"""Batch posteriors with messages shared between evidence patterns (memoised propagation).

An audit's rows differ in many findings, but any one clique of the junction tree sees
only the findings recorded below it (its *subtree*) or only those outside it. A message
passed upward from a clique depends on its subtree's findings alone, so it is computed
once per distinct sub-pattern *of the whole batch* and gathered to the rows by an index;
the same holds downward for the findings outside a clique. Only the root, and the final
step that joins an inside table with an outside table for each target, work per row, and
both are small: a small root, and per target clique one product of its inside table
(states 1.. of each target and the total; state 0 is the total minus the others) with its
outside message.

Which clique is the root, and where each target is read, are chosen by a work estimate
(:class:`MemoPlan`); distinct sub-patterns are numbered by :func:`dense_ids`.

Layout: clique tables keep the batch (distinct sub-patterns or rows) as their *last* axis,
so products and sums run long contiguous inner loops and gathers are ``np.take`` along it;
the per-row join gathers rows of batch-first tables (contiguous) and multiplies them in
one ``np.matmul``.
Each upward message is normalised per sub-pattern and its log scale carried (no
underflow on large networks); probability-zero evidence gives a zero message, ``-inf``
log scale and NaN marginals.

The pass is checked against brute-force enumeration on random networks, one-at-a-time
queries on ALARM and the row-by-row batch pass
(:meth:`kneehip_bn.inference.rows.OrientedPlan.calibrate`) in ``tests/inference/test_shared.py``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from kneehip_bn.inference.compile import children_of, depths, orient

__all__ = ["MAX_TABLE_BYTES", "MIN_SHARED_ROWS", "MemoPlan", "dense_ids"]

# tables of distinct sub-patterns are built in blocks of about this many bytes
_BLOCK_BYTES = 4 * 2**20
#: default limit (bytes) of the shared tables of one batch; above it the engine takes the
#: row-by-row pass (``Engine.max_shared_bytes`` overrides it per engine)
MAX_TABLE_BYTES = 768 * 2**20
#: fewest rows for which sharing messages pays for numbering the patterns (measured on the
#: shipped model and ALARM: from here on sharing was faster or level in every case)
MIN_SHARED_ROWS = 4096


def dense_ids(parts: Sequence[tuple[np.ndarray, int]], n: int
              ) -> tuple[np.ndarray, list[np.ndarray]]:
    """Number the combinations of several small-integer columns that occur.

    Parameters
    ----------
    parts : list of (array of shape (n,), radix)
        Columns with values ``0 .. radix - 1``.
    n : int
        Number of rows.

    Returns
    -------
    ids : ndarray of shape (n,)
        ``0 .. m - 1``: equal rows share an id.
    values : list of ndarray, each of shape (m,)
        For each part, its value under each id (so ``values[i][ids] == parts[i][0]``).
        When the parts have few combinations (at most 4096, or an eighth of the rows)
        every combination gets an id, occurring or not: numbering them costs no pass over
        the rows beyond forming the key.

    Examples
    --------
    >>> import numpy as np
    >>> a, b = np.array([0, 2, 0, 1] * 3000), np.array([1, 1, 1, 0] * 3000)
    >>> ids, (va, vb) = dense_ids([(a, 3), (b, 2)], a.size)
    >>> bool((va[ids] == a).all() and (vb[ids] == b).all()), int(ids.max()) + 1
    (True, 6)
    """
    if not parts:
        return np.zeros(n, dtype=np.intp), []
    radices = [max(int(r), 1) for _, r in parts]
    space = math.prod(radices)
    if space <= max(4096, n // 8) or n == 0:
        key = np.zeros(n, dtype=np.int32 if space < 2**31 else np.int64)
        for (arr, _), r in zip(parts, radices):
            key *= r
            key += arr
        grid = np.unravel_index(np.arange(space), radices) if space else []
        return key, [np.asarray(g) for g in grid]
    key = None
    space = 1
    for (arr, _), radix in zip(parts, radices):
        if key is not None and space * radix >= 2**62:  # compress the prefix to its ranks
            _, key = np.unique(key, return_inverse=True)
            key = key.reshape(-1).astype(np.int64)
            space = int(key.max()) + 1
        a = np.asarray(arr, dtype=np.int64)
        key = a if key is None else key * radix + a
        space *= radix
    assert key is not None
    if space <= max(1 << 16, 4 * n):  # a direct table: linear time, no sort
        seen = np.zeros(space, dtype=np.int32)
        seen[key] = 1
        remap = np.cumsum(seen, dtype=np.int32) - 1
        ids = remap[key]
        m = int(remap[-1]) + 1
    else:
        _, ids = np.unique(key, return_inverse=True)
        ids = ids.reshape(-1)
        m = int(ids.max()) + 1
    rep = np.empty(m, dtype=np.intp)
    rep[ids] = np.arange(n, dtype=np.intp)
    return ids, [np.asarray(arr)[rep] for arr, _ in parts]


class MemoPlan:
    """A tree orientation and the work it implies, for one set of targets and columns.

    Parameters
    ----------
    plan : kneehip_bn.inference.rows.BatchPlan
        The batch junction tree (cliques with ascending variables, neighbours, homes).
    targets : tuple of int
        Variables whose marginals are wanted.
    col_idx : sequence of int
        The variable each evidence column observes.
    observed : sequence of bool
        Whether each column has any non-blank value in this batch (blank columns are
        ignored).
    n : int
        Number of rows (used to estimate how many distinct sub-patterns there can be).
    """

    def __init__(self, plan: Any, targets: tuple[int, ...], col_idx: Sequence[int],
                 observed: Sequence[bool], n: int) -> None:
        self.plan = plan
        k = len(plan.vars)
        self.targets = tuple(targets)
        self.cols = [j for j, ok in enumerate(observed) if ok]
        self.radix = {j: int(plan.card[col_idx[j]]) + 1 for j in self.cols}
        own: dict[int, list[int]] = {}
        for j in self.cols:
            own.setdefault(plan.ev_home[col_idx[j]], []).append(j)
        self.own = [own.get(c, []) for c in range(k)]
        bits_own = [sum(math.log2(self.radix[j]) for j in self.own[c]) for c in range(k)]
        best = None
        roots = range(k) if k <= 256 else sorted(range(k), key=lambda i: plan.size[i])[:64]
        for root in roots:
            cand = self._root_cost(root, bits_own, n)
            if best is None or cand[0] < best[0]:
                best = cand
        assert best is not None
        # row_cost: the same work row by row (upward everywhere, downward along the paths
        # of the targets' nearest homes), for choosing between the two passes
        (self.cost, self.root, self.parent, self.order, self.home, self.need, bits_in,
         self.row_cost) = best
        total = sum(bits_own)
        # estimated distinct sub-patterns inside / outside each clique
        self.est_in = [min(n, 2 ** min(b, 62)) for b in bits_in]
        self.est_out = [min(n, 2 ** min(total - b, 62)) for b in bits_in]
        self.children = children_of(self.parent, self.order)
        self.at: dict[int, list[int]] = {}
        for v in targets:
            self.at.setdefault(self.home[v], []).append(v)
        # separator of each non-root clique with its parent (ascending variables)
        self.sep: list[tuple[int, ...]] = [()] * k
        for c in self.order[1:]:
            q = self.parent[c]
            self.sep[c] = tuple(x for x in plan.vars[c] if x in plan.vars[q])

    def _root_cost(self, root: int, bits_own: Sequence[float], n: int) -> tuple:
        """The cost model of one root: ``(cost, root, parent, order, home, need, bits_in,
        row_cost)``, the estimated work of the shared pass oriented from ``root`` (each
        clique's work times its estimated distinct sub-patterns) and of the row pass."""
        plan = self.plan
        k = len(plan.vars)
        targets = self.targets
        total = sum(bits_own)
        cap = math.log2(max(n, 2))
        parent, order = orient(plan.nbrs, root, k)
        depth = depths(parent, order)
        bits_in = list(bits_own)
        for c in reversed(order[1:]):
            bits_in[parent[c]] += bits_in[c]
        nchild = [0] * k
        for c in order[1:]:
            nchild[parent[c]] += 1
        work = [plan.size[c] * (1 + nchild[c] + len(self.own[c])) for c in range(k)]
        sep_size = [math.prod(int(plan.card[x]) for x in plan.vars[c]
                              if parent[c] != -1 and x in plan.vars[parent[c]])
                    for c in range(k)]
        # the row pass's homes (nearest the root) and the cliques it visits downward
        near = {v: min(plan.containing[v], key=lambda i: (depth[i], plan.size[i]))
                for v in targets}
        row_need = {root}
        for c in near.values():
            while c != -1 and c not in row_need:
                row_need.add(c)
                c = parent[c]
        # ours: each target read where its join per row plus the outside messages its
        # path to the root adds cost least (greedy, targets in turn)
        need = {root}
        home = {}
        per_row = {root: 0}
        for v in targets:
            pick = None
            for c in plan.containing[v]:
                extra, x = 0.0, c
                while x not in need:
                    q = parent[x]
                    extra += 2 ** min(total - bits_in[x], cap) * work[q]
                    x = q
                cv = int(plan.card[v]) - 1
                join = 0 if c == root else n * sep_size[c] * (cv + (0 if c in per_row else 1))
                if pick is None or extra + join < pick[0]:
                    pick = (extra + join, c)
            assert pick is not None
            c = home[v] = pick[1]
            per_row[c] = per_row.get(c, 0) + int(plan.card[v]) - 1
            while c not in need:
                need.add(c)
                c = parent[c]
        cost = n * work[root]
        for c in order[1:]:
            cost += 2 ** min(bits_in[c], cap) * work[c]
            if c in need:
                cost += 2 ** min(total - bits_in[c], cap) * work[parent[c]]
        cost += sum(n * sep_size[c] * (t + 1) for c, t in per_row.items() if c != root)
        row_cost = n * sum(work) + 2 * n * sum(plan.size[c] for c in row_need)
        return (cost, root, parent, order, home, need, bits_in, row_cost)

    # ------------------------------------------------------------------ helpers
    def _bshape(self, c: int, keep: Sequence[int], m: int) -> tuple[int, ...]:
        return (*self.plan.bshape(c, keep), m)

    def _sum_to(self, arr: np.ndarray, c: int, keep: Sequence[int]) -> np.ndarray:
        """Sum a clique array (``(*shape, m)``) onto the variables ``keep``: ``(|keep|, m)``
        flattened in ascending variable order."""
        vs = self.plan.vars[c]
        axes = tuple(a for a, x in enumerate(vs) if x not in keep)
        out = arr.sum(axis=axes) if axes else arr
        return out.reshape(-1, arr.shape[-1])

    def _block(self, c: int) -> int:
        return max(256, _BLOCK_BYTES // (8 * self.plan.size[c]))

    def _product(self, c: int, phi: np.ndarray, own: Sequence[tuple[int, np.ndarray]],
                 msgs: Sequence[tuple[int, np.ndarray, np.ndarray]]) -> np.ndarray:
        """``phi`` times evidence indicators times gathered messages: ``(*shape, m)``.

        ``own``: (variable, its codes + 1 per column of the result); ``msgs``: (clique whose
        separator the message is over, table ``(S, m')``, index into it per column).
        """
        plan = self.plan
        m = own[0][1].shape[0] if own else msgs[0][2].shape[0] if msgs else 1
        out = None
        for v, code1 in own:
            lam = np.take(plan.lam1[v], code1, axis=1).reshape(self._bshape(c, (v,), m))
            out = phi * lam if out is None else _imul(out, lam)
        for sc, table, idx in msgs:
            g = np.take(table, idx, axis=1).reshape(self._bshape(c, self.sep[sc], m))
            out = phi * g if out is None else _imul(out, g)
        if out is None:
            out = np.broadcast_to(phi, (*phi.shape[:-1], m))
        return out

    def _inside(self, b: np.ndarray, c: int, vs: Sequence[int], msg: np.ndarray,
                s: np.ndarray) -> np.ndarray:
        """(m, T, S): for each target of clique ``c`` its joint with the separator in
        states 1.. (state 0 is the total minus the others), then the total (the upward
        message ``msg``, shape (S, m)), from the clique array ``b`` (``(*shape, m)``),
        divided by the message scale ``s``."""
        plan = self.plan
        sep = self.sep[c]
        parts = []
        for v in vs:
            if v in sep:  # the separator table, kept only where v has state x
                w = self._sum_to(b, c, sep)
                grid = np.indices([int(plan.card[x]) for x in sep]).reshape(len(sep), -1)
                hot = grid[sep.index(v)][None, :] == np.arange(1, int(plan.card[v]))[:, None]
                parts.append(hot[:, :, None] * w[None])
            else:
                kv = tuple(sorted({v, *sep}))
                w = self._sum_to(b, c, kv).reshape(*(int(plan.card[x]) for x in kv), -1)
                w = np.moveaxis(w, kv.index(v), 0)[1:]
                parts.append(w.reshape(w.shape[0], -1, w.shape[-1]))
        out = np.concatenate(parts, axis=0) / s
        out = np.concatenate([out, msg[None]], axis=0)
        return out.transpose(2, 0, 1)

    # ------------------------------------------------------------------ the pass
    # kernel: upward, root per row, outside messages, per-row join: four steps on shared tables
    def run(self, phis: Sequence[np.ndarray], codes: np.ndarray, col_idx: Sequence[int],
            progress: Callable[[int], None] | None = None
            ) -> tuple[dict[int, np.ndarray], np.ndarray]:
        """Marginals ``{v: (n, card)}`` of the targets and log P(evidence) per row."""
        plan = self.plan
        n = codes.shape[0]
        k = len(plan.vars)
        ev = self._codes_by_column(codes)  # one contiguous row per column
        # ---- upward: one message per distinct sub-pattern of each subtree
        ids, up, logs, _, _, wt = self._upward(phis, ev, col_idx, n, inside=True)
        # ---- root: per row
        r0 = self.root
        marg = {v: np.empty((n, int(plan.card[v]))) for v in self.targets}
        log_pe = np.empty(n)
        step = self._block(r0)
        for a in range(0, n, step):
            sl = slice(a, min(n, a + step))
            b, z, msgs, log_pe[sl] = self._root_rows(sl, phis, ev, col_idx, ids, up, logs)
            zz = np.where(z > 0, z, np.nan)
            for v in self.at.get(r0, ()):
                marg[v][sl] = (self._sum_to(b, r0, (v,)) / zz).T
            if progress is not None:
                progress(sl.stop - sl.start)
        # ---- downward: outside messages of the cliques the targets need
        eids: list[Any] = [None] * k
        out: list[Any] = [None] * k
        for c in self.order[1:]:
            if c not in self.need:
                continue
            q = self.parent[c]
            sibs = [x for x in self.children[q] if x != c]
            parts = [(ev[j], self.radix[j]) for j in self.own[q]]
            parts += [(ids[x], up[x].shape[1]) for x in sibs]
            if q != r0:
                parts.append((eids[q], out[q].shape[1]))
            eids[c], vals, m, nown, s_size = self._number(parts, n, q, c)
            o = np.empty((s_size, m))
            step = self._block(q)
            for a in range(0, m, step):
                sl = slice(a, a + step)
                own = [(col_idx[j], vals[i][sl]) for i, j in enumerate(self.own[q])]
                msgs = [(x, up[x], vals[nown + i][sl]) for i, x in enumerate(sibs)]
                if q != r0:
                    msgs.append((q, out[q], vals[-1][sl]))
                b = self._product(q, phis[q], own, msgs)
                raw = self._sum_to(b, q, self.sep[c])
                mx = raw.max(axis=0)  # any positive scale: marginals are normalised per row
                o[:, sl] = raw / np.where(mx > 0, mx, 1.0)
            out[c] = o
        # ---- per row: inside tables of the targets joined with their clique's outside message
        for c, vs in self.at.items():
            if c == r0:
                continue
            w, o = wt.pop(c), out[c]
            offs = np.cumsum([0, *(int(plan.card[v]) - 1 for v in vs)])
            step = max(256, 4 * _BLOCK_BYTES // (8 * w[0].size))
            for a in range(0, n, step):
                sl = slice(a, min(n, a + step))
                wg = w.take(ids[c][sl], axis=0)
                og = np.take(o, eids[c][sl], axis=1).T
                p = np.matmul(wg, og[:, :, None])[:, :, 0]
                tot = p[:, -1:]
                tot = np.where(tot > 0, tot, np.nan)
                for i, v in enumerate(vs):
                    mv = marg[v][sl]
                    mv[:, 1:] = p[:, offs[i]:offs[i + 1]] / tot
                    mv[:, 0] = 1.0 - mv[:, 1:].sum(axis=1)  # the total minus the others
        bad = ~np.isfinite(log_pe)
        if bad.any():
            for v in self.targets:
                marg[v][bad] = np.nan
        return marg, log_pe

    def family_posteriors(self, phis: Sequence[np.ndarray], codes: np.ndarray,
                          col_idx: Sequence[int], weights: np.ndarray,
                          progress: Callable[[int], None] | None = None
                          ) -> tuple[list[np.ndarray], np.ndarray]:
        """The E-step of EM: ``sum_r weights[r] * P(clique variables | row r)`` for every
        clique, and log P(evidence) per row.

        Reverse mode through the shared upward pass (the inside-outside algorithm): the
        objective ``F = sum_r w_r log P(row r)`` is multilinear in the upward messages, so
        the expected counts of a clique are ``phi * dF/dphi`` and the adjoint of each
        upward message is carried back down *per distinct sub-pattern*, exactly as the
        messages were carried up. Only the root works per row (its product, the row's
        weight over P(row), and one scatter of the adjoint into each child's sub-patterns);
        every other clique works once per distinct sub-pattern of its subtree. No outside
        messages are formed.

        With ``Q = b * A / tot`` (``b`` a sub-pattern's clique product with normalised
        child messages, ``A`` the adjoint of its normalised upward message, ``tot`` that
        message's scale), the clique's expected counts are the sum of ``Q`` and each
        child's adjoint is ``Q / child message`` summed onto their separator (``0 / 0 = 0``:
        where a message is zero so is everything it multiplies). ``msg . A`` is the total
        weight of the rows through a sub-pattern, so nothing under- or overflows.

        Rows with probability-zero evidence (``-inf`` log P) contribute nothing.
        """
        w = np.asarray(weights, dtype=float)
        ev = self._codes_by_column(codes)
        ids, up, logs, keep_vals, tots, _ = self._upward(phis, ev, col_idx, codes.shape[0])
        k = len(self.plan.vars)
        acc = [np.zeros(self.plan.shape[c]) for c in range(k)]
        adj = [None if c == self.root else np.zeros_like(up[c]) for c in range(k)]
        # 1 / each upward message (0 where it is 0), once: the children's adjoints need it
        inv_up: list[Any] = [None] * k
        for c in self.order[1:]:
            with np.errstate(divide="ignore"):
                inv_up[c] = 1.0 / up[c]
            inv_up[c][~np.isfinite(inv_up[c])] = 0.0
        log_pe = self._root_back(phis, ev, col_idx, w, ids, up, logs, acc, adj, inv_up,
                                 progress)
        # ---- downward: each clique's adjoint, per distinct sub-pattern
        for c in self.order[1:]:
            vals = keep_vals[c]
            m = up[c].shape[1]
            A, tt = adj[c], tots[c]
            adj[c] = None
            step = self._block(c)
            for a in range(0, m, step):
                sl = slice(a, a + step)
                b, msgs = self._sub_product(c, phis[c], col_idx, vals, sl, up)
                t = tt[sl]
                f = A[:, sl] / np.where(t > 0, t, np.inf)
                q = b * f.reshape(self._bshape(c, self.sep[c], f.shape[-1]))
                self._back(c, q, msgs, acc, adj, inv_up)
            keep_vals[c] = None
        return acc, log_pe

    def _sub_product(self, c: int, phi: np.ndarray, col_idx, vals, sl: slice, up):
        """Clique ``c``'s product for the sub-patterns ``sl`` of its subtree: its own
        evidence (the first values) and its children's upward messages (the rest)."""
        nown = len(self.own[c])
        own = [(col_idx[j], vals[i][sl]) for i, j in enumerate(self.own[c])]
        msgs = [(ch, up[ch], vals[nown + i][sl]) for i, ch in enumerate(self.children[c])]
        return self._product(c, phi, own, msgs), msgs

    def _number(self, parts, n: int, owner: int, c: int):
        """Number the distinct sub-patterns ``parts`` of ``n`` rows (:func:`dense_ids`):
        ``(row ids, the sub-patterns' values, how many, how many of the parts are
        ``owner``'s own columns, the size of clique ``c``'s separator)``."""
        ids, vals = dense_ids(parts, n)
        m = vals[0].shape[0] if vals else 1
        s_size = math.prod(int(self.plan.card[x]) for x in self.sep[c])
        return ids, vals, m, len(self.own[owner]), s_size

    def _codes_by_column(self, codes: np.ndarray) -> dict[int, np.ndarray]:
        """Each observed column's codes + 1 (0: missing), one contiguous small-int row."""
        small = np.int16 if int(self.plan.card.max()) < 2**15 - 1 else np.int32
        ct = np.ascontiguousarray(codes.T, dtype=small)
        return {j: ct[j] + 1 for j in self.cols}

    def _upward(self, phis, ev, col_idx, n, inside: bool = False):
        """The upward pass, one message per distinct sub-pattern of each subtree: per
        clique, the rows' sub-pattern ids, normalised messages, their log scales, the
        sub-patterns' values and the messages' scales (the E-step's adjoints need the last
        two), and with ``inside`` the targets' inside tables ``(m, T, S)`` (:meth:`run`)."""
        plan = self.plan
        k = len(plan.vars)
        ids: list[Any] = [None] * k    # row -> distinct inside sub-pattern
        up: list[Any] = [None] * k     # (S, m) normalised upward messages
        logs: list[Any] = [None] * k   # (m,) their log scales
        keep_vals: list[Any] = [None] * k
        tots: list[Any] = [None] * k
        wt: dict[int, np.ndarray] = {}  # clique -> (m, T, S) inside tables of its targets
        for c in reversed(self.order[1:]):
            kids = self.children[c]
            parts = [(ev[j], self.radix[j]) for j in self.own[c]]
            parts += [(ids[ch], up[ch].shape[1]) for ch in kids]
            ids[c], vals, m, _, s_size = self._number(parts, n, c, c)
            msg = np.empty((s_size, m))
            lg = np.zeros(m)
            tt = np.empty(m)
            tv = self.at.get(c, []) if inside else []
            if tv:
                wt[c] = np.empty((m, sum(int(plan.card[v]) - 1 for v in tv) + 1, s_size))
            step = self._block(c)
            for a in range(0, m, step):
                sl = slice(a, a + step)
                b, msgs = self._sub_product(c, phis[c], col_idx, vals, sl, up)
                for ch, _, idx in msgs:
                    lg[sl] += logs[ch][idx]
                raw = self._sum_to(b, c, self.sep[c])
                tot = raw.sum(axis=0)
                with np.errstate(divide="ignore"):
                    lg[sl] += np.log(tot)
                tt[sl] = tot
                safe = np.where(tot > 0, tot, 1.0)
                msg[:, sl] = raw / safe
                if tv:
                    wt[c][sl] = self._inside(b, c, tv, msg[:, sl], safe)
            up[c], logs[c], tots[c] = msg, lg, tt
            if not inside:
                keep_vals[c] = vals
        return ids, up, logs, keep_vals, tots, wt

    def _root_rows(self, sl, phis, ev, col_idx, ids, up, logs):
        """The root clique's belief for the rows ``sl`` (its table, its own evidence and the
        children's upward messages): ``(belief, its total per row, the messages, log P(row))``,
        shared by the forward pass and the E-step's backward pass."""
        r0 = self.root
        own = [(col_idx[j], ev[j][sl]) for j in self.own[r0]]
        msgs = [(ch, up[ch], ids[ch][sl]) for ch in self.children[r0]]
        b = self._product(r0, phis[r0], own, msgs)
        z = b.reshape(-1, b.shape[-1]).sum(axis=0)
        lg = np.zeros(sl.stop - sl.start)
        for ch, _, idx in msgs:
            lg += logs[ch][idx]
        with np.errstate(divide="ignore"):
            log_pe = np.log(z) + lg
        return b, z, msgs, log_pe

    def _root_back(self, phis, ev, col_idx, w, ids, up, logs, acc, adj, inv_up, progress):
        """The root of :meth:`family_posteriors`, per row: log P(row), and the rows'
        adjoints scattered into the children's sub-patterns."""
        r0 = self.root
        n = w.shape[0]
        log_pe = np.empty(n)
        step = self._block(r0)
        for a in range(0, n, step):
            sl = slice(a, min(n, a + step))
            b, z, msgs, log_pe[sl] = self._root_rows(sl, phis, ev, col_idx, ids, up, logs)
            scale = np.where(z > 0, w[sl] / np.where(z > 0, z, 1.0), 0.0)
            q = b * scale
            self._back(r0, q, msgs, acc, adj, inv_up)
            if progress is not None:
                progress(sl.stop - sl.start)
        return log_pe

    def _back(self, c: int, q: np.ndarray, msgs: Sequence[tuple[int, np.ndarray, np.ndarray]],
              acc: list[np.ndarray], adj: list[Any], inv_up: list[Any]) -> None:
        """Add ``q`` (``(*shape, m)``) to clique ``c``'s expected counts and its share of
        each child's adjoint (``q`` over the child's message, onto the separator)."""
        acc[c] += q.reshape(-1, q.shape[-1]).sum(axis=1).reshape(acc[c].shape)
        for ch, _, idx in msgs:
            # the message is over the separator, which the projection keeps: project q
            # first, then multiply by 1 / message (0 where it is 0) on the small table
            contrib = self._sum_to(q, c, self.sep[ch]) * np.take(inv_up[ch], idx, axis=1)
            target = adj[ch]
            mch = target.shape[1]
            if mch == 1:
                target[:, 0] += contrib.sum(axis=1)
                continue
            S = contrib.shape[0]
            flat = (np.arange(S, dtype=np.intp)[:, None] * mch + idx[None, :]).ravel()
            target += np.bincount(flat, weights=contrib.ravel(), minlength=S * mch).reshape(S, mch)

    def worth_it(self, n: int, max_bytes: int = MAX_TABLE_BYTES) -> bool:
        """Whether to share messages for ``n`` rows: at least :data:`MIN_SHARED_ROWS`
        (enough to pay for numbering the patterns) and shared tables within ``max_bytes``
        (:meth:`table_bytes`)."""
        return n >= MIN_SHARED_ROWS and self.table_bytes(n) <= max_bytes

    def table_bytes(self, n: int) -> int:
        """Estimated memory (bytes) of the shared tables and row indices for ``n`` rows
        (distinct sub-patterns bounded by the number of value combinations)."""
        plan = self.plan
        total = 8 * n * (len(plan.vars) + len(self.need) + 2)
        for c in self.order[1:]:
            s = math.prod(int(plan.card[x]) for x in self.sep[c])
            total += 16 * self.est_in[c] * s
            if c in self.need:
                total += 8 * self.est_out[c] * s
            for v in self.at.get(c, ()):
                kv = {v, *self.sep[c]}
                total += 8 * self.est_in[c] * math.prod(int(plan.card[x]) for x in kv)
        return total


def _imul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a * b``, in place when ``a`` is already full size."""
    if a.flags.writeable and a.shape == np.broadcast_shapes(a.shape, b.shape) and \
            a.base is None:
        np.multiply(a, b, out=a)
        return a
    return a * b
