"""Shareable counts: an audit's distinct patterns and how often each occurs, verified.

The count table of distinct observed patterns (blanks included) is the exact sufficient
statistic of the fit: fitting from merged counts gives the same model as fitting from
the pooled rows. This module

- holds the counts (:class:`AuditCounts`), made from encoded rows by
  :func:`counts_from_codes`; :func:`kneehip_bn.io.counting.audit_counts` counts any source
  where it lives (DuckDB, a database, Spark, pandas);
- releases only patterns with at least ``min_count`` rows (:func:`generalise`): rarer
  patterns are generalised, cells blanked least informative first, rather than dropped;
- writes counts files (:meth:`AuditCounts.save`) that are **verified** on reading
  (:func:`kneehip_bn.io.counts_file.read_counts`): a checksum of the content and the
  model's content hash in the file; merging (:func:`merge_counts`) refuses a dataset twice
  and counts of another model or another version of it.

The checksum detects damage and hand edits; it is not a signature (anyone can compute
it), and a minimum cell count is the disclosure rule registries apply, not differential
privacy.

Examples
--------
>>> import pandas as pd, kneehip_bn as kb
>>> c = kb.audit_counts(pd.DataFrame({"knee_pain": ["present", "absent", "present"]}),
...                     "knee_hip_basic")
>>> c.n_rows, c.counts.tolist()
(3, [1.0, 2.0])
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kneehip_bn._util.files import atomic_write, atomic_write_bytes
from kneehip_bn.errors import DataError, ParameterError
from kneehip_bn.inference.cache import get_engine
from kneehip_bn.inference.queries import as_model
from kneehip_bn.io.patterns import group_patterns

__all__ = ["COUNTS_FORMAT", "COUNT_COLUMN", "CSV_META", "AuditCounts", "check_min_count",
           "checksum", "counts_from_codes", "generalise", "merge_counts", "model_hash",
           "model_name", "privacy_summary", "states_of"]

COUNTS_FORMAT = "kneehip-counts/2"
COUNT_COLUMN = "count"
#: the first line of a counts CSV file starts so (then its metadata as JSON)
CSV_META = "# kneehip-counts "
_PRIVACY_RULE = ("patterns with fewer than min_count rows generalised: cells blanked one at "
                 "a time, least informative first (the recorded value most common in its "
                 "column, i.e. the lowest -log2 share), until the pattern merges into one with "
                 "at least min_count rows; an all-blank remainder is suppressed")


# ============================================================================ model hash
def model_hash(model: Any = None) -> str:
    """Content hash of a model as the engine sees it: every node's name, states, parents
    and table (exact float64 bytes). Two model files with the same numbers hash alike;
    any change of structure, vocabulary or number changes it.

    >>> model_hash("knee_hip_basic") == model_hash("knee_hip_basic")
    True
    >>> model_hash("knee_hip_basic").startswith("sha256:")
    True
    """
    eng = get_engine(as_model(model))
    h = hashlib.sha256()
    for v in sorted(eng.variables):
        axes, table = eng.factors[eng.index[v]]
        head = json.dumps([v, eng.states[v], eng.parents[v], [eng.variables[a] for a in axes]])
        h.update(head.encode())
        h.update(np.ascontiguousarray(table, dtype="<f8").tobytes())
    return "sha256:" + h.hexdigest()


def model_name(model: Any) -> str:
    """The name recorded in counts for a model ("" when it has none)."""
    return str(getattr(model, "name", "") or "")


def states_of(model: Any, columns: Sequence[str]) -> dict[str, list[str]]:
    """``{column: the model's states}`` for node columns."""
    eng = get_engine(model)
    return {c: list(eng.states[c]) for c in columns}


# ============================================================================ AuditCounts
@dataclass
class AuditCounts:
    """Sufficient statistics of an audit: its distinct patterns and how often each occurs.

    Clinics can share these instead of patient records: fitting from merged counts gives
    the same model as fitting from the pooled rows. Save with :meth:`save` (JSON, CSV or
    Parquet; never pickle), read with :func:`read_counts` (verified), combine with
    :func:`merge_counts`.

    Attributes
    ----------
    columns : list of str
        Nodes observed (pattern columns).
    states : dict
        ``{node: [states]}`` for the columns (checked against the model on reading).
    patterns : ndarray of int, shape (m, k)
        Distinct patterns (``-1`` = blank).
    counts : ndarray of float, shape (m,)
        Rows per pattern (whole numbers).
    n_rows : int
        Rows summarised (the released counts plus any suppressed rows).
    datasets : list of str
        Names of the data sets merged into these counts.
    model : str
        Name of the model the codes refer to.
    model_hash : str
        :func:`model_hash` of that model ("" for in-process parts).
    privacy : dict or None
        With ``min_count``: the rule applied and what was generalised or suppressed.
    report : AuditReport or None
        The validation report of the rows counted (blanks per column, warnings), when
        these counts were just made from rows; not saved (a counts file has none).
    """

    columns: list[str]
    states: dict[str, list[str]]
    patterns: np.ndarray
    counts: np.ndarray
    n_rows: int
    datasets: list[str] = field(default_factory=list)
    model: str = ""
    model_hash: str = ""
    privacy: dict[str, Any] | None = None
    report: Any = field(default=None, repr=False, compare=False)

    @property
    def cards(self) -> list[int]:
        """Number of states of each column."""
        return [len(self.states[c]) for c in self.columns]

    @property
    def min_count(self) -> int | None:
        """The minimum released pattern count, when one was applied."""
        return None if not self.privacy else self.privacy.get("min_count")

    def __repr__(self) -> str:
        k = f", min_count={self.min_count}" if self.min_count else ""
        return (f"AuditCounts({self.n_rows} rows, {self.patterns.shape[0]} distinct patterns, "
                f"{len(self.columns)} columns, datasets={self.datasets}{k})")

    def to_frame(self) -> Any:
        """Patterns as state labels (blank = NaN) plus a ``count`` column."""
        return self._frame(0, int(self.patterns.shape[0]))

    def _frame(self, a: int, b: int) -> Any:
        """:meth:`to_frame` of patterns ``a`` to ``b``."""
        import pandas as pd

        data = {c: pd.Categorical.from_codes(self.patterns[a:b, j].astype(np.int64),
                                             categories=self.states[c])
                for j, c in enumerate(self.columns)}
        data[COUNT_COLUMN] = np.asarray(self.counts[a:b]).astype(np.int64)
        return pd.DataFrame(data)

    def _pattern_rows(self, a: int, b: int) -> list[list[str | None]]:
        """Patterns ``a`` to ``b`` as lists of state labels (blank = None)."""
        # column by column through numpy (code -1 picks the trailing None), not cell by cell
        cols = [np.array([*self.states[c], None], dtype=object)[
            np.asarray(self.patterns[a:b, j], dtype=np.intp)] for j, c in enumerate(self.columns)]
        return list(map(list, zip(*cols))) if cols else [[] for _ in range(b - a)]

    def _body(self) -> dict[str, Any]:
        """The file's fields but the checksum; patterns and counts made block by block."""
        n = int(self.patterns.shape[0])
        return {"format": COUNTS_FORMAT, "model": self.model, "model_hash": self.model_hash,
                "rows": int(self.n_rows), "datasets": list(self.datasets),
                "columns": list(self.columns),
                "states": {c: list(self.states[c]) for c in self.columns},
                "patterns": _Blocks(self._pattern_rows, n),
                "counts": _Blocks(lambda a, b: np.asarray(self.counts[a:b]).astype(np.int64)
                                  .tolist(), n),
                "privacy": self.privacy}

    def _with_checksum(self) -> dict[str, Any]:
        body = self._body()
        return {**body, "checksum": checksum(body)}

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``format: kneehip-counts/2``), with its ``checksum``."""
        return {k: v.to_list() if isinstance(v, _Blocks) else v
                for k, v in self._with_checksum().items()}

    def save(self, path: str | os.PathLike[str], overwrite: bool = False) -> Path:
        """Write to ``.json``, ``.csv`` or ``.parquet`` (atomically; no overwrite unless asked).

        Every format carries the checksum and the model hash: JSON as fields, CSV on a
        first line ``# kneehip-counts {...}``, Parquet in the schema metadata. JSON and CSV
        are written (and hashed) a block of patterns at a time, so memory is bounded by
        the patterns themselves, not by their text.
        """
        p = Path(path)
        name = p.name.lower()
        d = self._with_checksum()
        if name.endswith(".json"):
            return atomic_write(p, lambda tmp: _write_pieces(tmp, _json_pieces(d)), overwrite)
        meta = {k: v for k, v in d.items() if k not in ("patterns", "counts")}
        if name.endswith(".csv"):
            n = int(self.patterns.shape[0])
            pieces = itertools.chain(
                [CSV_META + json.dumps(meta) + "\n"],
                (self._frame(a, min(n, a + _BLOCK)).to_csv(index=False, header=a == 0)
                 for a in range(0, max(n, 1), _BLOCK)))
            return atomic_write(p, lambda tmp: _write_pieces(tmp, pieces), overwrite)
        if name.endswith((".parquet", ".pq")):
            import pyarrow as pa
            import pyarrow.parquet as pq

            tbl = pa.Table.from_pandas(self.to_frame(), preserve_index=False)
            tbl = tbl.replace_schema_metadata({**(tbl.schema.metadata or {}),
                                               b"kneehip_counts": json.dumps(meta).encode()})
            sink = pa.BufferOutputStream()  # arrow's own buffer, as io.writers explains
            pq.write_table(tbl, sink)
            return atomic_write_bytes(p, sink.getvalue().to_pybytes(), overwrite=overwrite)
        raise DataError(f"counts file {p}: expected a .json, .csv or .parquet name, found "
                        f"'{p.suffix}'")

    def __add__(self, other: AuditCounts) -> AuditCounts:
        return merge_counts([self, other])


#: patterns per block when a counts file is written or hashed
_BLOCK = 1 << 16
_CANONICAL: dict[str, Any] = {"sort_keys": True, "separators": (",", ":"), "ensure_ascii": False,
                              "allow_nan": False}


class _Blocks:
    """A long list of a counts file (its patterns or counts), made ``_BLOCK`` items at a
    time by ``make(a, b)``: its JSON text is written and hashed block by block."""

    def __init__(self, make: Callable[[int, int], list[Any]], n: int) -> None:
        self.make, self.n = make, n

    def blocks(self) -> Iterator[list[Any]]:
        for a in range(0, self.n, _BLOCK):
            yield self.make(a, min(self.n, a + _BLOCK))

    def to_list(self) -> list[Any]:
        return [x for block in self.blocks() for x in block]


def _json_pieces(obj: dict[str, Any], **kw: Any) -> Iterator[str]:
    """The text of ``json.dumps(obj, **kw)`` in pieces, :class:`_Blocks` values a block at
    a time (the same characters: each piece is ``json.dumps`` of a part)."""
    item, key = kw.get("separators") or (", ", ": ")
    yield "{"
    for i, k in enumerate(sorted(obj) if kw.get("sort_keys") else obj):
        v = obj[k]
        yield (item if i else "") + json.dumps(k, **kw) + key
        if not isinstance(v, _Blocks):
            yield json.dumps(v, **kw)
            continue
        yield "["
        first = True
        for block in v.blocks():
            if block:
                yield ("" if first else item) + json.dumps(block, **kw)[1:-1]
                first = False
        yield "]"
    yield "}"


def _write_pieces(path: str, pieces: Iterable[str]) -> None:
    with open(path, "wb") as fh:
        for piece in pieces:
            fh.write(piece.encode("utf-8"))


def checksum(body: dict[str, Any]) -> str:
    """``sha256:`` of the canonical JSON of a counts file's body (all fields but the
    checksum: ``json.dumps`` with sorted keys, no spaces, UTF-8), hashed in pieces."""
    h = hashlib.sha256()
    for piece in _json_pieces(body, **_CANONICAL):
        h.update(piece.encode("utf-8"))
    return "sha256:" + h.hexdigest()


def counts_from_codes(codes: np.ndarray, cards: Sequence[int], columns: Sequence[str],
                      states: dict[str, list[str]], weights: np.ndarray | None, n_rows: int,
                      datasets: Sequence[str], model_name: str) -> AuditCounts:
    """The :class:`AuditCounts` of encoded rows (``weights``: rows each line stands for)."""
    pats, counts, _ = group_patterns(codes, cards, weights)
    return AuditCounts(columns=list(columns), states={c: list(states[c]) for c in columns},
                       patterns=pats.astype(np.int8, copy=False), counts=counts,
                       n_rows=int(n_rows),
                       datasets=list(datasets), model=model_name)


# ============================================================================ privacy
def generalise(counts: AuditCounts, min_count: int) -> AuditCounts:
    """Release only patterns with at least ``min_count`` rows, generalising rarer ones.

    Each pattern with fewer than ``min_count`` rows has one cell blanked per round — its
    **least informative** recorded cell: the value most common in its column over the
    whole table (lowest self-information ``-log2 share``; ties: the later column) — and
    is merged with the patterns it now equals, until every pattern has at least
    ``min_count`` rows. A common value (``knee_effusion=absent``) says little and EM fills
    it back in well; rare values (a present red flag), which make rows identifiable and
    carry most of the information, are kept longest. What still falls short once every
    cell is blank (the all-blank pattern, which adds nothing to a fit) is suppressed.
    Rows are never dropped from a recorded pattern otherwise, so EM still uses them.

    Returns
    -------
    AuditCounts
        With ``privacy`` recording ``min_count``, the rule, ``generalised_rows`` and
        ``generalised_patterns`` (input patterns changed), ``blanked_cells`` (rows per
        column whose cell was blanked), ``suppressed_rows``/``suppressed_patterns``.

    Examples
    --------
    >>> import numpy as np
    >>> c = AuditCounts(["a", "b"], {"a": ["x", "y"], "b": ["u", "v"]},
    ...                 np.array([[0, 0], [0, 1], [1, 0]]), np.array([5.0, 1.0, 4.0]), 10)
    >>> g = generalise(c, 5)
    >>> g.patterns.tolist(), g.counts.tolist(), g.privacy["generalised_rows"]
    ([[-1, -1], [0, 0]], [5.0, 5.0], 5)
    """
    k = check_min_count(min_count)
    pats = np.asarray(counts.patterns, dtype=np.int8).copy()
    cnt = np.asarray(counts.counts, dtype=float).copy()
    m, ncol = pats.shape
    prior = dict(counts.privacy or {})
    rec = {"min_count": k, "rule": _PRIVACY_RULE,
           "generalised_rows": int(prior.get("generalised_rows", 0)),
           "generalised_patterns": int(prior.get("generalised_patterns", 0)),
           "blanked_cells": dict(prior.get("blanked_cells", {})),
           "suppressed_rows": int(prior.get("suppressed_rows", 0)),
           "suppressed_patterns": int(prior.get("suppressed_patterns", 0))}
    k = max(k, int(prior.get("min_count") or 1))
    rec["min_count"] = k
    if m == 0 or k <= 1:
        return _with(counts, pats, cnt, counts.n_rows, rec)
    # information of each column: the entropy (bits) of its recorded values over the whole
    # table; the same for every row, so which cell is blanked never depends on its value
    # (blanking the commonest value first would make the blanks informative and bias EM)
    info = []
    for j, card in enumerate(counts.cards):
        col = pats[:, j]
        tot = np.bincount(col[col >= 0], weights=cnt[col >= 0], minlength=card)
        share = tot[tot > 0] / max(tot.sum(), 1.0)
        info.append(float(-(share * np.log2(share)).sum()) if share.size else 0.0)
    ever = np.zeros(m, dtype=bool)  # input patterns changed (tracked through merges)
    origin = [np.array([i]) for i in range(m)]  # input patterns behind each current pattern
    blanked = dict(rec["blanked_cells"])
    for _ in range(ncol + 1):
        rare = (cnt < k) & (pats >= 0).any(axis=1)
        if not rare.any():
            break
        idx = np.flatnonzero(rare)
        sub = pats[idx]
        score = np.full(sub.shape, np.inf)
        for j in range(ncol):
            score[sub[:, j] >= 0, j] = info[j]
        # least informative = lowest score; ties go to the later column
        j_min = ncol - 1 - np.argmin(score[:, ::-1], axis=1)
        for r, j in zip(idx, j_min):
            blanked[counts.columns[j]] = blanked.get(counts.columns[j], 0) + int(cnt[r])
            for o in origin[r]:
                ever[o] = True
        pats[idx, j_min] = -1
        new_pats, new_cnt, inv = group_patterns(pats, counts.cards, cnt)
        new_origin: list[list[np.ndarray]] = [[] for _ in range(new_pats.shape[0])]
        for i, g in enumerate(inv):
            new_origin[g].append(origin[i])
        origin = [np.concatenate(x) for x in new_origin]
        pats, cnt = new_pats.astype(np.int8), new_cnt
    keep = ~((cnt < k) & ~(pats >= 0).any(axis=1))
    rec["suppressed_rows"] += int(cnt[~keep].sum())
    rec["suppressed_patterns"] += int((~keep).sum())
    rec["generalised_patterns"] += int(ever.sum())
    rec["generalised_rows"] += int(np.asarray(counts.counts)[ever].sum())
    rec["blanked_cells"] = {c: blanked[c] for c in counts.columns if c in blanked}
    return _with(counts, pats[keep], cnt[keep], counts.n_rows, rec)


def _with(c: AuditCounts, pats, cnt, n_rows, privacy) -> AuditCounts:
    return AuditCounts(columns=list(c.columns), states={x: list(c.states[x]) for x in c.columns},
                       patterns=np.asarray(pats, dtype=np.int8), counts=np.asarray(cnt, float),
                       n_rows=int(n_rows), datasets=list(c.datasets), model=c.model,
                       model_hash=c.model_hash, privacy=privacy)


def check_min_count(k: Any) -> int:
    """``min_count`` checked: a whole number of rows from 1 to 10**6."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1 or k > 10**6:
        raise ParameterError(f"min_count: expected a whole number of rows from 1 to 1000000 "
                        f"(registries use 3 to 11), found {k!r}")
    return int(k)


def privacy_summary(c: AuditCounts) -> str:
    """One line on what ``min_count`` did (empty without one)."""
    p = c.privacy
    if not p:
        return ""
    cells = ", ".join(f"{k} {v}" for k, v in sorted(p.get("blanked_cells", {}).items(),
                                                    key=lambda kv: -kv[1])[:6])
    return (f"min count {p['min_count']}: {p['generalised_rows']} rows in "
            f"{p['generalised_patterns']} rare patterns generalised (cells blanked, most common "
            f"value first{'; ' + cells if cells else ''}), {p['suppressed_rows']} all-blank "
            "rows suppressed")


# ============================================================================ merging
def _pool(parts: Sequence[AuditCounts], datasets: Sequence[str]) -> AuditCounts:
    columns: list[str] = []
    states: dict[str, list[str]] = {}
    for part in parts:
        for c in part.columns:
            if c in states:
                if states[c] != list(part.states[c]):
                    raise DataError(
                        f"merge counts: column {c} has states {states[c]} in one table and "
                        f"{list(part.states[c])} in another (datasets {part.datasets}): expected "
                        "counts made with the same model")
            else:
                states[c] = list(part.states[c])
                columns.append(c)
    # one table filled part by part (a column a part lacks stays blank), no copy per part
    codes = np.full((sum(p.patterns.shape[0] for p in parts), len(columns)), -1, dtype=np.int8)
    at = 0
    for part in parts:
        m = part.patterns.shape[0]
        for j, c in enumerate(part.columns):
            codes[at:at + m, columns.index(c)] = part.patterns[:, j]
        at += m
    weights = np.concatenate([np.asarray(p.counts, float) for p in parts])
    ds: list[str] = []
    for d in datasets:
        if d not in ds:
            ds.append(d)
    model = next((p.model for p in parts if p.model), "")
    out = counts_from_codes(codes, [len(states[c]) for c in columns], columns, states, weights,
                             sum(p.n_rows for p in parts), ds, model)
    out.model_hash = next((p.model_hash for p in parts if p.model_hash), "")
    return out


def merge_counts(parts: Sequence[AuditCounts], datasets: Sequence[str] | None = None) -> AuditCounts:
    """Pool several :class:`AuditCounts` (e.g. from several clinics) into one.

    Columns are the union (a column one clinic did not record is blank in its patterns);
    a column's states must agree. Refused, each with its own message: the same dataset
    twice (the same name, or the same content under another name), counts made with
    another model (name) or another version of it (model hash). ``datasets`` names the
    result and marks the parts as pieces of those datasets (chunks of one audit, which
    are not checked for repeats). With any part counted under a minimum count, the result
    keeps the strictest one (rare merged patterns generalised again).

    >>> import numpy as np
    >>> a = AuditCounts(["knee_pain"], {"knee_pain": ["absent", "present"]},
    ...                 np.array([[0], [1]]), np.array([3.0, 1.0]), 4, ["a"])
    >>> b = AuditCounts(["knee_pain"], {"knee_pain": ["absent", "present"]},
    ...                 np.array([[0]]), np.array([2.0]), 2, ["b"])
    >>> (a + b).counts.tolist(), (a + b).datasets
    ([5.0, 1.0], ['a', 'b'])
    """
    parts = list(parts)
    if not parts:
        raise DataError("merge_counts: expected at least one counts table, found none")
    for p in parts:
        if not isinstance(p, AuditCounts):
            raise DataError(f"merge_counts: expected AuditCounts tables, found {type(p).__name__}")
    if datasets is not None:
        return _pool(parts, list(datasets))
    names = {p.model for p in parts if p.model}
    if len(names) > 1:
        raise DataError(f"merge counts: the tables were made with different models "
                        f"({', '.join(sorted(names))}): expected counts of one model; count "
                        "every audit with the same --model")
    hashes = {p.model_hash for p in parts if p.model_hash}
    if len(hashes) > 1:
        raise DataError("merge counts: the tables were made with different versions of model "
                        f"'{next(iter(names), '')}' (model hashes "
                        f"{', '.join(sorted(h[:19] for h in hashes))}): expected counts of one "
                        "version; count every audit again with the same model file")
    seen: dict[str, int] = {}
    digests: dict[str, int] = {}
    for i, p in enumerate(parts):
        for d in p.datasets:
            if d in seen:
                raise DataError(f"merge counts: dataset '{d}' is in tables {seen[d] + 1} and "
                                f"{i + 1}: expected each dataset once (merging it twice would "
                                "count its rows twice); if these are different data, name each "
                                "with kneehip counts --dataset-name")
            seen[d] = i
        dg = checksum(p._body() | {"datasets": []})
        if dg in digests:
            raise DataError(f"merge counts: tables {digests[dg] + 1} and {i + 1} hold the same "
                            "counts under different dataset names: expected each dataset once")
        digests[dg] = i
    out = _pool(parts, [d for p in parts for d in p.datasets])
    ks = [p.min_count for p in parts if p.min_count]
    if ks:
        out.privacy = {"min_count": max(ks), "rule": _PRIVACY_RULE,
                       **{f: sum(int((p.privacy or {}).get(f, 0)) for p in parts)
                          for f in ("generalised_rows", "generalised_patterns", "suppressed_rows",
                                    "suppressed_patterns")},
                       "blanked_cells": _sum_dicts([(p.privacy or {}).get("blanked_cells", {})
                                                    for p in parts])}
        out = generalise(out, max(ks))
    return out


def _sum_dicts(ds: Sequence[dict[str, int]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for d in ds:
        for k, v in d.items():
            out[k] = out.get(k, 0) + int(v)
    return out
