"""Writing tables: audit tables (``kneehip simulate``) and streamed posterior files.

:func:`write_table` writes a DataFrame to CSV or Parquet (by extension) through the one
atomic writer. :class:`TableWriter` appends chunks of (kept columns, posterior matrix)
to a CSV or Parquet file, as ``write_batch_posteriors`` computes them: CSV text is
formatted by pyarrow (the shortest round-trip form of every float) in two threads, each
on half of the rows, and written in order. :func:`fast_csv_sep` says whether an input is
a plain CSV/TSV file that pyarrow's dictionary-encoded reader can stream.

Examples
--------
>>> import tempfile, numpy as np
>>> from pathlib import Path
>>> p = Path(tempfile.mkdtemp()) / "post.csv"
>>> w = TableWriter(p, "csv", [], ["knee_pathology"])
>>> w.write(np.array([[0.25], [0.5]]), [])
>>> w.close()
>>> p.read_text()
'"knee_pathology"\\n0.25\\n0.5\\n'
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kneehip_bn._util.files import atomic_write
from kneehip_bn.errors import ParameterError

__all__ = ["STATUS_LABELS", "TableWriter", "table_format", "write_csv_arrow",
           "write_table"]

#: values of the ``status`` column of batch posteriors (``on_impossible="drop"/"relax"``)
STATUS_LABELS = ("ok", "impossible", "relaxed")


class TableWriter:
    """Appends (kept columns, posterior matrix) chunks to a CSV or Parquet file.

    CSV text is formatted by pyarrow (shortest round-trip form of every float) in two
    threads, each on half of the rows, and written in order (formatting each distinct
    pattern once and copying its text to the rows was measured slower). With ``status``
    the impossible rows' posteriors are blank (null) and a ``status`` column of
    :data:`STATUS_LABELS` follows.
    """

    def __init__(self, path: Path, kind: str, keep: Sequence[str], names: Sequence[str],
                 status: bool = False):
        self.path, self.kind, self.keep, self.names = path, kind, list(keep), list(names)
        self.status = status
        self.writer: Any = None
        self.file: Any = None

    def _table(self, mat: np.ndarray, kept: Sequence[Any], inv: np.ndarray | None = None,
               status: np.ndarray | None = None) -> Any:
        import pyarrow as pa

        cols: dict[str, Any] = {}
        for k, col in zip(self.keep, kept):
            if col is None:
                continue
            if isinstance(col, (pa.Array, pa.ChunkedArray)):
                cols[k] = col
            else:  # a pandas column (or factorised text): as objects, as read
                if hasattr(col, "labels"):
                    col = np.asarray(col.labels, dtype=object)[col.codes]
                else:
                    col = col.astype(object).to_numpy()
                cols[k] = pa.array(col)
        for j, c in enumerate(self.names):  # from the buffer: pa.array() would import pandas
            col = np.ascontiguousarray(mat[:, j], dtype=np.float64)
            if inv is not None:
                col = col[inv]
            valid = None
            if self.status:  # impossible rows: blank (null), not NaN
                ok = ~np.isnan(col)
                if not ok.all():
                    valid = pa.py_buffer(np.packbits(ok, bitorder="little"))
            cols[c] = pa.Array.from_buffers(pa.float64(), col.shape[0],
                                            [valid, pa.py_buffer(col)])
        if self.status:
            st = status if inv is None or status is None else status[inv]
            cols["status"] = pa.array(list(STATUS_LABELS)).take(
                pa.array(np.zeros(mat.shape[0] if inv is None else inv.shape[0], np.int8)
                         if st is None else st.astype(np.int8)))
        return pa.table(cols)

    def write(self, mat: np.ndarray, kept: Sequence[Any], inv: np.ndarray | None = None,
              status: np.ndarray | None = None) -> None:
        """Append rows: ``mat`` (one row per output row, or per pattern with ``inv`` giving
        each output row's pattern); ``status`` per row of ``mat``."""

        tbl = self._table(mat, kept, inv, status)
        if self.kind == "parquet":
            import pyarrow.parquet as pq

            if self.writer is None:
                self.writer = pq.ParquetWriter(self.path, tbl.schema)
            self.writer.write_table(tbl)
            return
        self._header(tbl)
        self.file.write(self._format(tbl))

    def _style(self, tbl: Any) -> str:
        import pyarrow as pa

        # numbers and the status labels need no quotes; kept text columns might
        return "none" if all(pa.types.is_floating(t) or (self.status and c == "status")
                             for c, t in zip(tbl.schema.names, tbl.schema.types)) else "needed"

    def _header(self, tbl: Any) -> None:
        if self.file is None:
            self.file = open(self.path, "wb")
            names = tbl.schema.names
            if self.status and self._style(tbl) == "none" and not any(
                    ch in c for c in names for ch in ',"\r\n'):
                # pyarrow quotes a header with a text column even unquoted: write it plain
                self.file.write((",".join(names) + "\n").encode())
            else:
                self.file.write(_csv_bytes(tbl.slice(0, 0), self._style(tbl), header=True))

    def _format(self, tbl: Any) -> bytes:
        """CSV text of the rows (no header), in two threads for large tables."""
        style = self._style(tbl)
        n = tbl.num_rows
        if n < 50_000:
            return _csv_bytes(tbl, style)
        from concurrent.futures import ThreadPoolExecutor

        half = n // 2
        with ThreadPoolExecutor(2) as ex:  # pyarrow formats without holding the GIL
            parts = list(ex.map(
                lambda a: _csv_bytes(tbl.slice(a, half if a == 0 else n - half), style),
                (0, half)))
        return b"".join(parts)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        if self.file is not None:
            self.file.close()


def _csv_bytes(tbl: Any, style: str, header: bool = False) -> bytes:
    # An arrow-native buffer, not io.BytesIO: writing through a Python file object from
    # pyarrow's threads aborted the process (SIGABRT) at interpreter shutdown after a
    # SIGTERM in 1 of ~20 runs of tests/hostile/test_signals.py; 0 in 60 with this.
    import pyarrow as pa
    import pyarrow.csv as pacsv

    sink = pa.BufferOutputStream()
    pacsv.write_csv(tbl, sink, write_options=pacsv.WriteOptions(include_header=header,
                                                                 quoting_style=style))
    return sink.getvalue().to_pybytes()


def table_format(path: str) -> str:
    """``"parquet"`` or ``"csv"`` from a table output's extension, or a ParameterError.

    >>> table_format("audit.parquet"), table_format("audit.csv")
    ('parquet', 'csv')
    """
    low = os.fspath(path).lower()
    if low.endswith((".parquet", ".pq")):
        return "parquet"
    if low.endswith((".csv", ".txt")):
        return "csv"
    raise ParameterError(f"--output {path}: expected a .csv or .parquet file name, found "
                         f"'{os.path.splitext(low)[1] or 'no extension'}'")


def write_table(df: Any, path: str, overwrite: bool = False) -> None:
    """Write a DataFrame to CSV or Parquet (by extension) with the one atomic writer."""
    kind = table_format(path)
    atomic_write(path, lambda tmp: _write_table_to(df, tmp, kind), overwrite=overwrite)


def _write_table_to(df: Any, tmp: str, kind: str) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if kind == "parquet":
        pq.write_table(pa.Table.from_pandas(df, preserve_index=False), tmp)
    elif len(df) < 200_000:  # pandas writes plain, unquoted CSV
        df.to_csv(tmp, index=False)
    else:  # pyarrow is ~10x faster on large tables
        tbl = pa.Table.from_pandas(df, preserve_index=False)
        tbl = tbl.cast(pa.schema([pa.field(f.name, pa.string()) if pa.types.is_dictionary(f.type)
                                  else f for f in tbl.schema]))
        write_csv_arrow(tbl, tmp)


def write_csv_arrow(tbl: Any, path: str) -> None:
    """Write an Arrow table as CSV without quotes (labels and numbers need none); values
    that do need quoting (a comma in a kept id column) fall back to quoting."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    try:
        pacsv.write_csv(tbl, path, write_options=pacsv.WriteOptions(quoting_style="none"))
    except pa.ArrowInvalid:
        pacsv.write_csv(tbl, path, write_options=pacsv.WriteOptions(quoting_style="needed"))


