"""Fitting the expert priors to clinical audit data, and batch posteriors.

The model's expert probabilities are a prior; an audit updates them.

**Prior.** Each table's expert probabilities times its strength (the equivalent sample
size, ``spec.strength_of(node)``, overridable per table and globally) are Dirichlet
pseudo-counts ``alpha[x, u] = strength * P_expert(x | u)``, one set per parent
configuration ``u``, exactly as pgmpy's ``DiscreteBayesianEstimator(prior_type="dirichlet",
pseudo_counts=...)`` and its ``fit_update`` use them. A structural zero of the expert
table has pseudo-count zero and stays zero.

**Complete data** (every node observed in every row): the fitted table is
``(counts + alpha) / column sums``, pgmpy's Bayesian estimate, in closed form.

**Missing values and unobserved nodes**: EM over all rows. The E-step groups identical
rows into distinct patterns (one int64 key per row, ``np.unique``) and asks the compiled
engine for the expected family counts of the patterns, weighted by how often each occurs
(:meth:`Engine.expected_counts`); the M-step is the same Dirichlet update with expected
counts. Each iteration maximises the penalised objective

    log P(data | theta) + sum over tables of sum alpha * log theta

(the log-posterior up to a constant), which EM never decreases; iteration stops when its
relative change falls below ``tol``.

**Noisy-OR tables** stay noisy-OR (``noisy_or="keep"``): their leak and links maximise the
same objective, ``sum (N + alpha) * log P_noisyOR(x | u)``, by projected Newton steps in
``w = -log(1 - p)`` (the objective is concave there); or they become full tables
(``noisy_or="tabular"``).

Examples
--------
>>> from kneehip_bn.learning.simulate import simulate_audit
>>> from kneehip_bn.learning.em import PriorFitter
>>> audit = simulate_audit(300, seed=0, missing=0.1, model="knee_hip_basic")
>>> fitter = PriorFitter(progress=False, max_iter=5, model="knee_hip_basic").fit(audit, dataset_name="demo")
>>> fitter.spec_.nodes["knee_pain"].noisy_or.leak.source
'fitted'
>>> bool(fitter.history_["log_posterior"].is_monotonic_increasing)
True
"""

from __future__ import annotations

import contextlib
import copy
import datetime as _dt
import itertools
import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kneehip_bn._util.files import atomic_write, check_new_output
from kneehip_bn.errors import (
    DataError,
    ImpossibleEvidenceError,
    KneeHipError,
    NotFittedError,
    UnknownNameError,
)
from kneehip_bn.io.counts import AuditCounts, merge_counts, states_of
from kneehip_bn.io.counts_file import read_counts
from kneehip_bn.io.encode import ChunkEncoder, EncodedAudit, _bar, encode_audit
from kneehip_bn.io.mapping import load_mapping
from kneehip_bn.io.patterns import group_patterns
from kneehip_bn.io.sources import iter_audit, single_chunk, source_name

__all__ = [
    "RELAX_PROBABILITY",
    "RELAX_PSEUDO_COUNT",
    "STATUS_LABELS",
    "ImpossibleRows",
    "PriorFitter",
    "ZeroEntry",
    "batch_posteriors",
    "find_impossible",
    "fit_priors",
    "screen_counts",
    "write_batch_posteriors",
]

_W_MAX = -math.log(1e-12)  # link/leak probabilities are kept <= 1 - 1e-12


def _blas_single() -> Any:
    """Limit BLAS to one thread while the engine runs: its many small matrix products are
    2-5x slower with OpenBLAS threads competing on a busy 2-core machine
    (threadpoolctl ships with scikit-learn, a pgmpy dependency; without it, no limit)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")


# ============================================================================ parameters
@dataclass
class _Family:
    """One conditional table as the fitter sees it."""

    name: str
    states: list[str]
    parents: list[str]
    pcards: list[int]
    kind: str  # "table" or "noisy_or"
    expert: np.ndarray  # (card, *pcards)
    strength: float
    frozen: bool
    design: np.ndarray | None = None  # noisy-OR: (n_configs, 1 + n_links), leak first
    on_idx: int = 1
    w_expert: np.ndarray | None = None
    parent_states: dict[str, list[str]] = field(default_factory=dict)
    link_labels: list[str] = field(default_factory=list)
    extra: np.ndarray | None = None    # pseudo-counts added to relaxed structural zeros
    start: np.ndarray | None = None    # starting table when some zeros are relaxed
    w_start: np.ndarray | None = None
    relaxed: list[Any] = field(default_factory=list)  # the ZeroEntry objects relaxed

    @property
    def alpha(self) -> np.ndarray:
        """Dirichlet pseudo-counts: strength x expert table (plus relaxed zeros')."""
        a = self.strength * self.expert
        return a if self.extra is None else a + self.extra

    def table_from_w(self, w: np.ndarray) -> np.ndarray:
        """The implied noisy-OR table for parameters ``w = -log(1 - p)``."""
        off = np.exp(-(self.design @ w)).reshape(self.pcards)
        out = np.empty([2, *self.pcards])
        out[self.on_idx] = 1.0 - off
        out[1 - self.on_idx] = off
        return out


def _families(spec, strength, strengths, freeze, noisy_or) -> list[_Family]:
    from kneehip_bn.model.network import cpd_array

    fams = []
    for name, node in spec.nodes.items():
        s = strengths.get(name, strength if strength is not None else spec.strength_of(name))
        pcards = [len(spec.nodes[p].states) for p in node.parents]
        expert = cpd_array(spec, node)
        fam = _Family(name=name, states=list(node.states), parents=list(node.parents),
                      pcards=pcards, kind="table", expert=expert, strength=float(s),
                      frozen=name in freeze,
                      parent_states={p: list(spec.nodes[p].states) for p in node.parents})
        if node.noisy_or is not None and noisy_or == "keep":
            nor = node.noisy_or
            fam.kind = "noisy_or"
            fam.on_idx = node.states.index(nor.on_state)
            configs = np.indices(pcards).reshape(len(pcards), -1).T if pcards else np.zeros((1, 0), int)
            cols = [np.ones(configs.shape[0])]
            ps = [float(nor.leak.p)]
            for ln in nor.links:
                j = node.parents.index(ln.parent)
                k = spec.nodes[ln.parent].states.index(ln.when)
                cols.append((configs[:, j] == k).astype(float))
                ps.append(float(ln.p))
            fam.design = np.stack(cols, axis=1)
            fam.link_labels = [f"{ln.parent}={ln.when}" for ln in nor.links]
            fam.w_expert = np.minimum(-np.log1p(-np.minimum(np.array(ps), 1.0 - 1e-300)), _W_MAX)
        fams.append(fam)
    return fams


def _xlogy(a: np.ndarray, t: np.ndarray) -> float:
    """sum a * log t with 0 * log 0 = 0 (and -inf where a > 0 = t)."""
    pos = a > 0
    with np.errstate(divide="ignore"):
        return float(np.sum(a[pos] * np.log(t[pos])))


def _log1mexp(z: np.ndarray) -> np.ndarray:
    """log(1 - exp(-z)) for z >= 0, accurate near 0 and for large z."""
    with np.errstate(divide="ignore"):
        return np.where(z > 0.693, np.log1p(-np.exp(-z)), np.log(-np.expm1(-z)))


def _nor_objective(D, a_on, a_off, w) -> float:
    z = D @ w
    pos = a_on > 0
    if np.any(z[pos] <= 0):
        return -math.inf
    return float(-(a_off @ z) + a_on[pos] @ _log1mexp(z[pos]))


def _nor_grad_hess(D, a_on, a_off, w):
    z = D @ w
    pos = a_on > 0
    r = np.zeros_like(z)
    h = np.zeros_like(z)
    em1 = np.expm1(z[pos])
    r[pos] = a_on[pos] / em1
    h[pos] = a_on[pos] / (em1 * -np.expm1(-z[pos]))  # a * e^z / (e^z - 1)^2
    g = D.T @ (r - a_off)
    H = -(D.T * h) @ D
    return g, H


def _fit_noisy_or(D, a_on, a_off, w0, max_iter: int = 100) -> np.ndarray:
    """Maximise sum a_off log(off) + a_on log(1 - off), off = exp(-D w), over 0 <= w <= W_MAX.

    Projected Newton with backtracking; every accepted step increases the (concave)
    objective, so a generalised-EM M-step never lowers the EM objective.
    """
    w = np.clip(np.asarray(w0, float), 0.0, _W_MAX)
    f = _nor_objective(D, a_on, a_off, w)
    if not np.isfinite(f):  # start from a point inside the domain
        w = np.maximum(w, 1e-3)
        f = _nor_objective(D, a_on, a_off, w)
    for _ in range(max_iter):
        g, H = _nor_grad_hess(D, a_on, a_off, w)
        free = ~(((w <= 0) & (g < 0)) | ((w >= _W_MAX) & (g > 0)))
        d = np.zeros_like(w)
        if free.any():
            Hf = -H[np.ix_(free, free)]
            ridge = 1e-10 * max(float(np.max(np.diag(Hf))), 1e-12) + 1e-12
            try:
                d[free] = np.linalg.solve(Hf + ridge * np.eye(Hf.shape[0]), g[free])
            except np.linalg.LinAlgError:
                d[free] = g[free]
        if g @ d <= 0:
            d = np.where(free, g, 0.0)
        if not np.any(d):
            break
        t, accepted = 1.0, False
        for _ in range(50):
            w_new = np.clip(w + t * d, 0.0, _W_MAX)
            f_new = _nor_objective(D, a_on, a_off, w_new)
            if f_new >= f:
                accepted = True
                break
            t *= 0.5
        if not accepted:
            break
        gain = f_new - f
        w, f = w_new, f_new
        if gain <= 1e-13 * max(1.0, abs(f)):
            break
    return w


def _nor_laplace_sd(D, a_on, a_off, w) -> np.ndarray:
    """Laplace standard deviations of ``w`` at the optimum (inverse negative Hessian)."""
    _, H = _nor_grad_hess(D, a_on, a_off, w)
    A = -H
    ridge = 1e-9 * max(float(np.max(np.diag(A))), 1e-12) + 1e-12
    try:
        cov = np.linalg.inv(A + ridge * np.eye(A.shape[0]))
    except np.linalg.LinAlgError:  # pragma: no cover - ridge makes it invertible
        return np.full(w.shape, np.nan)
    return np.sqrt(np.maximum(np.diag(cov), 0.0))


class _Params:
    """Current tables of every family (and noisy-OR parameters)."""

    def __init__(self, fams: list[_Family]):
        self.fams = fams
        self.table = {f.name: (f.expert if f.start is None else f.start).copy() for f in fams}
        self.w = {f.name: (f.w_expert if f.w_start is None else f.w_start).copy()
                  for f in fams if f.kind == "noisy_or"}

    def log_prior(self) -> float:
        return sum(_xlogy(f.alpha, self.table[f.name]) for f in self.fams)

    def m_step(self, counts: Mapping[str, np.ndarray]) -> None:
        for f in self.fams:
            if f.frozen:
                continue
            A = counts[f.name] + f.alpha
            if f.kind == "table":
                tot = A.sum(axis=0, keepdims=True)
                with np.errstate(invalid="ignore", divide="ignore"):
                    new = np.where(tot > 0, A / np.where(tot > 0, tot, 1.0), self.table[f.name])
                self.table[f.name] = new
            else:
                a_on = A[f.on_idx].reshape(-1)
                a_off = A[1 - f.on_idx].reshape(-1)
                w = _fit_noisy_or(f.design, a_on, a_off, self.w[f.name])
                self.w[f.name] = w
                self.table[f.name] = f.table_from_w(w)


# ============================================================================ data scan
@dataclass
class _Scan:
    counts: AuditCounts
    train: AuditCounts | None
    test: tuple[np.ndarray, np.ndarray, np.ndarray] | None  # patterns, diagnosis, counts
    report: Any
    dataset: str
    diagnosis_labels: list[str]


def _scan(data, model, mapping, *, table, sql, dataset, holdout, seed, chunksize, progress) -> _Scan:
    """Read (streaming), validate and summarise an audit into pattern counts.

    With a diagnosis column and ``holdout > 0`` the rows are also split at random (seeded)
    into a training part (its own pattern counts) and a test part (patterns with the
    working diagnosis), for held-out accuracy.
    """

    mp = load_mapping(mapping)
    name = source_name(dataset, mp, data, table, sql)
    sep = _fast_csv_sep(data, table, sql)
    if sep is not None:  # pyarrow's dictionary-encoded reader (as kneehip batch)
        import pyarrow as pa

        from kneehip_bn.io.arrow_csv import NotFastError, iter_csv_coded

        try:
            return _scan_chunks(iter_csv_coded(data, chunksize=chunksize, sep=sep), False,
                                model, mp, name, holdout, seed, progress)
        except (NotFastError, pa.ArrowException, UnicodeDecodeError):
            pass  # pandas reads it (or reports why it cannot), as below
    return _scan_chunks(iter_audit(data, table=table, sql=sql, chunksize=chunksize),
                        single_chunk(data, chunksize), model, mp, name, holdout, seed, progress)


def _scan_chunks(chunks, single, model, mp, name, holdout, seed, progress) -> _Scan:
    from kneehip_bn.io.counts import counts_from_codes, model_name

    rng = np.random.default_rng(seed)
    enc = None
    parts, train_parts, test_parts = [], [], []
    offset = 0
    bar = _bar(progress, "reading audit", unit="rows")
    for chunk in chunks:
        if enc is None:
            enc = ChunkEncoder(chunk.columns, model, mp, source=name)
        codes, diag, _ = enc.encode(chunk, offset)
        enc.check_chunk(final=single)
        states = states_of(model, enc.columns)
        mname = model_name(model)
        parts.append(counts_from_codes(codes, enc.cards, enc.columns, states, None, len(chunk),
                                        [name], mname))
        if diag is not None and holdout > 0:
            is_test = rng.random(len(chunk)) < holdout
            train_parts.append(counts_from_codes(codes[~is_test], enc.cards, enc.columns, states,
                                                  None, int((~is_test).sum()), [name], mname))
            sel = is_test & (diag >= 0)
            both = np.concatenate([codes[sel], diag[sel, None]], axis=1)
            pats, cnt, _ = group_patterns(both, [*enc.cards, len(enc.diag_labels)])
            test_parts.append((pats[:, :-1], pats[:, -1], cnt))
        if len(parts) > 8:  # keep memory bounded: merge the per-chunk counts as we go
            parts = [merge_counts(parts, datasets=[name])]
            if train_parts:
                train_parts = [merge_counts(train_parts, datasets=[name])]
        offset += len(chunk)
        bar.update(len(chunk))
    bar.close()
    assert enc is not None
    report = enc.finish()
    report.raise_if_errors()
    counts = merge_counts(parts, datasets=[name]) if len(parts) > 1 else parts[0]
    counts.n_rows = offset
    train = test = None
    if train_parts and test_parts:
        train = merge_counts(train_parts, datasets=[name])
        tp = np.concatenate([t[0] for t in test_parts])
        td = np.concatenate([t[1] for t in test_parts])
        tc = np.concatenate([t[2] for t in test_parts])
        if tc.sum() >= 10 and train.n_rows > 0:
            test = (tp, td, tc)
        else:
            train = None
    return _Scan(counts, train, test, report, name, list(enc.diag_labels))


# ============================================================================ EM
@dataclass
class _FitResult:
    params: _Params
    history: Any
    counts: dict[str, np.ndarray]
    loglik: float
    loglik_expert: float
    converged: bool
    n_iter: int
    method: str
    complete: bool


def _check_possible(engine, counts: AuditCounts, what: str) -> None:
    res = engine.batch(counts.patterns, counts.columns, targets=[], on_impossible="nan")
    bad = np.flatnonzero(~np.isfinite(res.log_evidence))
    if bad.size:
        _impossible_error(counts, bad, what)


def _impossible_error(counts: AuditCounts, bad: np.ndarray, what: str) -> None:
    if bad.size:
        rows = int(counts.counts[bad].sum())
        shown = []
        for b in bad[:2]:
            obs = [f"{c}={counts.states[c][int(x)]}" for c, x in zip(counts.columns, counts.patterns[b])
                   if x >= 0]
            shown.append("{" + ", ".join(obs) + "}")
        raise DataError(
            f"{rows} audit row(s) in {bad.size} distinct pattern(s) are impossible under the "
            f"{what} (probability zero), e.g. {'; '.join(shown)}: expected findings the model "
            f"allows; check them, or {_IMPOSSIBLE_HINT}")


# ============================================================================ impossible rows
#: the Dirichlet pseudo-count a contradicted structural zero gets with ``on_impossible="relax"``
#: (half a row: the data, not this number, decide how far the entry moves off zero)
RELAX_PSEUDO_COUNT = 0.5
#: the probability a contradicted zero gets in ``batch_posteriors(on_impossible="relax")``
RELAX_PROBABILITY = 1e-4

_IMPOSSIBLE_HINT = ("rerun with --on-impossible drop (fit the other rows) or --on-impossible "
                    "relax (each contradicted zero gets a pseudo-count of "
                    f"{RELAX_PSEUDO_COUNT:g}); in Python on_impossible='drop' or 'relax'")
_ON_IMPOSSIBLE = ("error", "drop", "relax")


def _check_on_impossible(mode: Any, where: str, allowed: Sequence[str] = _ON_IMPOSSIBLE) -> str:
    if mode not in allowed:
        raise KneeHipError(f"{where}: expected one of {', '.join(map(repr, allowed))}, found "
                           f"{mode!r}")
    return str(mode)


@dataclass
class ZeroEntry:
    """A structural zero of a table: ``P(node = state | given) = 0`` in the expert model."""

    node: str
    given: dict[str, str]
    state: str
    index: tuple[int, ...]  # (state, *parent states) into the (card, *pcards) table
    rows: float = 0.0       # audit rows it contradicts (that become possible without it)

    def __str__(self) -> str:
        given = ", ".join(f"{k}={v}" for k, v in self.given.items())
        return f"P({self.node}={self.state}" + (f" | {given}" if given else "") + ") = 0"

    def to_dict(self) -> dict[str, Any]:
        return {"node": self.node, "given": dict(self.given), "state": self.state,
                "rows": float(self.rows)}


@dataclass
class ImpossibleRows:
    """Patterns of an audit the expert model gives probability zero, and why.

    Attributes
    ----------
    patterns : ndarray of int
        Indices of the impossible patterns in the counts.
    rows : float
        Audit rows in them.
    entries : list of ZeroEntry
        The structural zeros they contradict (each one such that giving it a positive
        probability alone makes some of these patterns possible; when no single zero
        does, every zero of the tables that do).
    first_rows : list of int or None
        The first (0-based) audit row numbers, when the rows are at hand.
    """

    patterns: np.ndarray
    rows: float
    entries: list[ZeroEntry]
    first_rows: list[int] | None = None

    def message(self, what: str = "audit") -> str:
        ent = "; ".join(f"{e} ({_num(e.rows)} row{'' if e.rows == 1 else 's'})"
                        for e in self.entries[:4])
        if len(self.entries) > 4:
            ent += f"; and {len(self.entries) - 4} more"
        where = ""
        if self.first_rows:
            where = f"; first rows {', '.join(map(str, self.first_rows))} (0-based)"
        return (f"{_num(self.rows)} {what} row(s) in {self.patterns.size} distinct pattern(s) "
                f"are impossible under the model (probability zero): they contradict "
                f"{'a structural zero' if len(self.entries) == 1 else 'structural zeros'} "
                f"{ent}{where}: expected rows the model allows; check those rows, or "
                f"{_IMPOSSIBLE_HINT}")


def _zero_entries(engine) -> list[ZeroEntry]:
    out = []
    for name in engine.variables:
        fam, arr = engine.factors[engine.index[name]]
        order = [engine.index[name]] + [engine.index[p] for p in engine.parents[name]]
        table = arr.transpose([fam.index(x) for x in order])
        for idx in map(tuple, np.argwhere(table == 0)):
            given = {p: engine.states[p][int(i)] for p, i in zip(engine.parents[name], idx[1:])}
            out.append(ZeroEntry(name, given, engine.states[name][int(idx[0])],
                                 tuple(int(i) for i in idx)))
    return out


def _table_of(engine, name: str) -> np.ndarray:
    fam, arr = engine.factors[engine.index[name]]
    order = [engine.index[name]] + [engine.index[p] for p in engine.parents[name]]
    return arr.transpose([fam.index(x) for x in order])


def _relaxed_tables(engine, entries: Sequence[ZeroEntry], p: float) -> dict[str, np.ndarray]:
    """Tables with each entry given probability ``p`` (its column renormalised)."""
    tables: dict[str, np.ndarray] = {}
    for e in entries:
        t = tables.get(e.node)
        if t is None:
            t = tables[e.node] = _table_of(engine, e.node).copy()
        col = (slice(None), *e.index[1:])
        t[e.index] = p
        t[col] = t[col] / t[col].sum()
    return tables


def find_impossible(counts: AuditCounts, model: Any = None) -> ImpossibleRows | None:
    """The patterns of ``counts`` the model gives probability zero, and the structural zeros
    they contradict (``None`` when every pattern is possible).

    Each zero of every table is given a small probability in turn (on the compiled
    engine, nothing recompiled) and the impossible patterns re-checked; a pattern that no
    single zero explains is charged to every zero of the tables that together do.

    Examples
    --------
    >>> import pandas as pd
    >>> from kneehip_bn import load_spec
    >>> from kneehip_bn.io.counting import audit_counts
    >>> spec = load_spec("knee_hip_basic")
    >>> c = audit_counts(pd.DataFrame({"knee_pain": ["present"]}), spec)
    >>> find_impossible(c, spec) is None
    True
    """
    from kneehip_bn.inference.engine import get_engine
    from kneehip_bn.inference.queries import as_model

    eng = get_engine(as_model(model)) if not hasattr(model, "expected_counts") else model
    if counts.patterns.shape[0] == 0:
        return None
    res = eng.batch(counts.patterns, counts.columns, targets=[], on_impossible="nan")
    bad = np.flatnonzero(~np.isfinite(res.log_evidence))
    if bad.size == 0:
        return None
    return _diagnose(eng, counts.patterns, counts.columns, counts.counts, bad)


def _diagnose(eng, patterns, columns, weights, bad) -> ImpossibleRows:
    """Which structural zeros the impossible patterns ``bad`` contradict."""
    sub = patterns[bad]
    w = np.asarray(weights, dtype=float)[bad]
    counts = _ColumnsOnly(list(columns))
    zeros = _zero_entries(eng)
    why: list[list[int]] = [[] for _ in range(bad.size)]

    def fixed_by(entries) -> np.ndarray:
        e2 = eng.with_tables(_relaxed_tables(eng, entries, RELAX_PROBABILITY))
        r = e2.batch(sub, counts.columns, targets=[], on_impossible="nan")
        return np.isfinite(r.log_evidence)

    for k, z in enumerate(zeros):
        for i in np.flatnonzero(fixed_by([z])):
            why[i].append(k)
    left = [i for i, x in enumerate(why) if not x]
    if left:  # no single zero explains these: the zeros of whole tables, then of all
        by_node: dict[str, list[int]] = {}
        for k, z in enumerate(zeros):
            by_node.setdefault(z.node, []).append(k)
        groups = [*by_node.values(), list(range(len(zeros)))]
        for i in left:
            for g in groups:
                if fixed_by([zeros[k] for k in g])[i]:
                    why[i].extend(g)
                    break
    used = sorted({k for x in why for k in x})
    entries = []
    for k in used:
        z = zeros[k]
        z.rows = float(sum(w[i] for i, x in enumerate(why) if k in x))
        entries.append(z)
    entries.sort(key=lambda z: -z.rows)
    return ImpossibleRows(bad, float(w.sum()), entries)


@dataclass
class _ColumnsOnly:
    columns: list[str]


def _first_rows(data, spec, mapping, table, sql, chunksize, counts: AuditCounts,
                bad: np.ndarray, limit: int = 5) -> list[int] | None:
    """The first audit row numbers (0-based) whose pattern is one of ``bad`` (a second
    pass over the data, only to name them in an error)."""
    from kneehip_bn.io.patterns import pattern_keys

    if isinstance(data, AuditCounts) or (isinstance(data, (list, tuple)) and data and all(
            isinstance(d, (AuditCounts, str, os.PathLike)) for d in data)):
        return None
    cards = counts.cards
    want = np.sort(pattern_keys(counts.patterns[bad], cards))
    if isinstance(data, EncodedAudit):
        keys = pattern_keys(data.codes, cards)
        return np.flatnonzero(np.isin(keys, want))[:limit].tolist()
    mp = load_mapping(mapping)
    enc = None
    out: list[int] = []
    offset = 0
    for chunk in iter_audit(data, table=table, sql=sql, chunksize=chunksize):
        if enc is None:
            enc = ChunkEncoder(chunk.columns, spec, mp, source="audit")
        codes, _, _ = enc.encode(chunk, offset)
        hit = np.flatnonzero(np.isin(pattern_keys(codes, cards), want))
        out.extend((hit[: limit - len(out)] + offset).tolist())
        offset += len(chunk)
        if len(out) >= limit:
            break
    return out


def _drop_patterns(counts: AuditCounts, bad: np.ndarray) -> AuditCounts:
    keep = np.ones(counts.patterns.shape[0], dtype=bool)
    keep[bad] = False
    dropped = float(counts.counts[bad].sum())
    return AuditCounts(columns=list(counts.columns), states=dict(counts.states),
                       patterns=counts.patterns[keep], counts=counts.counts[keep],
                       n_rows=round(counts.n_rows - dropped), datasets=list(counts.datasets),
                       model=counts.model)


def screen_counts(counts: AuditCounts, model: Any = None, on_impossible: str = "error"
                  ) -> tuple[AuditCounts, ImpossibleRows | None]:
    """Check counts for patterns the model rules out (for ``kneehip counts``).

    ``"error"`` raises :class:`~kneehip_bn.DataError` naming the contradicted zeros;
    ``"drop"`` returns the counts without them; ``"relax"`` keeps them (a fit with
    ``on_impossible="relax"`` relaxes the zeros). The second value says what was found.

    Examples
    --------
    >>> import pandas as pd
    >>> from kneehip_bn import load_spec
    >>> from kneehip_bn.io.counting import audit_counts
    >>> spec = load_spec("knee_hip_basic")
    >>> c, bad = screen_counts(audit_counts(pd.DataFrame({"knee_pain": ["absent"]}), spec), spec)
    >>> c.n_rows, bad is None
    (1, True)
    """
    mode = _check_on_impossible(on_impossible, "on_impossible")
    bad = find_impossible(counts, model)
    if bad is None:
        return counts, None
    if mode == "error":
        raise DataError(bad.message("counted"))
    if mode == "drop":
        return _drop_patterns(counts, bad.patterns), bad
    return counts, bad


def _relax_families(fams: list[_Family], entries: Sequence[ZeroEntry]) -> None:
    """Give each contradicted zero the pseudo-count ``RELAX_PSEUDO_COUNT`` and a starting
    value off zero."""
    by = {f.name: f for f in fams}
    for e in entries:
        f = by[e.node]
        if f.extra is None:
            f.extra = np.zeros_like(f.expert)
            f.start = f.expert.copy()
        f.extra[e.index] += RELAX_PSEUDO_COUNT
        f.relaxed.append(e)
        eps = RELAX_PSEUDO_COUNT / (max(f.strength, 1.0) + RELAX_PSEUDO_COUNT)
        col = (slice(None), *e.index[1:])
        t = f.start
        t[e.index] = eps
        t[col] = t[col] / t[col].sum()
        if f.kind == "noisy_or":
            if f.w_start is None:
                f.w_start = f.w_expert.copy()
            cfg = np.ravel_multi_index(e.index[1:], f.pcards) if f.pcards else 0
            active = np.flatnonzero(f.design[cfg] > 0)
            if e.index[0] == f.on_idx:  # P(on | u) = 0: every active w is 0
                f.w_start[0] = max(f.w_start[0], -math.log1p(-eps))
            else:  # P(off | u) = 0: an active link is certain
                for j in active:
                    if f.w_start[j] >= _W_MAX:
                        f.w_start[j] = -math.log(eps)
            f.start = f.table_from_w(f.w_start)


def _check_possible_complete(counts: AuditCounts, fams: list[_Family]) -> None:
    """Complete rows are impossible exactly when some family lands on a zero of its table."""
    col = {c: j for j, c in enumerate(counts.columns)}
    bad = np.zeros(counts.patterns.shape[0], dtype=bool)
    for f in fams:
        idx = tuple(counts.patterns[:, col[x]].astype(np.intp) for x in [f.name, *f.parents])
        bad |= (f.expert if f.start is None else f.start)[idx] == 0
    if bad.any():
        _impossible_error(counts, np.flatnonzero(bad), "expert model")


def _family_counts_complete(counts: AuditCounts, fams: list[_Family]) -> dict[str, np.ndarray]:
    """Exact family counts when every node is observed in every row (weighted bincount)."""
    col = {c: j for j, c in enumerate(counts.columns)}
    out = {}
    for f in fams:
        fam = [f.name, *f.parents]
        cards = [len(f.states), *f.pcards]
        key = np.zeros(counts.patterns.shape[0], dtype=np.int64)
        for x, k in zip(fam, cards):
            key = key * k + counts.patterns[:, col[x]].astype(np.int64)
        flat = np.bincount(key, weights=counts.counts, minlength=int(np.prod(cards)))
        out[f.name] = flat.reshape(cards)
    return out


def _run_em(spec, fams, counts: AuditCounts, **kw: Any) -> _FitResult:
    """EM (SQUAREM-accelerated unless ``accelerate=False``) on pattern counts."""
    with _blas_single():
        return _run_em_inner(spec, fams, counts, **kw)


def _run_em_inner(spec, fams, counts: AuditCounts, *, max_iter, tol, progress, desc="fitting (EM)",
                  accelerate=True, estep="auto") -> _FitResult:
    import pandas as pd

    from kneehip_bn.inference.engine import Engine

    base = Engine(spec)
    params = _Params(fams)
    for c in counts.columns:
        if list(base.states[c]) != list(counts.states[c]):
            raise DataError(f"counts column {c}: states {counts.states[c]} differ from the model's "
                            f"{base.states[c]}: expected counts made with this model")
    complete = set(counts.columns) == set(base.variables) and bool(
        counts.patterns.shape[0] == 0 or (counts.patterns >= 0).all())
    if complete:
        _check_possible_complete(counts, fams)
    rows: list[dict[str, float]] = []
    has_nor = any(f.kind == "noisy_or" and not f.frozen for f in fams)
    if complete:
        t0 = time.perf_counter()
        N = _family_counts_complete(counts, fams)
        ll0 = _complete_loglik(N, params)
        rows.append(_hist(0, ll0, params.log_prior(), None, 0.0))
        t1 = time.perf_counter()
        params.m_step(N)
        rows[-1]["mstep_seconds"] = time.perf_counter() - t1
        ll = _complete_loglik(N, params)
        lp = ll + params.log_prior()
        rows.append(_hist(1, ll, params.log_prior(), _rel(lp, rows[-1]["log_posterior"]),
                          time.perf_counter() - t0))
        method = "bayes-dirichlet" + ("+noisy-or" if has_nor else "")
        return _FitResult(params, pd.DataFrame(rows), N, ll, ll0, True, 1, method, True)
    pats, w = counts.patterns, counts.counts
    relaxed = any(f.start is not None for f in fams)

    def e_step(it: int, strict: bool):
        """Expected counts, log-likelihood and log-posterior at the current parameters."""
        t0 = time.perf_counter()
        eng = base.with_tables(params.table) if it or relaxed else base
        try:
            N, ll, _ = eng.expected_counts(pats, counts.columns, weights=w, method=estep,
                                           on_impossible="raise" if strict else "nan")
        except ImpossibleEvidenceError as exc:
            if it == 0:  # rows the expert model rules out: name them
                _check_possible(base, counts, "expert model")
            # later EM iterations cannot create new zeros where data exist (M-step)
            raise DataError(f"EM iteration {it}: {exc}") from None  # pragma: no cover
        return N, ll, ll + params.log_prior(), time.perf_counter() - t0

    bar = _bar(progress, desc, max_iter, "it")
    n_e = 0  # E-steps done (the iteration budget)

    def record(N, ll, lp, prev_lp, secs, step):
        rel = None if prev_lp is None else _rel(lp, prev_lp)
        rows.append(_hist(len(rows), ll, lp - ll, rel, secs) | {"step": step})
        bar.update(1)
        if hasattr(bar, "set_postfix"):  # shown at once: an iteration is slower than a redraw
            bar.set_postfix({"log_posterior": f"{lp:.8g}",
                             "change": "-" if rel is None else f"{rel:.2e}"})
        return rel

    def m_step(N):
        t1 = time.perf_counter()
        params.m_step(N)
        rows[-1]["mstep_seconds"] = time.perf_counter() - t1

    N, ll, lp, secs = e_step(0, True)
    n_e += 1
    ll0 = ll
    record(N, ll, lp, None, secs, "start")

    def em_step(N, lp):
        """One plain EM step (M-step, E-step, recorded): the new N, ll, lp and whether
        the relative change is below ``tol``."""
        nonlocal n_e
        m_step(N)
        N, ll, lp_new, secs = e_step(n_e, True)
        n_e += 1
        return N, ll, lp_new, abs(record(N, ll, lp_new, lp, secs, "em")) < tol

    converged = False
    step_max = 1.0  # SQUAREM's step-length bound (Varadhan & Roland 2008: starts at 1,
    try:             # x4 each time a step reaches it, /4 after a rejected step)
        while n_e <= max_iter:
            x0 = _snapshot(params)
            N, ll, lp, converged = em_step(N, lp)
            if converged:
                break
            if not accelerate or n_e > max_iter:
                continue
            x1 = _snapshot(params)
            N, ll, lp, converged = em_step(N, lp)
            if converged:
                break
            lp2 = lp
            if n_e > max_iter:
                continue
            x2 = _snapshot(params)
            raw_alpha = _squarem_alpha(x0, x1, x2)
            alpha = min(max(raw_alpha, 1.0), step_max)
            if alpha <= 1.0:  # the extrapolation is the second EM step itself
                if raw_alpha >= step_max:
                    step_max *= 4.0
                continue
            _extrapolate(params, x0, x1, x2, alpha)
            Nx, llx, lpx, secs = e_step(n_e, False)
            n_e += 1
            if np.isfinite(lpx) and lpx >= lp2:
                N, ll, lp = Nx, llx, lpx
                record(N, ll, lp, lp2, secs, "squarem")
                if alpha >= step_max:
                    step_max *= 4.0
            else:  # the log-posterior would decrease: back to the plain EM step
                _restore(params, x2)
                step_max = max(1.0, step_max / 4.0)
    finally:
        bar.close()
    method = "em-dirichlet" + ("+noisy-or" if has_nor else "") + ("+squarem" if accelerate else "")
    return _FitResult(params, pd.DataFrame(rows), N, float(ll), float(ll0), converged,
                      len(rows) - 1, method, False)


def _snapshot(params: _Params) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    return ({k: v.copy() for k, v in params.table.items()},
            {k: v.copy() for k, v in params.w.items()})


def _restore(params: _Params, x) -> None:
    params.table = {k: v.copy() for k, v in x[0].items()}
    params.w = {k: v.copy() for k, v in x[1].items()}


def _free_tables(params: _Params, x0, x1, x2):
    """(family, mask of the entries positive in all three) of each fitted full table."""
    for f in params.fams:
        if f.frozen or f.kind != "table":
            continue
        yield f, (x0[0][f.name] > 0) & (x1[0][f.name] > 0) & (x2[0][f.name] > 0)


def _squarem_alpha(x0, x1, x2) -> float:
    """SQUAREM's step length ``|r| / |v|`` (scheme S3), ``r = x1 - x0``,
    ``v = x2 - 2 x1 + x0``, in log probabilities (full tables) and ``w`` (noisy-OR)."""
    rr = vv = 0.0
    for name in x0[1]:
        r = x1[1][name] - x0[1][name]
        v = x2[1][name] - 2 * x1[1][name] + x0[1][name]
        rr += float(r @ r)
        vv += float(v @ v)
    for name in x0[0]:
        if name in x0[1]:
            continue
        a, b, c = x0[0][name], x1[0][name], x2[0][name]
        mask = (a > 0) & (b > 0) & (c > 0)
        la, lb, lc = np.log(a[mask]), np.log(b[mask]), np.log(c[mask])
        r, v = lb - la, lc - 2 * lb + la
        rr += float(r @ r)
        vv += float(v @ v)
    if vv <= 0 or not np.isfinite(vv):
        return 1.0
    return math.sqrt(rr / vv)


def _extrapolate(params: _Params, x0, x1, x2, alpha: float) -> None:
    """Set ``params`` to ``x0 + 2 alpha r + alpha^2 v`` (log probabilities of full tables,
    renormalised per parent configuration; noisy-OR ``w`` clipped to its domain)."""
    _restore(params, x2)
    for f in params.fams:
        if f.frozen:
            continue
        if f.kind == "noisy_or":
            a, b, c = x0[1][f.name], x1[1][f.name], x2[1][f.name]
            wn = np.clip(a + 2 * alpha * (b - a) + alpha**2 * (c - 2 * b + a), 0.0, _W_MAX)
            params.w[f.name] = wn
            params.table[f.name] = f.table_from_w(wn)
            continue
        a, b, c = x0[0][f.name], x1[0][f.name], x2[0][f.name]
        mask = (a > 0) & (b > 0) & (c > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            la, lb, lc = np.log(a), np.log(b), np.log(c)
            x = np.where(mask, la + 2 * alpha * (lb - la) + alpha**2 * (lc - 2 * lb + la),
                         -np.inf)
        top = np.max(x, axis=0, keepdims=True)
        e = np.where(mask, np.exp(x - np.where(np.isfinite(top), top, 0.0)), 0.0)
        rest = np.where(mask, 0.0, c)  # entries not positive throughout keep x2's value
        room = 1.0 - rest.sum(axis=0, keepdims=True)
        tot = e.sum(axis=0, keepdims=True)
        new = np.where(mask, e * room / np.where(tot > 0, tot, 1.0), rest)
        params.table[f.name] = np.where(tot > 0, new, c)


def _complete_loglik(N, params: _Params) -> float:
    return sum(_xlogy(N[f.name], params.table[f.name]) for f in params.fams)


def _rel(new: float, old: float) -> float:
    return (new - old) / max(abs(old), 1.0)


def _hist(it, ll, lprior, rel, secs) -> dict[str, Any]:
    return {"iteration": it, "loglik": float(ll), "log_prior": float(lprior),
            "log_posterior": float(ll + lprior),
            "rel_change": float("nan") if rel is None else float(rel), "seconds": float(secs),
            "mstep_seconds": float("nan"), "step": "em"}


# ============================================================================ output spec
def _fitted_spec(spec, fams, params: _Params, meta: dict[str, Any]):
    from kneehip_bn.model.spec import Leak, TableRow, validate_spec

    new = copy.deepcopy(spec)
    for f in fams:
        if f.frozen:
            continue
        node = new.nodes[f.name]
        info = dict(meta, strength=_num(f.strength))
        relaxed = [{"given": dict(e.given), "state": e.state, "pseudo_count": RELAX_PSEUDO_COUNT,
                    "rows": _num(e.rows)} for e in f.relaxed]
        if relaxed and (f.kind == "noisy_or" or node.table is None):
            info["relaxed"] = relaxed  # structural zeros given a pseudo-count by the fit
        if f.kind == "noisy_or":
            nor = node.noisy_or
            p = -np.expm1(-params.w[f.name])
            _mark_fitted(nor.leak, float(nor.leak.p), info)
            nor.leak.p = float(p[0])
            for ln, pj in zip(nor.links, p[1:]):
                _mark_fitted(ln, float(ln.p), info)
                ln.p = float(pj)
            continue
        theta = params.table[f.name]
        if node.table is not None:
            for row in node.table:
                idx = tuple(new.nodes[q].states.index(row.given[q]) for q in node.parents)
                old = dict(row.probabilities)
                mine = [r for r in relaxed if r["given"] == dict(row.given)]
                _mark_fitted(row, old, dict(info, relaxed=mine) if mine else info)
                row.probabilities = _exact_row(node.states, theta[(slice(None), *idx)])
        else:  # noisy-OR turned into a full table
            nor = node.noisy_or
            srcs = sorted({nor.leak.source, *(ln.source for ln in nor.links)})
            expert_source = "noisy-OR (" + ", ".join(srcs) + ")"
            rows = []
            for idx in np.ndindex(*f.pcards) if f.pcards else [()]:
                given = {q: new.nodes[q].states[i] for q, i in zip(node.parents, idx)}
                expert = {s: float(f.expert[(k, *idx)]) for k, s in enumerate(node.states)}
                r = TableRow(source="fitted", given=given,
                             probabilities=_exact_row(node.states, theta[(slice(None), *idx)]))
                r.fitted = dict(info, expert=expert, expert_source=expert_source)
                rows.append(r)
            node.table = rows
            node.noisy_or = None
            _ = Leak  # (noisy-OR entries are replaced by the table rows)
    return validate_spec(new)


def _num(x: float) -> float | int:
    return int(x) if float(x).is_integer() else float(x)


def _mark_fitted(entry, expert, info) -> None:
    entry.fitted = dict(info, expert=expert, expert_source=entry.source)
    entry.source = "fitted"


def _exact_row(states, probs) -> dict[str, float]:
    vals = [float(x) for x in probs]
    big = int(np.argmax(vals))
    vals[big] = 1.0 - math.fsum(v for i, v in enumerate(vals) if i != big)
    return dict(zip(states, vals))


# ============================================================================ estimator
class PriorFitter:
    """Update the expert priors of a model with clinical audit data (scikit-learn style).

    Parameters
    ----------
    model : ModelSpec, path, pgmpy network built by kneehip_bn, or None
        The expert model (default: the shipped model).
    strength : float, optional
        Equivalent sample size for every table (overrides the model file's strengths).
        ``0`` means no prior (maximum likelihood where data exist).
    strengths : dict, optional
        ``{node: equivalent sample size}`` per table (wins over ``strength``).
    freeze : sequence of str
        Tables kept at their expert values.
    noisy_or : {"keep", "tabular"}
        Keep noisy-OR tables noisy-OR (fit leak and links) or turn them into full tables.
    max_iter : int, default 200
        EM iterations at most.
    tol : float, default 1e-6
        Stop when the relative change of the penalised log-likelihood (log-posterior) is
        below this.
    progress : bool, default True
        tqdm progress bars.
    holdout : float, default 0.25
        When the audit records a working diagnosis, this fraction of rows (chosen with
        ``seed``) is held out and the expert model and a model fitted on the other rows are
        compared on it (:attr:`report_`). ``0`` switches this off.
    seed : int, default 0
        Seed of the train/test split.
    chunksize : int, default 500000
        Rows read at a time (files are streamed; memory does not grow with rows).
    accelerate : bool, default True
        SQUAREM (Varadhan & Roland 2008, scheme S3): after two EM steps the parameters
        (log probabilities of full tables, noisy-OR ``w``) are extrapolated by the squared
        step length ``alpha = |r| / |v|``, bounded by a step limit that starts at 1, grows
        x4 whenever a step reaches it and shrinks /4 after a rejected step; the
        extrapolated point is kept only if its log-posterior is at least that of the
        second EM step, else the plain EM step is kept. The recorded log-posterior never
        decreases. ``False``: plain EM.
    estep : {"auto", "shared", "rows"}
        How the E-step's expected counts are computed (:meth:`Engine.expected_counts`):
        ``"shared"`` through the shared-message pass (every clique's work once per
        distinct sub-pattern of the audit), ``"rows"`` through the row-by-row junction
        tree, ``"auto"`` shared for 4096 patterns or more. ``accelerate=False,
        estep="rows"`` is the fitting path before version 0.4 (kept to check the new one).
    on_impossible : {"error", "drop", "relax"}
        Rows the expert model gives probability zero (they contradict a structural zero):
        ``"error"`` stops with how many rows contradict which table entry, the first row
        numbers and the two other options; ``"drop"`` fits the other rows and records the
        number dropped (:attr:`report_`, the fitted file's ``fitted.dropped_rows``);
        ``"relax"`` gives each contradicted zero the pseudo-count
        :data:`RELAX_PSEUDO_COUNT` (so the data can move it off zero) and records it in the
        fitted file (``fitted.relaxed``).

    Attributes
    ----------
    spec_ : ModelSpec
        The fitted model specification (fitted numbers have source ``fitted`` and a
        ``fitted`` record of the expert value).
    model_ : pgmpy.models.DiscreteBayesianNetwork
        The fitted network.
    history_ : pandas.DataFrame
        Per iteration: ``loglik``, ``log_prior``, ``log_posterior`` (of the parameters at
        the start of the iteration), ``rel_change``, ``seconds`` (E-step) and
        ``mstep_seconds`` (the M-step that follows).
    report_ : FitReport
        Expert vs fitted tables with credible intervals, surprise, held-out accuracy.
    counts_ : AuditCounts
        The sufficient statistics the fit used.
    n_iter_, converged_ : int, bool

    Examples
    --------
    >>> from kneehip_bn.learning.simulate import simulate_audit
    >>> audit = simulate_audit(500, seed=2, missing=0.1, model="knee_hip_basic")
    >>> f = PriorFitter(strength=50, progress=False, max_iter=3, model="knee_hip_basic").fit(audit)
    >>> sorted(f.spec_.nodes["age_group"].table[0].fitted)[:3]
    ['dataset', 'date', 'expert']
    """

    def __init__(
        self,
        model: Any = None,
        strength: float | None = None,
        strengths: Mapping[str, float] | None = None,
        freeze: Sequence[str] = (),
        noisy_or: str = "keep",
        max_iter: int = 200,
        tol: float = 1e-6,
        progress: bool = True,
        holdout: float = 0.25,
        seed: int | None = 0,
        chunksize: int = 500_000,
        accelerate: bool = True,
        estep: str = "auto",
        on_impossible: str = "error",
    ) -> None:
        self.model = model
        self.strength = strength
        self.strengths = strengths
        self.freeze = freeze
        self.noisy_or = noisy_or
        self.max_iter = max_iter
        self.tol = tol
        self.progress = progress
        self.holdout = holdout
        self.seed = seed
        self.chunksize = chunksize
        self.accelerate = accelerate
        self.estep = estep
        self.on_impossible = on_impossible

    # -------------------------------------------------------------- parameter checks
    def _check_params(self, spec) -> tuple[dict[str, float], set[str]]:
        def number(name, v, lo, hi=math.inf, lo_open=False):
            ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and (
                v > lo if lo_open else v >= lo) and v <= hi
            if not ok:
                rng = f"{'>' if lo_open else '>='} {lo}" + (f" and <= {hi}" if hi < math.inf else "")
                raise KneeHipError(f"PriorFitter {name}: expected a number {rng}, found {v!r}")

        if self.strength is not None:
            number("strength", self.strength, 0)
        strengths = dict(self.strengths or {})
        for k, v in strengths.items():
            if k not in spec.nodes:
                raise UnknownNameError.for_name("node", k, spec.nodes, where="PriorFitter strengths")
            number(f"strengths[{k!r}]", v, 0)
        freeze = [self.freeze] if isinstance(self.freeze, str) else list(self.freeze or ())
        for k in freeze:
            if k not in spec.nodes:
                raise UnknownNameError.for_name("node", k, spec.nodes, where="PriorFitter freeze")
        if self.noisy_or not in ("keep", "tabular"):
            raise KneeHipError(f"PriorFitter noisy_or: expected 'keep' or 'tabular', found "
                               f"{self.noisy_or!r}")
        if isinstance(self.max_iter, bool) or not isinstance(self.max_iter, int) or self.max_iter < 1:
            raise KneeHipError(f"PriorFitter max_iter: expected a positive integer, found "
                               f"{self.max_iter!r}")
        number("tol", self.tol, 0, lo_open=True)
        number("holdout", self.holdout, 0, 0.9)
        if self.estep not in ("auto", "shared", "rows"):
            raise KneeHipError(f"PriorFitter estep: expected 'auto', 'shared' or 'rows', found "
                               f"{self.estep!r}")
        if not isinstance(self.accelerate, bool):
            raise KneeHipError(f"PriorFitter accelerate: expected True or False, found "
                               f"{self.accelerate!r}")
        _check_on_impossible(self.on_impossible, "PriorFitter on_impossible")
        return strengths, set(freeze)

    # -------------------------------------------------------------- fit
    def fit(
        self,
        data: Any,
        mapping: Any = None,
        dataset_name: str | None = None,
        *,
        table: str | None = None,
        sql: str | None = None,
    ) -> PriorFitter:
        """Fit the priors to an audit.

        Parameters
        ----------
        data : DataFrame, path, SQLAlchemy URL, Spark DataFrame, AuditCounts or list of AuditCounts/paths
            The audit rows (validated and encoded; files are streamed; a Spark DataFrame is
            counted by ``groupBy`` on the cluster, see :mod:`kneehip_bn.io.spark`) or shared
            counts (several are merged; a counts path is read with :func:`read_counts`).
        mapping : path, dict or AuditMapping, optional
            Column/code translation (see :func:`kneehip_bn.io.mapping.load_mapping`).
        dataset_name : str, optional
            Recorded in the fitted model (default: the mapping's ``dataset`` or file name).
        table, sql : str, optional
            For an SQLAlchemy URL.

        Returns
        -------
        self
        """
        from kneehip_bn.learning.report import build_fit_report
        from kneehip_bn.learning.simulate import _spec_of
        from kneehip_bn.model.network import build_network

        spec = _spec_of(self.model)
        strengths, freeze = self._check_params(spec)
        fams = _families(spec, self.strength, strengths, freeze, self.noisy_or)
        t0 = time.perf_counter()
        scan = self._scan(data, spec, mapping, dataset_name, table, sql)
        bad = find_impossible(scan.counts, spec)
        self.impossible_ = bad
        notes = []
        if bad is not None:
            if self.on_impossible == "error":
                bad.first_rows = _first_rows(data, spec, mapping, table, sql,
                                             int(self.chunksize), scan.counts, bad.patterns)
                raise DataError(bad.message())
            if self.on_impossible == "drop":
                scan.counts = _drop_patterns(scan.counts, bad.patterns)
                if scan.train is not None:
                    tb = find_impossible(scan.train, spec)
                    if tb is not None:
                        scan.train = _drop_patterns(scan.train, tb.patterns)
                notes.append(f"on_impossible='drop': {_num(bad.rows)} row(s) in "
                             f"{bad.patterns.size} pattern(s) the expert model rules out were "
                             "left out of the fit (" + "; ".join(map(str, bad.entries[:4])) + ")")
            else:
                frozen = sorted({e.node for e in bad.entries} & freeze)
                if frozen:
                    raise KneeHipError(
                        f"on_impossible='relax': the contradicted zeros are in frozen tables "
                        f"{frozen}: expected unfrozen tables; remove them from freeze, or use "
                        "on_impossible='drop'")
                _relax_families(fams, bad.entries)
                notes.append(f"on_impossible='relax': {len(bad.entries)} structural zero(s) "
                             f"contradicted by {_num(bad.rows)} row(s) got a pseudo-count of "
                             f"{RELAX_PSEUDO_COUNT:g}: " + "; ".join(map(str, bad.entries[:4])))
        counts = scan.counts
        res = _run_em(spec, fams, counts, max_iter=self.max_iter, tol=self.tol,
                      progress=self.progress, accelerate=self.accelerate, estep=self.estep)
        meta = {"dataset": scan.dataset, "rows": int(counts.n_rows),
                "date": _dt.date.today().isoformat(), "method": res.method}
        if bad is not None and self.on_impossible == "drop":
            meta["dropped_rows"] = _num(bad.rows)
        self.spec_ = _fitted_spec(spec, fams, res.params, meta)
        self.model_ = build_network(self.spec_)
        self.history_ = res.history
        self.n_iter_ = res.n_iter
        self.converged_ = res.converged
        self.counts_ = counts
        self.loglik_ = res.loglik
        self.expert_spec_ = spec
        self._fams = fams
        self._result = res
        holdout = None
        if scan.train is not None and scan.test is not None:
            train_fit = _run_em(spec, fams, scan.train, max_iter=self.max_iter, tol=self.tol,
                                progress=False, accelerate=self.accelerate, estep=self.estep)
            holdout = (train_fit, scan.test, scan.diagnosis_labels)
        self.report_ = build_fit_report(self, scan, holdout, seconds=time.perf_counter() - t0)
        self.report_.notes.extend(notes)
        return self

    def _scan(self, data, spec, mapping, dataset_name, table, sql) -> _Scan:
        parts = _as_counts_list(data, spec)
        if parts is not None:
            if mapping is not None:
                raise DataError("mapping: counts files are already in model codes; expected no "
                                "mapping with counts")
            c = merge_counts(parts) if len(parts) > 1 else parts[0]
            name = dataset_name or " + ".join(c.datasets) or "counts"
            import pandas as pd

            from kneehip_bn.io.audit_report import PROBLEM_COLUMNS, AuditReport

            rep = AuditReport(pd.DataFrame(columns=PROBLEM_COLUMNS),
                              pd.DataFrame(columns=["column", "role", "node", "blank",
                                                    "blank_fraction"]), c.n_rows, name)
            return _Scan(c, None, None, rep, name, [])
        if isinstance(data, EncodedAudit):
            from kneehip_bn.io.counting import audit_counts

            c = audit_counts(data, spec)
            return _Scan(c, None, None, data.report, dataset_name or data.dataset, [])
        from kneehip_bn.io.spark import is_spark_dataframe

        if is_spark_dataframe(data):  # grouped on the cluster; no held-out split
            import pandas as pd

            from kneehip_bn.io.audit_report import PROBLEM_COLUMNS, AuditReport
            from kneehip_bn.io.spark import spark_counts

            c = spark_counts(data, spec, mapping, dataset=dataset_name)
            rep = AuditReport(pd.DataFrame(columns=PROBLEM_COLUMNS),
                              pd.DataFrame(columns=["column", "role", "node", "blank",
                                                    "blank_fraction"]), c.n_rows, c.datasets[0])
            return _Scan(c, None, None, rep, c.datasets[0], [])
        return _scan(data, spec, mapping, table=table, sql=sql, dataset=dataset_name,
                     holdout=float(self.holdout), seed=self.seed, chunksize=int(self.chunksize),
                     progress=bool(self.progress))

    # -------------------------------------------------------------- fitted API
    def __getattr__(self, name: str) -> Any:
        # only called for missing attributes: fitted ones (trailing "_") before fit()
        if name.endswith("_") and not name.startswith("__"):
            raise NotFittedError(f"this PriorFitter is not fitted yet ({name} is set by fit): "
                                 "call fit(data) first")
        raise AttributeError(f"'PriorFitter' object has no attribute '{name}'")

    def _check_fitted(self) -> None:
        if "spec_" not in self.__dict__:
            raise NotFittedError("this PriorFitter is not fitted yet: call fit(data) first")

    def save(self, path: str | os.PathLike[str], overwrite: bool = False) -> Path:
        """Write the fitted model file (atomically; refuses to overwrite unless asked)."""
        from kneehip_bn.model.spec import save_spec

        self._check_fitted()
        if self.expert_spec_.path and Path(path).resolve() == Path(self.expert_spec_.path).resolve() \
                and not overwrite:
            raise FileExistsError(f"{path} is the input model: expected a new file name; pass "
                                  "overwrite=True (CLI: --overwrite) to replace it")
        return save_spec(self.spec_, path, overwrite=overwrite)

    def score(self, data: Any, mapping: Any = None) -> float:
        """Mean log-likelihood per row of ``data`` under the fitted model."""
        self._check_fitted()
        from kneehip_bn.inference.engine import Engine

        c = _as_counts_list(data, self.spec_)
        counts = c[0] if c else _scan(data, self.spec_, mapping, table=None, sql=None,
                                      dataset=None, holdout=0.0, seed=0,
                                      chunksize=int(self.chunksize), progress=False).counts
        res = Engine(self.spec_).batch(counts.patterns, counts.columns, targets=[],
                                       on_impossible="nan")
        return float(np.dot(counts.counts, res.log_evidence) / counts.counts.sum())

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Constructor parameters (scikit-learn convention)."""
        return {k: getattr(self, k) for k in (
            "model", "strength", "strengths", "freeze", "noisy_or", "max_iter", "tol",
            "progress", "holdout", "seed", "chunksize", "accelerate", "estep", "on_impossible")}

    def __repr__(self) -> str:
        return f"PriorFitter(strength={self.strength!r}, noisy_or={self.noisy_or!r}, tol={self.tol!r})"


def _as_counts_list(data, spec) -> list[AuditCounts] | None:
    if isinstance(data, AuditCounts):
        return [data]
    if isinstance(data, (list, tuple)) and data and all(
            isinstance(d, (AuditCounts, str, os.PathLike)) for d in data):
        return [d if isinstance(d, AuditCounts) else read_counts(d, spec) for d in data]
    return None


def fit_priors(data: Any, model: Any = None, mapping: Any = None, **kwargs: Any) -> PriorFitter:
    """Shortcut: ``PriorFitter(model, **kwargs).fit(data, mapping)``.

    >>> from kneehip_bn.learning.simulate import simulate_audit
    >>> f = fit_priors(simulate_audit(200, seed=1), progress=False)
    >>> f.converged_
    True
    """
    dataset = kwargs.pop("dataset_name", None)
    table, sql = kwargs.pop("table", None), kwargs.pop("sql", None)
    return PriorFitter(model=model, **kwargs).fit(data, mapping, dataset, table=table, sql=sql)


# ============================================================================ batch
def _target_columns(engine, targets) -> list[tuple[str, str, int]]:
    """(output column, node, state index): P(on state) for two-state targets, else a
    column ``node=state`` per state."""
    from kneehip_bn.inference.queries import on_state

    out = []
    for t in targets:
        if t not in engine.index:
            raise UnknownNameError.for_name("node", t, engine.variables, where="targets")
        states = engine.states[t]
        if len(states) == 2:
            out.append((t, t, engine.state_index[t][on_state(states)]))
        else:
            out.extend((f"{t}={s}", t, i) for i, s in enumerate(states))
    return out


def _posterior_matrix(*args: Any, **kw: Any):
    with _blas_single():
        return _posterior_matrix_inner(*args, **kw)


def _posterior_matrix_inner(engine, enc_codes, columns, cards, targets, on_impossible, progress,
                            row_offset=0, expand=True):
    """Grouped posteriors: (n_rows, n_out) array, output column names; with
    ``expand=False`` the (n_patterns, n_out) array, names, and each row's pattern."""
    _check_on_impossible(on_impossible, "on_impossible", _BATCH_MODES)
    tcols = _target_columns(engine, targets)
    nodes = sorted({t[1] for t in tcols})
    n = enc_codes.shape[0]
    pats, _, inv = group_patterns(enc_codes, cards)
    m = pats.shape[0]
    bar = _bar(progress if progress is not None else m > 200_000, "posteriors", m, "rows")
    try:
        res = engine.batch(pats, columns, targets=nodes, on_impossible="nan",
                           progress=bar.update)
    finally:
        bar.close()
    out = np.empty((n if expand else m, len(tcols)), order="F")  # columns contiguous
    for j, (_, node, k) in enumerate(tcols):
        col = res.marginals[node][:, k]
        out[:, j] = col[inv] if expand else col
    logev = res.log_evidence
    bad = ~np.isfinite(logev)
    status = None
    if on_impossible in ("drop", "relax"):
        status = np.zeros(m, dtype=np.int8)
        status[bad] = 1
    if bad.any() and on_impossible in ("raise", "error"):
        bad_rows = np.flatnonzero(bad[inv])
        cnt = np.bincount(inv, minlength=m).astype(float)
        why = _diagnose(engine, pats, columns, cnt, np.flatnonzero(bad))
        why.first_rows = [int(r) + row_offset for r in bad_rows[:5]]
        raise ImpossibleEvidenceError(why.message().replace(
            "(fit the other rows)", "(blank posteriors and a status column)").replace(
            "(each contradicted zero gets a pseudo-count of "
            f"{RELAX_PSEUDO_COUNT:g})", f"(each contradicted zero gets probability "
            f"{RELAX_PROBABILITY:g}, status 'relaxed')"))
    if bad.any() and on_impossible == "relax":
        b = np.flatnonzero(bad)
        why = _diagnose(engine, pats, columns, np.ones(m), b)
        eng2 = engine.with_tables(_relaxed_tables(engine, why.entries, RELAX_PROBABILITY))
        r2 = eng2.batch(pats[b], columns, targets=nodes, on_impossible="nan")
        ok = np.isfinite(r2.log_evidence)
        status[b[ok]] = 2
        for j, (_, node, k) in enumerate(tcols):
            fill = r2.marginals[node][:, k]
            if expand:
                rows = np.flatnonzero(np.isin(inv, b))
                pos = np.searchsorted(b, inv[rows])
                out[rows, j] = fill[pos]
            else:
                out[b, j] = fill
    if expand and status is not None:
        status = status[inv]
    if not expand:
        return out, [t[0] for t in tcols], inv, status
    return out, [t[0] for t in tcols], status


#: values of the ``status`` column of batch posteriors (``on_impossible="drop"/"relax"``)
STATUS_LABELS = ("ok", "impossible", "relaxed")
_BATCH_MODES = ("raise", "error", "nan", "drop", "relax")


def batch_posteriors(
    data: Any,
    model: Any = None,
    mapping: Any = None,
    targets: Sequence[str] | None = None,
    *,
    on_impossible: str = "error",
    keep: Sequence[str] = (),
    table: str | None = None,
    sql: str | None = None,
    progress: bool | None = None,
) -> Any:
    """Each origin's posterior probability for every row of an audit.

    Identical finding patterns are grouped (one int64 key per row and ``np.unique``) and
    the compiled engine runs once per distinct pattern only.

    Parameters
    ----------
    data : DataFrame, path or URL
        The audit (validated as in :func:`~kneehip_bn.io.encode.encode_audit`).
    model, mapping : optional
        As in :class:`PriorFitter`.
    targets : list of str, optional
        Nodes to report (default: the origins). A two-state node gives one column,
        P(present/positive); a node with more states one column ``node=state`` per state.
    on_impossible : {"error", "drop", "relax", "nan"}
        Rows the model gives probability zero (they contradict a structural zero):
        ``"error"`` (default; ``"raise"`` is the same) raises
        :class:`~kneehip_bn.ImpossibleEvidenceError` naming how many rows contradict which
        table entry and their first row numbers; ``"drop"`` gives them NaN posteriors and a
        ``status`` column (``"ok"`` / ``"impossible"``); ``"relax"`` computes them with each
        contradicted zero given probability :data:`RELAX_PROBABILITY` (renormalised),
        status ``"relaxed"``; ``"nan"`` gives NaN without a status column.
    keep : list of str
        Input columns copied to the output first (e.g. a patient id).

    Returns
    -------
    pandas.DataFrame or pyspark.sql.DataFrame
        One row per input row, in input order (the input DataFrame's index), one column
        per target. For a Spark DataFrame, a Spark DataFrame (the ``keep`` columns and the
        targets, joined on the cluster; see :mod:`kneehip_bn.io.spark`).

    Examples
    --------
    >>> import pandas as pd
    >>> post = batch_posteriors(pd.DataFrame({"knee_effusion": ["present", "absent"]}), model="knee_hip_basic")
    >>> post.shape, bool(post.loc[0, "knee_pathology"] > post.loc[1, "knee_pathology"])
    ((2, 5), True)
    """
    import pandas as pd

    from kneehip_bn.inference.engine import get_engine
    from kneehip_bn.inference.queries import as_model, node_groups
    from kneehip_bn.io.spark import is_spark_dataframe

    m = as_model(model)
    if targets is None:
        groups = node_groups(m)
        targets = [n for n in groups if groups[n] == "origin"]
    if is_spark_dataframe(data):
        from kneehip_bn.io.spark import spark_join_posteriors

        def infer(enc: Any, codes: np.ndarray) -> tuple[np.ndarray, list[str], Any]:
            return _posterior_matrix(get_engine(m), codes, enc.columns, enc.cards,
                                     list(targets), on_impossible, False)

        return spark_join_posteriors(data, m, mapping, keep, infer, STATUS_LABELS)
    enc = encode_audit(data, m, mapping, table=table, sql=sql, keep=keep)
    eng = get_engine(m)
    mat, names, status = _posterior_matrix(eng, enc.codes, enc.columns, enc.cards,
                                           list(targets), on_impossible, progress)
    index = data.index if isinstance(data, pd.DataFrame) else pd.RangeIndex(enc.n_rows)
    out = pd.DataFrame(mat, columns=names, index=index)
    if status is not None:
        out["status"] = pd.Categorical.from_codes(status, categories=list(STATUS_LABELS))
    if enc.kept is not None:
        kept = enc.kept.set_axis(index)
        out = pd.concat([kept, out], axis=1)
    return out


def write_batch_posteriors(
    data: Any,
    output: str | os.PathLike[str],
    model: Any = None,
    mapping: Any = None,
    targets: Sequence[str] | None = None,
    *,
    on_impossible: str = "error",
    keep: Sequence[str] = (),
    table: str | None = None,
    sql: str | None = None,
    overwrite: bool = False,
    chunksize: int = 1_000_000,
    progress: bool | None = None,
    reader: str = "auto",
) -> tuple[Path, int]:
    """Stream an audit through :func:`batch_posteriors` into a CSV or Parquet file.

    The input is read ``chunksize`` rows at a time and each chunk's posteriors appended,
    so memory stays bounded; the file is written to a temporary name and renamed at the
    end (atomic; never over an existing file unless ``overwrite=True``).

    A CSV (or TSV) input is read by pyarrow's multithreaded reader with every column
    dictionary-encoded (:func:`~kneehip_bn.io.arrow_csv.iter_csv_coded`): encoding then costs a
    lookup per distinct value, not per cell. Files it would read differently from pandas
    (quoted line breaks, duplicate headers, other encodings) go through pandas instead,
    with the same validation either way (and the same error for a damaged row).
    ``reader="pandas"`` forces the pandas reader (``"auto"``: pyarrow when it can). A
    CSV output is formatted in two threads; every number is written exactly (shortest
    round-trip form).

    Returns
    -------
    (path, rows written)
    """
    from kneehip_bn.inference.engine import get_engine
    from kneehip_bn.inference.queries import as_model, node_groups

    if reader not in ("auto", "pandas"):
        raise DataError(f"reader: expected 'auto' or 'pandas', found {reader!r}")
    out = Path(output)
    check_new_output(out, overwrite)
    kind = "parquet" if out.name.lower().endswith((".parquet", ".pq")) else "csv"
    m = as_model(model)
    eng = get_engine(m)
    if targets is None:
        groups = node_groups(m)
        targets = [n for n in groups if groups[n] == "origin"]
    mp = load_mapping(mapping)
    name = source_name(None, mp, data, table, sql)
    out.parent.mkdir(parents=True, exist_ok=True)
    args = (out, overwrite, kind, m, eng, mp, name, list(targets), on_impossible, list(keep),
            progress)
    sep = _fast_csv_sep(data, table, sql) if reader == "auto" else None
    if sep is not None:
        import pyarrow as pa

        from kneehip_bn.io.arrow_csv import NotFastError, iter_csv_coded

        try:
            chunks = iter_csv_coded(data, chunksize=chunksize, text=keep, sep=sep)
            return _atomic_posteriors(chunks, False, *args)
        except (NotFastError, pa.ArrowException, UnicodeDecodeError):
            pass  # pandas reads it (or reports why it cannot), as below
    chunks = iter_audit(data, table=table, sql=sql, chunksize=chunksize)
    return _atomic_posteriors(chunks, single_chunk(data, chunksize), *args)


def _atomic_posteriors(chunks, single, out, overwrite, *rest) -> tuple[Path, int]:
    """:func:`_write_posteriors` into the one atomic writer's temporary file."""
    n = [0]

    def write(tmp: str) -> None:
        n[0] = _write_posteriors(chunks, single, Path(tmp), *rest)[1]

    atomic_write(out, write, overwrite=overwrite)
    return out, n[0]


def _fast_csv_sep(data: Any, table: Any, sql: Any) -> str | None:
    """The delimiter when ``data`` is a plain CSV/TSV file pyarrow can stream, else None."""
    if table is not None or sql is not None or not isinstance(data, (str, os.PathLike)):
        return None
    name = os.fspath(data)
    if "://" in name or not os.path.isfile(name):
        return None
    low = name.lower()
    if low.endswith((".csv", ".txt")):
        return ","
    return "\t" if low.endswith(".tsv") else None


def _write_posteriors(chunks, single, out, kind, m, eng, mp, name, targets, on_impossible,
                      keep, progress) -> tuple[Path, int]:
    """Encode each chunk, then compute and write it in parts of ``_PART_ROWS`` rows, the
    writing of one part (a background thread: pyarrow formats without the GIL) overlapping
    the computing of the next."""
    from concurrent.futures import ThreadPoolExecutor

    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    writer = None
    enc = None
    offset = 0
    pending = None
    bar = _bar(progress, "posteriors", unit="rows")
    pool = ThreadPoolExecutor(1)
    try:
        for chunk in chunks:
            if enc is None:
                enc = ChunkEncoder(chunk.columns, m, mp, keep=keep, source=name)
            codes, _, _ = enc.encode(chunk, offset)
            enc.check_chunk(final=single)
            n = len(chunk)
            if n == 0:
                continue
            kept = [chunk[k] if k in chunk else None for k in keep]
            for a, b in _parts(n):
                mat, names, inv, status = _posterior_matrix(
                    eng, codes[a:b], enc.columns, enc.cards, targets, on_impossible, False,
                    row_offset=offset + a, expand=False)
                if writer is None:
                    writer = _TableWriter(tmp, kind, keep, names, status is not None)
                if pending is not None:
                    pending.result()  # one part in flight: bounded memory, order kept
                part = [None if k is None else _rows(k, a, b) for k in kept]
                pending = pool.submit(writer.write, mat, part, inv, status)
                bar.update(b - a)
            offset += n
        if pending is not None:
            pending.result()
            pending = None
        assert enc is not None
        enc.raise_if_errors()
        if writer is not None:
            writer.close()
            writer = None
        os.replace(tmp, out)
    except BaseException:
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(BaseException):
                pending.result()
        if writer is not None:
            writer.close()
        if tmp.exists():
            tmp.unlink()
        raise
    finally:
        pool.shutdown(wait=True)
        bar.close()
    return out, offset


# rows per part of a chunk in write_batch_posteriors (compute of one overlaps writing another)
_PART_ROWS = 1 << 18


def _parts(n: int) -> list[tuple[int, int]]:
    """Row ranges of a chunk: a small first part (its computing overlaps nothing) and a
    small last one (its writing overlaps nothing), ``_PART_ROWS`` in between."""
    if n <= _PART_ROWS:
        return [(0, n)]
    edges = [0, _PART_ROWS // 4]
    while n - edges[-1] > _PART_ROWS + _PART_ROWS // 4:
        edges.append(edges[-1] + _PART_ROWS)
    if n - edges[-1] > _PART_ROWS // 4:
        edges.append(n - _PART_ROWS // 4)
    edges.append(n)
    return list(itertools.pairwise(edges))


def _rows(col: Any, a: int, b: int) -> Any:
    """Rows ``a:b`` of a kept column (pyarrow array, factorised text or pandas Series)."""
    if hasattr(col, "labels"):
        return type(col)(col.codes[a:b], col.labels)
    if hasattr(col, "iloc"):
        return col.iloc[a:b]
    return col.slice(a, b - a)


class _TableWriter:
    """Appends (kept columns, posterior matrix) chunks to a CSV or Parquet file.

    CSV text is formatted by pyarrow (shortest round-trip form of every float) in two
    threads, each on half of the rows, and written in order. (Formatting each distinct
    pattern once and copying its text to the rows that share it was measured slower:
    assembling a million lines costs more than formatting them.)
    """

    def __init__(self, path: Path, kind: str, keep: Sequence[str], names: Sequence[str],
                 status: bool = False):
        self.path, self.kind, self.keep, self.names = path, kind, list(keep), list(names)
        self.status = status
        self.writer: Any = None
        self.file: Any = None

    def _table(self, mat: np.ndarray, kept: Sequence[Any], inv: np.ndarray | None = None,
               status: np.ndarray | None = None) -> Any:
        import pyarrow as pa

        cols: dict[str, Any] = {}
        for k, col in zip(self.keep, kept):
            if col is None:
                continue
            if isinstance(col, (pa.Array, pa.ChunkedArray)):
                cols[k] = col
            else:  # a pandas column (or factorised text): as objects, as read
                if hasattr(col, "labels"):
                    col = np.asarray(col.labels, dtype=object)[col.codes]
                else:
                    col = col.astype(object).to_numpy()
                cols[k] = pa.array(col)
        for j, c in enumerate(self.names):  # from the buffer: pa.array() would import pandas
            col = np.ascontiguousarray(mat[:, j], dtype=np.float64)
            if inv is not None:
                col = col[inv]
            valid = None
            if self.status:  # impossible rows: blank (null), not NaN
                ok = ~np.isnan(col)
                if not ok.all():
                    valid = pa.py_buffer(np.packbits(ok, bitorder="little"))
            cols[c] = pa.Array.from_buffers(pa.float64(), col.shape[0],
                                            [valid, pa.py_buffer(col)])
        if self.status:
            st = status if inv is None or status is None else status[inv]
            cols["status"] = pa.array(list(STATUS_LABELS)).take(
                pa.array(np.zeros(mat.shape[0] if inv is None else inv.shape[0], np.int8)
                         if st is None else st.astype(np.int8)))
        return pa.table(cols)

    def write(self, mat: np.ndarray, kept: Sequence[Any], inv: np.ndarray | None = None,
              status: np.ndarray | None = None) -> None:
        """Append rows: ``mat`` (one row per output row, or per pattern with ``inv`` giving
        each output row's pattern); ``status`` per row of ``mat``."""

        tbl = self._table(mat, kept, inv, status)
        if self.kind == "parquet":
            import pyarrow.parquet as pq

            if self.writer is None:
                self.writer = pq.ParquetWriter(self.path, tbl.schema)
            self.writer.write_table(tbl)
            return
        self._header(tbl)
        self.file.write(self._format(tbl))

    def _style(self, tbl: Any) -> str:
        import pyarrow as pa

        # numbers and the status labels need no quotes; kept text columns might
        return "none" if all(pa.types.is_floating(t) or (self.status and c == "status")
                             for c, t in zip(tbl.schema.names, tbl.schema.types)) else "needed"

    def _header(self, tbl: Any) -> None:
        if self.file is None:
            self.file = open(self.path, "wb")
            names = tbl.schema.names
            if self.status and self._style(tbl) == "none" and not any(
                    ch in c for c in names for ch in ',"\r\n'):
                # pyarrow quotes a header with a text column even unquoted: write it plain
                self.file.write((",".join(names) + "\n").encode())
            else:
                self.file.write(_csv_bytes(tbl.slice(0, 0), self._style(tbl), header=True))

    def _format(self, tbl: Any) -> bytes:
        """CSV text of the rows (no header), in two threads for large tables."""
        style = self._style(tbl)
        n = tbl.num_rows
        if n < 50_000:
            return _csv_bytes(tbl, style)
        from concurrent.futures import ThreadPoolExecutor

        half = n // 2
        with ThreadPoolExecutor(2) as ex:  # pyarrow formats without holding the GIL
            parts = list(ex.map(
                lambda a: _csv_bytes(tbl.slice(a, half if a == 0 else n - half), style),
                (0, half)))
        return b"".join(parts)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        if self.file is not None:
            self.file.close()


def _csv_bytes(tbl: Any, style: str, header: bool = False) -> bytes:
    import io

    import pyarrow.csv as pacsv

    buf = io.BytesIO()
    pacsv.write_csv(tbl, buf, write_options=pacsv.WriteOptions(include_header=header,
                                                                quoting_style=style))
    return buf.getvalue()
