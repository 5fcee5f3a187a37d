"""The counts file format: reading and verifying what :meth:`AuditCounts.save` wrote.

A counts file is JSON (``format: kneehip-counts/2``: the fields of
:meth:`~kneehip_bn.io.counts.AuditCounts.to_dict`), CSV (a first line
``# kneehip-counts {metadata}``, then the patterns as state labels and a ``count``
column) or Parquet (the metadata in the schema). Every format carries a checksum of the
content and the model's content hash; :func:`read_counts` refuses, each with one clear
:class:`~kneehip_bn.errors.DataError`, anything it cannot verify.

Examples
--------
>>> import os, tempfile, pandas as pd, kneehip_bn as kb
>>> c = kb.audit_counts(pd.DataFrame({"knee_pain": ["present", "absent"]}), "knee_hip_basic")
>>> path = c.save(os.path.join(tempfile.mkdtemp(), "c.json"))
>>> read_counts(path, "knee_hip_basic").counts.tolist()
[1.0, 1.0]
"""

from __future__ import annotations

import io
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from kneehip_bn.errors import DataError, closest
from kneehip_bn.inference.cache import get_engine
from kneehip_bn.inference.queries import as_model
from kneehip_bn.io.counts import (
    COUNT_COLUMN,
    COUNTS_FORMAT,
    CSV_META,
    AuditCounts,
    checksum,
    counts_from_codes,
    model_hash,
    model_name,
)
from kneehip_bn.io.sources import check_file

__all__ = ["read_counts"]

_OLD_FORMATS = ("kneehip-counts/1",)
#: counts above this are refused (no audit has 2**53 rows; floats stop being exact there)
_MAX_COUNT = 2**53
_KEYS = {"format", "model", "model_hash", "rows", "datasets", "columns", "states", "patterns",
         "counts", "privacy", "checksum"}


def _bad(p: Path, msg: str) -> DataError:
    return DataError(f"counts file {p}: {msg}")


def _whole(x: Any, what: str, p: Path, *, positive: bool = False) -> int:
    """A whole number of rows: an int, or a float with no fraction; finite, bounded."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise _bad(p, f"{what}: expected a whole number of rows, found {x!r}"[:300])
    if isinstance(x, float) and (not math.isfinite(x) or not x.is_integer()):
        raise _bad(p, f"{what}: expected a whole number of rows, found {x!r}")
    v = int(x)
    if v < (1 if positive else 0) or v > _MAX_COUNT:
        lo = "1" if positive else "0"
        raise _bad(p, f"{what}: expected a whole number of rows from {lo} to 2**53, found {x!r}")
    return v


def _load(p: Path) -> dict[str, Any]:
    """The counts file as the JSON body (patterns as labels), any format."""
    name = p.name.lower()
    if name.endswith(".json"):
        try:
            raw = json.loads(p.read_bytes().decode("utf-8"))
        except (ValueError, OSError, RecursionError) as exc:
            raise _bad(p, f"not valid UTF-8 JSON: {str(exc).splitlines()[0][:200]}") from None
        if not isinstance(raw, dict):
            raise _bad(p, f"expected a JSON object with format '{COUNTS_FORMAT}', found "
                          f"{type(raw).__name__}")
        return raw
    if name.endswith(".csv"):
        return _load_csv(p)
    if name.endswith((".parquet", ".pq")):
        return _load_parquet(p)
    raise _bad(p, f"expected a .json, .csv or .parquet file, found '{p.suffix}'")


def _meta(p: Path, text: str) -> dict[str, Any]:
    try:
        meta = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise _bad(p, f"its metadata is not valid JSON: {str(exc).splitlines()[0][:200]}") from None
    if not isinstance(meta, dict):
        raise _bad(p, f"expected metadata as a JSON object, found {type(meta).__name__}")
    return meta


def _load_csv(p: Path) -> dict[str, Any]:
    import csv

    try:
        text = p.read_bytes().decode("utf-8")
    except (UnicodeDecodeError, OSError) as exc:
        raise _bad(p, f"not UTF-8 text: {exc}") from None
    first, _, rest = text.partition("\n")
    if not first.startswith(CSV_META):
        raise _bad(p, f"expected a first line '{CSV_META.strip()} {{...}}' with the checksum and "
                      "model hash (written by kneehip counts), found "
                      f"{first[:60]!r}; count the audit again with this version")
    meta = _meta(p, first[len(CSV_META):])
    if "\x00" in rest:
        raise _bad(p, "expected CSV text, found a NUL byte")
    try:
        rows = list(csv.reader(io.StringIO(rest, newline="")))
    except csv.Error as exc:
        raise _bad(p, f"not valid CSV: {exc}") from None
    if not rows:
        raise _bad(p, f"expected a header line with the columns and '{COUNT_COLUMN}', found none")
    header, body = rows[0], [r for r in rows[1:] if r != []]
    if not header or header[-1] != COUNT_COLUMN:
        raise _bad(p, f"expected the last column to be '{COUNT_COLUMN}', found columns "
                      f"{header[:10]}")
    for i, r in enumerate(body):
        if len(r) != len(header):
            raise _bad(p, f"line {i + 3}: expected {len(header)} fields, found {len(r)}")
    meta["columns_in_table"] = header[:-1]
    meta["patterns"] = [[v if v != "" else None for v in r[:-1]] for r in body]
    meta["counts"] = [_csv_count(v) for v in (r[-1] for r in body)]
    return meta


def _csv_count(v: str) -> Any:
    try:
        return int(v)
    except ValueError:
        try:
            return float(v)
        except ValueError:
            return v


def _load_parquet(p: Path) -> dict[str, Any]:
    import pyarrow.parquet as pq

    try:
        tbl = pq.read_table(p)
    except Exception as exc:
        raise _bad(p, f"cannot read it as parquet: {str(exc).splitlines()[0][:200]}") from None
    raw = (tbl.schema.metadata or {}).get(b"kneehip_counts")
    if raw is None:
        raise _bad(p, "expected kneehip_counts metadata with the checksum and model hash "
                      "(written by kneehip counts), found none; count the audit again with "
                      "this version")
    try:
        meta = _meta(p, raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise _bad(p, "its metadata is not UTF-8") from None
    names = tbl.schema.names
    if not names or names[-1] != COUNT_COLUMN:
        raise _bad(p, f"expected the last column to be '{COUNT_COLUMN}', found columns {names[:10]}")
    cols = {}
    for n in names[:-1]:
        vals = tbl.column(n).to_pylist()
        if any(v is not None and not isinstance(v, str) for v in vals):
            raise _bad(p, f"column {n}: expected state labels (text), found other values")
        cols[n] = vals
    meta["columns_in_table"] = names[:-1]
    meta["patterns"] = [list(r) for r in zip(*cols.values())] if cols else \
        [[] for _ in range(tbl.num_rows)]
    meta["counts"] = tbl.column(COUNT_COLUMN).to_pylist()
    return meta


def read_counts(path: str | os.PathLike[str], model: Any = None) -> AuditCounts:
    """Read and verify a counts file written by :meth:`AuditCounts.save`.

    Verified, each failure one clear :class:`DataError`: the format; the checksum of the
    content; the model (name and :func:`model_hash`: counts of another model or another
    version of it are refused); columns (known nodes, no repeats) and states (the model's);
    every pattern (one label or blank per column, a state of that column); every count (a
    whole number from 1 to 2**53; ``"lots"``, ``1e300``, negatives and fractions refused);
    ``rows`` (a whole number equal to the counts plus any suppressed rows); datasets (a
    list of distinct names); with ``min_count``, every count at least that. Nothing is
    copied into a fitted model unchecked.
    """
    p = Path(path)
    check_file(p)
    m = as_model(model)
    raw = _load(p)
    in_table = _check_fields(p, raw)
    want_name, want_hash = _check_model(p, raw, m)
    eng = get_engine(m)
    eng_states = {v: list(eng.states[v]) for v in eng.variables}
    columns = _check_columns(p, raw, in_table, eng_states, want_name)
    codes, cnt = _check_patterns(p, raw["patterns"], raw["counts"], columns, eng_states)
    datasets = raw["datasets"]
    if (not isinstance(datasets, list) or not datasets
            or not all(isinstance(d, str) and d for d in datasets)
            or len(set(datasets)) != len(datasets)):
        raise _bad(p, f"datasets: expected a list of distinct dataset names, found "
                      f"{str(datasets)[:80]}")
    privacy = raw["privacy"]
    rows = _check_rows(p, raw["rows"], privacy, cnt)
    if codes.shape[0] and len(np.unique(codes, axis=0)) != codes.shape[0]:
        raise _bad(p, "a pattern is listed twice: expected distinct patterns")
    out = counts_from_codes(codes, [len(eng_states[c]) for c in columns], columns,
                            {c: eng_states[c] for c in columns}, cnt, rows, datasets, want_name)
    out.model_hash = want_hash
    out.privacy = privacy
    return out


def _check_fields(p: Path, raw: dict[str, Any]) -> list[str] | None:
    """The format, the fields and the checksum; the columns of a CSV/Parquet table."""
    fmt = raw.get("format")
    if fmt in _OLD_FORMATS:
        raise _bad(p, f"format '{fmt}' has no checksum or model hash and cannot be verified: "
                      f"expected '{COUNTS_FORMAT}'; count the audit again with this version "
                      "(kneehip counts)")
    if fmt != COUNTS_FORMAT:
        raise _bad(p, f"expected format '{COUNTS_FORMAT}', found {str(fmt)[:60]!r}")
    in_table = raw.pop("columns_in_table", None)
    extra = sorted(set(raw) - _KEYS)
    if extra:
        raise _bad(p, f"unknown fields {extra[:5]}: expected only {', '.join(sorted(_KEYS))}")
    missing = sorted(_KEYS - set(raw))
    if missing:
        raise _bad(p, f"missing fields {missing}: expected a file written by kneehip counts")
    body = {k: raw[k] for k in _KEYS if k != "checksum"}
    try:
        digest = checksum(body)
    except (ValueError, TypeError):
        raise _bad(p, "content is not plain JSON (NaN or infinity in it)") from None
    if raw["checksum"] != digest:
        raise _bad(p, f"checksum mismatch: the file says {str(raw['checksum'])[:80]!r}, its "
                      f"content hashes to '{digest[:23]}…': the file was damaged or edited "
                      "after kneehip counts wrote it; count the audit again")
    return in_table


def _check_model(p: Path, raw: dict[str, Any], m: Any) -> tuple[str, str]:
    """The model's name and hash, as the file states them."""
    want_name, want_hash = model_name(m), model_hash(m)
    if not isinstance(raw["model"], str) or not isinstance(raw["model_hash"], str):
        raise _bad(p, "model/model_hash: expected text")
    if raw["model"] != want_name:
        raise _bad(p, f"made with model '{raw['model'][:80]}', not '{want_name}': expected counts "
                      "of the model being fitted; pass --model with the model the counts were "
                      "made with, or count the audit again with this model")
    if raw["model_hash"] != want_hash:
        raise _bad(p, f"made with another version of model '{want_name}' (model hash "
                      f"{raw['model_hash'][:19]}…, this model {want_hash[:19]}…): expected counts "
                      "of this version; use the same model file, or count the audit again")
    return want_name, want_hash


def _check_columns(p: Path, raw: dict[str, Any], in_table: list[str] | None,
                   eng_states: dict[str, list[str]], want_name: str) -> list[str]:
    """The columns: node names, once each, with the model's states."""
    columns, states = raw["columns"], raw["states"]
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise _bad(p, "columns: expected a list of node names")
    if len(set(columns)) != len(columns):
        dup = next(c for c in columns if columns.count(c) > 1)
        raise _bad(p, f"columns: '{dup}' is listed twice: expected each node once")
    if in_table is not None and list(in_table) != columns:
        raise _bad(p, f"the table's columns {in_table[:8]} differ from its metadata's {columns[:8]}")
    if not isinstance(states, dict) or set(states) != set(columns):
        raise _bad(p, "states: expected the states of exactly the listed columns")
    for c in columns:
        if c not in eng_states:
            g = closest(c, list(eng_states))
            raise _bad(p, f"column '{c}' is not a node of model '{want_name}'"
                          + (f"; did you mean '{g}'?" if g else ""))
        if states[c] != eng_states[c]:
            raise _bad(p, f"column '{c}': states {str(states[c])[:120]} differ from the model's "
                          f"{eng_states[c]}")
    return columns


def _check_patterns(p: Path, pats: Any, counts: Any, columns: list[str],
                    eng_states: dict[str, list[str]]) -> tuple[np.ndarray, np.ndarray]:
    """Every pattern (state labels or blanks) as codes, every count a whole number."""
    if not isinstance(pats, list) or not isinstance(counts, list):
        raise _bad(p, "patterns/counts: expected two lists")
    if len(pats) != len(counts):
        raise _bad(p, f"expected one count per pattern, found {len(pats)} patterns and "
                      f"{len(counts)} counts")
    codes = np.full((len(pats), len(columns)), -1, dtype=np.int8)
    index = {c: {s: i for i, s in enumerate(eng_states[c])} for c in columns}
    for i, row in enumerate(pats):
        if not isinstance(row, list) or len(row) != len(columns):
            raise _bad(p, f"pattern {i}: expected {len(columns)} values (one per column), found "
                          f"{str(row)[:80]}")
        for j, v in enumerate(row):
            if v is None:
                continue
            hit = index[columns[j]].get(v) if isinstance(v, str) else None
            if hit is None:
                g = closest(str(v), eng_states[columns[j]])
                raise _bad(p, f"pattern {i}, column '{columns[j]}': unknown state {str(v)[:60]!r}: "
                              f"expected one of {', '.join(eng_states[columns[j]])}"
                              + (f"; did you mean '{g}'?" if g else ""))
            codes[i, j] = hit
    cnt = np.array([_whole(x, f"counts[{i}]", p, positive=True) for i, x in enumerate(counts)],
                   dtype=float)
    if cnt.sum() > _MAX_COUNT:
        raise _bad(p, "counts: expected a total of at most 2**53 rows")
    return codes, cnt


def _check_rows(p: Path, rows_field: Any, privacy: Any, cnt: np.ndarray) -> int:
    """``rows`` against the counts (plus suppressed rows), and the privacy record."""
    suppressed = 0
    if privacy is not None:
        if not isinstance(privacy, dict) or "min_count" not in privacy:
            raise _bad(p, "privacy: expected null or a record with min_count")
        k = _whole(privacy["min_count"], "privacy.min_count", p, positive=True)
        for f in ("generalised_rows", "generalised_patterns", "suppressed_rows",
                  "suppressed_patterns"):
            _whole(privacy.get(f, 0), f"privacy.{f}", p)
        suppressed = int(privacy.get("suppressed_rows", 0))
        if len(cnt) and cnt.min() < k:
            raise _bad(p, f"a pattern has {int(cnt.min())} rows although the file says no "
                          f"pattern has fewer than min_count {k}")
    rows = _whole(rows_field, "rows", p)
    if rows != int(cnt.sum()) + suppressed:
        raise _bad(p, f"rows: {rows} rows stated, but the counts add up to {int(cnt.sum())}"
                      + (f" plus {suppressed} suppressed" if suppressed else "")
                      + ": expected them to agree")
    return rows
