"""Reading audit data: DataFrames, CSV/TSV/Parquet files and SQL databases, whole or in chunks.

An audit is a table with one row per patient (age band, activity, findings, test results,
often a clinician's working diagnosis, many blanks). This module reads it

- whole (:func:`read_audit`) or in chunks of bounded memory (:func:`iter_audit`): a pandas
  DataFrame, a ``.csv``/``.tsv``/``.parquet`` file, or any SQL database through an
  SQLAlchemy URL and a table name or query (:mod:`kneehip_bn.io.sql`, read-only);
- for the encoder (:func:`iter_coded`): the same chunks, or, for a plain CSV file, the
  pyarrow fast path's dictionary-encoded chunks (:mod:`kneehip_bn.io.arrow_csv`). The
  pandas reader is the reference; the fast path reads exactly what it reads.

CSV values are read as text (blank cells empty): codes such as ``NA`` are blank only
through the encoder's missing codes, never silently. Every CSV row is checked
(:class:`~kneehip_bn.io.csv_source.CsvSource`): a damaged row is a
:class:`~kneehip_bn.errors.DataError` naming its line.

Examples
--------
>>> import pandas as pd
>>> df = pd.DataFrame({"knee_pain": ["present", None, "absent"]})
>>> [len(c) for c in iter_audit(df, chunksize=2)]
[2, 1]
>>> describe_source("sqlite:///audit.db", table="visits")
'sqlite:///audit.db table visits'
"""

from __future__ import annotations

import glob as _glob
import os
import re
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from kneehip_bn.errors import DataError, ParameterError
from kneehip_bn.io.arrow_csv import NotFastError, iter_csv_coded
from kneehip_bn.io.csv_source import CsvSource, QuotedPart, max_line_limit
from kneehip_bn.io.sql import iter_rows, mask_url, one_line

__all__ = [
    "HIVE_PART",
    "audit_files",
    "check_file",
    "describe_source",
    "fast_csv_sep",
    "file_kind",
    "is_dataframe",
    "is_many_files",
    "is_url",
    "iter_audit",
    "iter_coded",
    "kind_of",
    "read_audit",
    "source_name",
]


def is_url(x: Any) -> bool:
    """True for an SQLAlchemy (or ``duckdb:///``) URL."""
    return isinstance(x, str) and "://" in x


def source_name(dataset: str | None, mapping: Any, data: Any, table: str | None,
                 sql: str | None) -> str:
    """The name recorded for a dataset: given, else the mapping's, else the source's."""
    return dataset or (mapping.dataset if mapping and mapping.dataset else None) or \
        describe_source(data, table, sql)


def is_dataframe(x: Any) -> bool:
    """True for a pandas DataFrame (without importing pandas when nobody has)."""
    pd = sys.modules.get("pandas")
    return pd is not None and isinstance(x, pd.DataFrame)


def is_categorical(s: Any) -> bool:
    """True for a pandas Categorical column (without importing pandas)."""
    pd = sys.modules.get("pandas")
    return pd is not None and isinstance(getattr(s, "dtype", None), pd.CategoricalDtype)


def describe_source(source: Any, table: str | None = None, sql: str | None = None) -> str:
    """A short name of a data source for reports (passwords in URLs masked)."""
    if is_dataframe(source):
        return "DataFrame"
    if is_url(source):
        url = mask_url(source)
        return f"{url} table {table}" if table else (f"{url} query" if sql else url)
    return Path(source).name if isinstance(source, (str, os.PathLike)) else type(source).__name__


#: a hive partition folder (``key=value``)
HIVE_PART = re.compile(r"^[^=/\\]+=[^/\\]*$")


def kind_of(name: str | os.PathLike[str]) -> str | None:
    """``csv``, ``tsv`` or ``parquet`` by a file name's suffix, or None."""
    low = os.fspath(name).lower()
    if low.endswith(".tsv"):
        return "tsv"
    if low.endswith((".csv", ".csv.gz", ".txt")):
        return "csv"
    return "parquet" if low.endswith((".parquet", ".pq")) else None


def is_many_files(source: Any) -> bool:
    """True for a directory or a glob pattern (an audit in several files)."""
    if not isinstance(source, (str, os.PathLike)) or is_url(source):
        return False
    s = os.fspath(source)
    return any(ch in s for ch in "*?[") or os.path.isdir(s)


def audit_files(source: str | os.PathLike[str]) -> tuple[list[str], str, str, bool]:
    """``(files, label, kind, hive)`` behind a path, glob or directory: the files sorted,
    a label for messages, their one kind, and whether they sit in ``key=value`` folders.

    A directory holds its ``.parquet`` files (any depth), else its CSV files.

    Raises
    ------
    DataError
        No such file, no file matching the glob, an unsupported suffix, or files of more
        than one kind.
    """
    s = os.fspath(source)
    label = Path(s).name or s
    if any(ch in s for ch in "*?["):
        files = sorted(f for f in _glob.glob(s, recursive=True) if os.path.isfile(f))
        if not files:
            raise DataError(f"audit files {s}: no file matches the pattern; expected e.g. "
                            "parts/*.parquet or monthly/*.csv")
    elif os.path.isdir(s):
        every = [f for f in _glob.glob(os.path.join(s, "**", "*"), recursive=True)
                 if os.path.isfile(f)]
        files = sorted(f for f in every if kind_of(f) == "parquet") or \
            sorted(f for f in every if kind_of(f) in ("csv", "tsv"))
        if not files:
            raise DataError(f"audit directory {s}: no .parquet or .csv files in it; expected a "
                            "folder of files (key=value sub-folders are read as partitions)")
        label = Path(s).name + "/"
    else:
        check_file(Path(s))
        files = [s]
    kinds = {kind_of(f) for f in files}
    if None in kinds:
        bad = next(f for f in files if kind_of(f) is None)
        file_kind(Path(bad))  # the one message for an unsupported suffix
    if len(kinds) > 1:
        raise DataError(f"audit files {s}: expected files of one kind, found "
                        f"{', '.join(sorted(k for k in kinds if k))}")
    hive = any(HIVE_PART.match(part) for f in files for part in Path(f).parent.parts)
    return files, label, kinds.pop(), hive


def file_kind(path: Path) -> str:
    """``csv``, ``tsv`` or ``parquet`` by the file's suffix (else a :class:`DataError`)."""
    kind = kind_of(path)
    if kind is not None:
        return kind
    raise DataError(f"audit file {path}: expected a .csv, .tsv or .parquet file (or an "
                    f"SQLAlchemy URL such as sqlite:///audit.db), found '{path.suffix or path.name}'")


def check_file(path: Path) -> None:
    """Refuse a missing file or a directory with a message naming what is expected."""
    if not path.exists():
        raise DataError(f"audit file {path}: no such file; expected a CSV or Parquet file or "
                        "an SQLAlchemy URL (e.g. sqlite:///audit.db with --table NAME)")
    if path.is_dir():
        raise DataError(f"audit file {path}: expected a file, found a directory")


# text stays text: "NA" and friends are blank only through DEFAULT_MISSING (never silently)
_CSV_KW: dict[str, Any] = {"keep_default_na": False, "na_values": [""]}

def read_audit(source: Any, *, table: str | None = None, sql: str | None = None,
               max_line_bytes: int | None = None) -> Any:
    """Read a whole audit table into a DataFrame.

    Parameters
    ----------
    source : DataFrame, path or str
        A pandas DataFrame (returned as is), a ``.csv``/``.tsv``/``.parquet`` file, or an
        SQLAlchemy URL (``sqlite:///audit.db``, ``postgresql://user@host/db``).
    table, sql : str, optional
        For a URL: the table to read, or a SELECT query (exactly one).
    max_line_bytes : int, optional
        Longest CSV line accepted (default :func:`max_line_limit`).

    CSV values are read as text (blank cells empty); codes such as ``NA`` are then treated
    as blank by the encoder (see :data:`DEFAULT_MISSING`), never silently converted. Every
    CSV row must have as many fields as the header: a short or long row, a NUL byte, a line
    over the limit, text that is not UTF-8 or a quote that never closes is a
    :class:`~kneehip_bn.errors.DataError` naming the line (1-based, as an editor shows
    it). The file is read in parts exactly as :func:`iter_audit` reads it, so both see
    the same values.

    Examples
    --------
    >>> import pandas as pd
    >>> read_audit(pd.DataFrame({"knee_pain": ["present"]})).shape
    (1, 1)
    """
    import pandas as pd

    if isinstance(source, pd.DataFrame):
        no_sql_args(table, sql, "a DataFrame")
        return source
    if is_url(source):
        return pd.concat(list(iter_rows(source, table, sql, None)), ignore_index=True)
    no_sql_args(table, sql, "a file")
    if is_many_files(source):
        return pd.concat(list(_iter_files(source, 1 << 18, max_line_bytes)), ignore_index=True)
    path = Path(source)
    check_file(path)
    kind = file_kind(path)
    if kind == "parquet":
        try:
            return pd.read_parquet(path)
        except (ValueError, OSError, _arrow_errors()) as exc:
            raise DataError(f"audit file {path}: cannot read it as parquet: {one_line(exc)}") from None
    parts = list(_iter_csv(path, "\t" if kind == "tsv" else ",", 1 << 62,
                           max_line_limit(max_line_bytes)))
    if len(parts) == 1:
        return parts[0]
    return pd.concat(parts, ignore_index=True)


def no_sql_args(table: str | None, sql: str | None, what: str) -> None:
    """Refuse ``table=``/``sql=`` with a source that is not a URL."""
    if table is not None or sql is not None:
        raise DataError(f"table/sql: only used with an SQLAlchemy URL, found them with {what}")


def _arrow_errors() -> type[BaseException]:
    import pyarrow as pa

    return pa.ArrowException


def iter_audit(
    source: Any, *, table: str | None = None, sql: str | None = None, chunksize: int = 500_000,
    max_line_bytes: int | None = None,
) -> Iterator[Any]:
    """Read an audit in chunks of at most ``chunksize`` rows (bounded memory).

    Parquet files are streamed with ``pyarrow.parquet.ParquetFile.iter_batches``, SQL with
    ``pandas.read_sql(chunksize=...)``; a DataFrame is sliced. A CSV file of any size is
    read in parts of whole lines (about 2^18 rows, at most ``chunksize``), each checked
    (see :func:`read_audit`: field counts, NUL bytes, line length, UTF-8, quotes) and then
    parsed by ``pandas.read_csv``; from the first part with a quote character on, the rest
    of the file is checked with the :mod:`csv` module (quoted fields may hold line breaks)
    and read by pandas in chunks. Memory is bounded by the part size and
    ``max_line_bytes``, never by the file size.
    """
    import pandas as pd

    _check_chunksize(chunksize)
    if isinstance(source, pd.DataFrame):
        no_sql_args(table, sql, "a DataFrame")
        if len(source) == 0:
            yield source
        for start in range(0, len(source), chunksize):
            yield source.iloc[start:start + chunksize]
        return
    if is_url(source):
        yield from iter_rows(source, table, sql, chunksize)
        return
    no_sql_args(table, sql, "a file")
    if is_many_files(source):
        yield from _iter_files(source, chunksize, max_line_bytes)
        return
    path = Path(source)
    check_file(path)
    kind = file_kind(path)
    if kind == "csv" or kind == "tsv":
        yield from _iter_csv(path, "\t" if kind == "tsv" else ",", chunksize,
                             max_line_limit(max_line_bytes))
        return
    try:
        import pyarrow.parquet as pq

        pf = pq.ParquetFile(path)
        empty = True
        for batch in pf.iter_batches(batch_size=chunksize):
            empty = False
            yield batch.to_pandas()
        if empty:
            yield pf.schema_arrow.empty_table().to_pandas()
    except (ValueError, OSError, _arrow_errors()) as exc:
        raise DataError(f"audit file {path}: cannot read it as {kind}: {one_line(exc)}") from None

def _iter_files(source: Any, chunksize: int, max_line_bytes: int | None) -> Iterator[Any]:
    """The chunks of a directory or glob of audit files, file after file in name order
    (the order DuckDB counts them in); Parquet files in ``key=value`` folders through
    ``pyarrow.dataset``, so the partition keys are columns, as DuckDB reads them."""
    files, _, kind, hive = audit_files(source)
    if kind == "parquet" and hive:
        import pyarrow.dataset as ds

        base = os.fspath(source) if os.path.isdir(os.fspath(source)) else \
            os.path.commonpath([os.path.dirname(f) for f in files])
        try:
            data = ds.dataset(files, format="parquet", partitioning="hive",
                              partition_base_dir=base)
            empty = True
            for batch in data.to_batches(batch_size=chunksize):  # in file order
                if batch.num_rows:
                    empty = False
                    yield batch.to_pandas()
            if empty:
                yield data.schema.empty_table().to_pandas()
        except (ValueError, OSError, _arrow_errors()) as exc:
            raise DataError(f"audit files {os.fspath(source)}: cannot read them as partitioned "
                            f"parquet: {one_line(exc)}") from None
        return
    first: list[str] | None = None
    for i, f in enumerate(files):
        for j, chunk in enumerate(iter_audit(f, chunksize=chunksize,
                                             max_line_bytes=max_line_bytes)):
            cols = [str(c) for c in chunk.columns]
            if first is None:
                first = cols
            elif sorted(cols) != sorted(first):
                raise DataError(f"audit file {f}: expected the same columns as {files[0]} "
                                f"({', '.join(first[:12])}), found {', '.join(cols[:12])}")
            if len(chunk) or (i == len(files) - 1 and j == 0):
                yield chunk


def _iter_csv(path: Path, sep: str, chunksize: int, limit: int) -> Iterator[Any]:
    """The pandas CSV reader: chunks of exactly ``chunksize`` rows (the last one fewer) of
    the frames of :func:`_csv_frames`; one empty frame with the header's columns when
    there are no rows."""
    import pandas as pd

    held: list[Any] = []
    n_held = 0
    names: list[str] = []
    rows = 0
    for df in _csv_frames(path, sep, chunksize, limit, names):
        held.append(df)
        n_held += len(df)
        rows += len(df)
        while n_held >= chunksize:
            whole = held[0] if len(held) == 1 else pd.concat(held, ignore_index=True)
            if n_held == chunksize:
                yield whole
                held = []
            else:
                yield whole.iloc[:chunksize].reset_index(drop=True)
                held = [whole.iloc[chunksize:].reset_index(drop=True)]
            n_held -= chunksize
    if n_held:
        yield held[0] if len(held) == 1 else pd.concat(held, ignore_index=True)
    if rows == 0:
        yield pd.DataFrame({i: pd.Series([], dtype=object) for i in range(len(names))}).set_axis(
            names, axis=1)


def _csv_frames(path: Path, sep: str, chunksize: int, limit: int,
                names: list[str]) -> Iterator[Any]:
    """Non-empty frames of a CSV (``names`` is filled with its column names): parts of
    whole lines checked (:meth:`CsvSource.read`) and parsed by ``pandas.read_csv``; from
    the first part with a quote character on, the rest checked as a stream
    (:meth:`CsvSource.check_stream`) and then read by pandas in chunks."""
    import io

    import pandas as pd

    with CsvSource(path, sep, limit) as src:
        names.extend(src.names)
        n = len(src.names)
        kw = {"header": None, "names": list(range(n)), "sep": sep, **_CSV_KW}

        def named(df: Any) -> Any:
            df.columns = src.names
            return df

        stream_from = (0, 1) if src.compressed else None
        ranges = () if src.compressed else src.ranges(chunksize)
        for a, b in ranges:
            try:
                data = src.read(a, b, fields=True)
            except QuotedPart:
                stream_from = (a, src.line_at(a)[0])
                break
            try:
                df = pd.read_csv(io.BytesIO(data), **kw)
            except (ValueError, pd.errors.ParserError) as exc:
                src.raise_bad_fields(data, a)
                raise DataError(f"audit file {path}: cannot read it as CSV: "
                                f"{one_line(exc)}") from None
            implicit_index = not isinstance(df.index, pd.RangeIndex)
            if implicit_index or not src.fields_ok(data, len(df)):
                src.raise_bad_fields(data, a)  # else: only blank lines, which are skipped
                if implicit_index:
                    raise DataError(f"audit file {path}: rows with more fields than the "
                                    "header: expected one field per column")
            if len(df):
                yield named(df)
        if stream_from is None:
            return
        src.check_stream(*stream_from)
        with open(path, "rb") as f:
            if src.compressed:
                reader = pd.read_csv(path, **{**kw, "header": 0}, chunksize=chunksize)
            else:
                f.seek(stream_from[0])
                reader = pd.read_csv(f, **kw, chunksize=chunksize)
            try:
                with reader:
                    for chunk in reader:
                        if len(chunk):
                            yield named(chunk)
            except (ValueError, OSError) as exc:
                raise DataError(f"audit file {path}: cannot read it as CSV: "
                                f"{one_line(exc)}") from None


def single_chunk(data: Any, chunksize: int) -> bool:
    """True when ``data`` is a DataFrame read in one chunk (so a chunk is the whole table)."""
    return is_dataframe(data) and len(data) <= chunksize


def _check_chunksize(chunksize: Any) -> None:
    if isinstance(chunksize, bool) or not isinstance(chunksize, int) or chunksize < 1:
        raise ParameterError(f"chunksize: expected a positive number of rows, found {chunksize!r}")


def fast_csv_sep(data: Any, table: str | None = None, sql: str | None = None) -> str | None:
    """The delimiter when ``data`` is a plain CSV/TSV file the pyarrow path can stream,
    else None."""
    if table is not None or sql is not None or not isinstance(data, (str, os.PathLike)):
        return None
    name = os.fspath(data)
    if "://" in name or not os.path.isfile(name):
        return None
    low = name.lower()
    if low.endswith((".csv", ".txt")):
        return ","
    return "\t" if low.endswith(".tsv") else None


def iter_coded(
    source: Any, *, table: str | None = None, sql: str | None = None, chunksize: int = 500_000,
    text: Sequence[str] = (), reader: str = "auto", max_line_bytes: int | None = None,
) -> Iterator[Any]:
    """Chunks of an audit for the encoder, by the fastest reader that reads it exactly.

    With ``reader="auto"`` a plain CSV/TSV file (:func:`fast_csv_sep`) is streamed by the
    pyarrow fast path (:func:`kneehip_bn.io.arrow_csv.iter_csv_coded`: chunks whose
    columns are already factorised; the columns in ``text`` stay text); everything else,
    and every source with ``reader="pandas"``, is read by :func:`iter_audit` (DataFrames).
    When the fast path meets something pandas might read differently (quotes, duplicate
    headers, other encodings: :class:`~kneehip_bn.io.arrow_csv.NotFastError` and the
    like), the rest of the file is read by pandas, skipping the rows already handed over
    (both readers read those alike), so the caller sees every row once either way.
    """
    if reader not in ("auto", "pandas"):
        raise ParameterError(f"reader: expected 'auto' or 'pandas', found {reader!r}")
    _check_chunksize(chunksize)
    sep = fast_csv_sep(source, table, sql) if reader == "auto" else None
    slow = iter_audit(source, table=table, sql=sql, chunksize=chunksize,
                      max_line_bytes=max_line_bytes)
    if sep is None:
        yield from slow
        return
    import pyarrow as pa

    done = 0
    try:
        for chunk in iter_csv_coded(source, chunksize=chunksize, text=text, sep=sep,
                                    max_line_bytes=max_line_bytes):
            yield chunk
            done += len(chunk)
        return
    except (NotFastError, pa.ArrowException, UnicodeDecodeError):
        pass  # pandas reads it (or reports why it cannot)
    for chunk in slow:
        if done >= len(chunk) and done:
            done -= len(chunk)
            continue
        yield chunk.iloc[done:].reset_index(drop=True) if done else chunk
        done = 0
