"""Counting an audit where it lives: DuckDB for files, the database for SQL, Spark, pandas.

:func:`audit_counts` summarises any source into :class:`~kneehip_bn.io.counts.AuditCounts`
(its distinct patterns and how often each occurs) with memory bounded by the number of
distinct patterns, not rows:

- files, globs and partitioned datasets through DuckDB (:mod:`kneehip_bn.io.duckdb_source`);
- databases through a ``GROUP BY`` run inside the database on a read-only connection
  (:mod:`kneehip_bn.io.sql`);
- Spark DataFrames grouped on the cluster (:mod:`kneehip_bn.io.spark`);
- DataFrames, and files with ``engine="pandas"``, by the one streaming loop
  (:func:`kneehip_bn.io.encode.stream_encoded`): the reference path.

The same numbers and the same messages come from every path: each validates with the one
encoder (:class:`~kneehip_bn.io.encode.ChunkEncoder`).
"""

from __future__ import annotations

from typing import Any

from kneehip_bn.errors import ParameterError
from kneehip_bn.inference.queries import as_model
from kneehip_bn.io.counts import (
    AuditCounts,
    check_min_count,
    counts_from_codes,
    generalise,
    merge_counts,
    model_hash,
    model_name,
    states_of,
)
from kneehip_bn.io.duckdb_source import NotForDuckDBError, duckdb_counts, resolve
from kneehip_bn.io.encode import ChunkEncoder, EncodedAudit, stream_encoded
from kneehip_bn.io.mapping import AuditMapping, load_mapping
from kneehip_bn.io.sources import is_dataframe, is_url, no_sql_args, source_name
from kneehip_bn.io.spark import is_spark_dataframe, spark_counts
from kneehip_bn.io.sql import grouped_rows

__all__ = ["audit_counts"]


def audit_counts(
    data: Any, model: Any = None, mapping: Any = None, *, table: str | None = None,
    sql: str | None = None, chunksize: int = 500_000, dataset: str | None = None,
    progress: bool = False, min_count: int | None = None, engine: str = "auto",
    memory_limit: str | None = None, threads: int | None = None,
) -> AuditCounts:
    """Summarise an audit into distinct patterns and counts, counted where the data live.

    Parameters
    ----------
    data : DataFrame, path, glob, directory or URL
        A DataFrame (pandas); a CSV/Parquet file, a glob of files or a (hive-partitioned)
        directory (DuckDB, out of core); an SQLAlchemy or ``duckdb:///`` URL with
        ``table`` or ``sql`` (the ``GROUP BY`` runs in the database, read-only).
    model, mapping
        The model (default: the shipped one) and the column/code mapping.
    min_count : int, optional
        Release no pattern with fewer rows (see :func:`generalise`).
    engine : {"auto", "duckdb", "pandas"}
        ``pandas`` streams files in ``chunksize`` rows instead of DuckDB (the reference
        path the DuckDB path is tested against).
    memory_limit, threads
        DuckDB's memory limit (default ``1GB``, env ``KNEEHIP_DUCKDB_MEMORY``) and threads.

    Memory is bounded by the number of distinct patterns, not rows.

    Raises
    ------
    DataError
        Invalid data (with the report: column, code, rows affected, first rows, closest
        state), an empty table, an entirely blank column, a refused query.
    """
    if engine not in ("auto", "duckdb", "pandas"):
        raise ParameterError(f"engine: expected 'auto', 'duckdb' or 'pandas', found {engine!r}")
    if min_count is not None:
        check_min_count(min_count)
    if isinstance(data, AuditCounts):
        out = data
    elif is_spark_dataframe(data):  # grouped on the cluster (kneehip_bn.io.spark)
        out = spark_counts(data, model, mapping, dataset=dataset)
        out.model_hash = model_hash(as_model(model))
    elif isinstance(data, EncodedAudit):
        m = as_model(model)
        out = counts_from_codes(data.codes, data.cards, data.columns, states_of(m, data.columns),
                                data.weights, data.n_rows, [data.dataset], model_name(m))
        out.model_hash = model_hash(m)
    else:
        mp = load_mapping(mapping)
        name = source_name(dataset, mp, data, table, sql)
        m = as_model(model)
        if is_url(data):
            out = _sql_counts(data, table, sql, m, mp, name)
        elif is_dataframe(data) or engine == "pandas":
            out = _pandas_counts(data, m, mp, name, table, sql, chunksize, progress)
        else:
            out = _file_counts(data, m, mp, name, table, sql, chunksize, progress, memory_limit,
                               threads)
        out.model_hash = model_hash(m)
    if min_count is not None:
        report = out.report
        out = generalise(out, min_count)
        out.report = report
    return out


def _file_counts(data: Any, m: Any, mp: AuditMapping | None, name: str, table: str | None,
                 sql: str | None, chunksize: int, progress: bool, memory_limit: str | None,
                 threads: int | None) -> AuditCounts:
    """Files through DuckDB; through pandas what only pandas reads as the package reads it."""
    no_sql_args(table, sql, "a file")
    src = resolve(data)
    if src is None:  # a header pandas reads differently: keep its messages
        return _pandas_counts(data, m, mp, name, None, None, chunksize, progress)
    try:
        return duckdb_counts(src, m, mp, name, progress, memory_limit, threads)
    except NotForDuckDBError:  # a layout only pandas reads: its rows, its messages
        return _pandas_counts(data, m, mp, name, None, None, chunksize, progress)


def _pandas_counts(data: Any, m: Any, mp: AuditMapping | None, name: str, table: str | None,
                   sql: str | None, chunksize: int, progress: bool) -> AuditCounts:
    """The reference path: the one streaming loop, counts merged chunk by chunk."""
    acc: AuditCounts | None = None
    rows = 0
    for ch in stream_encoded(data, m, mp, table=table, sql=sql, chunksize=chunksize,
                             dataset=name, reader="pandas", progress=progress,
                             desc="counting rows"):
        enc = ch.encoder
        part = counts_from_codes(ch.codes, enc.cards, enc.columns, states_of(m, enc.columns),
                                 ch.weights, len(ch), [name], model_name(m))
        acc = part if acc is None else merge_counts([acc, part], datasets=acc.datasets)
        rows += len(ch)
    assert acc is not None
    acc.n_rows = rows
    acc.report = enc.finish()
    return acc


def _sql_counts(url: str, table: str | None, sql: str | None, m: Any, mp: AuditMapping | None,
                name: str) -> AuditCounts:
    """A ``GROUP BY`` inside the database, the distinct patterns validated and encoded."""
    box: dict[str, Any] = {}

    def plan(cols: list[str]) -> list[str]:
        box["enc"] = ChunkEncoder(cols, m, mp, source=name)
        return [p.column for p in box["enc"].plans]

    _, frame, mult = grouped_rows(url, table, sql, plan)
    enc = box["enc"]
    codes, _, _ = enc.encode(frame, 0, multiplicity=mult)
    if enc.unknown_seen:  # a database table has no row order: first row numbers are not given
        enc.fill_first_rows(lambda c, lab: [])
    enc.check_chunk(final=False)  # as reading rows does: value errors before whole-table checks
    report = enc.finish()
    report.raise_if_errors()
    out = counts_from_codes(codes, enc.cards, enc.columns, states_of(m, enc.columns),
                            mult.astype(float), int(mult.sum()), [name], model_name(m))
    out.report = report
    return out
