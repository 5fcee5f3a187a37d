"""Counting audit files with DuckDB: CSV, Parquet, globs of many files, partitioned datasets.

The count table of distinct observed patterns (blanks included) is the exact sufficient
statistic of the fit, so counting a file needs no Python loop over rows: DuckDB runs one
``SELECT <mapped columns>, COUNT(*) … GROUP BY ALL`` over the file(s) — out of core (its
hash aggregate spills to a private temporary directory past ``memory_limit``),
multi-threaded, reading only the mapped columns of a Parquet file — and returns the
distinct raw patterns with their row counts. Those are then validated and encoded by the
same encoder as rows read by pandas (:class:`kneehip_bn.io.encode.ChunkEncoder`, weighted by
the counts), so every message is the same: column, code, rows affected, first row numbers
(found by a second query over the file only when a code is unknown) and the closest state.
Memory is bounded by the number of distinct patterns, not rows.

Sources (:func:`resolve`):

- one ``.csv`` / ``.csv.gz`` / ``.tsv`` / ``.txt`` or ``.parquet`` / ``.pq`` file;
- a glob (``parts/*.parquet``, ``monthly/2025-*.csv``, ``**`` allowed): every file must
  have the same columns (checked, with the first file that differs named);
- a directory: every Parquet (else CSV) file under it; ``key=value`` folders are read as
  hive partitions (the keys become columns: map them or ``--ignore`` them).

CSV files are read as text exactly as :func:`kneehip_bn.io.sources.read_audit` reads them
(empty cells blank, ragged rows an error, then each column's distinct values typed as
pandas would type the whole column); a CSV whose header has empty or duplicate names is
left to pandas (which renames duplicates), so messages stay identical.

Examples
--------
>>> import pandas as pd, tempfile, os
>>> d = tempfile.mkdtemp()
>>> pd.DataFrame({"knee_pain": ["present", None, "present"]}).to_parquet(f"{d}/a.parquet")
>>> src = resolve(f"{d}/a.parquet")
>>> src.kind, columns_of(src)
('parquet', ['knee_pain'])
>>> with connect(None, 1) as con:
...     n_rows, frame, mult = tally_columns(con, src, ["knee_pain"])
>>> n_rows, sorted(zip(frame["knee_pain"].labels, mult.tolist()), key=str)
(3, [('present', 2), (None, 1)])
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kneehip_bn._util.progress import progress_bar
from kneehip_bn.errors import DataError, ParameterError
from kneehip_bn.io.arrow_csv import CodedColumn, CodedFrame, labels_like_pandas
from kneehip_bn.io.counts import AuditCounts, model_name, states_of
from kneehip_bn.io.csv_source import max_line_limit
from kneehip_bn.io.encode import ChunkEncoder
from kneehip_bn.io.mapping import AuditMapping, norm_code
from kneehip_bn.io.patterns import group_patterns
from kneehip_bn.io.sources import audit_files, iter_audit

__all__ = ["FileSource", "NotForDuckDBError", "connect", "duckdb_counts", "first_rows",
           "pattern_counts", "read_error", "resolve", "tally_columns"]

#: DuckDB's memory limit for counting unless told otherwise (env KNEEHIP_DUCKDB_MEMORY)
DEFAULT_MEMORY = os.environ.get("KNEEHIP_DUCKDB_MEMORY", "1GB")
_COUNT = "kneehip_pattern_rows__"


class NotForDuckDBError(Exception):
    """DuckDB cannot read a file that the package's reader reads: count it with pandas."""


def read_error(src: FileSource, exc: Exception) -> Exception:
    """The error of a file DuckDB could not read.

    For CSV files the package's own reader (:func:`kneehip_bn.io.sources.iter_audit`) reads the
    file again to name the damaged line as every other reader does (too few or too many
    fields, a file cut mid-row, a NUL, an over-long line); only if it reads the file without
    complaint (a layout DuckDB's CSV sniffer rejects, such as a line holding only a
    carriage return) is :class:`NotForDuckDBError` returned, so the caller counts the file
    with the pandas path. Damaged files are rare, so the second read costs nothing on the
    usual path.
    """
    if src.kind in ("csv", "tsv"):
        for f in src.files:
            try:
                for _ in iter_audit(f, chunksize=65536):
                    pass
            except DataError as canonical:
                return canonical
        return NotForDuckDBError(_first_line(exc))
    return DataError(f"audit file {src.label}: cannot read it as {src.kind}: "
                     f"{_first_line(exc)}")


@dataclass
class FileSource:
    """Files DuckDB reads as one table."""

    label: str
    kind: str  # csv | tsv | parquet
    files: list[str]
    hive: bool
    header: list[str] | None  # CSV: the header every file shares
    cached: str | None = None  # a DuckDB temporary table holding the columns read once

    @property
    def many(self) -> bool:
        """More than one file (row numbers are then given per file)."""
        return len(self.files) > 1


def _lit(s: str) -> str:
    return "'" + str(s).replace("'", "''") + "'"


def _ident(s: str) -> str:
    return '"' + str(s).replace('"', '""') + '"'


def _csv_header(path: str, sep: str) -> list[str] | None:
    import csv
    import gzip

    opener = gzip.open if path.lower().endswith(".gz") else open
    try:
        with opener(path, "rt", newline="", encoding="utf-8-sig") as f:
            header = next(csv.reader(f, delimiter=sep), None)
    except (UnicodeDecodeError, OSError, csv.Error) as exc:
        _raise_canonical(path)
        raise DataError(f"audit file {path}: cannot read its header as UTF-8 CSV: {exc}") from None
    if header is not None and any("\x00" in h for h in header):
        _raise_canonical(path)
    return header


def check_no_nul(src: FileSource, block: int = 64 << 20) -> None:
    """Refuse a CSV source holding a NUL byte or a line spanning a block past the line limit
    (DuckDB would skip NULs and count the rest).

    A NUL is never text: it marks a damaged or padded file (``truncate -s 2G``), which the
    package's reader refuses naming the line. One ``bytes.find`` (memchr) per 64 MB block,
    so memory stays bounded and the scan runs at disk speed; compressed files are left to
    DuckDB's own parser.
    """
    if src.kind not in ("csv", "tsv"):
        return
    limit = max_line_limit(None)
    for f in src.files:
        if f.lower().endswith(".gz"):
            continue
        run = 0  # bytes since the last line end, carried across blocks
        with open(f, "rb") as fh:
            while chunk := fh.read(block):
                first, last = chunk.find(b"\n"), chunk.rfind(b"\n")
                long_line = run + (len(chunk) if first < 0 else first) > limit
                run = run + len(chunk) if last < 0 else len(chunk) - last - 1
                if b"\x00" in chunk or long_line:
                    _raise_canonical(f)
                    raise DataError(f"audit file {f}: a NUL byte or a line over {limit:,} "
                                    "bytes: expected rows of text; the file looks damaged")


def _raise_canonical(path: str) -> None:
    """Raise the package reader's error for a damaged CSV file (it names the line, as for
    every other reader); return if that reader reads the file."""
    try:
        for _ in iter_audit(path, chunksize=65536):
            pass
    except DataError as canonical:
        raise canonical from None


def resolve(source: Any) -> FileSource | None:
    """The files behind a path, glob or directory, or None when pandas should read it
    (a CSV header with empty or duplicate names).

    Raises
    ------
    DataError
        No such file, no file matching the glob, an unsupported suffix, or files of one
        source with different columns.
    """
    files, label, kind, hive = audit_files(source)
    header = None
    if kind in ("csv", "tsv"):
        sep = "\t" if kind == "tsv" else ","
        header = _csv_header(files[0], sep)
        if any("\x00" in h or "\r" in h for h in header or []):  # the package reader names it
            for _ in iter_audit(files[0], chunksize=65536):
                pass
            return None
        if len(header or []) == 1 and len(files) == 1:
            return None  # one column: pandas skips empty lines, DuckDB reads them as blanks
        if not header or len(set(header)) != len(header) or any(h == "" for h in header):
            if len(files) == 1:
                return None  # pandas renames duplicates; keep its messages
            raise DataError(f"audit file {files[0]}: expected a header of distinct, non-empty "
                            f"column names, found {header}")
        for f in files[1:]:
            h = _csv_header(f, sep)
            if h != header:
                raise DataError(f"audit file {f}: expected the same columns as {files[0]} "
                                f"({', '.join(header[:12])}), found {', '.join((h or [])[:12])}")
    else:
        import pyarrow.parquet as pq

        first = None
        for f in files:
            try:
                names = pq.read_schema(f).names
            except Exception as exc:
                raise DataError(f"audit file {f}: cannot read it as parquet: "
                                f"{_first_line(exc)}") from None
            if first is None:
                first = names
            elif sorted(names) != sorted(first):
                raise DataError(f"audit file {f}: expected the same columns as {files[0]} "
                                f"({', '.join(first[:12])}), found {', '.join(names[:12])}")
    return FileSource(label=label, kind=kind, files=files, hive=hive, header=header)


def _first_line(exc: BaseException) -> str:
    lines = [x.strip() for x in str(exc).strip().splitlines() if x.strip()]
    keep = []
    for x in lines:
        if x.lower().startswith("possible") or x.startswith("*"):
            break
        keep.append(x)
    out = "; ".join(keep[:4]) or type(exc).__name__
    return out[:400]


def _from(src: FileSource, *, rows: bool = False) -> str:
    """The table function reading ``src`` (``rows``: with file name and row number)."""
    if src.cached and not rows:
        return src.cached
    files = "[" + ", ".join(_lit(f) for f in src.files) + "]"
    if src.kind == "parquet":
        extra = ", filename = true, file_row_number = true" if rows else ""
        return (f"read_parquet({files}, hive_partitioning = {str(src.hive).lower()}, "
                f"union_by_name = false{extra})")
    sep = "\\t" if src.kind == "tsv" else ","
    cols = "{" + ", ".join(f"{_lit(c)}: 'VARCHAR'" for c in (src.header or [])) + "}"
    extra = ", filename = true" if rows else ""
    return (f"read_csv({files}, header = true, auto_detect = false, columns = {cols}, "
            f"delim = {_lit(sep) if sep == ',' else 'E' + _lit(sep)}, quote = '\"', escape = '\"', "
            f"strict_mode = true, null_padding = false, compression = 'auto', "
            f"hive_partitioning = {str(src.hive).lower()}{extra})")


@contextlib.contextmanager
def connect(memory_limit: str | None, threads: int | None) -> Iterator[Any]:
    """A private in-memory DuckDB connection with a memory limit, threads and a temporary
    directory for spilling (removed on exit)."""
    import duckdb

    tmp = tempfile.mkdtemp(prefix="kneehip-duckdb-")
    config: dict[str, Any] = {"memory_limit": memory_limit or DEFAULT_MEMORY,
                              "temp_directory": tmp, "preserve_insertion_order": False}
    if threads:
        config["threads"] = int(threads)
    try:
        con = duckdb.connect(":memory:", config=config)
        con.execute("SET enable_progress_bar = false")  # DuckDB's own bar would print to stdout
    except duckdb.Error as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ParameterError(f"DuckDB: cannot start with memory_limit={memory_limit!r}, "
                        f"threads={threads!r}: {_first_line(exc)}") from None
    try:
        yield con
    finally:
        con.close()
        shutil.rmtree(tmp, ignore_errors=True)


def columns_of(src: FileSource) -> list[str]:
    """Column names (CSV: the header; Parquet: the schema, plus hive partition keys)."""
    import duckdb

    if src.kind != "parquet":
        return list(src.header or [])
    with connect(None, 1) as con:
        try:
            return [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {_from(src)}").fetchall()]
        except duckdb.Error as exc:
            raise DataError(f"audit file {src.label}: cannot read it as parquet: "
                            f"{_first_line(exc)}") from None


def _run(con: Any, query: str, bar: Any, params: Sequence[Any] | None = None) -> Any:
    """Run a query to an Arrow table, feeding DuckDB's progress (0-100) to ``bar``."""
    if bar is None:
        return con.sql(query, params=list(params) if params else None).to_arrow_table()
    con.execute("SET enable_progress_bar = true; SET enable_progress_bar_print = false")
    done = threading.Event()
    shown = [0.0]

    def poll() -> None:
        while not done.wait(0.25):
            p = con.query_progress()
            if p > shown[0]:
                bar.update(p - shown[0])
                shown[0] = p

    t = threading.Thread(target=poll, daemon=True)
    t.start()
    try:
        return con.sql(query, params=list(params) if params else None).to_arrow_table()
    finally:
        done.set()
        t.join()
        if shown[0] < 100:
            bar.update(100 - shown[0])


#: CSV sources up to this size are parsed once into a DuckDB temporary table (parsing is
#: most of the time, and both passes would parse); larger ones are read twice. The table
#: holds the mapped cells uncompressed (about 1.6 times the file's bytes), so only files
#: whose table stays well inside the memory limit are cached: a larger one would fill the
#: limit and spill, for no gain in time (benchmarks/results/memory.md)
CACHE_CSV_BYTES = 160 * 2**20


def cache_csv(con: Any, src: FileSource, columns: Sequence[str]) -> FileSource:
    """Parse a small CSV source once: its ``columns`` into a temporary table."""
    import duckdb

    if src.kind == "parquet" or not columns:
        return src
    if sum(os.path.getsize(f) for f in src.files) > CACHE_CSV_BYTES:
        return src
    q = ", ".join(_ident(c) for c in columns)
    try:
        con.execute(f"CREATE TEMP TABLE kneehip_source__ AS SELECT {q} FROM {_from(src)}")
    except duckdb.Error as exc:
        raise read_error(src, exc) from None
    return FileSource(src.label, src.kind, src.files, src.hive, src.header,
                      cached="kneehip_source__")


def tally_columns(con: Any, src: FileSource, columns: Sequence[str], bar: Any = None
                  ) -> tuple[int, Any, np.ndarray]:
    """Pass 1: every column's distinct values with their row counts, in one scan
    (``GROUP BY GROUPING SETS ((c1), (c2), ...)``), as a stacked frame for the encoder.

    Returns
    -------
    (n_rows, frame, multiplicity)
        ``frame`` maps each column to a :class:`kneehip_bn.io.arrow_csv.CodedColumn` over all
        tallies (a column's own segment holds its distinct values, typed as pandas types
        the whole column; other segments are blank); ``multiplicity`` is the rows of each
        tally line. ``frame.segments[c]`` is the slice of column ``c``'s lines.
    """
    import duckdb

    cols = list(columns)
    try:
        if not cols:
            n = con.execute(f"SELECT COUNT(*) FROM {_from(src)}").fetchone()[0]
            return int(n), CodedFrame([], {}, 0), np.zeros(0, dtype=np.int64)
        idents = ", ".join(_ident(c) for c in cols)
        sets = ", ".join(f"({_ident(c)})" for c in cols)
        tbl = _run(con, f"SELECT grouping_id({idents}) AS kneehip_set__, {idents}, "
                        f"COUNT(*) AS {_COUNT} FROM {_from(src)} GROUP BY GROUPING SETS ({sets})",
                   bar)
    except duckdb.Error as exc:
        raise read_error(src, exc) from None
    k = len(cols)
    full = (1 << k) - 1
    g = np.asarray(tbl.column("kneehip_set__").to_numpy(zero_copy_only=False), dtype=np.int64)
    cnt = np.asarray(tbl.column(_COUNT).to_numpy(zero_copy_only=False), dtype=np.int64)
    order, segments, pos = [], {}, 0
    for j, c in enumerate(cols):
        rows = np.flatnonzero(g == (full ^ (1 << (k - 1 - j))))
        order.append(rows)
        segments[c] = slice(pos, pos + len(rows))
        pos += len(rows)
    n_rows = int(cnt[order[0]].sum())
    data: dict[str, Any] = {}
    for j, c in enumerate(cols):
        vals = tbl.column(c).take(order[j]).to_pylist()
        raw = [v for v in vals if v is not None]
        if src.kind != "parquet":  # text: typed as pandas types the whole column
            labels = labels_like_pandas([*(str(x) for x in raw), ""])
        else:
            labels = [*raw, None]
        blank = len(labels) - 1
        codes = np.full(pos, blank, dtype=np.int64)
        seg = segments[c]
        it = iter(range(len(raw)))
        codes[seg] = [blank if v is None else next(it) for v in vals]
        col = CodedColumn(codes, labels)
        col.raw = [*raw, None]  # type: ignore[attr-defined]  # as stored (for row look-ups)
        data[c] = col
    frame = CodedFrame(cols, data, pos)
    frame.segments = segments  # type: ignore[attr-defined]
    return n_rows, frame, np.concatenate([cnt[o] for o in order])


def pattern_counts(con: Any, src: FileSource, columns: Sequence[str],
                   codes_of: Sequence[Sequence[tuple[Any, int]]], cards: Sequence[int],
                   bar: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Pass 2: the distinct patterns of the node columns, grouped on small integers.

    Each column's stored values are mapped to engine codes inside DuckDB (``codes_of[j]``
    lists ``(stored value, code)`` for the values that are states; every other value is
    blank) and combined into one mixed-radix key (``card + 1`` digits, blank = 0, the first
    column most significant: the order of :func:`kneehip_bn.io.patterns.pattern_keys`), so the
    hash table holds 16 bytes per distinct pattern; past 2**62 the code columns are grouped
    as they are.

    Returns
    -------
    (patterns, counts)
        ``patterns`` (m, k) int8 sorted like :func:`kneehip_bn.io.patterns.group_patterns`,
        ``counts`` float rows per pattern.
    """
    import duckdb

    params: list[Any] = []
    digits = []
    for c, pairs in zip(columns, codes_of):
        whens = []
        for v, code in pairs:
            params.append(v)  # numbered: the key lists the columns in reverse
            whens.append(f"WHEN {_ident(c)} = ${len(params)} THEN {int(code) + 1}")
        digits.append(f"(CASE {' '.join(whens)} ELSE 0 END)" if whens else "0")
    bound = 1
    for r in cards:
        bound *= int(r) + 1
    try:
        if bound < 2**62:
            key, mult = "0", 1
            for d, r in zip(reversed(digits), reversed(list(cards))):
                key = f"{key} + {d}::BIGINT * {mult}" if mult > 1 else f"{d}::BIGINT"
                mult *= int(r) + 1
            q = (f"SELECT {key} AS k, COUNT(*) AS {_COUNT} FROM {_from(src)} GROUP BY k "
                 "ORDER BY k")  # sorted by DuckDB (out of core), not in numpy
            tbl = _run(con, q, bar, params)
            keys = np.array(tbl.column("k").to_numpy(zero_copy_only=False), dtype=np.int64)
            cnt = np.asarray(tbl.column(_COUNT).to_numpy(zero_copy_only=False), dtype=np.int64)
            del tbl
            pats = np.empty((keys.shape[0], len(columns)), dtype=np.int8)
            for j in range(len(columns) - 1, -1, -1):
                r = int(cards[j]) + 1
                pats[:, j] = (keys % r) - 1
                keys //= r
            return pats, cnt.astype(float)
        sel = ", ".join(f"{d}::UTINYINT AS d{j}" for j, d in enumerate(digits))
        grp = ", ".join(f"d{j}" for j in range(len(digits)))
        tbl = _run(con, f"SELECT {sel}, COUNT(*) AS {_COUNT} FROM {_from(src)} GROUP BY {grp}",
                   bar, params)
    except duckdb.Error as exc:
        raise read_error(src, exc) from None
    pats = np.stack([np.asarray(tbl.column(f"d{j}").to_numpy(zero_copy_only=False), np.int16) - 1
                     for j in range(len(digits))], axis=1).astype(np.int8)
    cnt = np.asarray(tbl.column(_COUNT).to_numpy(zero_copy_only=False), dtype=float)
    p, c, _ = group_patterns(pats, cards, cnt)
    return p.astype(np.int8), c


def first_rows(src: FileSource, column: str, raw_values: Sequence[Any], n: int = 5) -> list[Any]:
    """The first ``n`` data row numbers (0-based, in file order) whose ``column`` holds one
    of ``raw_values``; for several files ``"file:row"`` with the row in that file."""
    import duckdb

    if not raw_values:
        return []
    vals = ", ".join("?" for _ in raw_values)
    params = list(raw_values)
    out: list[Any] = []
    with connect(None, None) as con:
        try:
            if src.kind == "parquet":
                rows = con.execute(
                    f"SELECT filename, file_row_number FROM {_from(src, rows=True)} "
                    f"WHERE {_ident(column)} IN ({vals}) ORDER BY filename, file_row_number "
                    f"LIMIT {int(n)}", params).fetchall()
                return [int(r) if not src.many else f"{Path(f).name}:{int(r)}" for f, r in rows]
            for f in src.files:
                one = FileSource(src.label, src.kind, [f], src.hive, src.header)
                rows = con.execute(
                    f"SELECT ordinality - 1 FROM {_from(one)} WITH ORDINALITY "
                    f"WHERE {_ident(column)} IN ({vals}) ORDER BY 1 LIMIT {int(n - len(out))}",
                    params).fetchall()
                out += [int(r[0]) if not src.many else f"{Path(f).name}:{int(r[0])}" for r in rows]
                if len(out) >= n:
                    break
        except duckdb.Error:
            return out  # the counts are right; only the row numbers are missing
    return out


def duckdb_counts(src: FileSource, m: Any, mp: AuditMapping | None, name: str,
                  progress: bool = False, memory_limit: str | None = None,
                  threads: int | None = None) -> AuditCounts:
    """The :class:`~kneehip_bn.io.counts.AuditCounts` of files, in two DuckDB passes: each
    column's distinct values (validated and encoded by the encoder, weighted by their
    rows), then the patterns grouped on integer codes."""
    check_no_nul(src)
    enc = ChunkEncoder(columns_of(src), m, mp, source=name)
    use = [p.column for p in enc.plans]
    bar = progress_bar(enabled=progress, desc=f"counting {src.label} (DuckDB, 2 passes)", total=200,
                       unit="%")
    try:
        with connect(memory_limit, threads) as con:
            src = cache_csv(con, src, use)
            n_rows, frame, mult = tally_columns(con, src, use, bar if progress else None)
            if any(not isinstance(v, (str, int, float, bool, type(None)))
                   or (isinstance(v, str) and "\x00" in v)
                   for col in frame.segments for v in frame[col].raw):
                # a NUL, a nested or a binary value: the package's readers name the line (CSV)
                # or the column and rows (Parquet, through the pandas path)
                if src.kind in ("csv", "tsv"):
                    raise read_error(src, DataError("a NUL byte in a value"))
                raise NotForDuckDBError("values that are not one code")
            codes, _, _ = enc.encode(frame, 0, multiplicity=mult)
            enc.n_rows = n_rows  # the tallies hold each row once per column

            def find(col: str, lab: str) -> list[Any]:
                cc = frame[col]
                seg = frame.segments[col]
                vals = [cc.raw[i] for i in set(cc.codes[seg].tolist())
                        if cc.raw[i] is not None and norm_code(cc.labels[i]) == lab]
                return first_rows(src, col, vals)

            if enc.unknown_seen:
                enc.fill_first_rows(find)
            enc.check_chunk(final=False)  # as reading rows does: value errors first
            report = enc.finish()
            report.raise_if_errors()
            codes_of = []
            for j, p in enumerate(enc.node_plans):
                seg = frame.segments[p.column]
                cc = frame[p.column]
                codes_of.append([(cc.raw[i], int(code)) for i, code in
                                 zip(cc.codes[seg].tolist(), codes[seg, j].tolist())
                                 if code >= 0])
            pats, cnt = pattern_counts(con, src, [p.column for p in enc.node_plans], codes_of,
                                       enc.cards,
                                       bar if progress else None)
    finally:
        bar.close()
    return AuditCounts(columns=list(enc.columns), states=states_of(m, enc.columns),
                       patterns=pats, counts=cnt, n_rows=n_rows, datasets=[name],
                       model=model_name(m), report=report)
