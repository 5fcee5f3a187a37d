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

Batches (:meth:`Engine.batch`, :meth:`Engine.expected_counts`) use a second compilation of
the same network, :class:`_BatchPlan`: small cliques (no merging beyond 8 entries), arrays
with the batch as their *last* axis (long contiguous inner loops, plain numpy broadcasting
and sums, no BLAS), a root and tree orientation chosen per target set so that the downward
pass visits only the cliques the targets need, and upward messages of the other subtrees
computed once per distinct evidence sub-pattern (a finding's family clique sends one of
``card + 1`` messages) and gathered to the rows.

Examples
--------
>>> from kneehip_bn import load_model
>>> from kneehip_bn.inference.engine import Engine
>>> eng = Engine(load_model("knee_hip_basic"))
>>> post = eng.posterior({"knee_effusion": "present"}, targets=["knee_pathology"])
>>> round(float(post["knee_pathology"].sum()), 12)
1.0
"""

from __future__ import annotations

import itertools
import math
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from kneehip_bn._util.graph import maximum_spanning_tree, topological_order
from kneehip_bn.errors import (
    EvidenceError,
    ImpossibleEvidenceError,
    ModelTooLargeError,
    ParameterError,
    UnknownNameError,
)
from kneehip_bn.model.network import network_fingerprint

__all__ = ["MAX_COMPILE_BYTES", "Engine", "compile_bytes", "get_engine", "max_compile_bytes"]

#: default limit of the memory a compilation may need (clique tables and their index
#: maps); override with the environment variable ``KNEEHIP_MAX_TABLE_BYTES`` (bytes, or
#: with a K/M/G suffix) or ``Engine(model, max_table_bytes=...)``
MAX_COMPILE_BYTES = 2 * 2**30


def max_compile_bytes() -> int:
    """The compile memory limit in force: ``KNEEHIP_MAX_TABLE_BYTES`` or the default.

    >>> import os
    >>> os.environ["KNEEHIP_MAX_TABLE_BYTES"] = "512M"
    >>> max_compile_bytes()
    536870912
    >>> del os.environ["KNEEHIP_MAX_TABLE_BYTES"]
    """
    import os

    raw = os.environ.get("KNEEHIP_MAX_TABLE_BYTES", "").strip()
    if not raw:
        return MAX_COMPILE_BYTES
    mult = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}.get(raw[-1].upper(), 1)
    digits = raw[:-1] if mult > 1 else raw
    try:
        value = int(float(digits) * mult)
    except ValueError:
        value = -1
    if value <= 0:
        raise ParameterError(f"KNEEHIP_MAX_TABLE_BYTES: expected a positive number of bytes "
                             f"(e.g. 4G, 512M, 1000000), found {raw!r}")
    return value


def compile_bytes(cliques: Sequence[Sequence[int]], card: np.ndarray) -> int:
    """Estimated memory (bytes) of compiling these cliques: per table entry 8 bytes for
    the table, one index per variable (the state grid) and four more index maps (home,
    separators, families), all 8-byte, and as many again for the temporaries of building
    them (measured: water, 3.7M entries, peaks at ~0.7 GB). Computed before anything is
    allocated."""
    return sum(8 * math.prod(int(card[v]) for v in c) * (2 * len(c) + 6) for c in cliques)


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
    Memory per batch row is about ``3 * 8 * sum(clique sizes)`` bytes of the batch
    compilation (:attr:`bytes_per_row`); batches are cut into chunks that keep this under
    ``chunk_bytes`` (16 MB by default: blocks that stay in cache run faster than big ones).
    """

    scope: Mapping[str, Any] = {}
    """The model file's ``scope`` (adult-only age guard), checked when evidence is resolved."""

    def __init__(self, model: Any, max_clique_states: int = 1024,
                 max_table_bytes: int | None = None) -> None:
        if hasattr(model, "nodes") and hasattr(model.nodes, "items") and hasattr(model, "sources"):
            families = _families_from_spec(model)  # a ModelSpec: no pgmpy import needed
            self.scope = dict(getattr(model, "scope", {}) or {})
        else:
            families = _families_from_pgmpy(model)
            spec = getattr(model, "graph", {}).get("kneehip_spec")
            self.scope = dict(getattr(spec, "scope", {}) or {})
        self.max_table_bytes = max_table_bytes
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
        eng.max_table_bytes = None
        eng._setup(list(families), max_clique_states)
        return eng

    def _setup(self, families, max_clique_states: int) -> None:
        self.max_clique_states = int(max_clique_states)
        order = topological_order([str(f[0]) for f in families],
                                  [(str(p), str(f[0])) for f in families for p in f[2]])
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
        self.chunk_bytes = 16 * 2**20

    # ------------------------------------------------------------------ compilation
    def _compile(self) -> None:
        n = len(self.variables)
        adj: dict[int, set[int]] = {i: set() for i in range(n)}
        for fam, _ in self.factors:
            for a, b in itertools.combinations(fam, 2):
                adj[a].add(b)
                adj[b].add(a)
        cliques = _triangulate(adj, self.card)
        self._check_memory(cliques)
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
        self.depth = [0] * k
        for c in order[1:]:
            self.depth[c] = self.depth[self.parent[c]] + 1
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
        # family index maps of the clique tables (family axes in ascending global order)
        self.family_idx = [self._sub_index(self.factor_home[v], self.factors[v][0])
                           for v in range(n)]

    def _check_memory(self, cliques: Sequence[frozenset[int]]) -> None:
        """Refuse, before allocating, a model whose clique tables would not fit the limit."""
        cap = getattr(self, "max_table_bytes", None)
        cap = max_compile_bytes() if cap is None else int(cap)
        need = compile_bytes(cliques, self.card)
        if need <= cap:
            return
        sizes = [math.prod(int(self.card[v]) for v in c) for c in cliques]
        big = cliques[int(np.argmax(sizes))]
        names = ", ".join(sorted(self.variables[v] for v in big))
        raise ModelTooLargeError(
            f"model: compiling it would need about {_gib(need)} ({sum(sizes):,} clique-table "
            f"entries; the largest clique, {max(sizes):,} entries, joins {len(big)} nodes: "
            f"{names}), over the limit of {_gib(cap)}; if this machine has the memory, raise "
            "the limit (KNEEHIP_MAX_TABLE_BYTES=8G, or Engine(model, max_table_bytes=...)); "
            "otherwise use a model with fewer states or parents on those nodes")

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
        return self._batch_plan().bytes_per_row

    def _batch_plan(self) -> _BatchPlan:
        """The batch compilation (structure only, so engines from :meth:`with_tables`
        share it); built on first use."""
        plan = self.__dict__.get("_bplan")
        if plan is None:
            plan = _BatchPlan([fam for fam, _ in self.factors], self.card, _BATCH_MAX_STATES)
            self.__dict__["_bplan"] = plan
        return plan

    def _batch_phis(self, do: Mapping[int, int] | None = None) -> list[np.ndarray]:
        """Clique tables of the batch plan, shape (*clique shape, 1); cached per do()."""
        key = ("batch", *sorted((do or {}).items()))
        if key not in self._phi_cache:
            self._phi_cache[key] = self._batch_plan().phis(self.factors, self.card, do)
        return self._phi_cache[key]

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
        for v, (_fam, arr) in enumerate(self.factors):
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
        lam: Sequence[tuple[int, np.ndarray]],
        nrows: int,
        do: Mapping[int, int] | None = None,
        need: set[int] | None = None,
    ) -> tuple[list[np.ndarray], np.ndarray]:
        """One collect/distribute pass. ``lam``: (clique, (nrows, clique size)) evidence
        factors; ``need``: the cliques whose beliefs are wanted (default: all; the
        downward pass visits only them and the cliques between them and the root).

        Returns per-clique beliefs (normalised per row, shape (nrows, *clique shape);
        NaN rows where the evidence is impossible) and log P(evidence) per row.
        """
        phis = self._phis(do)
        pots: list[np.ndarray] = list(phis)
        for h, x in lam:
            pots[h] = pots[h] * x
        logz = np.zeros(1)
        up: list[np.ndarray] = [None] * len(self.cliques)  # type: ignore[list-item]
        raw: list[np.ndarray] = [None] * len(self.cliques)  # type: ignore[list-item]
        with np.errstate(divide="ignore", invalid="ignore"):
            for c in self._collect:
                pc = pots[c]
                for ch in self.children[c]:
                    pc = pc * up[ch][:, self.sep_in_parent[ch]]
                pots[c] = pc
                msg = raw[c] = self.up_proj[c](pc)  # type: ignore[misc]
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
                if need is not None and c not in need:
                    continue
                m = self.down_proj[c](beliefs[self.parent[c]])  # type: ignore[misc]
                u = raw[c]  # pots[c] projects to the unscaled message
                # 0/0 -> 0: where the upward message is 0 the parent's belief is 0 too
                m = m / np.where(u > 0, u, 1.0)
                beliefs[c] = pots[c] * m[:, self.sep_in_child[c]]
        return beliefs, log_pe

    def _marginals(self, beliefs: list[np.ndarray], names: Sequence[str]) -> dict[str, np.ndarray]:
        """Marginals of ``names``: one matrix product per clique that holds any of them."""
        out = {}
        for c, mat, cols in self._target_plan(tuple(names))[1]:
            res = beliefs[c] @ mat
            for name, lo, hi in cols:
                out[name] = res[:, lo:hi]
        return out

    def _target_plan(self, names: tuple[str, ...]) -> tuple[set[int], list[tuple]]:
        """For a target list: the cliques the downward pass must visit and, per clique,
        a 0/1 matrix giving its targets' marginals. Each target is read from the clique
        nearest the root that holds it (then the smallest), so that the downward pass
        can skip whole branches; cached per target list."""
        cache = self.__dict__.setdefault("_tplans", {})
        hit = cache.get(names)
        if hit is not None:
            return hit
        for t in names:
            if t not in self.index:
                raise UnknownNameError.for_name("node", t, self.variables)
        by_clique: dict[int, list[int]] = {}
        for t in dict.fromkeys(names):
            v = self.index[t]
            h = min((i for i, c in enumerate(self.cliques) if v in c.vars),
                    key=lambda i: (self.depth[i], self.cliques[i].size))
            by_clique.setdefault(h, []).append(v)
        need: set[int] = {self.root}
        groups = []
        for h, vs in by_clique.items():
            c = h
            while c != -1 and c not in need:
                need.add(c)
                c = self.parent[c]
            blocks, cols, lo = [], [], 0
            for v in vs:
                kk = int(self.card[v])
                block = np.zeros((self.cliques[h].size, kk))
                block[np.arange(self.cliques[h].size), self._sub_index(h, (v,))[0]] = 1.0
                blocks.append(block)
                cols.append((self.variables[v], lo, lo + kk))
                lo += kk
            groups.append((h, np.hstack(blocks), cols))
        if len(cache) >= 256:
            cache.clear()
        cache[names] = (need, groups)
        return need, groups

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
        tv = tuple(self.variables if targets is None else targets)
        need = self._target_plan(tv)[0]
        beliefs, log_pe = self._calibrate(lam, 1, do_idx, need)
        if not np.isfinite(log_pe[0]):
            raise _impossible(evidence, do)
        marg = self._marginals(beliefs, tv)
        return {t: marg[t][0] for t in tv}

    def _single_lambda(self, evidence, do, virtual_evidence):
        ev = self.encode(evidence)
        do_idx = self.encode(do) if do else None
        masks = self.__dict__.setdefault("_masks", {})
        lam: list[tuple[int, np.ndarray]] = []
        for v, s in ev.items():  # a hard finding: a cached 0/1 mask over its home clique
            x = masks.get((v, s))
            if x is None:
                x = masks[(v, s)] = (self.var_idx[v] == s).astype(float)[None]
            lam.append((self.var_home[v], x))
        for var, vec in (virtual_evidence or {}).items():
            if var not in self.index:
                raise UnknownNameError.for_name("node", var, self.variables)
            v = self.index[var]
            arr = np.asarray(vec, dtype=float).reshape(-1)
            if arr.shape[0] != self.card[v] or (arr < 0).any() or not np.isfinite(arr).all():
                raise EvidenceError(
                    f"virtual evidence on {var}: expected {int(self.card[v])} non-negative "
                    f"weights (states {self.states[var]}), found {vec!r}")
            lam.append((self.var_home[v], arr[self.var_idx[v]][None]))
        return lam, do_idx

    def log_probability(
        self, evidence: Mapping[str, str] | None = None, do: Mapping[str, str] | None = None
    ) -> float:
        """``log P(evidence)`` (natural log; ``-inf`` when impossible)."""
        lam, do_idx = self._single_lambda(evidence, do, None)
        _, log_pe = self._calibrate(lam, 1, do_idx, need={self.root})  # no downward pass
        return float(log_pe[0])

    def family_posteriors(
        self,
        evidence: Mapping[str, str] | None,
        nodes: Sequence[str],
        do: Mapping[str, str] | None = None,
    ) -> dict[str, np.ndarray]:
        """Joint posteriors ``P(node, parents | evidence)`` of some families, one pass.

        Each family lies in one clique (its factor's home), so its joint posterior is that
        clique's belief summed over the other variables. Returns ``{node: array (card,
        *parent_cards)}`` with the parents in ``self.parents[node]`` order.

        Raises
        ------
        ImpossibleEvidenceError
            When the model gives the evidence probability zero.
        """
        for n in nodes:
            if n not in self.index:
                raise UnknownNameError.for_name("node", n, self.variables)
        lam, do_idx = self._single_lambda(evidence, do, None)
        need = {self.root}
        for n in nodes:  # each family's clique and the path from it up to the root
            c = self.factor_home[self.index[n]]
            while c != -1 and c not in need:
                need.add(c)
                c = self.parent[c]
        beliefs, log_pe = self._calibrate(lam, 1, do_idx, need=need)
        if not np.isfinite(log_pe[0]):
            raise _impossible(evidence, do)
        out = {}
        for n in nodes:
            v = self.index[n]
            c = self.factor_home[v]
            cl = self.cliques[c]
            fam = [v, *(self.index[p] for p in self.parents[n])]
            b = np.asarray(beliefs[c][0]).reshape(cl.shape)
            axes = [cl.vars.index(x) for x in fam]
            rest = tuple(i for i in range(len(cl.vars)) if i not in axes)
            kept = b.sum(axis=rest) if rest else b
            order = sorted(axes)  # the summed array keeps the clique's axis order
            out[n] = np.transpose(kept, [order.index(a) for a in axes])
        return out

    def prior_marginals(self) -> dict[str, np.ndarray]:
        """Marginals with no evidence (cached)."""
        if self._prior is None:
            self._prior = self.posterior({})
        return self._prior

    def with_tables(self, tables: Mapping[str, np.ndarray]) -> Engine:
        """A copy with some conditional tables replaced, sharing the compiled junction tree.

        ``tables`` maps a node to its new table, shape ``(card, *parent_cards)`` with the
        parents in ``self.parents[node]`` order (as :func:`~kneehip_bn.model.tables.cpd_array`).
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
        progress: Callable[[int], None] | None = None,
    ) -> BatchResult:
        """Posterior marginals for many evidence patterns at once.

        Messages are shared between rows: each clique's upward message is computed once
        per distinct evidence sub-pattern of its subtree over the whole batch, each
        needed downward message once per distinct pattern outside it, and only the root
        and a short inside-outside join work per row (:mod:`kneehip_bn.inference.shared`). When that
        is not expected to pay (under 4096 rows, an estimated work above the row pass's,
        or shared tables over 768 MB) the rows go through the junction tree in blocks of
        :attr:`bytes_per_row` each instead. Both give the same numbers (tested).

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
        progress : callable, optional
            Called with a number of rows each time that many are done (e.g. a tqdm
            bar's ``update``).
        """
        codes, col_idx = self._check_codes(codes, columns)
        tv = list(self.variables if targets is None else targets)
        for t in tv:
            if t not in self.index:
                raise UnknownNameError.for_name("node", t, self.variables)
        if on_impossible not in ("raise", "nan"):
            raise EvidenceError(
                f"on_impossible: expected 'raise' or 'nan', found {on_impossible!r}")
        do_idx = self.encode(do) if do else None
        n = codes.shape[0]
        plan = self._batch_plan()
        ti = [self.index[t] for t in tv]
        phis = self._batch_phis(do_idx)
        memo = self._memo_plan(codes, col_idx, ti)
        if memo is not None:
            with np.errstate(divide="ignore", invalid="ignore"):
                marg, log_pe = memo.run(phis, codes, col_idx, progress)
            out = {t: marg[v] for t, v in zip(tv, ti)}
        else:
            out = {t: np.empty((n, int(self.card[self.index[t]]))) for t in tv}
            log_pe = np.empty(n)
            tree = plan.oriented(tuple(ti))
            step = self._chunk_rows()
            codes = codes.astype(np.intp, copy=False)
            with np.errstate(divide="ignore", invalid="ignore"):
                for start in range(0, n, step):
                    sl = slice(start, min(n, start + step))
                    beliefs, lp = tree.calibrate(phis, codes[sl], col_idx, self._rescale)
                    log_pe[sl] = lp
                    marg = tree.marginals(beliefs, ti)
                    for t, v in zip(tv, ti):
                        out[t][sl] = marg[v]
                    if progress is not None:
                        progress(sl.stop - sl.start)
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

    def _memo_plan(self, codes: np.ndarray, col_idx: Sequence[int], ti: Sequence[int]) -> Any:
        """The shared-message plan for this batch, or None when the row-by-row pass is
        expected to be faster (few rows, or little to share)."""
        n = codes.shape[0]
        if n < 4096:
            return None
        from kneehip_bn.inference.shared import MemoPlan

        plan = self._batch_plan()
        observed = tuple((codes >= 0).any(axis=0).tolist())
        memo = plan.cached(("memo", tuple(ti), tuple(col_idx), observed, n.bit_length()),
                           lambda: MemoPlan(plan, tuple(ti), col_idx, observed, n))
        return memo if memo.worth_it(n) else None

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
        if not np.issubdtype(codes.dtype, np.integer):
            raise EvidenceError(f"evidence codes: expected integers, found {codes.dtype}")
        return codes, col_idx

    def expected_counts(
        self,
        codes: np.ndarray,
        columns: Sequence[str],
        weights: np.ndarray | None = None,
        method: str = "auto",
        on_impossible: str = "raise",
        progress: Callable[[int], None] | None = None,
    ) -> tuple[dict[str, np.ndarray], float, np.ndarray]:
        """E-step statistics: expected family counts over a batch of (weighted) patterns.

        Parameters
        ----------
        codes, columns
            As in :meth:`batch`.
        weights : ndarray of shape (n_rows,), optional
            How often each row occurs (default: once).
        method : {"auto", "shared", "rows"}
            ``"shared"``: reverse mode through the shared-message pass
            (:meth:`kneehip_bn.inference.shared.MemoPlan.family_posteriors`): every clique's work is
            done once per distinct sub-pattern of the batch, only the root per row.
            ``"rows"``: the row-by-row junction tree (each row calibrated in blocks; the
            path before the shared pass, kept as its independent check). ``"auto"``
            (default): shared for 4096 rows or more when its tables fit in
            :data:`~kneehip_bn.inference.shared.MAX_TABLE_BYTES`, rows otherwise. Both give the same
            numbers (tested against each other and brute force).
        on_impossible : {"raise", "nan"}
            Rows with probability zero raise :class:`ImpossibleEvidenceError`, or (``"nan"``)
            add nothing to the counts and make ``loglik`` ``-inf``.
        progress : callable, optional
            Called with a number of rows each time that many are done (shared pass).

        Examples
        --------
        >>> import numpy as np
        >>> from kneehip_bn import load_spec
        >>> eng = Engine(load_spec("knee_hip_basic"))
        >>> codes = np.array([[1], [0], [-1]])
        >>> n1, ll1, _ = eng.expected_counts(codes, ["knee_effusion"], method="shared")
        >>> n2, ll2, _ = eng.expected_counts(codes, ["knee_effusion"], method="rows")
        >>> bool(np.allclose(n1["knee_pain"], n2["knee_pain"])), bool(abs(ll1 - ll2) < 1e-9)
        (True, True)

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
        if w.shape != (n,):
            raise EvidenceError(f"weights: expected shape ({n},), found {w.shape}")
        if method not in ("auto", "shared", "rows"):
            raise EvidenceError(f"method: expected 'auto', 'shared' or 'rows', found {method!r}")
        if on_impossible not in ("raise", "nan"):
            raise EvidenceError(
                f"on_impossible: expected 'raise' or 'nan', found {on_impossible!r}")
        plan = self._batch_plan()
        used = sorted(set(plan.factor_home))
        phis = self._batch_phis(None)
        memo = None
        if method != "rows":
            from kneehip_bn.inference.shared import MemoPlan

            observed = tuple((codes >= 0).any(axis=0).tolist())
            memo = plan.cached(("memo", (), tuple(col_idx), observed, n.bit_length()),
                               lambda: MemoPlan(plan, (), col_idx, observed, n))
            if method == "auto" and not (memo.worth_it(n) and n >= 4096):
                memo = None
        if memo is not None:
            with np.errstate(divide="ignore", invalid="ignore"):
                acc_all, log_pe = memo.family_posteriors(phis, codes, col_idx, w, progress)
            acc = {c: acc_all[c] for c in used}
            bad = ~np.isfinite(log_pe)
            if bad.any() and on_impossible == "raise":
                raise _impossible_rows(np.flatnonzero(bad))
        else:
            codes = codes.astype(np.intp, copy=False)
            tree = plan.oriented((), frozenset(used))
            acc = {c: np.zeros(plan.shape[c]) for c in used}
            log_pe = np.empty(n)
            step = self._chunk_rows()
            with np.errstate(divide="ignore", invalid="ignore"):
                for start in range(0, n, step):
                    sl = slice(start, min(n, start + step))
                    beliefs, lp = tree.calibrate(phis, codes[sl], col_idx, self._rescale)
                    log_pe[sl] = lp
                    ok = np.isfinite(lp)
                    if not ok.all():
                        if on_impossible == "raise":
                            raise _impossible_rows(np.flatnonzero(~ok) + start)
                    ws = np.where(ok, w[sl], 0.0)
                    for c in used:
                        b = beliefs[c]
                        if b.shape[-1] == 1:  # no evidence reached it: the same for every row
                            acc[c] += ws.sum() * b[..., 0]
                        else:
                            acc[c] += np.nan_to_num(b) @ ws
        counts = {}
        for v, name in enumerate(self.variables):
            h = plan.factor_home[v]
            fam = self.factors[v][0]
            keep = set(fam)
            fam_counts = acc[h].sum(axis=tuple(a for a, x in enumerate(plan.vars[h])
                                               if x not in keep))
            order = [self.index[name]] + [self.index[p] for p in self.parents[name]]
            counts[name] = fam_counts.transpose([fam.index(x) for x in order])
        return counts, float(np.dot(w, log_pe)), log_pe


def _impossible_rows(rows: np.ndarray) -> ImpossibleEvidenceError:
    return ImpossibleEvidenceError(
        f"rows {', '.join(map(str, rows[:5].tolist()))} have probability zero under the "
        f"current parameters ({rows.size} in all): expected rows the model allows; a table "
        "has a zero the data contradict")


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
    from kneehip_bn.model.tables import cpd_array

    return [(name, n.states, n.parents, cpd_array(spec, n)) for name, n in spec.nodes.items()]


def _impossible(evidence, do) -> ImpossibleEvidenceError:
    ev = ", ".join(f"{k}={v}" for k, v in (evidence or {}).items()) or "(none)"
    extra = f" under do({', '.join(f'{k}={v}' for k, v in do.items())})" if do else ""
    return ImpossibleEvidenceError(
        f"impossible evidence{extra}: the model gives probability zero to {ev}; expected "
        "findings the model allows; check for contradictory findings or a zero in a table")


def _gib(n: int) -> str:
    if n >= 2**30:
        return f"{n / 2**30:.2f} GiB"
    return f"{n / 2**20:.0f} MiB" if n >= 2**20 else f"{n:,} bytes"


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
    cliques: list[frozenset[int]], card: np.ndarray, leaves: frozenset[int] | None = None
) -> tuple[list[set[int]], list[tuple[int, int]]]:
    """A maximum spanning tree on separator size (a junction tree).

    With ``leaves`` (the network's childless variables), ties between equally large
    separators are broken against cliques that hold leaves, so that evidence-only cliques
    end up as leaves of the tree rather than between the cliques queries need.
    """
    scale = 4.0 * (len(card) + 1)  # total penalty < 1: separator size still decides
    edges = []
    for i, j in itertools.combinations(range(len(cliques)), 2):
        sep = cliques[i] & cliques[j]
        if sep:
            pen = 0.0 if leaves is None else len((cliques[i] | cliques[j]) & leaves) / scale
            edges.append((i, j, len(sep) - pen))
    return [set(c) for c in cliques], maximum_spanning_tree(len(cliques), edges)


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


# ----------------------------------------------------------------------------- batch plan
#: cliques of the batch compilation are merged only up to this many entries (measured on
#: knee_hip and ALARM: 1-8 is best; bigger cliques make every row pay for their size)
_BATCH_MAX_STATES = 8


class _BatchPlan:
    """The junction tree used for batches (structure only: no tables).

    Clique arrays have shape ``(*clique shape, rows)``: the batch is the last, contiguous
    axis, so multiplying by a message is a broadcast and projecting onto a separator is a
    ``sum`` over leading axes, both with long inner loops and without BLAS.
    """

    def __init__(self, families: Sequence[tuple[int, ...]], card: np.ndarray,
                 max_states: int) -> None:
        n = len(card)
        self.card = card
        adj: dict[int, set[int]] = {i: set() for i in range(n)}
        has_child: set[int] = set()
        for v, fam in enumerate(families):
            for a, b in itertools.combinations(fam, 2):
                adj[a].add(b)
                adj[b].add(a)
            has_child.update(x for x in fam if x != v)
        cliques = _triangulate(adj, card)
        sets, edges = _junction_tree(cliques, card, leaves=frozenset(range(n)) - has_child)
        sets, edges = _merge_cliques(sets, edges, card, max_states)
        self.vars = [tuple(sorted(c)) for c in sets]
        self.shape = [tuple(int(card[v]) for v in c) for c in self.vars]
        self.size = [math.prod(s) for s in self.shape]
        k = len(self.vars)
        self.nbrs: dict[int, list[int]] = {i: [] for i in range(k)}
        for a, b in edges:
            self.nbrs[a].append(b)
            self.nbrs[b].append(a)
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
        self._lam = [np.hstack([np.eye(int(c)), np.ones((int(c), 1))]) for c in card]
        # the same by code + 1 (column 0 is missing), for the shared-message pass
        self._lam1 = [np.hstack([np.ones((int(c), 1)), np.eye(int(c))]) for c in card]

    def bshape(self, c: int, keep: Sequence[int] | set[int]) -> tuple[int, ...]:
        """Shape that broadcasts a table over ``keep`` (ascending) into clique ``c``."""
        return tuple(int(self.card[x]) if x in keep else 1 for x in self.vars[c])

    def phis(self, factors, card, do: Mapping[int, int] | None) -> list[np.ndarray]:
        out = [np.ones(s) for s in self.shape]
        for v, (fam, arr) in enumerate(factors):
            h = self.factor_home[v]
            if do and v in do:  # graph surgery: a point mass, the parents cut off
                point = np.zeros(int(card[v]))
                point[do[v]] = 1.0
                out[h] = out[h] * point.reshape(self.bshape(h, (v,)))
            else:
                out[h] = out[h] * arr.reshape(self.bshape(h, fam))
        return [p[..., None] for p in out]

    def oriented(self, targets: tuple[int, ...],
                 cliques: frozenset[int] = frozenset()) -> _OrientedPlan:
        """The tree oriented for these targets (and cliques whose beliefs are needed)."""
        key = (frozenset(targets), cliques)
        return self.cached(key, lambda: _OrientedPlan(self, key[0], cliques))

    def cached(self, key: tuple, make: Callable[[], Any]) -> Any:
        """A plan for ``key`` built by ``make`` once (at most 64 kept)."""
        plan = self._trees.get(key)
        if plan is None:
            if len(self._trees) >= 64:
                self._trees.clear()
            plan = self._trees[key] = make()
        return plan


class _OrientedPlan:
    """A root, parent pointers, target homes and the cliques the downward pass visits,
    chosen (over every root) to minimise the total size of those cliques."""

    def __init__(self, plan: _BatchPlan, targets: frozenset[int], must: frozenset[int]):
        self.plan = plan
        k = len(plan.vars)
        best = None
        # every clique is a candidate root on small trees; the 32 largest on big ones
        roots = range(k) if k <= 64 else sorted(range(k), key=lambda i: -plan.size[i])[:32]
        for root in roots:
            parent, order = _orient(plan.nbrs, root, k)
            depth = [0] * k
            for c in order[1:]:
                depth[c] = depth[parent[c]] + 1
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
        self.children: list[list[int]] = [[] for _ in range(k)]
        for c in order[1:]:
            self.children[self.parent[c]].append(c)
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
                lam = plan._lam[v][:, rows[:, j]]
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


def _orient(nbrs: Mapping[int, list[int]], root: int, k: int) -> tuple[list[int], list[int]]:
    """Parent pointers and a top-down order from ``root``; other components (a
    disconnected network) hang from the root through an empty separator."""
    parent = [-1] * k
    order = [root]
    seen = {root}
    for c in order:
        for d in nbrs[c]:
            if d not in seen:
                seen.add(d)
                parent[d] = c
                order.append(d)
    for c in range(k):
        if c not in seen:
            comp = [c]
            seen.add(c)
            parent[c] = root
            for x in comp:
                for d in nbrs[x]:
                    if d not in seen:
                        seen.add(d)
                        parent[d] = x
                        comp.append(d)
            order.extend(comp)
    return parent, order


_ENGINES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def get_engine(model: Any, refresh: bool = False) -> Engine:
    """The compiled engine of a network or specification, compiled once and cached.

    The cache is keyed on content, so it never returns stale numbers: for a pgmpy network
    on its CPDs' values, states and edges (an in-place edit of ``cpd.values``, ``add_cpds``
    or ``model.fit`` compiles afresh); for a :class:`~kneehip_bn.ModelSpec` on its nodes,
    states, parents and tables (:func:`kneehip_bn.model.spec.content_key`: cached on a validated,
    read-only spec; an editable ``copy.deepcopy`` is validated and keyed again on every
    call, so an in-place edit is checked and seen). ``refresh=True`` compiles anew anyway.
    """
    if isinstance(model, Engine):
        return model
    if not hasattr(model, "get_cpds"):  # ModelSpec
        from kneehip_bn.model.spec import content_key, is_frozen
        from kneehip_bn.model.validate import validate_spec

        key = content_key(model)
        hit = None if refresh else model.__dict__.get("_engine")
        if isinstance(hit, tuple) and hit[0] == key:
            return hit[1]
        if not is_frozen(model):  # an editable copy, maybe changed in place: check it
            import copy

            validate_spec(copy.deepcopy(model))  # (a copy: the user's stays editable)
        eng = Engine(model)
        model.__dict__["_engine"] = (key, eng)
        return eng
    fp = network_fingerprint(model)
    hit = None if refresh else _ENGINES.get(model)
    if hit is not None and hit[0] == fp:
        return hit[1]
    eng = Engine(model)
    _ENGINES[model] = (fp, eng)
    return eng
