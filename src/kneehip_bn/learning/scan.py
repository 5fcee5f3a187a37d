"""Reading an audit for fitting: pattern counts and the held-out split.

Audit rows are read through the one streaming loop,
:func:`kneehip_bn.io.encode.stream_encoded` (pyarrow's dictionary-encoded CSV reader when
it reads the file exactly as pandas, pandas otherwise, with the same validation either
way), as are the streaming posterior writer in :mod:`kneehip_bn.learning.batch` and the
search for the first impossible rows in :mod:`kneehip_bn.learning.impossible`.

:func:`scan_source` turns whatever ``PriorFitter.fit`` is given (an audit, an
:class:`~kneehip_bn.io.encode.EncodedAudit`, counts, a Spark DataFrame) into a
:class:`Scan`: the pattern counts, and with ``holdout > 0`` and a working-diagnosis
column a seeded random split into training counts and test patterns.

Examples
--------
>>> from kneehip_bn import load_spec
>>> from kneehip_bn.learning.simulate import simulate_audit
>>> spec = load_spec("knee_hip_basic")
>>> s = scan_source(simulate_audit(300, seed=0, diagnosis_noise=0.1, model=spec), spec,
...                 holdout=0.25)
>>> s.counts.n_rows, s.train.n_rows + int(s.test[2].sum()) <= 300
(300, True)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from kneehip_bn.errors import DataError
from kneehip_bn.io.audit_report import PROBLEM_COLUMNS, AuditReport
from kneehip_bn.io.counting import audit_counts
from kneehip_bn.io.counts import AuditCounts, counts_from_codes, merge_counts, model_name, states_of
from kneehip_bn.io.counts_file import read_counts
from kneehip_bn.io.duckdb_source import columns_of, resolve
from kneehip_bn.io.encode import ChunkEncoder, EncodedAudit, stream_encoded
from kneehip_bn.io.mapping import load_mapping
from kneehip_bn.io.patterns import group_patterns
from kneehip_bn.io.sources import fast_csv_sep, is_url, source_name
from kneehip_bn.io.spark import is_spark_dataframe, spark_counts, spark_split_counts

__all__ = ["Scan", "as_counts_list", "scan_audit", "scan_source"]


@dataclass
class Scan:
    counts: AuditCounts
    train: AuditCounts | None
    test: tuple[np.ndarray, np.ndarray, np.ndarray] | None  # patterns, diagnosis, counts
    report: Any
    dataset: str
    diagnosis_labels: list[str]


def scan_audit(data, model, mapping, *, table, sql, dataset, holdout, seed, chunksize, progress) -> Scan:
    """Read (streaming), validate and summarise an audit into pattern counts.

    With a diagnosis column and ``holdout > 0`` the rows are also split at random (seeded)
    into a training part (its own pattern counts) and a test part (patterns with the
    working diagnosis), for held-out accuracy.
    """
    mp = load_mapping(mapping)
    name = source_name(dataset, mp, data, table, sql)
    rng = np.random.default_rng(seed)
    states, mname = None, model_name(model)
    parts, train_parts, test_parts = [], [], []
    enc, rows = None, 0
    for ch in stream_encoded(data, model, mp, table=table, sql=sql, chunksize=chunksize,
                             dataset=name, progress=progress):
        enc, codes, diag = ch.encoder, ch.codes, ch.diagnosis
        states = states or states_of(model, enc.columns)
        parts.append(counts_from_codes(codes, enc.cards, enc.columns, states, None, len(ch),
                                       [name], mname))
        if diag is not None and holdout > 0:
            is_test = rng.random(len(ch)) < holdout
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
        rows += len(ch)
    assert enc is not None  # the stream yields at least one chunk, or raises
    report = enc.finish()
    counts = merge_counts(parts, datasets=[name]) if len(parts) > 1 else parts[0]
    counts.n_rows = rows
    train, test = _split_parts(train_parts, test_parts, name)
    return Scan(counts, train, test, report, name, list(enc.diag_labels))


def _split_parts(train_parts, test_parts, name):
    """(training counts, test patterns) of the held-out split, or (None, None) when the
    test part has fewer than 10 rows or the training part none."""
    if not (train_parts and test_parts):
        return None, None
    train = merge_counts(train_parts, datasets=[name])
    tp = np.concatenate([t[0] for t in test_parts])
    td = np.concatenate([t[1] for t in test_parts])
    tc = np.concatenate([t[2] for t in test_parts])
    return _usable_split(train, (tp, td, tc))


def _usable_split(train, test):
    """``(train, test)``, or (None, None) when the test part has fewer than 10 rows with a
    diagnosis or the training part none."""
    if train is None or test is None or test[2].sum() < 10 or train.n_rows <= 0:
        return None, None
    return train, test


def as_counts_list(data, spec) -> list[AuditCounts] | None:
    """``data`` as a list of counts when it is counts (or a list of counts and counts
    paths, each read with :func:`~kneehip_bn.io.counts_file.read_counts`), else None."""
    if isinstance(data, AuditCounts):
        return [data]
    if isinstance(data, (list, tuple)) and data and all(
            isinstance(d, (AuditCounts, str, os.PathLike)) for d in data):
        return [d if isinstance(d, AuditCounts) else read_counts(d, spec) for d in data]
    return None


def _empty_report(n_rows: int, name: str) -> AuditReport:
    import pandas as pd

    return AuditReport(pd.DataFrame(columns=PROBLEM_COLUMNS),
                       pd.DataFrame(columns=["column", "role", "node", "blank",
                                             "blank_fraction"]), n_rows, name)


def _count_where_they_live(data, spec, mapping, table, sql, holdout) -> bool:
    """Whether to count the audit where it lives (DuckDB for Parquet files, globs and
    folders; the database's ``GROUP BY`` for a URL) instead of streaming its rows: yes,
    unless a held-out split is asked for and the audit has a working-diagnosis column (the
    split is drawn row by row), or it is one plain CSV/TSV file. That one streams through
    pyarrow's dictionary-encoded reader, measured faster than DuckDB's two passes with
    their NUL scan (1,000,000 rows: 1.8 s against 3.3-4.3 s; a 5,000,000-row Parquet
    file: DuckDB 3.2-4.2 s, streaming 4.3-4.7 s), in memory bounded by its patterns."""
    if not isinstance(data, (str, os.PathLike)):
        return False  # a DataFrame: already in memory
    if fast_csv_sep(data, table, sql) is not None:
        return False  # one plain CSV file: the pyarrow stream is faster (above)
    if not holdout or float(holdout) <= 0:
        return True
    if is_url(data):
        return False  # the columns are only known once queried: stream them
    src = resolve(data)
    if src is None:
        return False  # a header only pandas reads as the package does
    enc = ChunkEncoder(columns_of(src), spec, load_mapping(mapping))
    return enc.diag_plan is None


def scan_source(data: Any, spec: Any, mapping: Any = None, dataset_name: str | None = None,
                table: str | None = None, sql: str | None = None, *, holdout: float = 0.0,
                seed: int | None = 0, chunksize: int = 500_000, progress: bool = False) -> Scan:
    """The :class:`Scan` of anything ``PriorFitter.fit`` takes: counts (several are
    merged), an EncodedAudit, a Spark DataFrame (grouped on the cluster), Parquet files,
    globs, folders or a database (counted where they live:
    :func:`kneehip_bn.io.counting.audit_counts`), one CSV file or a DataFrame (streamed).
    A held-out split of an audit with a working-diagnosis column streams its rows (Spark
    draws it on the cluster)."""
    parts = as_counts_list(data, spec)
    if parts is not None:
        if mapping is not None:
            raise DataError("mapping: counts files are already in model codes; expected no "
                            "mapping with counts")
        c = merge_counts(parts) if len(parts) > 1 else parts[0]
        name = dataset_name or " + ".join(c.datasets) or "counts"
        return Scan(c, None, None, _empty_report(c.n_rows, name), name, [])
    if isinstance(data, EncodedAudit):
        c = audit_counts(data, spec)
        return Scan(c, None, None, data.report, dataset_name or data.dataset, [])
    if is_spark_dataframe(data):  # grouped on the cluster, the held-out split drawn there
        if holdout and float(holdout) > 0:
            c, train, test, labels = spark_split_counts(data, spec, mapping, holdout=float(holdout),
                                                        seed=seed, dataset=dataset_name)
            train, test = _usable_split(train, test)
        else:
            c, train, test, labels = spark_counts(data, spec, mapping, dataset=dataset_name), \
                None, None, []
        return Scan(c, train, test, c.report, c.datasets[0], labels)
    if _count_where_they_live(data, spec, mapping, table, sql, holdout):
        c = audit_counts(data, spec, mapping, table=table, sql=sql, dataset=dataset_name,
                         chunksize=int(chunksize), progress=bool(progress))
        name = c.datasets[0] if c.datasets else "audit"
        return Scan(c, None, None, c.report or _empty_report(c.n_rows, name), name, [])
    return scan_audit(data, spec, mapping, table=table, sql=sql, dataset=dataset_name,
                      holdout=float(holdout), seed=seed, chunksize=int(chunksize),
                      progress=bool(progress))
