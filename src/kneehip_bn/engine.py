"""The compiled inference engine: a junction tree calibrated in numpy, batched over cases.

A pgmpy network is compiled once: moralised, triangulated (greedy min-fill), its cliques
joined into a junction tree (maximum spanning tree on separator size) and small
neighbouring cliques merged so that one query needs few numpy calls. Each clique holds
the product of the conditional tables assigned to it. A query multiplies evidence
indicator vectors into the cliques, passes messages towards the root and back
(Hugin-style), and reads every node's marginal from its clique's belief, for a whole
batch of evidence patterns at once (the leading axis of every array is the batch).

The same pass yields P(evidence) (for the log-likelihood and to detect impossible
evidence) and every family's joint posterior (the expected counts of EM).

All clique arrays keep their variables in one global order, so a separator's variables
appear in the same relative order in both cliques and messages move between cliques by
``reshape`` alone.

Examples
--------
>>> from kneehip_bn import load_model
>>> from kneehip_bn.engine import Engine
>>> eng = Engine(load_model())
>>> post = eng.posterior({"knee_effusion": "present"}, targets=["knee_pathology"])
>>> round(float(post["knee_pathology"].sum()), 12)
1.0
"""

from __future__ import annotations

import itertools
import math
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import EvidenceError, ImpossibleEvidenceError, UnknownNameError

__all__ = ["Engine", "get_engine"]


@dataclass
class _Clique:
    vars: tuple[int, ...]  # global variable indices, ascending
    shape: tuple[int, ...]
    size: int


class _Proj:
    """Sum a batch of flat clique tables onto a sub-table (e.g. a separator).

    Small tables use a dense 0/1 matrix (one BLAS call for the whole batch); one row uses
    ``bincount``; large tables fall back to a sparse matrix.
    """

    def __init__(self, idx: np.ndarray, size: int) -> None:
        self.idx = idx
        self.size = size
        n = idx.shape[0]
        if n * size <= 2**21:
            self.dense = np.zeros((n, size))
            self.dense[np.arange(n), idx] = 1.0
            self.sparse = None
        else:
            from scipy import sparse

            self.dense = None
            self.sparse = sparse.csr_matrix((np.ones(n), (idx, np.arange(n))), shape=(size, n))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if x.shape[0] == 1:
            return np.bincount(self.idx, weights=x[0], minlength=self.size)[None]
        if self.dense is not None:
            return x @ self.dense
        return np.asarray((self.sparse @ x.T).T)


@dataclass
class BatchResult:
    """Result of one batched pass.

    Attributes
    ----------
    marginals : dict
        ``{variable: array (n_rows, card)}``; rows with impossible evidence are NaN.
    log_evidence : ndarray
        ``log P(evidence)`` per row (``-inf`` where impossible).
    """

    marginals: dict[str, np.ndarray]
    log_evidence: np.ndarray


class Engine:
    """Compile a pgmpy ``DiscreteBayesianNetwork`` for fast, batched exact inference.

    Parameters
    ----------
    model : pgmpy.models.DiscreteBayesianNetwork
        A network with a CPD for every node (``check_model()`` passes).
    max_clique_states : int, default 1024
        Neighbouring cliques are merged while the merged table has at most this many
        entries: fewer, larger cliques mean fewer numpy calls per query.

    Notes
    -----
    Memory per batch row is about ``3 * 8 * sum(clique sizes)`` bytes
    (:attr:`bytes_per_row`); batches are cut into chunks that keep this under
    ``chunk_bytes`` (256 MB by default).
    """

    def __init__(self, model: Any, max_clique_states: int = 1024) -> None:
        if hasattr(model, "nodes") and hasattr(model.nodes, "items") and hasattr(model, "sources"):
            families = _families_from_spec(model)  # a ModelSpec: no pgmpy import needed
        else:
            families = _families_from_pgmpy(model)
        self._setup(families, max_clique_states)

    @classmethod
    def from_families(
        cls,
        families: Sequence[tuple[str, Sequence[str], Sequence[str], np.ndarray]],
        max_clique_states: int = 1024,
    ) -> Engine:
        """Compile from ``(variable, states, parents, table)`` tuples, where ``table`` has
        shape ``(card, *parent_cards)`` and parents are listed in table-axis order."""
        eng = cls.__new__(cls)
        eng._setup(list(families), max_clique_states)
        return eng

    def _setup(self, families, max_clique_states: int) -> None:
        import networkx as nx

        self.max_clique_states = int(max_clique_states)
        g = nx.DiGraph()
        g.add_nodes_from(str(f[0]) for f in families)
        g.add_edges_from((str(p), str(f[0])) for f in families for p in f[2])
        order = list(nx.lexicographical_topological_sort(g))
        self.variables: list[str] = order
        self.index = {v: i for i, v in enumerate(self.variables)}
        self.states: dict[str, list[str]] = {str(f[0]): [str(x) for x in f[1]] for f in families}
        self.parents: dict[str, list[str]] = {str(f[0]): [str(x) for x in f[2]] for f in families}
        self.factors: list[tuple[tuple[int, ...], np.ndarray]] = [None] * len(order)  # type: ignore
        for var, _, parents, table in families:
            v = str(var)
            fam = [v, *[str(p) for p in parents]]
            vals = np.asarray(table, dtype=float).reshape([len(self.states[x]) for x in fam])
            # reorder axes to ascending global index so factors match clique layout
            idx = [self.index[x] for x in fam]
            perm = np.argsort(idx)
            self.factors[self.index[v]] = (tuple(int(idx[p]) for p in perm), vals.transpose(perm))
        self.card = np.array([len(self.states[v]) for v in self.variables])
        self.state_index = {v: {s: i for i, s in enumerate(st)} for v, st in self.states.items()}
        self._compile()
        self._phi_cache: dict[tuple, list[np.ndarray]] = {}
        self._prior: dict[str, np.ndarray] | None = None
        self.chunk_bytes = 256 * 2**20

    # ------------------------------------------------------------------ compilation
    def _compile(self) -> None:
        n = len(self.variables)
        adj: dict[int, set[int]] = {i: set() for i in range(n)}
        for fam, _ in self.factors:
            for a, b in itertools.combinations(fam, 2):
                adj[a].add(b)
                adj[b].add(a)
        cliques = _triangulate(adj, self.card)
        cl_sets, edges = _junction_tree(cliques, self.card)
        cl_sets, edges = _merge_cliques(cl_sets, edges, self.card, self.max_clique_states)
        self.cliques = [
            _Clique(tuple(sorted(c)), tuple(int(self.card[v]) for v in sorted(c)),
                    int(np.prod([self.card[v] for v in c])))
            for c in cl_sets
        ]
        k = len(self.cliques)
        nbrs: dict[int, list[int]] = {i: [] for i in range(k)}
        for a, b in edges:
            nbrs[a].append(b)
            nbrs[b].append(a)
        # root: the largest clique; BFS gives parents and a top-down order
        root = max(range(k), key=lambda i: self.cliques[i].size)
        self.root = root
        self.parent = [-1] * k
        order = [root]
        seen = {root}
        for c in order:
            for d in nbrs[c]:
                if d not in seen:
                    seen.add(d)
                    self.parent[d] = c
                    order.append(d)
        # forests: attach unreached components (disconnected networks) to the root
        for c in range(k):
            if c not in seen:
                comp = [c]
                seen.add(c)
                self.parent[c] = root
                for x in comp:
                    for d in nbrs[x]:
                        if d not in seen:
                            seen.add(d)
                            self.parent[d] = x
                            comp.append(d)
                order.extend(comp)
        self.topdown = order
        self.children = [[] for _ in range(k)]
        for c in order[1:]:
            self.children[self.parent[c]].append(c)
        # each variable's home (smallest clique containing it) for evidence and marginals
        self.var_home = []
        for v in range(n):
            cands = [i for i, c in enumerate(self.cliques) if v in c.vars]
            self.var_home.append(min(cands, key=lambda i: self.cliques[i].size))
        # factor assignment (smallest clique containing the family)
        self.factor_home = []
        for fam, _ in self.factors:
            cands = [i for i, c in enumerate(self.cliques) if set(fam) <= set(c.vars)]
            self.factor_home.append(min(cands, key=lambda i: self.cliques[i].size))
        # flat layout: every clique table is a row vector (batch, size); index maps give,
        # for each flat entry, the state of a variable / the flat index of a sub-table
        self._grid = [np.indices(c.shape).reshape(len(c.shape), -1) for c in self.cliques]
        self.var_idx = [self._sub_index(self.var_home[v], (v,))[0] for v in range(n)]
        self.up_proj: list[_Proj | None] = [None] * k  # child clique -> separator
        self.down_proj: list[_Proj | None] = [None] * k  # parent clique -> separator
        self.sep_in_child: list[np.ndarray | None] = [None] * k
        self.sep_in_parent: list[np.ndarray | None] = [None] * k
        for c in order[1:]:
            p = self.parent[c]
            sep = tuple(sorted(set(self.cliques[c].vars) & set(self.cliques[p].vars)))
            ic, ssize = self._sub_index(c, sep)
            ip, _ = self._sub_index(p, sep)
            self.sep_in_child[c], self.sep_in_parent[c] = ic, ip
            self.up_proj[c] = _Proj(ic, ssize)
            self.down_proj[c] = _Proj(ip, ssize)
        self._collect = list(reversed(self.topdown[1:]))
        self._rescale = n > 100  # products of >100 tables could underflow
        # per clique: a 0/1 matrix mapping its flat table to the marginals of the
        # variables whose home it is (one matmul gives them all)
        self.marg_matrix: list[np.ndarray] = []
        self.marg_cols: dict[int, tuple[int, int]] = {}
        for ci, c in enumerate(self.cliques):
            cols, lo = [], 0
            for v in (v for v in range(n) if self.var_home[v] == ci):
                kk = int(self.card[v])
                block = np.zeros((c.size, kk))
                block[np.arange(c.size), self.var_idx[v]] = 1.0
                cols.append(block)
                self.marg_cols[v] = (lo, lo + kk)
                lo += kk
            self.marg_matrix.append(np.hstack(cols) if cols else np.zeros((c.size, 0)))
        # family index maps for expected counts (family axes in ascending global order)
        self.family_idx = [self._sub_index(self.factor_home[v], self.factors[v][0])
                           for v in range(n)]

    def _sub_index(self, ci: int, sub: Sequence[int]) -> tuple[np.ndarray, int]:
        """For each flat entry of clique ``ci``, the flat index into the table over ``sub``."""
        c = self.cliques[ci]
        sub = tuple(sorted(sub))
        idx = np.zeros(c.size, dtype=np.intp)
        size = 1
        for v in sub:
            idx = idx * int(self.card[v]) + self._grid[ci][c.vars.index(v)]
            size *= int(self.card[v])
        return idx, size

    @property
    def bytes_per_row(self) -> int:
        """Approximate working memory per batch row, in bytes."""
        return 3 * 8 * sum(c.size for c in self.cliques)

    @property
    def treewidth_states(self) -> int:
        """Entries of the largest clique table."""
        return max(c.size for c in self.cliques)

    def _phis(self, do: Mapping[int, int] | None = None) -> list[np.ndarray]:
        """Flat clique tables (each row shape (1, size)): products of assigned CPDs."""
        key = tuple(sorted((do or {}).items()))
        if key in self._phi_cache:
            return self._phi_cache[key]
        phis = [np.ones(c.size) for c in self.cliques]
        for v, (fam, arr) in enumerate(self.factors):
            h = self.factor_home[v]
            if do and v in do:
                # graph surgery: the node's table becomes a point mass, its parents cut off
                point = np.zeros(int(self.card[v]))
                point[do[v]] = 1.0
                phis[h] = phis[h] * point[self.var_idx[v]] if self.var_home[v] == h else \
                    phis[h] * point[self._sub_index(h, (v,))[0]]
                continue
            idx, _ = self.family_idx[v]
            phis[h] = phis[h] * arr.reshape(-1)[idx]
        phis = [p[None] for p in phis]
        self._phi_cache[key] = phis
        return phis

    # ------------------------------------------------------------------ evidence encoding
    def encode(self, evidence: Mapping[str, str] | None) -> dict[int, int]:
        """Map ``{node: state}`` to ``{variable index: state index}`` with clear errors."""
        out: dict[int, int] = {}
        for var, state in (evidence or {}).items():
            if var not in self.index:
                raise UnknownNameError.for_name("node", var, self.variables)
            si = self.state_index[var].get(str(state))
            if si is None:
                raise UnknownNameError.for_name(f"state of {var}", str(state), self.states[var])
            out[self.index[var]] = si
        return out

    # ------------------------------------------------------------------ calibration
    def _calibrate(
        self,
        lam: Mapping[int, np.ndarray],
        nrows: int,
        do: Mapping[int, int] | None = None,
    ) -> tuple[list[np.ndarray], np.ndarray]:
        """One collect/distribute pass. ``lam``: {var: (nrows, card) likelihoods}.

        Returns per-clique beliefs (normalised per row, shape (nrows, *clique shape);
        NaN rows where the evidence is impossible) and log P(evidence) per row.
        """
        phis = self._phis(do)
        pots: list[np.ndarray] = list(phis)
        for v, lv in lam.items():
            h = self.var_home[v]
            pots[h] = pots[h] * lv[:, self.var_idx[v]]
        logz = np.zeros(1)
        up: list[np.ndarray] = [None] * len(self.cliques)  # type: ignore[list-item]
        with np.errstate(divide="ignore", invalid="ignore"):
            for c in self._collect:
                pc = pots[c]
                for ch in self.children[c]:
                    pc = pc * up[ch][:, self.sep_in_parent[ch]]
                pots[c] = pc
                msg = self.up_proj[c](pc)  # type: ignore[misc]
                if self._rescale:  # guard against underflow on very large networks
                    s = msg.sum(axis=1)
                    logz = logz + np.log(s)
                    s[s == 0] = 1.0
                    msg = msg / s[:, None]
                up[c] = msg
            r = self.root
            pr = pots[r]
            for ch in self.children[r]:
                pr = pr * up[ch][:, self.sep_in_parent[ch]]
            z = pr.sum(axis=1)
            log_pe = logz + np.log(z)
            beliefs: list[np.ndarray] = [None] * len(self.cliques)  # type: ignore[list-item]
            beliefs[r] = pr / z[:, None]
            # Hugin distribution: with a normalised root every belief is P(clique | e)
            for c in self.topdown[1:]:
                m = self.down_proj[c](beliefs[self.parent[c]])  # type: ignore[misc]
                u = up[c]
                # 0/0 -> 0: where the upward message is 0 the parent's belief is 0 too
                m = m / np.where(u > 0, u, 1.0)
                beliefs[c] = pots[c] * m[:, self.sep_in_child[c]]
        return beliefs, log_pe

    def _marginals(self, beliefs: list[np.ndarray], names: Sequence[str]) -> dict[str, np.ndarray]:
        """Marginals of ``names``: one matrix product per clique that holds any of them."""
        by_clique: dict[int, list[int]] = {}
        for t in names:
            v = self.index[t]
            by_clique.setdefault(self.var_home[v], []).append(v)
        out = {}
        for c, vs in by_clique.items():
            res = beliefs[c] @ self.marg_matrix[c]
            for v in vs:
                lo, hi = self.marg_cols[v]
                out[self.variables[v]] = res[:, lo:hi]
        return out

    # ------------------------------------------------------------------ public queries
    def posterior(
        self,
        evidence: Mapping[str, str] | None = None,
        targets: Sequence[str] | None = None,
        do: Mapping[str, str] | None = None,
        virtual_evidence: Mapping[str, Sequence[float]] | None = None,
    ) -> dict[str, np.ndarray]:
        """Posterior marginals of ``targets`` (default: every node) for one evidence set.

        Parameters
        ----------
        evidence : dict, optional
            ``{node: state}`` hard findings.
        targets : list of str, optional
            Nodes whose marginal is returned.
        do : dict, optional
            ``{node: state}`` interventions (graph surgery: the node's table becomes a
            point mass and its parents no longer influence it).
        virtual_evidence : dict, optional
            ``{node: likelihood vector}`` soft findings (one non-negative weight per state).

        Raises
        ------
        ImpossibleEvidenceError
            When the model gives the evidence probability zero.
        """
        lam, do_idx = self._single_lambda(evidence, do, virtual_evidence)
        beliefs, log_pe = self._calibrate(lam, 1, do_idx)
        if not np.isfinite(log_pe[0]):
            raise _impossible(evidence, do)
        tv = self.variables if targets is None else targets
        for t in tv:
            if t not in self.index:
                raise UnknownNameError.for_name("node", t, self.variables)
        return {t: m[0] for t, m in self._marginals(beliefs, tv).items()}

    def _single_lambda(self, evidence, do, virtual_evidence):
        ev = self.encode(evidence)
        do_idx = self.encode(do) if do else None
        lam: dict[int, np.ndarray] = {}
        for v, s in ev.items():
            x = np.zeros((1, int(self.card[v])))
            x[0, s] = 1.0
            lam[v] = x
        for var, vec in (virtual_evidence or {}).items():
            if var not in self.index:
                raise UnknownNameError.for_name("node", var, self.variables)
            v = self.index[var]
            arr = np.asarray(vec, dtype=float).reshape(-1)
            if arr.shape[0] != self.card[v] or (arr < 0).any() or not np.isfinite(arr).all():
                raise EvidenceError(
                    f"virtual evidence on {var}: expected {int(self.card[v])} non-negative "
                    f"weights (states {self.states[var]}), found {vec!r}")
            lam[v] = lam.get(v, np.ones((1, int(self.card[v])))) * arr[None]
        return lam, do_idx

    def log_probability(
        self, evidence: Mapping[str, str] | None = None, do: Mapping[str, str] | None = None
    ) -> float:
        """``log P(evidence)`` (natural log; ``-inf`` when impossible)."""
        lam, do_idx = self._single_lambda(evidence, do, None)
        _, log_pe = self._calibrate(lam, 1, do_idx)
        return float(log_pe[0])

    def prior_marginals(self) -> dict[str, np.ndarray]:
        """Marginals with no evidence (cached)."""
        if self._prior is None:
            self._prior = self.posterior({})
        return self._prior

    def with_tables(self, tables: Mapping[str, np.ndarray]) -> Engine:
        """A copy with some conditional tables replaced, sharing the compiled junction tree.

        ``tables`` maps a node to its new table, shape ``(card, *parent_cards)`` with the
        parents in ``self.parents[node]`` order (as :func:`~kneehip_bn.network.cpd_array`).
        Nothing is recompiled, so many parameter settings (sensitivity analysis, parameter
        uncertainty) cost one pass each. Tables are not checked to sum to one.
        """
        import copy

        new = copy.copy(self)
        new.factors = list(self.factors)
        for var, table in tables.items():
            if var not in self.index:
                raise UnknownNameError.for_name("node", var, self.variables)
            fam = [var, *self.parents[var]]
            arr = np.asarray(table, dtype=float)
            shape = tuple(len(self.states[x]) for x in fam)
            if arr.shape != shape:
                raise EvidenceError(f"table of {var}: expected shape {shape} (node, "
                                    f"{', '.join(fam[1:]) or 'no parents'}), found {arr.shape}")
            idx = [self.index[x] for x in fam]
            perm = np.argsort(idx)
            new.factors[self.index[var]] = (tuple(int(idx[i]) for i in perm), arr.transpose(perm))
        new._phi_cache = {}
        new._prior = None
        return new

    def _chunk_rows(self) -> int:
        return max(1, int(self.chunk_bytes // max(self.bytes_per_row, 1)))

    def batch(
        self,
        codes: np.ndarray,
        columns: Sequence[str],
        targets: Sequence[str] | None = None,
        do: Mapping[str, str] | None = None,
        on_impossible: str = "raise",
    ) -> BatchResult:
        """Posterior marginals for many evidence patterns at once.

        Parameters
        ----------
        codes : ndarray of int, shape (n_rows, len(columns))
            State index of each observed column per row; ``-1`` means missing.
        columns : list of str
            The node each column of ``codes`` observes.
        targets : list of str, optional
            Nodes whose marginals are returned (default: every node).
        on_impossible : {"raise", "nan"}
            Rows with probability-zero evidence raise :class:`ImpossibleEvidenceError`
            (naming the first rows) or get NaN marginals and ``-inf`` log-evidence.
        """
        codes, col_idx = self._check_codes(codes, columns)
        tv = list(self.variables if targets is None else targets)
        for t in tv:
            if t not in self.index:
                raise UnknownNameError.for_name("node", t, self.variables)
        do_idx = self.encode(do) if do else None
        n = codes.shape[0]
        out = {t: np.empty((n, int(self.card[self.index[t]]))) for t in tv}
        log_pe = np.empty(n)
        step = self._chunk_rows()
        for start in range(0, n, step):
            sl = slice(start, min(n, start + step))
            lam = self._batch_lambda(codes[sl], col_idx)
            beliefs, lp = self._calibrate(lam, sl.stop - sl.start, do_idx)
            log_pe[sl] = lp
            for t, m in self._marginals(beliefs, tv).items():
                out[t][sl] = m
        bad = ~np.isfinite(log_pe)
        if bad.any():
            if on_impossible == "raise":
                rows = np.flatnonzero(bad)
                first = ", ".join(str(r) for r in rows[:5])
                raise ImpossibleEvidenceError(
                    f"{int(bad.sum())} of {n} evidence rows are impossible under the model "
                    f"(probability zero), first rows {first}: expected evidence the model allows; "
                    "check those rows for contradictory findings, or pass on_impossible='nan'")
            for t in tv:
                out[t][bad] = np.nan
        return BatchResult(out, log_pe)

    def _check_codes(self, codes, columns):
        codes = np.asarray(codes)
        if codes.ndim != 2 or codes.shape[1] != len(columns):
            raise EvidenceError(
                f"evidence codes: expected shape (n_rows, {len(columns)}), found {codes.shape}")
        col_idx = []
        for j, c in enumerate(columns):
            if c not in self.index:
                raise UnknownNameError.for_name("node", c, self.variables)
            v = self.index[c]
            col = codes[:, j]
            if col.size and (col.max() >= self.card[v] or col.min() < -1):
                raise EvidenceError(
                    f"evidence codes for {c}: expected -1 (missing) or 0..{self.card[v] - 1}, "
                    f"found {int(col.min())}..{int(col.max())}")
            col_idx.append(v)
        if len(set(col_idx)) != len(col_idx):
            raise EvidenceError(f"evidence columns: each node once, found {list(columns)}")
        return codes.astype(np.intp, copy=False), col_idx

    def _batch_lambda(self, codes: np.ndarray, col_idx: list[int]) -> dict[int, np.ndarray]:
        lam = {}
        for j, v in enumerate(col_idx):
            col = codes[:, j]
            if (col < 0).all():
                continue
            table = np.vstack([np.eye(int(self.card[v])), np.ones(int(self.card[v]))])
            lam[v] = table[col]  # -1 picks the all-ones row: missing
        return lam

    def expected_counts(
        self,
        codes: np.ndarray,
        columns: Sequence[str],
        weights: np.ndarray | None = None,
    ) -> tuple[dict[str, np.ndarray], float, np.ndarray]:
        """E-step statistics: expected family counts over a batch of (weighted) patterns.

        Returns
        -------
        counts : dict
            ``{node: array (card, *parent_cards)}`` with parents in the node's CPD order
            (``self.parents[node]``): sum over rows of weight * P(node, parents | row).
        loglik : float
            sum over rows of weight * log P(row).
        log_evidence : ndarray
            log P(row) per row.

        Raises
        ------
        ImpossibleEvidenceError
            When any row has probability zero under the current parameters.
        """
        codes, col_idx = self._check_codes(codes, columns)
        n = codes.shape[0]
        w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
        acc = [np.zeros(c.size) for c in self.cliques]
        log_pe = np.empty(n)
        used = sorted(set(self.factor_home))
        step = self._chunk_rows()
        for start in range(0, n, step):
            sl = slice(start, min(n, start + step))
            lam = self._batch_lambda(codes[sl], col_idx)
            beliefs, lp = self._calibrate(lam, sl.stop - sl.start, None)
            log_pe[sl] = lp
            if not np.isfinite(lp).all():
                rows = np.flatnonzero(~np.isfinite(lp)) + start
                raise ImpossibleEvidenceError(
                    f"rows {', '.join(map(str, rows[:5]))} have probability zero under the "
                    "current parameters: expected rows the model allows; a table has a zero "
                    "the data contradict (give it a non-zero prior or more strength)")
            for c in used:
                b = beliefs[c]
                if b.shape[0] == 1 and sl.stop - sl.start != 1:  # no evidence reached it
                    acc[c] += w[sl].sum() * b[0]
                else:
                    acc[c] += np.tensordot(w[sl], b, axes=1)
        counts = {}
        for v, name in enumerate(self.variables):
            idx, size = self.family_idx[v]
            fam = self.factors[v][0]
            flat = np.bincount(idx, weights=acc[self.factor_home[v]], minlength=size)
            fam_counts = flat.reshape([int(self.card[x]) for x in fam])
            order = [self.index[name]] + [self.index[p] for p in self.parents[name]]
            counts[name] = fam_counts.transpose([fam.index(x) for x in order])
        return counts, float(np.dot(w, log_pe)), log_pe


def _families_from_pgmpy(model: Any):
    cpds = model.get_cpds()
    have = {str(c.variable) for c in cpds}
    missing = sorted(str(n) for n in model.nodes if str(n) not in have)
    if missing:
        raise EvidenceError(
            f"network: expected a CPD for every node, found none for {missing}; "
            "add them with model.add_cpds(...) or fit the model first")
    fams = []
    for cpd in cpds:
        names = [str(x) for x in cpd.variables]
        states = [str(s) for s in cpd.state_names[cpd.variable]]
        fams.append((names[0], states, names[1:], np.asarray(cpd.values, dtype=float)))
    return fams


def _families_from_spec(spec: Any):
    from .network import cpd_array

    return [(name, n.states, n.parents, cpd_array(spec, n)) for name, n in spec.nodes.items()]


def _impossible(evidence, do) -> ImpossibleEvidenceError:
    ev = ", ".join(f"{k}={v}" for k, v in (evidence or {}).items()) or "(none)"
    extra = f" under do({', '.join(f'{k}={v}' for k, v in do.items())})" if do else ""
    return ImpossibleEvidenceError(
        f"impossible evidence{extra}: the model gives probability zero to {ev}; expected "
        "findings the model allows; check for contradictory findings or a zero in a table")


def _sum_axes(clique: _Clique, keep: set[int]) -> tuple[int, ...]:
    return tuple(a + 1 for a, x in enumerate(clique.vars) if x not in keep)


def _bshape(clique: _Clique, keep: set[int]) -> tuple[int, ...]:
    return tuple(s if x in keep else 1 for x, s in zip(clique.vars, clique.shape))


def _triangulate(adj: dict[int, set[int]], card: np.ndarray) -> list[frozenset[int]]:
    """Greedy min-fill elimination (ties: smallest clique table); the maximal cliques."""
    adj = {v: set(n) for v, n in adj.items()}
    remaining = set(adj)
    cliques: list[frozenset[int]] = []
    while remaining:
        best, best_key = -1, None
        for v in sorted(remaining):
            nb = adj[v]
            fill = sum(1 for a, b in itertools.combinations(nb, 2) if b not in adj[a])
            weight = math.prod(int(card[u]) for u in nb) * int(card[v])
            key = (fill, weight)
            if best_key is None or key < best_key:
                best, best_key = v, key
        nb = adj[best]
        cliques.append(frozenset(nb | {best}))
        for a, b in itertools.combinations(nb, 2):
            adj[a].add(b)
            adj[b].add(a)
        for u in nb:
            adj[u].discard(best)
        del adj[best]
        remaining.discard(best)
    uniq = list(dict.fromkeys(cliques))
    return [c for c in uniq if not any(c < d for d in uniq)]


def _junction_tree(
    cliques: list[frozenset[int]], card: np.ndarray
) -> tuple[list[set[int]], list[tuple[int, int]]]:
    import networkx as nx

    g = nx.Graph()
    g.add_nodes_from(range(len(cliques)))
    for i, j in itertools.combinations(range(len(cliques)), 2):
        sep = cliques[i] & cliques[j]
        if sep:
            g.add_edge(i, j, weight=len(sep))
    tree = nx.maximum_spanning_tree(g)
    return [set(c) for c in cliques], [tuple(e) for e in tree.edges()]


def _merge_cliques(cliques, edges, card, max_states):
    """Contract tree edges while the merged clique stays within ``max_states`` entries.

    Contracting an edge of a junction tree keeps the running-intersection property.
    """
    cl = {i: set(c) for i, c in enumerate(cliques)}
    ed = {frozenset(e) for e in edges}

    def size(s):
        return math.prod(int(card[v]) for v in s)

    while True:
        best = None
        for e in ed:
            a, b = tuple(e)
            u = cl[a] | cl[b]
            s = size(u)
            if s <= max_states and (best is None or s < best[0]):
                best = (s, a, b)
        if best is None:
            break
        _, a, b = best
        cl[a] |= cl.pop(b)
        new = set()
        for e in ed:
            x, y = tuple(e)
            x, y = (a if x == b else x), (a if y == b else y)
            if x != y:
                new.add(frozenset((x, y)))
        ed = new
    keys = sorted(cl)
    remap = {k: i for i, k in enumerate(keys)}
    return [cl[k] for k in keys], [tuple(remap[x] for x in e) for e in ed]


_ENGINES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _fingerprint(model: Any) -> tuple:
    return tuple((str(c.variable), id(c), id(c.values)) for c in model.get_cpds()) + (
        tuple(sorted(map(tuple, model.edges()))),
    )


def get_engine(model: Any, refresh: bool = False) -> Engine:
    """The compiled engine of a network or specification, compiled once and cached.

    For a pgmpy network the cache is invalidated when its CPD objects or edges change
    (e.g. after ``model.fit`` or ``add_cpds``); for a :class:`~kneehip_bn.ModelSpec` (whose
    edits return new specs) the engine is kept on the spec. Pass ``refresh=True`` after
    changing a table in place.
    """
    if isinstance(model, Engine):
        return model
    if not hasattr(model, "get_cpds"):  # ModelSpec
        # the cache remembers its owner (a weak reference, which deepcopy keeps pointing at
        # the original): an edited copy from set_* or apply_overrides compiles its own engine
        hit = None if refresh else model.__dict__.get("_engine")
        if isinstance(hit, tuple) and hit[0]() is model:
            return hit[1]
        eng = Engine(model)
        model.__dict__["_engine"] = (weakref.ref(model), eng)
        return eng
    fp = _fingerprint(model)
    hit = None if refresh else _ENGINES.get(model)
    if hit is not None and hit[0] == fp:
        return hit[1]
    eng = Engine(model)
    _ENGINES[model] = (fp, eng)
    return eng
