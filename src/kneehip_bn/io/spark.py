"""Spark for audits that live on a cluster: count where the data are, infer per pattern.

The fit needs only the count of each distinct pattern of an audit (blanks included), and
batch posteriors depend only on a row's pattern. So with a Spark DataFrame:

* **counts** (:func:`spark_counts`, used by :func:`~kneehip_bn.io.counting.audit_counts` and
  :meth:`~kneehip_bn.PriorFitter.fit`): the columns the model uses are cast to text and
  grouped on the cluster (``groupBy(...).count()``); only the distinct patterns and their
  counts come to the driver, where they are validated (unknown codes, blank columns, the
  same messages as for a file, with row counts weighted by the pattern counts; Spark rows
  have no order, so no row numbers) and encoded.
* **batch posteriors** (:func:`spark_join_posteriors`, used by
  :func:`~kneehip_bn.batch_posteriors`): the same distinct patterns are inferred locally
  by the compiled engine, sent back as a small Spark DataFrame keyed by the pattern, and
  joined to the rows on the cluster. Rows never travel to the driver; the result is a
  Spark DataFrame.

pyspark is an optional extra (``pip install "kneehip_bn[spark]"``) imported only here and
only when used. :func:`session` honours ``SPARK_REMOTE`` (Spark Connect) and
``SPARK_MASTER``; the default is ``local[2]`` with the web UI off.

Examples
--------
>>> from kneehip_bn.io.spark import is_spark_dataframe
>>> import pandas as pd
>>> is_spark_dataframe(pd.DataFrame())
False
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from kneehip_bn.errors import DataError, KneeHipError
from kneehip_bn.inference.queries import as_model
from kneehip_bn.io.counts import counts_from_codes, model_name, states_of
from kneehip_bn.io.encode import ChunkEncoder, unknown_msg
from kneehip_bn.io.mapping import load_mapping, norm_code
from kneehip_bn.io.patterns import group_patterns

__all__ = [
    "is_spark_dataframe",
    "read_spark",
    "session",
    "spark_counts",
    "spark_join_posteriors",
    "spark_split_counts",
    "write_spark_table",
]

INSTALL_HINT = 'pip install "kneehip_bn[spark]"'
_KEY = "__kneehip_pattern__"
_COUNT = "__kneehip_count__"
_SPLIT = "__kneehip_test__"
_NULL = "\u2400"   # stands for a blank cell inside the pattern key
_SEP = "\u241f"


def _pyspark() -> Any:
    try:
        import pyspark.sql as psql
    except ImportError:
        raise KneeHipError("Spark: pyspark is not installed: expected the spark extra; install "
                           f"it with {INSTALL_HINT}") from None
    return psql


def is_spark_dataframe(x: Any) -> bool:
    """Whether ``x`` is a Spark DataFrame (classic or Spark Connect), without importing
    pyspark."""
    t = type(x)
    return t.__name__ == "DataFrame" and t.__module__.startswith("pyspark.sql")


def session(master: str | None = None) -> Any:
    """The active Spark session, or a new one.

    ``SPARK_REMOTE`` (a Spark Connect URL) wins; otherwise ``master``, then
    ``SPARK_MASTER``, then ``local[2]``. A local session runs without the web UI and with
    two shuffle partitions.
    """
    psql = _pyspark()
    remote = os.environ.get("SPARK_REMOTE")
    builder = psql.SparkSession.builder.appName("kneehip_bn")
    if remote:
        return builder.remote(remote).getOrCreate()
    active = psql.SparkSession.getActiveSession()
    if active is not None and master is None:
        return active
    url = master or os.environ.get("SPARK_MASTER") or "local[2]"
    builder = builder.master(url).config("spark.sql.execution.arrow.pyspark.enabled", "true")
    if url.startswith("local"):
        builder = builder.config("spark.ui.enabled", "false").config(
            "spark.sql.shuffle.partitions", "2")
    return builder.getOrCreate()


def read_spark(source: str, spark: Any = None) -> Any:
    """A Spark DataFrame from a table name or a path Spark can read.

    Paths (anything that exists locally, has a ``scheme://`` or a glob) are read by their
    ending: ``.csv``/``.txt`` (comma) and ``.tsv`` (tab) as text with a header (every
    column as text: the model's codes are labels), ``.json`` as JSON lines, anything else
    (``.parquet``, a folder of parts) as Parquet. Other names are catalogue tables.
    """
    spark = spark or session()
    src = str(source)
    low = src.lower().rstrip("/")
    is_path = os.path.exists(src) or "://" in src or any(ch in src for ch in "*?[")
    try:
        if not is_path:
            return spark.table(src)
        if low.endswith((".csv", ".txt", ".tsv", ".csv.gz")):
            return spark.read.csv(src, header=True, inferSchema=False,
                                  sep="\t" if low.endswith(".tsv") else ",")
        if low.endswith((".json", ".jsonl")):
            return spark.read.json(src)
        return spark.read.parquet(src)
    except Exception as exc:  # AnalysisException and friends: one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"--spark {src}: Spark could not read it ({first[:300]}): expected a "
                        "table name or a CSV/Parquet/JSON path Spark can read") from None


def _plan(df: Any, model: Any, mapping: Any, keep: Sequence[str], source: str):
    m = as_model(model)
    enc = ChunkEncoder(list(df.columns), m, load_mapping(mapping), keep=keep, source=source)
    if enc.fatal:  # column problems (unmapped, unknown, duplicates): before any Spark job
        enc.finish(final=False).raise_if_errors()
    used = [p.column for p in enc.plans]
    return m, enc, used


def _keyed(df: Any, used: Sequence[str]) -> Any:
    """``df`` with the pattern key of the used columns (text; blanks stand for themselves)."""
    psql = _pyspark()
    F = psql.functions
    parts = [F.coalesce(F.col(f"`{c}`").cast("string"), F.lit(_NULL)) for c in used]
    key = F.concat_ws(_SEP, *parts) if parts else F.lit("")
    return df.withColumn(_KEY, key)


def _distinct_patterns(df: Any, used: Sequence[str], split: Any = None) -> Any:
    """The distinct patterns of the used columns with their counts, as pandas (the only
    data brought to the driver); with ``split`` (a boolean column expression) grouped by it
    too, as column ``_SPLIT``."""
    psql = _pyspark()
    F = psql.functions
    cols = [F.col(f"`{c}`").cast("string").alias(c) for c in used]
    keys = [F.col(f"`{c}`") for c in used]
    if split is not None:
        cols.append(split.alias(_SPLIT))
        keys.append(F.col(_SPLIT))
    grouped = df.select(*cols).groupBy(*keys).agg(F.count(F.lit(1)).alias(_COUNT))
    return grouped.toPandas()


def _encode_distinct(enc: Any, pdf: Any, used: Sequence[str]):
    """Encode distinct patterns; the encoder's tallies (rows, non-blank cells, rows with
    an unknown code) are re-weighted by the pattern counts so that every message counts
    rows, as for a file."""
    w = pdf.pop(_COUNT).to_numpy(dtype=float)
    codes, diag, _ = enc.encode(pdf, 0)
    total = float(w.sum())
    enc.n_rows = int(total)
    pos = {p.column: i for i, p in enumerate(enc.plans)}
    for j, p in enumerate(enc.node_plans):
        enc.nonblank[pos[p.column]] = int(w[codes[:, j] >= 0].sum())
    if enc.diag_plan is not None and diag is not None:
        enc.nonblank[pos[enc.diag_plan.column]] = int(w[diag >= 0].sum())
    by_col = {p.column: p for p in enc.plans}
    for (col, lab), rec in enc.unknown_seen.items():
        vals = pdf[col].map(lambda v: None if v is None else norm_code(v))
        n = int(w[(vals == lab).to_numpy()].sum())
        p = by_col[col]
        valid = list(p.codes) if p.codes is not None else p.labels
        rec["count"] = n
        rec["rows"] = []
        # Spark rows have no order, so no row numbers
        rec["message"] = unknown_msg(p, lab, n, [], valid, rec["suggestion"])
    return codes, diag, w


def spark_counts(df: Any, model: Any = None, mapping: Any = None, *,
                 dataset: str | None = None) -> Any:
    """:class:`~kneehip_bn.io.counts.AuditCounts` of a Spark DataFrame, grouped on the cluster.

    Parameters
    ----------
    df : pyspark.sql.DataFrame
        One row per patient, columns named like the model's nodes (or mapped).
    model, mapping : optional
        As for :func:`~kneehip_bn.io.counting.audit_counts`.
    dataset : str, optional
        Name recorded in the counts (default ``"spark"``).

    Raises
    ------
    DataError
        Unknown codes, unmapped or blank columns (the messages of a file audit, with row
        counts and without row numbers).
    """
    name = dataset or "spark"
    m, enc, used = _plan(df, model, mapping, (), name)
    pdf = _distinct_patterns(df, used)
    codes, _, w = _encode_distinct(enc, pdf, used)
    enc.raise_if_errors()
    out = counts_from_codes(codes, enc.cards, enc.columns, states_of(m, enc.columns), w,
                            enc.n_rows, [name], model_name(m))
    out.report = enc.finish()
    return out


def spark_split_counts(df: Any, model: Any, mapping: Any, *, holdout: float, seed: int | None,
                       dataset: str | None = None) -> tuple[Any, Any, Any, list[str]]:
    """Counts of a Spark DataFrame with a held-out split drawn on the cluster.

    Each row is held out with probability ``holdout`` (``rand(seed) < holdout``: Spark's
    generator, reproducible for the same data and partitioning, not the same draws as the
    in-memory split); one grouped pass (patterns x held out) is brought to the driver.

    Returns
    -------
    (all counts, training counts, test, diagnosis labels)
        ``test`` is ``(patterns, working-diagnosis codes, counts)`` of the held-out rows
        that record a diagnosis; training and test are None without a diagnosis column.
    """
    name = dataset or "spark"
    m, enc, used = _plan(df, model, mapping, (), name)
    if enc.diag_plan is None:
        return spark_counts(df, model, mapping, dataset=dataset), None, None, []
    F = _pyspark().functions
    split = F.rand(0 if seed is None else int(seed)) < float(holdout)
    pdf = _distinct_patterns(df, used, split)
    is_test = pdf.pop(_SPLIT).to_numpy(dtype=bool)
    codes, diag, w = _encode_distinct(enc, pdf, used)
    enc.raise_if_errors()
    states, mname = states_of(m, enc.columns), model_name(m)
    out = counts_from_codes(codes, enc.cards, enc.columns, states, w, enc.n_rows, [name], mname)
    out.report = enc.finish()
    train = counts_from_codes(codes[~is_test], enc.cards, enc.columns, states, w[~is_test],
                              int(w[~is_test].sum()), [name], mname)
    sel = is_test & (diag >= 0)
    both = np.concatenate([codes[sel], diag[sel, None]], axis=1)
    pats, cnt, _ = group_patterns(both, [*enc.cards, len(enc.diag_labels)], w[sel])
    return out, train, (pats[:, :-1], pats[:, -1], cnt), list(enc.diag_labels)


def spark_join_posteriors(df: Any, model: Any, mapping: Any, keep: Sequence[str],
                          infer: Callable[[Any, np.ndarray], tuple[np.ndarray, list[str], Any]],
                          status_labels: Sequence[str]) -> Any:
    """Per-row results of a Spark DataFrame, as a Spark DataFrame (nothing collected).

    The distinct patterns are found on the cluster, ``infer(encoder, codes)`` computes
    ``(matrix, column names, status codes or None)`` for them on the driver (for
    :func:`~kneehip_bn.batch_posteriors`, one engine pass over the patterns) and the
    results are joined back to the rows by their pattern key. Columns: ``keep``, then the
    named columns (and ``status``, labelled by ``status_labels``, when ``infer`` gives
    one). Spark rows have no order: keep an id column to match rows.
    """
    import pandas as pd

    F = _pyspark().functions
    _, enc, used = _plan(df, model, mapping, keep, "spark")
    missing = [k for k in keep if k not in df.columns]
    if missing:  # the encoder reported them already; belt and braces
        raise DataError(f"keep: columns {missing} are not in the Spark DataFrame")
    pdf = _distinct_patterns(df, used)
    raw = pdf[list(used)].copy()
    codes, _, _ = _encode_distinct(enc, pdf, used)
    enc.raise_if_errors()
    mat, names, status = infer(enc, codes)
    key = raw.fillna(_NULL).astype(str)
    keys = key.agg(_SEP.join, axis=1) if len(used) else pd.Series([""] * len(raw))
    tmp = [f"__kneehip_p{j}__" for j in range(len(names))]  # no clash with input columns
    post = pd.DataFrame(mat, columns=tmp)
    post.insert(0, _KEY, keys.to_numpy())
    if status is not None:
        post["__kneehip_status__"] = np.asarray(status_labels, dtype=object)[status]
    spark = df.sparkSession
    right = spark.createDataFrame(post)
    left = _keyed(df.select(*[F.col(f"`{c}`") for c in dict.fromkeys([*keep, *used])]), used)
    out = left.join(right, on=_KEY, how="left")
    cols = [F.col(f"`{k}`") for k in keep] + [F.col(t).alias(c) for t, c in zip(tmp, names)]
    if status is not None:
        cols.append(F.col("__kneehip_status__").alias("status"))
    return out.select(*cols)


def write_spark_table(sdf: Any, output: str, overwrite: bool = False) -> str:
    """Write a Spark DataFrame where it lives: a folder of part files written by Spark's
    executors (nothing collected), CSV with a header for a ``.csv``/``.tsv`` name, Parquet
    otherwise; an existing output is refused unless ``overwrite`` (Spark's
    ``errorifexists`` / ``overwrite`` modes)."""
    writer = sdf.write.mode("overwrite" if overwrite else "errorifexists")
    low = os.fspath(output).lower().rstrip("/")
    if low.endswith((".csv", ".tsv")):
        writer.csv(os.fspath(output), header=True, sep="\t" if low.endswith(".tsv") else ",")
    else:
        writer.parquet(os.fspath(output))
    return os.fspath(output)
