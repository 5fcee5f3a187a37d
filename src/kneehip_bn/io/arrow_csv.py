"""The pyarrow CSV fast path: a CSV streamed with every column dictionary-encoded.

:func:`iter_csv_coded` hands over each column's distinct values and an index per row
(:class:`CodedColumn` in a :class:`CodedFrame`), so encoding costs one small lookup per
distinct value instead of hashing every cell. It meets a measured goal (see
``benchmarks/results/``) and reads exactly what the pandas reader reads: values typed as
pandas types a column (:func:`labels_like_pandas`), the same checks of every part
(:class:`~kneehip_bn.io.csv_source.CsvSource`), the same error for a damaged row. Anything
pandas might read differently raises :class:`NotFastError`.

Callers do not choose: :func:`kneehip_bn.io.sources.iter_coded` is the one interface, and
the pandas reader (:func:`kneehip_bn.io.sources.iter_audit`) stays the reference.

Examples
--------
>>> labels_like_pandas(["1", "2", ""]), labels_like_pandas(["TRUE", "false"])
([1, 2, ''], [True, False])
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kneehip_bn.io.csv_source import CsvSource, QuotedPart, max_line_limit

__all__ = ["CodedColumn", "CodedFrame", "NotFastError", "iter_csv_coded", "labels_like_pandas"]


class NotFastError(Exception):
    """A file the pyarrow reader does not read exactly like pandas (use pandas instead)."""


@dataclass
class CodedColumn:
    """A text column read already factorised: ``codes`` index ``labels`` (no nulls)."""

    codes: np.ndarray
    labels: list[Any]


class CodedFrame:
    """A chunk of a CSV read by pyarrow: node columns factorised (:class:`CodedColumn`),
    other columns as pyarrow arrays; enough of a DataFrame for the encoder."""

    def __init__(self, columns: list[str], data: dict[str, Any], n_rows: int) -> None:
        self.columns = columns
        self.data = data
        self.n_rows = n_rows

    def __len__(self) -> int:
        return self.n_rows

    def __getitem__(self, c: str) -> Any:
        return self.data[c]

    def __contains__(self, c: object) -> bool:
        return c in self.data


_INT = re.compile(r"\s*[+-]?\d+\s*")
_FLOAT = re.compile(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*")
_BOOL = {"True": True, "TRUE": True, "true": True, "False": False, "FALSE": False,
         "false": False}


def labels_like_pandas(values: list[str]) -> list[Any]:
    """Text values typed the way ``pandas.read_csv`` would type their column (all
    integers, all numbers, or all booleans; blanks aside), so codes normalise alike."""
    filled = [v for v in values if v != ""]
    if not filled:
        return values
    if all(_INT.fullmatch(v) for v in filled):
        return [int(v) if v != "" else v for v in values]
    if all(_FLOAT.fullmatch(v) for v in filled):
        return [float(v) if v != "" else v for v in values]
    if all(v in _BOOL for v in filled):
        return [_BOOL[v] if v != "" else v for v in values]
    return values


def iter_csv_coded(path: str | os.PathLike[str], *, chunksize: int, text: Sequence[str] = (),
                   sep: str = ",", max_line_bytes: int | None = None) -> Iterator[CodedFrame]:
    """Stream a CSV with pyarrow's multithreaded reader, every column dictionary-encoded.

    The fast path of :func:`kneehip_bn.io.sources.iter_audit` (chosen by
    :func:`kneehip_bn.io.sources.iter_coded`): the reader hands over each
    column's distinct values and an index per row, so encoding costs one small lookup
    per distinct value instead of hashing every cell. The file is read in ranges of whole
    lines (``os.pread``; about 2^18 rows, at most 64 MB plus a line), the next range read
    in a background thread while the caller works on this one, so memory is bounded by
    the range size whatever the file size. Values read as in :func:`read_audit` (empty
    cells blank, text kept as text, columns of numbers or booleans typed as pandas
    would). Columns in ``text`` (carried to the output) stay pyarrow strings. Chunks hold
    at most ``chunksize`` rows.

    Every range is checked as the pandas reader checks it (NUL bytes, lines over
    ``max_line_bytes``, then pyarrow's own count of fields per row; the line of a bad row
    is found by counting separators) and a damaged row raises the same
    :class:`~kneehip_bn.errors.DataError` as :func:`iter_audit` gives.

    Raises :class:`NotFastError`, ``pyarrow.ArrowInvalid`` or ``UnicodeDecodeError`` on
    anything pandas might read differently (duplicate or empty headers, quote
    characters, which may hide line breaks, other encodings, compressed files); the
    caller then reads the file with pandas instead.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    path = Path(path)
    with CsvSource(path, sep, max_line_limit(max_line_bytes)) as src:
        header = src.raw_header
        if src.compressed:
            raise NotFastError("compressed file")
        if len(set(header)) != len(header) or any(h == "" for h in header):
            raise NotFastError("header: empty or duplicate column names")
        # node columns dictionary-encoded as bytes: the distinct values are decoded (and so
        # checked as UTF-8) below, which spares checking every cell
        types = {h: (pa.string() if h in text else pa.dictionary(pa.int32(), pa.binary()))
                 for h in header}
        convert = pacsv.ConvertOptions(column_types=types, strings_can_be_null=False,
                                       quoted_strings_can_be_null=False)
        parse = pacsv.ParseOptions(delimiter=sep)
        names = pacsv.ReadOptions(column_names=header, block_size=4 << 20)

        def frame(tbl: Any) -> CodedFrame:
            if tbl.schema.names != header:
                raise NotFastError("header: pyarrow read different column names")
            data: dict[str, Any] = {}
            for name, col in zip(header, tbl.columns):
                if name in text:
                    data[name] = col.combine_chunks()
                    continue
                if col.num_chunks == 1:
                    arr = col.chunk(0)
                elif col.num_chunks == 0:
                    arr = pa.array([], type=pa.binary()).dictionary_encode()
                else:
                    arr = col.unify_dictionaries().combine_chunks()
                labels = [x.decode("utf-8") for x in arr.dictionary.to_pylist()]
                data[name] = CodedColumn(_int32_values(arr.indices), labels_like_pandas(labels))
            return CodedFrame(list(header), data, tbl.num_rows)

        def read(a: int, b: int) -> Any:  # in a thread: pread and pyarrow release the GIL
            try:
                data = src.read(a, b, fields=False)
            except QuotedPart:
                raise NotFastError("a quote character: pandas reads quoted fields") from None
            try:
                return pacsv.read_csv(pa.BufferReader(pa.py_buffer(data)), read_options=names,
                                      parse_options=parse, convert_options=convert)
            except pa.ArrowInvalid:
                src.check_utf8(data, a)  # the same order of checks as the pandas reader
                src.raise_bad_fields(data, a)
                raise

        from concurrent.futures import ThreadPoolExecutor  # stdlib; off the import path

        any_rows = False
        ranges = src.ranges(chunksize)
        with ThreadPoolExecutor(1) as ex:
            first = next(ranges, None)
            nxt = ex.submit(read, *first) if first is not None else None
            while nxt is not None:
                tbl = nxt.result()
                r = next(ranges, None)
                nxt = ex.submit(read, *r) if r is not None else None
                for s in range(0, tbl.num_rows, chunksize):
                    any_rows = True
                    yield frame(tbl.slice(s, chunksize))
        if not any_rows:
            yield frame(pa.table({h: pa.array([], type=types[h]) for h in header}))


def _int32_values(ind: Any) -> np.ndarray:
    """The values of a null-free pyarrow int32 array as a numpy view (``to_numpy`` would
    import pandas)."""
    if ind.null_count:
        raise NotFastError("dictionary indices with nulls")
    buf = ind.buffers()[1]
    if buf is None:
        return np.zeros(0, dtype=np.int32)
    return np.frombuffer(buf, dtype=np.int32, count=ind.offset + len(ind))[ind.offset:]
