"""Batch posteriors: each origin's posterior for every row of an audit.

Identical finding patterns are grouped (one int64 key per row and ``np.unique``) and the
compiled engine runs once per distinct pattern. :func:`batch_posteriors` returns a
DataFrame (or, for a Spark DataFrame, a Spark DataFrame joined on the cluster);
:func:`write_batch_posteriors` streams an audit of any size into a CSV or Parquet file
(read through :func:`~kneehip_bn.io.encode.stream_encoded`, written by
:class:`~kneehip_bn.io.writers.TableWriter`). Rows the model rules out follow
``on_impossible`` (:mod:`kneehip_bn.learning.impossible`).
"""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kneehip_bn._util.files import atomic_write, check_new_output
from kneehip_bn._util.progress import progress_bar
from kneehip_bn._util.runtime import single_blas_thread
from kneehip_bn.errors import DataError, ImpossibleEvidenceError, UnknownNameError
from kneehip_bn.inference.cache import get_engine
from kneehip_bn.inference.queries import as_model, node_groups, on_state
from kneehip_bn.io.encode import encode_audit, stream_encoded
from kneehip_bn.io.mapping import load_mapping
from kneehip_bn.io.patterns import group_patterns
from kneehip_bn.io.spark import is_spark_dataframe, spark_join_posteriors, write_spark_table
from kneehip_bn.io.writers import STATUS_LABELS, TableWriter
from kneehip_bn.learning.impossible import (
    RELAX_PROBABILITY,
    check_on_impossible,
    diagnose_impossible,
    relaxed_tables,
)

__all__ = ["STATUS_LABELS", "batch_posteriors", "posterior_matrix", "write_batch_posteriors"]


def _target_columns(engine, targets) -> list[tuple[str, str, int]]:
    """(output column, node, state index): P(on state) for two-state targets, else a
    column ``node=state`` per state."""
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


def posterior_matrix(*args: Any, **kw: Any):
    """Grouped posteriors of encoded rows (see :func:`_posterior_matrix_inner`), with
    BLAS on one thread."""
    with single_blas_thread():
        return _posterior_matrix_inner(*args, **kw)


def _posterior_matrix_inner(engine, enc_codes, columns, cards, targets, on_impossible, progress,
                            row_offset=0, expand=True):
    """Grouped posteriors: (n_rows, n_out) array, output column names; with
    ``expand=False`` the (n_patterns, n_out) array, names, and each row's pattern."""
    check_on_impossible(on_impossible, "on_impossible", _BATCH_MODES)
    tcols = _target_columns(engine, targets)
    nodes = sorted({t[1] for t in tcols})
    n = enc_codes.shape[0]
    pats, _, inv = group_patterns(enc_codes, cards)
    m = pats.shape[0]
    bar = progress_bar(enabled=progress if progress is not None else m > 200_000,
                       desc="posteriors", total=m, unit="rows")
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
        why = diagnose_impossible(engine, pats, columns, cnt, np.flatnonzero(bad))
        why.first_rows = [int(r) + row_offset for r in bad_rows[:5]]
        raise ImpossibleEvidenceError(why.message(hint=_BATCH_HINT))
    if bad.any() and on_impossible == "relax":
        b = np.flatnonzero(bad)
        why = diagnose_impossible(engine, pats, columns, np.ones(m), b)
        eng2 = engine.with_tables(relaxed_tables(engine, why.entries, RELAX_PROBABILITY))
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
        As in :class:`~kneehip_bn.learning.fitter.PriorFitter`.
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

    m = as_model(model)
    if targets is None:
        groups = node_groups(m)
        targets = [n for n in groups if groups[n] == "origin"]
    if is_spark_dataframe(data):
        def infer(enc: Any, codes: np.ndarray) -> tuple[np.ndarray, list[str], Any]:
            return posterior_matrix(get_engine(m), codes, enc.columns, enc.cards,
                                     list(targets), on_impossible, False)

        return spark_join_posteriors(data, m, mapping, keep, infer, STATUS_LABELS)
    enc = encode_audit(data, m, mapping, table=table, sql=sql, keep=keep)
    eng = get_engine(m)
    mat, names, status = posterior_matrix(eng, enc.codes, enc.columns, enc.cards,
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

    A Spark DataFrame is joined and written by Spark (a folder of part files:
    :func:`~kneehip_bn.io.spark.write_spark_table`); the rows written are then not counted
    (``-1``), as counting them would be another pass over the cluster.

    Returns
    -------
    (path, rows written)
    """
    if reader not in ("auto", "pandas"):
        raise DataError(f"reader: expected 'auto' or 'pandas', found {reader!r}")
    out = Path(output)
    check_new_output(out, overwrite)
    if is_spark_dataframe(data):  # joined and written on the cluster: no row counted here
        sdf = batch_posteriors(data, model, mapping, targets, on_impossible=on_impossible,
                               keep=keep)
        return Path(write_spark_table(sdf, os.fspath(output), overwrite)), -1
    kind = "parquet" if out.name.lower().endswith((".parquet", ".pq")) else "csv"
    m = as_model(model)
    eng = get_engine(m)
    if targets is None:
        groups = node_groups(m)
        targets = [n for n in groups if groups[n] == "origin"]
    mp = load_mapping(mapping)  # a bad mapping is refused before anything is made
    stream = stream_encoded(data, m, mp, table=table, sql=sql, chunksize=chunksize,
                            keep=list(keep), reader=reader)
    out.parent.mkdir(parents=True, exist_ok=True)
    n = [0]

    def write(tmp: str) -> None:
        n[0] = _write_posteriors(stream, Path(tmp), kind, eng, list(targets), on_impossible,
                                 list(keep), progress)

    atomic_write(out, write, overwrite=overwrite)
    return out, n[0]


def _write_posteriors(stream, out, kind, eng, targets, on_impossible, keep, progress) -> int:
    """Encode each chunk, then compute and write it in parts of ``_PART_ROWS`` rows, the
    writing of one part (a background thread: pyarrow formats without the GIL) overlapping
    the computing of the next."""
    from concurrent.futures import ThreadPoolExecutor

    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    rows = 0
    writer = None
    pending = None
    bar = progress_bar(enabled=progress, desc="posteriors", unit="rows")
    pool = ThreadPoolExecutor(1)
    try:
        for ch in stream:  # raises after the last chunk when the audit has an error
            chunk, codes, offset, enc = ch.frame, ch.codes, ch.offset, ch.encoder
            n = len(chunk)
            rows += n
            if n == 0:
                continue
            kept = [chunk[k] if k in chunk else None for k in keep]
            for a, b in _parts(n):
                mat, names, inv, status = posterior_matrix(
                    eng, codes[a:b], enc.columns, enc.cards, targets, on_impossible, False,
                    row_offset=offset + a, expand=False)
                if writer is None:
                    writer = TableWriter(tmp, kind, keep, names, status is not None)
                if pending is not None:
                    pending.result()  # one part in flight: bounded memory, order kept
                part = [None if k is None else _rows(k, a, b) for k in kept]
                pending = pool.submit(writer.write, mat, part, inv, status)
                bar.update(b - a)
        if pending is not None:
            pending.result()
            pending = None
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
    return rows


# the ways forward for impossible rows in a batch (fit's are in learning.impossible)
_BATCH_HINT = ("rerun with --on-impossible drop (blank posteriors and a status column) or "
               f"--on-impossible relax (each contradicted zero gets probability "
               f"{RELAX_PROBABILITY:g}, status 'relaxed'); in Python on_impossible='drop' or "
               "'relax'")

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

