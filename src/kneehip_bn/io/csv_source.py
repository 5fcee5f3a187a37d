"""An audit CSV file checked line by line: header, parts of whole lines, damaged rows.

Both CSV readers (the pandas reference, :func:`kneehip_bn.io.sources.iter_audit`, and the
pyarrow fast path, :func:`kneehip_bn.io.arrow_csv.iter_csv_coded`) read a file through
:class:`CsvSource`, so a damaged row gives the same :class:`~kneehip_bn.errors.DataError`
on both: the line (1-based, as an editor shows it) and what is wrong with it (too few or
too many fields, a NUL byte, a line over :func:`max_line_limit`, text that is not UTF-8, a
lone carriage return, a quote that never closes). Memory is bounded by the part size and
the line limit, never by the file size.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from kneehip_bn.errors import DataError, ParameterError

__all__ = ["MAX_LINE_BYTES", "MAX_LINE_ENV", "CsvSource", "QuotedPart", "max_line_limit"]

#: The longest line (in bytes, its line end included) an audit CSV may have. A longer line
#: is an error naming it, so a damaged file (say, padded to 2 GiB with NUL bytes or with no
#: line ends at all) fails at once with bounded memory instead of being read into memory in
#: one piece. Settable per call (``max_line_bytes=``), for a process with the environment
#: variable ``KNEEHIP_MAX_LINE_BYTES`` (e.g. for the ``kneehip`` command), or here.
MAX_LINE_BYTES = 1 << 20
MAX_LINE_ENV = "KNEEHIP_MAX_LINE_BYTES"


def max_line_limit(value: int | None = None) -> int:
    """The line-length limit in force: ``value``, else ``$KNEEHIP_MAX_LINE_BYTES``, else
    :data:`MAX_LINE_BYTES`.

    >>> max_line_limit(4096)
    4096
    """
    where = "max_line_bytes"
    if value is None:
        env = os.environ.get(MAX_LINE_ENV, "").strip()
        if env:
            where = f"environment variable {MAX_LINE_ENV}"
            if not re.fullmatch(r"[0-9]{1,15}", env):
                raise ParameterError(f"{where}: expected a positive whole number of bytes, found {env!r}")
            value = int(env)
        else:
            value = MAX_LINE_BYTES
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ParameterError(f"{where}: expected a positive whole number of bytes, found {value!r}")
    return int(value)



class QuotedPart(Exception):
    """A part of a CSV holds a quote character: read the rest as a stream (csv module)."""


# ---------------------------------------------------------------------------- CSV rows
# rows per part when a CSV is read in parts of whole lines: a small first one (the
# pipeline starts sooner), then about this many; a part is also at most _RANGE_BYTES long
_RANGE_ROWS = 1 << 18
_RANGE_BYTES = 64 << 20
_BLOCK = 16 << 20  # block size when counting lines (for error messages)


class CsvSource:
    """An open audit CSV: its header (read with bounded memory), parts of whole lines
    read with ``os.pread`` and checked, and the messages that name a damaged line.

    Both CSV readers (pyarrow, :func:`kneehip_bn.io.arrow_csv.iter_csv_coded`; pandas,
    :func:`kneehip_bn.io.sources.iter_audit`) go through this class, so a damaged row gives the same :class:`DataError` on both.
    """

    def __init__(self, path: Path, sep: str, limit: int) -> None:
        import gzip

        self.path, self.sep, self.limit = path, sep, limit
        self.sep_b = sep.encode()
        self.compressed = path.name.lower().endswith(".gz")
        if not stat.S_ISREG(os.stat(path).st_mode):  # a pipe or device: no size, no second read
            raise DataError(f"audit file {path}: expected a regular file, found a pipe or a "
                            "device; save the data to a file first")
        self.f: Any = gzip.open(path, "rb") if self.compressed else open(path, "rb")
        try:
            self.size = None if self.compressed else os.fstat(self.f.fileno()).st_size
            self._read_header()
        except BaseException:
            self.f.close()
            raise

    def __enter__(self) -> CsvSource:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.f.close()

    # -------------------------------------------------------------- messages
    def error(self, line: int, what: str) -> DataError:
        return DataError(f"audit file {self.path}, line {line}: {what}")

    def _fields_msg(self, found: int, cut: bool) -> str:
        n = len(self.names)
        return (f"expected {n} field{'s' if n != 1 else ''} as in the header, found {found}; "
                + ("the file ends inside this row (no line end): it looks cut short"
                   if cut else "fix or remove the row (rows are never padded or dropped)"))

    def _nul_msg(self, col: int) -> str:
        return (f"a NUL byte at byte {col} of the line: expected text; the file looks damaged "
                "or padded (e.g. by truncate or an interrupted copy)")

    def _long_msg(self) -> str:
        return (f"longer than the limit of {self.limit:,} bytes: expected rows of text; a "
                "damaged file (one enormous line) or very long notes (raise the limit with "
                f"{MAX_LINE_ENV}=BYTES or max_line_bytes=)")

    def _utf8_msg(self, byte: int, col: int) -> str:
        return (f"not UTF-8 text (byte 0x{byte:02x} at byte {col} of the line): expected "
                "UTF-8; re-save the file as UTF-8 (Excel: CSV UTF-8)")

    def _cr_msg(self, col: int | None) -> str:
        at = f" at byte {col} of the line" if col else ""
        return (f"a carriage return (\\r) inside a line{at}: expected line ends \\n or "
                "\\r\\n (a lone \\r splits the row in two for pandas and pyarrow); the file "
                "looks damaged or uses old Mac line ends")

    def _quote_msg(self) -> str:
        return ("a quoted field opened on this line never closes: expected a closing '\"'; "
                "the file looks cut short, or the quote is stray")

    # -------------------------------------------------------------- header
    def _read_header(self) -> None:
        import csv

        line = 0
        pos = 0
        while True:
            raw = self.f.readline(self.limit + 1)
            line += 1
            if not raw:
                raise DataError(f"audit file {self.path}: "
                                + ("no column names (the file is empty)" if line == 1 else
                                   f"no column names (only {line - 1} blank line(s))")
                                + ": expected a first line of column names, e.g. knee_pain,hip_pain")
            self._check_line(raw, line, first=pos == 0)
            pos += len(raw)
            if raw.strip(b"\r\n"):
                break  # blank lines before the header are skipped (as pandas does)
        text = raw.decode("utf-8")
        if pos == len(raw) and text.startswith("\ufeff"):
            text = text[1:]  # a byte-order mark is not part of the first name
        body = text.rstrip("\r\n")
        if "\r" in body:
            raise self.error(line, "carriage returns inside the header line (old Mac line ends?):"
                             " expected lines ending in \\n or \\r\\n; re-save the file")
        recs = list(csv.reader([text, "\n"], delimiter=self.sep))
        if len(recs) != 2 or recs[1] != []:
            raise self.error(line, "the header has a quote that never closes: expected column "
                                   "names separated by '" + self.sep.replace("\t", "\\t") + "'")
        self.raw_header = recs[0]
        self.names = [h if h != "" else f"Unnamed: {i}" for i, h in enumerate(recs[0])]
        self.header_line = line
        self.start = pos

    def _check_line(self, raw: bytes, line: int, first: bool = False) -> None:
        """Length, NUL and UTF-8 of one line read by ``readline(limit + 1)``."""
        if len(raw) > self.limit:
            raise self.error(line, self._long_msg())
        i = raw.find(b"\0")
        if i != -1:
            raise self.error(line, self._nul_msg(i + 1))
        if not raw.isascii():
            try:
                raw.decode("utf-8-sig" if first else "utf-8")
            except UnicodeDecodeError as exc:
                raise self.error(line, self._utf8_msg(raw[exc.start], exc.start + 1)) from None

    # -------------------------------------------------------------- positions
    def pread(self, n: int, at: int) -> bytes:
        out = os.pread(self.f.fileno(), n, at)
        while len(out) < n:  # a short read (signal): read on
            more = os.pread(self.f.fileno(), n - len(out), at + len(out))
            if not more:
                break
            out += more
        return out

    def line_at(self, offset: int) -> tuple[int, int]:
        """(line number, start offset of that line) of a byte offset (counting the file's
        line ends before it: used only for messages)."""
        lines, last, at = 1, -1, 0
        while at < offset:
            block = self.pread(min(_BLOCK, offset - at), at)
            if not block:
                break
            lines += block.count(b"\n")
            k = block.rfind(b"\n")
            if k != -1:
                last = at + k
            at += len(block)
        return lines, last + 1

    def ranges(self, chunksize: int) -> Iterator[tuple[int, int]]:
        """Byte ranges of whole data lines: about ``_RANGE_ROWS // 4`` rows, then
        ``_RANGE_ROWS`` (at most ``chunksize``), each at most ``_RANGE_BYTES`` plus a
        line. A range ends inside a line only when that line is over the limit."""
        assert self.size is not None
        pos, size = self.start, self.size
        if pos >= size:
            return
        sample = self.pread(min(1 << 20, size - pos), pos)
        per_row = max(1.0, len(sample) / max(1, sample.count(b"\n")))
        want = max(1, min(chunksize, _RANGE_ROWS // 4))
        while pos < size:
            cut = pos + int(min(_RANGE_BYTES, max(1.0, per_row * want)))
            want = max(1, min(chunksize, _RANGE_ROWS))
            if cut >= size:
                yield pos, size
                return
            end = -1
            look = 1 << 16
            while end == -1:
                win = self.pread(min(look, self.limit + 1), cut)
                k = win.find(b"\n")
                if k != -1:
                    end = cut + k + 1
                elif cut + len(win) >= size:
                    end = size
                elif len(win) >= self.limit + 1:
                    end = cut + len(win)  # a line over the limit: check() names it
                else:
                    look *= 16
            yield pos, end
            pos = end

    def read(self, a: int, b: int, *, fields: bool) -> bytes:
        """The bytes of range ``[a, b)``, checked: NUL bytes, lines over the limit, then
        (``fields``) the number of fields and UTF-8. Raises :class:`QuotedPart` when the
        range holds a quote character (its line ends may be inside quoted fields)."""
        data = self.pread(b - a, a)
        i = data.find(b"\0")
        if i != -1:
            line, start = self.line_at(a + i)
            raise self.error(line, self._nul_msg(a + i - start + 1))
        long = _long_line(data, self.limit)
        if long is not None:
            raise self.error(self.line_at(a + long)[0], self._long_msg())
        if b'"' in data:
            raise QuotedPart(a)
        if b"\r" in data and data.count(b"\r") != data.count(b"\r\n"):
            arr = np.frombuffer(data, dtype=np.uint8)
            at = np.flatnonzero(arr == 13)
            at = int(at[np.flatnonzero(arr[np.minimum(at + 1, len(arr) - 1)] != 10)[0]])
            line, start = self.line_at(a + at)
            raise self.error(line, self._cr_msg(a + at - start + 1))
        if fields:
            self.check_utf8(data, a)
        return data

    def check_utf8(self, data: bytes, a: int) -> None:
        """Raise the error naming the first line of ``data`` (at ``a``) that is not UTF-8."""
        if data.isascii():
            return
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line, start = self.line_at(a + exc.start)
            raise self.error(line, self._utf8_msg(data[exc.start],
                                                  a + exc.start - start + 1)) from None

    def fields_ok(self, data: bytes, rows: int) -> bool:
        """A cheap sufficient test, given a parser that refuses rows with too many fields
        and read ``rows`` rows: every line has exactly ``n - 1`` separators."""
        lines = data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)
        return rows == lines and data.count(self.sep_b) == (len(self.names) - 1) * lines

    def raise_bad_fields(self, data: bytes, a: int) -> None:
        """Raise the error for the first line of ``data`` (at offset ``a``) whose number of
        fields differs from the header's (blank lines aside); return when there is none."""
        bad = _bad_field_line(data, self.sep_b, len(self.names))
        if bad is None:
            return
        off, found = bad
        line = self.line_at(a + off)[0]
        nl = data.find(b"\n", off)
        cut = nl == -1 and self.size is not None and a + len(data) == self.size
        raise self.error(line, self._fields_msg(found, cut))

    # -------------------------------------------------------------- stream
    def check_stream(self, offset: int, line0: int) -> None:
        """Check the lines from ``offset`` (the start of line ``line0``) to the end with the
        :mod:`csv` module, as pandas will split them into rows (quoted fields may hold
        line breaks). One pass, memory bounded by the limit."""
        import csv

        if self.compressed:
            self.f.seek(0)
            skip_to = self.header_line
            line = 0
        else:
            self.f.seek(offset)
            skip_to = 0
            line = line0 - 1
        state: dict[str, Any] = {"line": line, "eof": False, "nonl": False, "raw": b""}
        f, limit = self.f, self.limit

        def lines() -> Iterator[str]:
            while True:
                raw = f.readline(limit + 1)
                if not raw:
                    break
                state["line"] += 1
                self._check_line(raw, state["line"], first=self.compressed and state["line"] == 1)
                state["nonl"] = not raw.endswith(b"\n")
                state["raw"] = raw
                if state["line"] > skip_to:
                    yield raw.decode("utf-8")
            state["eof"] = True
            yield "\n"  # an empty record, unless a quoted field is still open

        n = len(self.names)
        old = csv.field_size_limit()
        csv.field_size_limit(limit)
        try:
            reader = csv.reader(lines(), delimiter=self.sep)
            while True:
                start = state["line"] + 1
                try:
                    rec = next(reader)
                except StopIteration:
                    break
                except csv.Error as exc:
                    if "field larger than field limit" in str(exc):
                        raise self.error(start, self._quote_msg()) from None
                    if "new-line character" in str(exc):
                        raw = state["raw"]
                        col = next((i + 1 for i in range(len(raw))
                                    if raw[i:i + 1] == b"\r" and raw[i + 1:i + 2] != b"\n"), None)
                        raise self.error(state["line"], self._cr_msg(col)) from None
                    raise self.error(start, f"{exc}: expected CSV text") from None
                if state["eof"]:
                    if rec:
                        raise self.error(start, self._quote_msg())
                    break
                if rec and len(rec) != n:
                    raise self.error(start, self._fields_msg(len(rec), state["nonl"]))
        finally:
            csv.field_size_limit(old)


def _long_line(data: bytes, limit: int) -> int | None:
    """Offset of the first line in ``data`` longer than ``limit`` bytes (with its line
    end), or None. Windows of ``limit // 2`` bytes: one ``find`` each while lines are
    short, exact around a window without a line end."""
    w = max(1, limit // 2)
    n = len(data)
    k = 0
    while k + w <= n or (k < n and n - k > limit):
        e = min(n, k + w)
        if data.find(b"\n", k, e) != -1:
            k = e
            continue
        s = data.rfind(b"\n", 0, k) + 1
        t = data.find(b"\n", k)
        length = (n - s) if t == -1 else (t - s + 1)
        if length > limit:
            return s
        k = n if t == -1 else t + 1
    return None


def _bad_field_line(data: bytes, sep: bytes, n: int) -> tuple[int, int] | None:
    """(offset, fields) of the first non-blank line of ``data`` (no quotes) whose number of
    ``sep``-separated fields is not ``n``; None when every line has ``n``."""
    if not data:
        return None
    a = np.frombuffer(data, dtype=np.uint8)
    nl = np.flatnonzero(a == 10)
    ends = nl if data.endswith(b"\n") else np.append(nl, len(data))
    starts = np.concatenate(([0], nl + 1))[:len(ends)]
    seps = np.flatnonzero(a == sep[0])
    found = np.searchsorted(seps, ends) - np.searchsorted(seps, starts) + 1
    length = ends - starts
    blank = (length == 0) | ((length == 1) & (a[np.minimum(starts, len(a) - 1)] == 13))
    bad = np.flatnonzero((found != n) & ~blank)
    if not len(bad):
        return None
    i = int(bad[0])
    return int(starts[i]), int(found[i])
