"""Audit rows the model rules out: finding them, naming the zeros they contradict, and
the three ways out (``on_impossible``).

A row is impossible when the model gives its findings probability zero: it lands on a
structural zero of some table. :func:`find_impossible` finds the impossible patterns of
counts and charges each to the zeros that explain it (each zero is given a small
probability in turn, on the compiled engine); :class:`ImpossibleRows` says it in one
message. ``on_impossible="error"`` stops with that message, ``"drop"`` leaves the rows
out (:func:`drop_patterns`), ``"relax"`` gives each contradicted zero the pseudo-count
:data:`RELAX_PSEUDO_COUNT` in a fit (:func:`relax_families`) or the probability
:data:`RELAX_PROBABILITY` in batch posteriors (:func:`relaxed_tables`).

Examples
--------
A row with the root L2-L4 involved but no radiculopathy contradicts a structural zero;
``"drop"`` counts without it:

>>> import pandas as pd
>>> from kneehip_bn.io.counting import audit_counts
>>> rows = pd.DataFrame({"lumbar_radiculopathy": ["absent"], "upper_lumbar_root": ["present"]})
>>> kept, bad = screen_counts(audit_counts(rows, "knee_hip_basic"), "knee_hip_basic", "drop")
>>> kept.n_rows, bad.rows
(0, 1.0)
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from kneehip_bn.errors import DataError, ParameterError
from kneehip_bn.inference.cache import get_engine
from kneehip_bn.inference.queries import as_model
from kneehip_bn.io.counts import AuditCounts
from kneehip_bn.io.encode import EncodedAudit, stream_encoded
from kneehip_bn.io.patterns import pattern_keys
from kneehip_bn.learning.noisy_or import W_MAX
from kneehip_bn.learning.params import Family, plain_number

__all__ = [
    "RELAX_PROBABILITY",
    "RELAX_PSEUDO_COUNT",
    "ImpossibleRows",
    "ZeroEntry",
    "find_impossible",
    "screen_counts",
]

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


def check_on_impossible(mode: Any, where: str, allowed: Sequence[str] = _ON_IMPOSSIBLE) -> str:
    """``mode`` when it is one of ``allowed``, else a ParameterError naming ``where``."""
    if mode not in allowed:
        raise ParameterError(f"{where}: expected one of {', '.join(map(repr, allowed))}, found "
                           f"{mode!r}")
    return str(mode)

def check_possible(engine, counts: AuditCounts, what: str = "audit") -> None:
    """A DataError naming the patterns of ``counts`` the engine gives probability zero, the
    structural zeros they contradict and the ways forward (:meth:`ImpossibleRows.message`)."""
    res = engine.batch(counts.patterns, counts.columns, targets=[], on_impossible="nan")
    bad = np.flatnonzero(~np.isfinite(res.log_evidence))
    if bad.size:
        why = diagnose_impossible(engine, counts.patterns, counts.columns, counts.counts, bad)
        raise DataError(why.message(what))


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

    def message(self, what: str = "audit", hint: str = _IMPOSSIBLE_HINT) -> str:
        """The one wording of impossible audit rows: how many, in how many patterns, which
        structural zeros they contradict, the first rows, and ``hint`` (the ways forward)."""
        ent = "; ".join(f"{e} ({plain_number(e.rows)} row{'' if e.rows == 1 else 's'})"
                        for e in self.entries[:4])
        if len(self.entries) > 4:
            ent += f"; and {len(self.entries) - 4} more"
        where = ""
        if self.first_rows:
            where = f"; first rows {', '.join(map(str, self.first_rows))} (0-based)"
        return (f"{plain_number(self.rows)} {what} row(s) in {self.patterns.size} distinct pattern(s) "
                f"are impossible under the model (probability zero): they contradict "
                f"{'a structural zero' if len(self.entries) == 1 else 'structural zeros'} "
                f"{ent}{where}: expected rows the model allows; check those rows, or "
                f"{hint}")


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


def relaxed_tables(engine, entries: Sequence[ZeroEntry], p: float) -> dict[str, np.ndarray]:
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
    >>> c = audit_counts(pd.DataFrame({"lumbar_radiculopathy": ["absent", "absent"],
    ...                                "upper_lumbar_root": ["present", "absent"]}), spec)
    >>> bad = find_impossible(c, spec)
    >>> bad.rows, [str(e) for e in bad.entries]
    (1.0, ['P(upper_lumbar_root=present | lumbar_radiculopathy=absent) = 0'])
    """
    eng = get_engine(as_model(model)) if not hasattr(model, "expected_counts") else model
    if counts.patterns.shape[0] == 0:
        return None
    res = eng.batch(counts.patterns, counts.columns, targets=[], on_impossible="nan")
    bad = np.flatnonzero(~np.isfinite(res.log_evidence))
    if bad.size == 0:
        return None
    return diagnose_impossible(eng, counts.patterns, counts.columns, counts.counts, bad)


def diagnose_impossible(eng, patterns, columns, weights, bad) -> ImpossibleRows:
    """Which structural zeros the impossible patterns ``bad`` contradict."""
    sub = patterns[bad]
    w = np.asarray(weights, dtype=float)[bad]
    counts = _ColumnsOnly(list(columns))
    zeros = _zero_entries(eng)
    why: list[list[int]] = [[] for _ in range(bad.size)]

    def fixed_by(entries) -> np.ndarray:
        e2 = eng.with_tables(relaxed_tables(eng, entries, RELAX_PROBABILITY))
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


def first_rows(data, spec, mapping, table, sql, chunksize, counts: AuditCounts,
                bad: np.ndarray, limit: int = 5) -> list[int] | None:
    """The first audit row numbers (0-based) whose pattern is one of ``bad`` (a second
    pass over the data, only to name them in an error)."""
    if isinstance(data, AuditCounts) or (isinstance(data, (list, tuple)) and data and all(
            isinstance(d, (AuditCounts, str, os.PathLike)) for d in data)):
        return None
    cards = counts.cards
    want = np.sort(pattern_keys(counts.patterns[bad], cards))
    if isinstance(data, EncodedAudit):
        keys = pattern_keys(data.codes, cards)
        return np.flatnonzero(np.isin(keys, want))[:limit].tolist()
    out: list[int] = []
    for ch in stream_encoded(data, spec, mapping, table=table, sql=sql, chunksize=chunksize):
        hit = np.flatnonzero(np.isin(pattern_keys(ch.codes, cards), want))
        out.extend((hit[: limit - len(out)] + ch.offset).tolist())
        if len(out) >= limit:
            break
    return out


def drop_patterns(counts: AuditCounts, bad: np.ndarray) -> AuditCounts:
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
    >>> from pandas import DataFrame
    >>> from kneehip_bn.io.counting import audit_counts
    >>> rows = audit_counts(DataFrame({"knee_pain": ["absent"]}), "knee_hip_basic")
    >>> c, bad = screen_counts(rows, "knee_hip_basic")
    >>> c.n_rows, bad is None
    (1, True)
    """
    mode = check_on_impossible(on_impossible, "on_impossible")
    bad = find_impossible(counts, model)
    if bad is None:
        return counts, None
    if mode == "error":
        raise DataError(bad.message("counted"))
    if mode == "drop":
        return drop_patterns(counts, bad.patterns), bad
    return counts, bad


def relax_families(fams: list[Family], entries: Sequence[ZeroEntry]) -> None:
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
                    if f.w_start[j] >= W_MAX:
                        f.w_start[j] = -math.log(eps)
            f.start = f.table_from_w(f.w_start)


def check_possible_complete(counts: AuditCounts, fams: list[Family]) -> None:
    """Complete rows are impossible exactly when some family lands on a zero of its table:
    a DataError naming those zeros (:meth:`ImpossibleRows.message`)."""
    col = {c: j for j, c in enumerate(counts.columns)}
    bad = np.zeros(counts.patterns.shape[0], dtype=bool)
    entries: list[ZeroEntry] = []
    for f in fams:
        idx = tuple(counts.patterns[:, col[x]].astype(np.intp) for x in [f.name, *f.parents])
        hit = (f.expert if f.start is None else f.start)[idx] == 0
        bad |= hit
        for cell in sorted({tuple(int(i[r]) for i in idx) for r in np.flatnonzero(hit)}):
            rows = counts.counts[hit & np.all([i == c for i, c in zip(idx, cell)], axis=0)]
            given = {p: f.parent_states[p][c] if p in f.parent_states else
                     counts.states[p][c] for p, c in zip(f.parents, cell[1:])}
            entries.append(ZeroEntry(f.name, given, f.states[cell[0]], cell, float(rows.sum())))
    if bad.any():
        b = np.flatnonzero(bad)
        raise DataError(ImpossibleRows(b, float(counts.counts[b].sum()), entries).message())


