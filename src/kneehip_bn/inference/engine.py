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

The engine is the facade of four modules: :mod:`~kneehip_bn.inference.compile` (the
junction tree and its clique tables), :mod:`~kneehip_bn.inference.single` (the flat BLAS
pass of one query), :mod:`~kneehip_bn.inference.rows` (the batch-last row pass of a
second compilation with small cliques, :class:`~kneehip_bn.inference.rows.BatchPlan`) and
:mod:`~kneehip_bn.inference.shared` (the shared-message pass of large batches).

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

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from kneehip_bn._util.graph import topological_order
from kneehip_bn.errors import (
    EvidenceError,
    ImpossibleEvidenceError,
    ParameterError,
    UnknownNameError,
)
from kneehip_bn.inference import single
from kneehip_bn.inference.compile import (
    children_of,
    clique_tables,
    clique_tree,
    depths,
    orient,
)
from kneehip_bn.inference.rows import BATCH_MAX_STATES, BatchPlan
from kneehip_bn.inference.shared import MAX_TABLE_BYTES, MIN_SHARED_ROWS, MemoPlan
from kneehip_bn.model.network import cpd_array

__all__ = ["BLOCK_ROWS", "BatchResult", "Engine"]

BLOCK_ROWS = 2**18
"""Rows per block of the shared pass in :meth:`Engine.batch` and
:meth:`Engine.expected_counts`. Measured on the 15M-row audit's 4.35M distinct patterns
(``benchmarks/bench_memory.py``): blocks of 2**18 rows screen them in 2.7 s at 0.59 GB
peak, one block of all of them in 21.8 s at 1.00 GB (smaller tables stay in cache)."""

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

    Batches of :data:`~kneehip_bn.inference.shared.MIN_SHARED_ROWS` rows or more share
    messages between rows (:mod:`kneehip_bn.inference.shared`) when the shared tables are
    estimated to fit in ``max_shared_bytes`` (default
    :data:`~kneehip_bn.inference.shared.MAX_TABLE_BYTES`, 768 MB; ``0`` always takes the
    row-by-row pass).

    Batches longer than ``block_rows`` (default :data:`BLOCK_ROWS`, 262,144) go through
    the shared pass block by block, so its tables are bounded by the block, not by the
    batch: a 4-million-pattern E-step needs no more memory than a 262,144-pattern one.
    Results do not depend on the block (every row's answer is its own; counts are sums
    over rows).
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
        self.max_shared_bytes = MAX_TABLE_BYTES
        self.block_rows = BLOCK_ROWS

    # ------------------------------------------------------------------ compilation
    def _compile(self) -> None:
        """The single-query junction tree: cliques, their orientation from the largest,
        each variable's and table's home, and the flat index maps of :mod:`.single`."""
        n = len(self.variables)
        cl_sets, nbrs = clique_tree([fam for fam, _ in self.factors], self.card,
                                    self.max_clique_states, names=self.variables,
                                    cap=getattr(self, "max_table_bytes", None))
        self.cliques = [
            single.Clique(tuple(sorted(c)), tuple(int(self.card[v]) for v in sorted(c)),
                          int(np.prod([self.card[v] for v in c])))
            for c in cl_sets
        ]
        k = len(self.cliques)
        # root: the largest clique; forests hang from it (compile.orient)
        self.root = max(range(k), key=lambda i: self.cliques[i].size)
        self.parent, self.topdown = orient(nbrs, self.root, k)
        self.depth = depths(self.parent, self.topdown)
        self.children = children_of(self.parent, self.topdown)
        self.collect = list(reversed(self.topdown[1:]))
        # each variable's home (smallest clique containing it) for evidence and marginals
        self.var_home = [min((i for i, c in enumerate(self.cliques) if v in c.vars),
                             key=lambda i: self.cliques[i].size) for v in range(n)]
        # factor assignment (smallest clique containing the family)
        self.factor_home = [min((i for i, c in enumerate(self.cliques) if set(fam) <= set(c.vars)),
                                key=lambda i: self.cliques[i].size) for fam, _ in self.factors]
        self.rescale = n > 100  # products of >100 tables could underflow
        self._flat_maps()

    def _flat_maps(self) -> None:
        """Flat layout: every clique table is a row vector (batch, size); index maps give,
        for each flat entry, the state of a variable / the flat index of a sub-table."""
        k = len(self.cliques)
        self.grid = [np.indices(c.shape).reshape(len(c.shape), -1) for c in self.cliques]
        self.var_idx = [self.sub_index(self.var_home[v], (v,))[0]
                        for v in range(len(self.variables))]
        self.up_proj: list[single.Proj | None] = [None] * k  # child clique -> separator
        self.down_proj: list[single.Proj | None] = [None] * k  # parent clique -> separator
        self.sep_in_child: list[np.ndarray | None] = [None] * k
        self.sep_in_parent: list[np.ndarray | None] = [None] * k
        for c in self.topdown[1:]:
            p = self.parent[c]
            sep = tuple(sorted(set(self.cliques[c].vars) & set(self.cliques[p].vars)))
            ic, ssize = self.sub_index(c, sep)
            ip, _ = self.sub_index(p, sep)
            self.sep_in_child[c], self.sep_in_parent[c] = ic, ip
            self.up_proj[c] = single.Proj(ic, ssize)
            self.down_proj[c] = single.Proj(ip, ssize)

    def sub_index(self, ci: int, sub: Sequence[int]) -> tuple[np.ndarray, int]:
        """For each flat entry of clique ``ci``, the flat index into the table over ``sub``."""
        return single.sub_index(self.cliques[ci], self.grid[ci], self.card, sub)

    @property
    def bytes_per_row(self) -> int:
        """Approximate working memory per batch row, in bytes."""
        return self.batch_plan().bytes_per_row

    def batch_plan(self) -> BatchPlan:
        """The batch compilation (:class:`~kneehip_bn.inference.rows.BatchPlan`; structure
        only, so engines from :meth:`with_tables` share it); built on first use."""
        plan = self.__dict__.get("_bplan")
        if plan is None:
            plan = BatchPlan([fam for fam, _ in self.factors], self.card, BATCH_MAX_STATES)
            self.__dict__["_bplan"] = plan
        return plan

    def batch_phis(self, do: Mapping[int, int] | None = None) -> list[np.ndarray]:
        """Clique tables of the batch plan, shape (*clique shape, 1); cached per do()
        (``{variable index: state index}``)."""
        key = ("batch", *sorted((do or {}).items()))
        if key not in self._phi_cache:
            self._phi_cache[key] = self.batch_plan().phis(self.factors, do)
        return self._phi_cache[key]

    def clique_tables(self, do: Mapping[int, int] | None = None) -> list[np.ndarray]:
        """Flat clique tables of the single-query tree, each of shape (1, size): products of
        the assigned conditional tables; ``do`` (``{variable index: state index}``) is graph
        surgery (:func:`~kneehip_bn.inference.compile.clique_tables`). Cached per do()."""
        key = tuple(sorted((do or {}).items()))
        if key in self._phi_cache:
            return self._phi_cache[key]
        tables = clique_tables([c.vars for c in self.cliques], self.card, self.factors,
                               self.factor_home, do)
        phis = [t.reshape(1, -1) for t in tables]
        self._phi_cache[key] = phis
        return phis

    def family_table(self, node: str) -> np.ndarray:
        """P(node | parents), shape ``(card, *parent_cards)`` with the parents in
        ``self.parents[node]`` order (as :func:`~kneehip_bn.model.network.cpd_array`)."""
        if node not in self.index:
            raise UnknownNameError.for_name("node", node, self.variables)
        fam, arr = self.factors[self.index[node]]
        order = [self.index[node]] + [self.index[p] for p in self.parents[node]]
        return arr.transpose([fam.index(x) for x in order])

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
        do: Mapping[int, int] | None = None,
        need: set[int] | None = None,
    ) -> tuple[list[np.ndarray], np.ndarray]:
        """One collect/distribute pass of the flat tree (:func:`.single.calibrate`)."""
        return single.calibrate(self, self.clique_tables(do), lam, need)

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
                block[np.arange(self.cliques[h].size), self.sub_index(h, (v,))[0]] = 1.0
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
        beliefs, log_pe = self._calibrate(lam, do_idx, need)
        if not np.isfinite(log_pe[0]):
            raise ImpossibleEvidenceError.for_evidence(evidence, do)
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
        _, log_pe = self._calibrate(lam, do_idx, need={self.root})  # no downward pass
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
        beliefs, log_pe = self._calibrate(lam, do_idx, need=need)
        if not np.isfinite(log_pe[0]):
            raise ImpossibleEvidenceError.for_evidence(evidence, do)
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

    def chunk_rows(self) -> int:
        """Rows per block of the row pass: :attr:`chunk_bytes` over :attr:`bytes_per_row`."""
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
        is not expected to pay (under :data:`~kneehip_bn.inference.shared.MIN_SHARED_ROWS`
        rows, an estimated work above the row pass's, or shared tables over
        ``max_shared_bytes``) the rows go through the junction tree in blocks of
        :meth:`chunk_rows` rows instead. Both give the same numbers (tested).

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
        ParameterError.check_choice(on_impossible, "on_impossible", ("raise", "nan"))
        do_idx = self.encode(do) if do else None
        n = codes.shape[0]
        ti = [self.index[t] for t in tv]
        phis = self.batch_phis(do_idx)
        if n <= self.block_rows:
            out, log_pe = self._batch_block(phis, codes, col_idx, tv, ti, progress)
        else:
            out = {t: np.empty((n, int(self.card[v]))) for t, v in zip(tv, ti)}
            log_pe = np.empty(n)
            for sl in self._blocks(n):
                o, log_pe[sl] = self._batch_block(phis, codes[sl], col_idx, tv, ti, progress)
                for t in tv:
                    out[t][sl] = o[t]
        bad = ~np.isfinite(log_pe)
        if bad.any():
            if on_impossible == "raise":
                raise ImpossibleEvidenceError.for_rows(np.flatnonzero(bad), n)
            for t in tv:
                out[t][bad] = np.nan
        return BatchResult(out, log_pe)

    def _blocks(self, n: int) -> list[slice]:
        """``n`` rows cut into blocks of :attr:`block_rows`."""
        step = max(1, int(self.block_rows))
        return [slice(a, min(n, a + step)) for a in range(0, n, step)]

    def _batch_block(self, phis, codes, col_idx, tv, ti, progress):
        """One block of :meth:`batch`: the shared pass when it pays, the row pass if not."""
        memo = self._memo_plan(codes, col_idx, ti)
        if memo is None:
            return self._batch_rows(phis, codes, col_idx, tv, ti, progress)
        with np.errstate(divide="ignore", invalid="ignore"):
            marg, log_pe = memo.run(phis, codes, col_idx, progress)
        return {t: marg[v] for t, v in zip(tv, ti)}, log_pe

    def _batch_rows(self, phis, codes, col_idx, tv, ti, progress):
        """The row pass of :meth:`batch`: blocks of :meth:`chunk_rows` rows."""
        n = codes.shape[0]
        out = {t: np.empty((n, int(self.card[self.index[t]]))) for t in tv}
        log_pe = np.empty(n)
        tree = self.batch_plan().oriented(tuple(ti))
        step = self.chunk_rows()
        codes = codes.astype(np.intp, copy=False)
        with np.errstate(divide="ignore", invalid="ignore"):
            for start in range(0, n, step):
                sl = slice(start, min(n, start + step))
                beliefs, lp = tree.calibrate(phis, codes[sl], col_idx, self.rescale)
                log_pe[sl] = lp
                marg = tree.marginals(beliefs, ti)
                for t, v in zip(tv, ti):
                    out[t][sl] = marg[v]
                if progress is not None:
                    progress(sl.stop - sl.start)
        return out, log_pe

    def _memo_plan(self, codes: np.ndarray, col_idx: Sequence[int], ti: Sequence[int],
                   method: str = "auto") -> MemoPlan | None:
        """The shared-message plan for this batch, or None when the row-by-row pass is
        expected to be faster (few rows, or little to share: :meth:`.MemoPlan.worth_it`)
        or ``method`` is ``"rows"``; ``"shared"`` takes it whatever the estimate."""
        n = codes.shape[0]
        if method == "rows" or (method == "auto" and n < MIN_SHARED_ROWS):
            return None
        plan = self.batch_plan()
        observed = tuple((codes >= 0).any(axis=0).tolist())
        memo = plan.cached(("memo", tuple(ti), tuple(col_idx), observed, n.bit_length()),
                           lambda: MemoPlan(plan, tuple(ti), col_idx, observed, n))
        if method == "auto" and not memo.worth_it(n, self.max_shared_bytes):
            return None
        return memo

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
            (default): shared when :meth:`batch` would share (enough rows, tables within
            ``max_shared_bytes``), rows otherwise. Both give the same numbers (tested
            against each other and brute force).
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
            raise ParameterError(f"weights: expected shape ({n},), found {w.shape}")
        if method not in ("auto", "shared", "rows"):
            raise ParameterError(f"method: expected 'auto', 'shared' or 'rows', found {method!r}")
        ParameterError.check_choice(on_impossible, "on_impossible", ("raise", "nan"))
        plan = self.batch_plan()
        used = sorted(set(plan.factor_home))
        phis = self.batch_phis(None)
        acc = {c: np.zeros(plan.shape[c]) for c in used}
        log_pe = np.empty(n)
        for sl in self._blocks(n):
            block = codes[sl]
            memo = self._memo_plan(block, col_idx, (), method)
            if memo is not None:
                with np.errstate(divide="ignore", invalid="ignore"):
                    acc_b, log_pe[sl] = memo.family_posteriors(phis, block, col_idx, w[sl],
                                                               progress)
            else:
                acc_b, log_pe[sl] = self._counts_rows(phis, block, col_idx, w[sl], used)
            for c in used:
                acc[c] += acc_b[c]
        bad = ~np.isfinite(log_pe)
        if bad.any() and on_impossible == "raise":
            raise ImpossibleEvidenceError.for_rows(
                np.flatnonzero(bad), n, under="the current parameters",
                hint="a table has a zero the data contradict")
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

    def _counts_rows(self, phis, codes, col_idx, w, used):
        """The row pass of :meth:`expected_counts`: each clique's weighted beliefs summed
        over blocks of :meth:`chunk_rows` rows (impossible rows add nothing)."""
        plan = self.batch_plan()
        n = codes.shape[0]
        codes = codes.astype(np.intp, copy=False)
        tree = plan.oriented((), frozenset(used))
        acc = {c: np.zeros(plan.shape[c]) for c in used}
        log_pe = np.empty(n)
        step = self.chunk_rows()
        with np.errstate(divide="ignore", invalid="ignore"):
            for start in range(0, n, step):
                sl = slice(start, min(n, start + step))
                beliefs, lp = tree.calibrate(phis, codes[sl], col_idx, self.rescale)
                log_pe[sl] = lp
                ok = np.isfinite(lp)
                ws = np.where(ok, w[sl], 0.0)
                for c in used:
                    b = beliefs[c]
                    if b.shape[-1] == 1:  # no evidence reached it: the same for every row
                        acc[c] += ws.sum() * b[..., 0]
                    else:
                        acc[c] += np.nan_to_num(b) @ ws
        return acc, log_pe


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
    return [(name, n.states, n.parents, cpd_array(spec, n)) for name, n in spec.nodes.items()]
