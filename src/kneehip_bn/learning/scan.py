"""Reading an audit for fitting: one streaming loop, pattern counts and the held-out split.

Every reader of audit rows in learning goes through :class:`EncodedStream` (chunks ->
encoder -> ``check_chunk``) and :func:`read_chunks` (pyarrow's dictionary-encoded CSV
reader when it can, pandas otherwise, with the same validation either way): fitting's
scan here, the streaming posterior writer in :mod:`kneehip_bn.learning.batch` and the
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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from kneehip_bn._util.progress import progress_bar
from kneehip_bn.errors import DataError
from kneehip_bn.io.arrow_csv import NotFastError, iter_csv_coded
from kneehip_bn.io.audit_report import PROBLEM_COLUMNS, AuditReport
from kneehip_bn.io.counting import audit_counts
from kneehip_bn.io.counts import AuditCounts, counts_from_codes, merge_counts, model_name, states_of
from kneehip_bn.io.counts_file import read_counts
from kneehip_bn.io.encode import ChunkEncoder, EncodedAudit
from kneehip_bn.io.mapping import load_mapping
from kneehip_bn.io.patterns import group_patterns
from kneehip_bn.io.sources import iter_audit, single_chunk, source_name
from kneehip_bn.io.spark import is_spark_dataframe, spark_counts
from kneehip_bn.io.writers import fast_csv_sep

__all__ = ["EncodedStream", "Scan", "as_counts_list", "read_chunks", "scan_audit", "scan_source"]


class EncodedStream:
    """Chunks of audit rows -> encoder -> ``check_chunk``: the one streaming loop.

    Iterating yields ``(chunk, codes, diagnosis codes, offset)`` per chunk; ``encoder`` is
    the encoder (made from the first chunk's columns) and ``rows`` the rows read so far.
    """

    def __init__(self, chunks: Any, single: bool, model: Any, mapping: Any, source: str,
                 keep: Sequence[str] = ()) -> None:
        self.chunks, self.single, self.model, self.mapping = chunks, single, model, mapping
        self.source, self.keep = source, keep
        self.encoder: Any = None
        self.rows = 0

    def __iter__(self) -> Iterator[tuple[Any, np.ndarray, Any, int]]:
        for chunk in self.chunks:
            if self.encoder is None:
                self.encoder = ChunkEncoder(chunk.columns, self.model, self.mapping, keep=self.keep,
                                        source=self.source)
            codes, diag, _ = self.encoder.encode(chunk, self.rows)
            self.encoder.check_chunk(final=self.single)
            yield chunk, codes, diag, self.rows
            self.rows += len(chunk)


def read_chunks(consume: Callable[[Any, bool], Any], data: Any, *, table: Any, sql: Any,
                chunksize: int, text: Sequence[str] = (), fast: bool = True) -> Any:
    """``consume(chunks, single)`` on the audit's chunks: pyarrow's dictionary-encoded
    reader for a plain CSV/TSV file (when ``fast``), else, or when pyarrow would read the
    file differently from pandas, pandas (which reads it or reports why it cannot)."""
    sep = fast_csv_sep(data, table, sql) if fast else None
    if sep is not None:
        import pyarrow as pa

        try:
            return consume(iter_csv_coded(data, chunksize=chunksize, text=text, sep=sep), False)
        except (NotFastError, pa.ArrowException, UnicodeDecodeError):
            pass  # pandas reads it (or reports why it cannot), as below
    return consume(iter_audit(data, table=table, sql=sql, chunksize=chunksize),
                   single_chunk(data, chunksize))


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
    return read_chunks(lambda chunks, single: _scan_chunks(
        EncodedStream(chunks, single, model, mp, name), model, name, holdout, seed, progress),
        data, table=table, sql=sql, chunksize=chunksize)


def _scan_chunks(stream: EncodedStream, model, name, holdout, seed, progress) -> Scan:
    rng = np.random.default_rng(seed)
    parts, train_parts, test_parts = [], [], []
    bar = progress_bar(enabled=progress, desc="reading audit", unit="rows")
    for chunk, codes, diag, _ in stream:
        enc = stream.encoder
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
        bar.update(len(chunk))
    bar.close()
    enc = stream.encoder
    assert enc is not None
    report = enc.finish()
    report.raise_if_errors()
    counts = merge_counts(parts, datasets=[name]) if len(parts) > 1 else parts[0]
    counts.n_rows = stream.rows
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
    if tc.sum() >= 10 and train.n_rows > 0:
        return train, (tp, td, tc)
    return None, None


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


def scan_source(data: Any, spec: Any, mapping: Any = None, dataset_name: str | None = None,
                table: str | None = None, sql: str | None = None, *, holdout: float = 0.0,
                seed: int | None = 0, chunksize: int = 500_000, progress: bool = False) -> Scan:
    """The :class:`Scan` of anything ``PriorFitter.fit`` takes: counts (several are
    merged), an EncodedAudit, a Spark DataFrame (grouped on the cluster) or audit rows
    (streamed; the only source with a held-out split)."""
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
    if is_spark_dataframe(data):  # grouped on the cluster; no held-out split
        c = spark_counts(data, spec, mapping, dataset=dataset_name)
        return Scan(c, None, None, _empty_report(c.n_rows, c.datasets[0]), c.datasets[0], [])
    return scan_audit(data, spec, mapping, table=table, sql=sql, dataset=dataset_name,
                      holdout=float(holdout), seed=seed, chunksize=int(chunksize),
                      progress=bool(progress))
