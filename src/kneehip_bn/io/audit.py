"""Reading clinical audit data: sources, column mapping, validation, encoding.

An audit is a table with one row per patient (age band, activity, findings, test results,
often a clinician's working diagnosis, many blanks). This module

- reads it from a pandas DataFrame, a CSV or Parquet file, or any SQL database through an
  SQLAlchemy URL and a table name or query (:func:`read_audit`, :func:`iter_audit` for
  files too big for memory);
- translates the audit's own column names and codes to the model's nodes and states with a
  mapping file (YAML, safe-loaded; :func:`load_mapping`). When the columns already are node
  names and the values state labels (as ``kneehip simulate`` writes them) no mapping is
  needed;
- validates before anything is fitted (:func:`validate_audit`): unknown codes, unmapped
  columns, columns mapped twice, empty tables, entirely blank columns. The
  :class:`AuditReport` names each problem with its column, the offending values, the
  first row numbers and the closest valid code. Nothing is silently dropped; blanks are
  missing values, not errors;
- encodes the table to engine codes (``int`` array, ``-1`` = missing) through pandas
  Categoricals, without Python loops over rows (:func:`encode_audit`);
- groups identical rows into distinct patterns with counts (:func:`group_patterns`), the
  sufficient statistics that clinics can share instead of patient records
  (:class:`AuditCounts`).

Examples
--------
>>> import pandas as pd
>>> from kneehip_bn.io.audit import encode_audit
>>> df = pd.DataFrame({"knee_pain": ["present", None, "absent"],
...                    "age_group": ["60_plus", "under_40", None]})
>>> enc = encode_audit(df, model="knee_hip_basic")
>>> enc.columns, enc.codes.tolist()
(['knee_pain', 'age_group'], [[1, 2], [-1, 0], [0, -1]])
>>> bad = pd.DataFrame({"knee_pain": ["present", "presnt"]})
>>> print(validate_audit(bad, model="knee_hip_basic").problems.loc[0, "message"])  # doctest: +ELLIPSIS
column 'knee_pain' (node knee_pain): unknown code 'presnt' in 1 row (first rows: 1); expected one of absent, present; did you mean 'present'?
"""

from __future__ import annotations

import math
import os
import re
import stat
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kneehip_bn.errors import DataError, closest

__all__ = [
    "DEFAULT_MISSING",
    "AuditCounts",
    "AuditMapping",
    "AuditReport",
    "EncodedAudit",
    "audit_counts",
    "encode_audit",
    "group_patterns",
    "iter_audit",
    "load_mapping",
    "merge_counts",
    "read_audit",
    "read_counts",
    "recode_to_audit",
    "validate_audit",
]

#: codes read as blank in every column (pandas' default NA strings); a mapping may add more
DEFAULT_MISSING = frozenset({
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND",
    "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
})
MAPPING_FORMAT = "kneehip-audit-mapping/1"
PROBLEM_COLUMNS = ["severity", "problem", "column", "node", "values", "count", "first_rows",
                   "suggestion", "message"]
_N_FIRST = 5


# ============================================================================ mapping
@dataclass
class ColumnMap:
    """How one audit column maps to the model.

    ``role`` is ``"node"`` (values are states of ``node``) or ``"diagnosis"`` (values are
    origins, the clinician's working diagnosis). ``codes`` maps audit codes to state labels
    (``None`` = blank); ``None`` means the values already are state labels.
    """

    column: str
    role: str = "node"
    node: str | None = None
    codes: dict[str, str | None] | None = None


@dataclass
class AuditMapping:
    """A validated-on-use mapping from an audit's columns and codes to the model.

    Build it with :func:`load_mapping` from a YAML file or a dict::

        format: kneehip-audit-mapping/1
        dataset: "Example clinic audit (synthetic)"
        missing: ["not recorded", "?"]      # extra codes meaning blank in every column
        ignore: [PATIENT_ID]                # columns deliberately not used
        columns:
          KNEE_PAIN: {node: knee_pain, codes: {Y: present, N: absent}}
          SLR: {node: straight_leg_raise, codes: {POS: positive, NEG: negative, "NOT DONE": missing}}
          WORKING_DX: {diagnosis: true, codes: {KNEE_OA: knee_pathology, OTHER: none}}
    """

    columns: dict[str, ColumnMap] = field(default_factory=dict)
    ignore: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    dataset: str | None = None
    source: str | None = None
    problems: list[dict[str, Any]] = field(default_factory=list)


def _norm(x: Any) -> str | None:
    """An audit value as a label: strings stripped, integral floats as integers, blanks None."""
    if x is None:
        return None
    if isinstance(x, (bool, np.bool_)):
        return "True" if x else "False"
    if isinstance(x, (float, np.floating)):
        if math.isnan(x):
            return None
        if float(x).is_integer():
            return str(int(x))
        return repr(float(x))
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    s = str(x).strip()
    return s if s else None


def load_mapping(mapping: Any) -> AuditMapping | None:
    """Read a mapping from a YAML file path, a dict, or pass an :class:`AuditMapping` on.

    Audit columns that are not listed under ``columns:`` but are named exactly like a
    model node are read as that node (with the model's state labels as codes), so a
    mapping may consist of ``ignore: [patient_id]`` alone.

    The file is read with ``yaml.safe_load`` (no tags, no Python objects). Problems with
    the mapping itself (unknown keys, a column both mapped and ignored) are kept on
    ``mapping.problems`` and reported by :func:`validate_audit` together with the data's.

    Raises
    ------
    DataError
        When the file is missing or is not YAML, or the top level is not a mapping.
    """
    from kneehip_bn._util.strict_yaml import YAMLInputError, load_yaml, unknown_fields

    if mapping is None or isinstance(mapping, AuditMapping):
        return mapping
    source = None
    if isinstance(mapping, (str, os.PathLike)):
        p = Path(mapping)
        source = str(p)
        if not p.exists():
            raise DataError(f"mapping file {p}: no such file; expected a YAML mapping of audit "
                            "columns to model nodes (see data/example_mapping.yaml)")
        try:
            raw = load_yaml(p, what="mapping file").data  # the one strict loader
        except YAMLInputError as exc:
            raise DataError(f"mapping file {p}: {exc}") from None
    else:
        raw = mapping
    where = f"mapping file {source}" if source else "mapping"
    if not isinstance(raw, Mapping):
        raise DataError(f"{where}: expected a mapping with keys columns (and optionally "
                        f"dataset, missing, ignore), found {type(raw).__name__}")
    m = AuditMapping(source=source, dataset=raw.get("dataset"))
    probs = m.problems

    def bad(column, msg, suggestion=None):
        probs.append(_problem("error", "bad_mapping", column, None, None, None, None,
                              suggestion, f"{where}: {msg}"))

    for k, hint in unknown_fields(raw, ["format", "dataset", "missing", "ignore", "columns"]):
        bad(None, f"unknown key '{k}': expected format, dataset, missing, ignore, columns; "
            + hint, closest(k, ["format", "dataset", "missing", "ignore", "columns"]))
    fmt = raw.get("format", MAPPING_FORMAT)
    if fmt != MAPPING_FORMAT:
        bad(None, f"format: expected '{MAPPING_FORMAT}', found {fmt!r}")
    miss = raw.get("missing", []) or []
    if not isinstance(miss, list):
        bad(None, f"missing: expected a list of codes meaning blank, found {miss!r}")
        miss = []
    m.missing = [x for x in (_norm(v) for v in miss) if x is not None]
    ign = raw.get("ignore", []) or []
    if not isinstance(ign, list):
        bad(None, f"ignore: expected a list of column names, found {ign!r}")
        ign = []
    m.ignore = [str(c) for c in ign]
    cols = raw.get("columns")
    if cols is None and m.ignore:
        cols = {}  # only `ignore:`: the other columns are node names already
    if not isinstance(cols, Mapping) or (not cols and not m.ignore):
        bad(None, f"columns: expected a mapping of audit column -> {{node, codes}}, found {cols!r}")
        cols = {}
    for col, entry in cols.items():
        col = str(col)
        if isinstance(entry, str):  # shorthand  KNEE_PAIN: knee_pain
            entry = {"node": entry}
        if not isinstance(entry, Mapping):
            bad(col, f"columns.{col}: expected {{node: NAME, codes: {{...}}}} or "
                     f"{{diagnosis: true, codes: {{...}}}}, found {entry!r}")
            continue
        for k, hint in unknown_fields(entry, ["node", "codes", "diagnosis", "note"]):
            bad(col, f"columns.{col}: unknown key '{k}': expected node, codes, diagnosis, note; "
                + hint)
        is_dx = bool(entry.get("diagnosis", False))
        node = entry.get("node")
        if is_dx == (node is not None):
            bad(col, f"columns.{col}: expected exactly one of `node: NAME` or `diagnosis: true`, "
                     f"found {'both' if is_dx else 'neither'}")
            continue
        codes = entry.get("codes")
        cm = ColumnMap(column=col, role="diagnosis" if is_dx else "node",
                       node=None if is_dx else str(node))
        if codes is not None:
            if not isinstance(codes, Mapping):
                bad(col, f"columns.{col}.codes: expected a mapping audit code -> state, found {codes!r}")
                continue
            cm.codes = {}
            for k, v in codes.items():
                if isinstance(k, bool):
                    probs.append(_problem(
                        "warning", "boolean_code", col, cm.node, str(k), None, None, None,
                        f"{where}: columns.{col}.codes: YAML read an unquoted yes/no/on/off/"
                        f"true/false code as the boolean {k}; it matches only True/False values; "
                        "quote it ('yes': present) to match the text"))
                kk = _norm(k)
                target = None if v is None or (isinstance(v, str) and v == "missing") else str(v)
                cm.codes["" if kk is None else kk] = target
        if col in m.ignore:
            bad(col, f"columns.{col}: the column is both mapped and listed under ignore; "
                     "expected one of the two")
        m.columns[col] = cm
    return m


def recode_to_audit(df: Any, mapping: Any) -> Any:
    """The inverse of a mapping: a model-format table (node columns, state labels) written
    in the audit's own column names and codes (the first code listed for each state).

    Used to make example "clinic format" data and to test mappings round trip; columns the
    mapping does not mention are dropped, blanks stay blank.

    >>> import pandas as pd
    >>> m = {"columns": {"KNEE": {"node": "knee_pain", "codes": {"Y": "present", "N": "absent"}}}}
    >>> recode_to_audit(pd.DataFrame({"knee_pain": ["present", None]}), m)["KNEE"].tolist()
    ['Y', nan]
    """
    import pandas as pd

    from kneehip_bn.model.spec import DIAGNOSIS_COLUMN

    mp = load_mapping(mapping)
    out = {}
    for col, cm in mp.columns.items():
        src = DIAGNOSIS_COLUMN if cm.role == "diagnosis" else cm.node
        if src not in df.columns:
            continue
        if cm.codes is None:
            out[col] = df[src]
            continue
        inverse: dict[str, str] = {}
        for code, target in cm.codes.items():
            if target is not None and target not in inverse:
                inverse[target] = code
        out[col] = df[src].astype(object).map(inverse)
    return pd.DataFrame(out, index=df.index)


# ============================================================================ reading
def _is_url(x: Any) -> bool:
    return isinstance(x, str) and "://" in x


def _mask_url(url: str) -> str:
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url


def _source_name(dataset: str | None, mapping: Any, data: Any, table: str | None,
                 sql: str | None) -> str:
    """The name recorded for a dataset: given, else the mapping's, else the source's."""
    return dataset or (mapping.dataset if mapping and mapping.dataset else None) or \
        describe_source(data, table, sql)


def _is_dataframe(x: Any) -> bool:
    """True for a pandas DataFrame (without importing pandas when nobody has)."""
    pd = sys.modules.get("pandas")
    return pd is not None and isinstance(x, pd.DataFrame)


def _is_categorical(s: Any) -> bool:
    pd = sys.modules.get("pandas")
    return pd is not None and isinstance(getattr(s, "dtype", None), pd.CategoricalDtype)


def describe_source(source: Any, table: str | None = None, sql: str | None = None) -> str:
    """A short name of a data source for reports (passwords in URLs masked)."""
    if _is_dataframe(source):
        return "DataFrame"
    if _is_url(source):
        url = _mask_url(source)
        return f"{url} table {table}" if table else (f"{url} query" if sql else url)
    return Path(source).name if isinstance(source, (str, os.PathLike)) else type(source).__name__


def _file_kind(path: Path) -> str:
    name = path.name.lower()
    for suffix, kind in ((".csv", "csv"), (".csv.gz", "csv"), (".tsv", "tsv"), (".txt", "csv"),
                         (".parquet", "parquet"), (".pq", "parquet")):
        if name.endswith(suffix):
            return kind
    raise DataError(f"audit file {path}: expected a .csv, .tsv or .parquet file (or an "
                    f"SQLAlchemy URL such as sqlite:///audit.db), found '{path.suffix or path.name}'")


def _check_file(path: Path) -> None:
    if not path.exists():
        raise DataError(f"audit file {path}: no such file; expected a CSV or Parquet file or "
                        "an SQLAlchemy URL (e.g. sqlite:///audit.db with --table NAME)")
    if path.is_dir():
        raise DataError(f"audit file {path}: expected a file, found a directory")


# text stays text: "NA" and friends are blank only through DEFAULT_MISSING (never silently)
_CSV_KW: dict[str, Any] = {"keep_default_na": False, "na_values": [""]}

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
                raise DataError(f"{where}: expected a positive whole number of bytes, found {env!r}")
            value = int(env)
        else:
            value = MAX_LINE_BYTES
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise DataError(f"{where}: expected a positive whole number of bytes, found {value!r}")
    return int(value)


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
        _no_sql_args(table, sql, "a DataFrame")
        return source
    if _is_url(source):
        return pd.concat(list(_iter_sql(source, table, sql, None)), ignore_index=True)
    _no_sql_args(table, sql, "a file")
    path = Path(source)
    _check_file(path)
    kind = _file_kind(path)
    if kind == "parquet":
        try:
            return pd.read_parquet(path)
        except (ValueError, OSError, _arrow_errors()) as exc:
            raise DataError(f"audit file {path}: cannot read it as parquet: {_one_line(exc)}") from None
    parts = list(_iter_csv(path, "\t" if kind == "tsv" else ",", 1 << 62,
                           max_line_limit(max_line_bytes)))
    if len(parts) == 1:
        return parts[0]
    return pd.concat(parts, ignore_index=True)


def _no_sql_args(table, sql, what):
    if table is not None or sql is not None:
        raise DataError(f"table/sql: only used with an SQLAlchemy URL, found them with {what}")


def _one_line(exc: BaseException) -> str:
    s = str(exc).strip().splitlines()
    return s[0] if s else type(exc).__name__


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

    if isinstance(chunksize, bool) or not isinstance(chunksize, int) or chunksize < 1:
        raise DataError(f"chunksize: expected a positive number of rows, found {chunksize!r}")
    if isinstance(source, pd.DataFrame):
        _no_sql_args(table, sql, "a DataFrame")
        if len(source) == 0:
            yield source
        for start in range(0, len(source), chunksize):
            yield source.iloc[start:start + chunksize]
        return
    if _is_url(source):
        yield from _iter_sql(source, table, sql, chunksize)
        return
    _no_sql_args(table, sql, "a file")
    path = Path(source)
    _check_file(path)
    kind = _file_kind(path)
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
        raise DataError(f"audit file {path}: cannot read it as {kind}: {_one_line(exc)}") from None


class NotFastError(Exception):
    """A file the pyarrow reader does not read exactly like pandas (use pandas instead)."""


class _Quoted(Exception):
    """A part of a CSV holds a quote character: read the rest as a stream (csv module)."""


# ---------------------------------------------------------------------------- CSV rows
# rows per part when a CSV is read in parts of whole lines: a small first one (the
# pipeline starts sooner), then about this many; a part is also at most _RANGE_BYTES long
_RANGE_ROWS = 1 << 18
_RANGE_BYTES = 64 << 20
_BLOCK = 16 << 20  # block size when counting lines (for error messages)


class _CsvSource:
    """An open audit CSV: its header (read with bounded memory), parts of whole lines
    read with ``os.pread`` and checked, and the messages that name a damaged line.

    Both CSV readers (pyarrow, :func:`iter_csv_coded`; pandas, :func:`iter_audit`) go
    through this class, so a damaged row gives the same :class:`DataError` on both.
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

    def __enter__(self) -> _CsvSource:
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
        (``fields``) the number of fields and UTF-8. Raises :class:`_Quoted` when the
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
            raise _Quoted(a)
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
    whole lines checked (:meth:`_CsvSource.read`) and parsed by ``pandas.read_csv``; from
    the first part with a quote character on, the rest checked as a stream
    (:meth:`_CsvSource.check_stream`) and then read by pandas in chunks."""
    import io

    import pandas as pd

    with _CsvSource(path, sep, limit) as src:
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
            except _Quoted:
                stream_from = (a, src.line_at(a)[0])
                break
            try:
                df = pd.read_csv(io.BytesIO(data), **kw)
            except (ValueError, pd.errors.ParserError) as exc:
                src.raise_bad_fields(data, a)
                raise DataError(f"audit file {path}: cannot read it as CSV: "
                                f"{_one_line(exc)}") from None
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
                                f"{_one_line(exc)}") from None


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


def _labels_like_pandas(values: list[str]) -> list[Any]:
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

    The fast path of :func:`iter_audit` for batch posteriors: the reader hands over each
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
    with _CsvSource(path, sep, max_line_limit(max_line_bytes)) as src:
        header = src.raw_header
        if src.compressed:
            raise NotFastError("compressed file")
        if len(set(header)) != len(header) or any(h == "" for h in header):
            raise NotFastError("header: empty or duplicate column names")
        # node columns dictionary-encoded as bytes: the distinct values are decoded (and so
        # checked as UTF-8) below, which spares checking every cell (measured 15% of the read)
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
                data[name] = CodedColumn(_int32_values(arr.indices), _labels_like_pandas(labels))
            return CodedFrame(list(header), data, tbl.num_rows)

        def read(a: int, b: int) -> Any:  # in a thread: pread and pyarrow release the GIL
            try:
                data = src.read(a, b, fields=False)
            except _Quoted:
                raise NotFastError("a quote character: pandas reads quoted fields") from None
            try:
                return pacsv.read_csv(pa.BufferReader(pa.py_buffer(data)), read_options=names,
                                      parse_options=parse, convert_options=convert)
            except pa.ArrowInvalid:
                src.check_utf8(data, a)  # the same order of checks as the pandas reader
                src.raise_bad_fields(data, a)
                raise

        from concurrent.futures import ThreadPoolExecutor

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
    import pandas: 0.45 s)."""
    if ind.null_count:
        raise NotFastError("dictionary indices with nulls")
    buf = ind.buffers()[1]
    if buf is None:
        return np.zeros(0, dtype=np.int32)
    return np.frombuffer(buf, dtype=np.int32, count=ind.offset + len(ind))[ind.offset:]


def _single_chunk(data: Any, chunksize: int) -> bool:
    """True when ``data`` is a DataFrame read in one chunk (so a chunk is the whole table)."""
    return _is_dataframe(data) and len(data) <= chunksize


def _iter_sql(url: str, table: str | None, sql: str | None, chunksize: int | None):
    """Rows of a database table or query, read-only (see :mod:`kneehip_bn.io.sql`)."""
    from kneehip_bn.io.sql import iter_rows

    yield from iter_rows(url, table, sql, chunksize)


# ============================================================================ report
def _problem(severity, problem, column, node, values, count, rows, suggestion, message):
    return {"severity": severity, "problem": problem, "column": column, "node": node,
            "values": values, "count": count, "first_rows": rows, "suggestion": suggestion,
            "message": message}


@dataclass
class AuditReport:
    """What validation found, before anything is fitted.

    Attributes
    ----------
    problems : pandas.DataFrame
        One row per problem: ``severity`` (error/warning), ``problem`` (kind),
        ``column``, ``node``, ``values`` (the offending codes), ``count`` (rows),
        ``first_rows`` (0-based data row numbers), ``suggestion`` (closest valid code),
        ``message`` (one readable line).
    columns : pandas.DataFrame
        One row per audit column: ``role`` (node/diagnosis/ignored/kept), ``node``,
        ``blank`` (number of blank cells) and ``blank_fraction``.
    n_rows : int
        Rows read.
    source : str
        The data set's name.
    """

    problems: Any
    columns: Any
    n_rows: int
    source: str = ""

    @property
    def ok(self) -> bool:
        """True when no problem is an error."""
        return not (self.problems["severity"] == "error").any()

    @property
    def errors(self) -> Any:
        """The problems that stop fitting."""
        return self.problems[self.problems["severity"] == "error"]

    def __str__(self) -> str:
        n_err = int((self.problems["severity"] == "error").sum())
        n_warn = len(self.problems) - n_err
        head = (f"Audit {self.source or 'data'}: {self.n_rows} rows, {len(self.columns)} columns; "
                f"{n_err} error(s), {n_warn} warning(s)")
        lines = [head]
        for _, p in self.problems.iterrows():
            lines.append(f"  [{p['severity']}] {p['message']}")
        if len(self.columns):
            lines.append("")
            lines.append(f"  {'column':<28}{'role':<11}{'node':<30}{'blank':>8}{'blank %':>9}")
            for _, c in self.columns.iterrows():
                node = c["node"] if isinstance(c["node"], str) else ""
                lines.append(f"  {c['column']!s:<28}{c['role']!s:<11}{node:<30}"
                             f"{int(c['blank']):>8}{100 * float(c['blank_fraction']):>8.1f}%")
        return "\n".join(lines)

    def _repr_html_(self) -> str:  # pragma: no cover - notebook display
        return (f"<pre>{_html_escape(str(self).splitlines()[0])}</pre>"
                + self.problems[["severity", "message"]].to_html(index=False)
                + self.columns.to_html(index=False))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"source": self.source, "n_rows": self.n_rows, "ok": self.ok,
                "problems": self.problems.to_dict(orient="records"),
                "columns": self.columns.to_dict(orient="records")}

    def raise_if_errors(self) -> None:
        """Raise :class:`DataError` (carrying this report) when any problem is an error."""
        if self.ok:
            return
        errs = self.errors
        first = errs.iloc[0]["message"]
        more = (f" (and {len(errs) - 1} more problem(s): the error's .report lists them all)"
                if len(errs) > 1 else "")
        raise DataError(f"audit {self.source or 'data'}: {first}{more}", report=self)


def _html_escape(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# ============================================================================ encoding
@dataclass
class _Plan:
    column: str
    role: str  # node | diagnosis
    target: str | None
    labels: list[str]
    codes: dict[str, str | None] | None


class _Encoder:
    """Column plan from (data columns, model, mapping); encodes chunk after chunk."""

    def __init__(self, data_columns: Sequence[Any], model: Any, mapping: AuditMapping | None,
                 keep: Sequence[str] = (), source: str = "", weight_column: str | None = None,
                 extra_missing: Iterable[str] = ()):
        from kneehip_bn.inference.engine import get_engine
        from kneehip_bn.inference.queries import as_model, node_groups
        from kneehip_bn.model.spec import DIAGNOSIS_COLUMN, NO_DIAGNOSIS

        m = as_model(model)
        self.engine = get_engine(m)
        groups = node_groups(m)
        self.origins = [n for n in groups if groups[n] == "origin"]
        self.diag_labels = [*self.origins, NO_DIAGNOSIS]
        self.source = source
        self.problems: list[dict[str, Any]] = list(mapping.problems) if mapping else []
        self.plans: list[_Plan] = []
        self.roles: dict[str, tuple[str, str | None]] = {}
        self.keep = [str(k) for k in keep]
        self.weight_column = weight_column
        self.missing = set(DEFAULT_MISSING) | set(mapping.missing if mapping else ()) | set(
            extra_missing)
        cols = [str(c) for c in data_columns]
        seen: dict[str, int] = {}
        for c in cols:
            seen[c] = seen.get(c, 0) + 1
        for c, k in seen.items():
            if k > 1:
                self._err("mapped_twice", c, None, None, None,
                          f"column '{c}' appears {k} times in the data: expected unique column "
                          "names; rename or drop the duplicates")
        for k in self.keep:
            if k not in seen:
                self._err("missing_column", k, None, None, None,
                          f"kept column '{k}' is not in the data: expected one of "
                          f"{', '.join(cols[:20])}", closest(k, cols))
        variables = self.engine.variables
        if mapping is not None:
            for c in mapping.ignore:
                if c not in seen:
                    g = closest(c, cols)
                    self.problems.append(_problem(
                        "warning", "missing_column", c, None, None, None, None, g,
                        f"mapping: ignored column '{c}' is not in the data"
                        + (f"; did you mean '{g}'?" if g else "")))
            for c, cm in mapping.columns.items():
                if seen.get(c, 0) > 1:
                    continue
                if c not in seen:  # a warning: a shared mapping may list more columns
                    g = closest(c, [x for x in cols if x not in mapping.columns])
                    self.problems.append(_problem(
                        "warning", "missing_column", c, cm.node, None, None, None, g,
                        f"mapping: column '{c}' (-> {cm.node or 'diagnosis'}) is not in the "
                        f"data, so that node stays unobserved"
                        + (f"; did you mean '{g}'?" if g else "")))
                    continue
                self._plan_from_map(cm, variables)
            mapped_nodes = {cm.node for cm in mapping.columns.values()}
            for c in seen:
                if c in mapping.columns or c in mapping.ignore or c in self.keep or c == weight_column:
                    continue
                # a column already named like a node (or the working diagnosis) that no
                # other column is mapped to is read as it is
                if seen[c] == 1 and c not in mapped_nodes and not (
                        c == DIAGNOSIS_COLUMN and any(cm.role == "diagnosis"
                                                      for cm in mapping.columns.values())):
                    if self._plan_as_named(c):
                        continue
                g = closest(c, list(mapping.columns) + variables)
                self._err("unmapped_column", c, None, None, None,
                          f"column '{c}' is not in the mapping: expected every audit column "
                          "mapped (columns:) or listed under ignore:"
                          + (f"; did you mean '{g}'?" if g else ""), g)
                self.roles[c] = ("unmapped", None)
            for c in mapping.ignore:
                if c in seen:
                    self.roles[c] = ("ignored", None)
        else:
            for c in seen:
                if c in self.keep or c == weight_column or seen[c] > 1:
                    continue
                if not self._plan_as_named(c):
                    g = closest(c, [*variables, DIAGNOSIS_COLUMN])
                    self._err("unmapped_column", c, None, None, None,
                              f"column '{c}' is not a node of the model: expected node names as "
                              "column headers (or a mapping file)"
                              + (f"; did you mean '{g}'?" if g else "; drop the column or map it"), g)
                    self.roles[c] = ("unmapped", None)
        for k in self.keep:
            if k in seen:
                self.roles[k] = ("kept", None)
        # columns mapped twice (two audit columns -> one node, or two diagnosis columns)
        by_target: dict[str, list[str]] = {}
        for p in self.plans:
            by_target.setdefault(p.target or "(diagnosis)", []).append(p.column)
        for t, cs in by_target.items():
            if len(cs) > 1:
                self._err("mapped_twice", ", ".join(cs), None if t == "(diagnosis)" else t, None, None,
                          f"columns {', '.join(repr(c) for c in cs)} are all mapped to "
                          f"{'the working diagnosis' if t == '(diagnosis)' else 'node ' + t}: "
                          "expected each node from one column; keep one and ignore the others")
        self.node_plans = [p for p in self.plans if p.role == "node"]
        dx = [p for p in self.plans if p.role == "diagnosis"]
        self.diag_plan = dx[0] if dx else None
        self.columns = [p.target for p in self.node_plans]
        self.cards = [int(self.engine.card[self.engine.index[c]]) for c in self.columns]
        self.nonblank = np.zeros(len(self.plans), dtype=np.int64)
        self.unknown_seen: dict[tuple[str, str], list] = {}
        self.n_rows = 0
        self.encoded = False

    def _plan_as_named(self, c: str) -> bool:
        """Plan column ``c`` under its own name (a node, or the working diagnosis)."""
        from kneehip_bn.model.spec import DIAGNOSIS_COLUMN

        if c in self.engine.index:
            self._add_plan(_Plan(c, "node", c, list(self.engine.states[c]), None))
        elif c == DIAGNOSIS_COLUMN:
            self._add_plan(_Plan(c, "diagnosis", None, self.diag_labels, None))
        else:
            return False
        return True

    def _err(self, kind, column, node, values, count, msg, suggestion=None, rows=None):
        self.problems.append(_problem("error", kind, column, node, values, count, rows,
                                      suggestion, msg))

    def _plan_from_map(self, cm: ColumnMap, variables: list[str]) -> None:
        c = cm.column
        if cm.role == "diagnosis":
            labels = self.diag_labels
            target = None
        else:
            if cm.node not in self.engine.index:
                g = closest(str(cm.node), variables)
                self._err("unknown_node", c, cm.node, None, None,
                          f"mapping: column '{c}' is mapped to unknown node '{cm.node}': expected "
                          "a node of the model" + (f"; did you mean '{g}'?" if g else ""), g)
                return
            labels = list(self.engine.states[cm.node])
            target = cm.node
        if cm.codes is not None:
            for code, t in cm.codes.items():
                if t is not None and t not in labels:
                    g = closest(t, labels)
                    what = "an origin (or 'none')" if cm.role == "diagnosis" else f"a state of {target}"
                    self._err("unknown_state", c, target, t, None,
                              f"mapping: column '{c}' code '{code}' maps to '{t}', which is not "
                              f"{what}: expected one of {', '.join(labels)}"
                              + (f"; did you mean '{g}'?" if g else ""), g)
        self._add_plan(_Plan(c, cm.role, target, labels, cm.codes))

    def _add_plan(self, p: _Plan) -> None:
        self.plans.append(p)
        self.roles[p.column] = (p.role, p.target)

    @property
    def fatal(self) -> bool:
        return any(p["severity"] == "error" for p in self.problems)

    def encode(self, df: Any, offset: int = 0, multiplicity: np.ndarray | None = None):
        """Encode one chunk: (codes (n, k) int8, diagnosis (n,) int8 or None, weights).

        ``multiplicity`` (grouped input: line i stands for ``multiplicity[i]`` rows) weights
        the row, blank and unknown-code counts; first row numbers are then left empty for
        the caller to fill in (:mod:`kneehip_bn.io.duckdb_source`).
        """
        n = len(df)
        self.n_rows += n if multiplicity is None else int(multiplicity.sum())
        self.encoded = True
        self._mult = multiplicity
        codes = np.empty((n, len(self.node_plans)), dtype=np.int8, order="F")  # columns contiguous
        diag = None
        pos = {p.column: i for i, p in enumerate(self.plans)}

        def filled(col: np.ndarray) -> int:
            return int((col >= 0).sum()) if multiplicity is None else int(multiplicity[col >= 0].sum())

        for j, p in enumerate(self.node_plans):
            col = self._encode_column(df[p.column], p, offset)
            codes[:, j] = col
            self.nonblank[pos[p.column]] += filled(col)
        if self.diag_plan is not None:
            diag = self._encode_column(df[self.diag_plan.column], self.diag_plan, offset)
            self.nonblank[pos[self.diag_plan.column]] += filled(diag)
        weights = None
        if self.weight_column is not None:
            weights = self._weights(df, offset)
        return codes, diag, weights

    def _weights(self, df, offset):
        import pandas as pd

        w = pd.to_numeric(df[self.weight_column].astype(object), errors="coerce").to_numpy(float)
        bad = ~np.isfinite(w) | (w < 0)
        if bad.any():
            rows = np.flatnonzero(bad)[:_N_FIRST] + offset
            self._err("bad_count", self.weight_column, None, None, int(bad.sum()),
                      f"column '{self.weight_column}': expected non-negative numbers (pattern "
                      f"counts), found blanks or invalid values in {int(bad.sum())} rows (first rows: "
                      f"{', '.join(map(str, rows))})", rows=rows.tolist())
            w = np.where(bad, 0.0, w)
        return w

    def _encode_column(self, s: Any, p: _Plan, offset: int) -> np.ndarray:
        if isinstance(s, CodedColumn):
            cc, cats = s.codes, s.labels
        elif _is_categorical(s):
            cc, cats = np.asarray(s.cat.codes), list(s.cat.categories)
        else:  # factorize is vectorised (pyarrow-accelerated for text columns)
            import pandas as pd

            try:
                cc, uniq = pd.factorize(s, use_na_sentinel=True)
            except TypeError:  # lists, dicts (Parquet list/struct columns): not one code a cell
                kinds = sorted({type(v).__name__ for v in s if v is not None})
                self._bad_values(p, "nested_values", len(s), list(range(offset, offset + min(
                    len(s), _N_FIRST))), f"values of type {', '.join(kinds)} (e.g. a Parquet "
                    "list or struct column): expected one code per cell (text, a whole number "
                    "or a boolean); flatten the column or drop it")
                return np.full(len(s), -1, dtype=np.int8)
            cats = list(uniq)
        index = {lab: i for i, lab in enumerate(p.labels)}
        lut = np.empty(len(cats) + 1, dtype=np.int16)
        lut[-1] = -1
        unknown = []
        odd: dict[str, list[int]] = {}
        for i, raw in enumerate(cats):  # loop over distinct codes only
            if isinstance(raw, (bytes, bytearray, memoryview)):
                odd.setdefault("binary_values", []).append(i)
                lut[i] = -1
                continue
            if isinstance(raw, str) and "\x00" in raw:
                odd.setdefault("nul_in_value", []).append(i)
                lut[i] = -1
                continue
            lab = _norm(raw)
            if p.codes is not None and lab is not None and lab in p.codes:
                t = p.codes[lab]
                lut[i] = -1 if t is None else index.get(t, -1)
            elif lab is None or lab in self.missing:
                lut[i] = -1
            elif p.codes is None and lab in index:
                lut[i] = index[lab]
            else:
                lut[i] = -2
                unknown.append(i)
        cc = np.asarray(cc)
        out = lut[cc]
        for kind, idx in odd.items():
            hit = np.isin(cc, idx)
            n_hit = int(hit.sum())
            if not n_hit:
                continue
            rows = (np.flatnonzero(hit)[:_N_FIRST] + offset).tolist()
            self._bad_values(p, kind, n_hit, rows, _ODD_VALUES[kind])
        if unknown:
            mult = getattr(self, "_mult", None)
            counts = np.bincount(cc[cc >= 0], minlength=len(cats), weights=None if mult is None
                                 else mult[cc >= 0]).astype(np.int64)
            # a dictionary (categorical, pyarrow) may list values no row of this chunk has
            unknown = [i for i in unknown if counts[i] > 0]
            valid = list(p.codes) if p.codes is not None else p.labels
            for i in unknown:
                lab = _norm(cats[i])
                rows = [] if mult is not None else (np.flatnonzero(cc == i)[:_N_FIRST] + offset).tolist()
                self._unknown(p, str(lab), int(counts[i]), rows, valid)
            out = np.where(out == -2, -1, out)
        return out.astype(np.int8)

    def _bad_values(self, p: _Plan, kind: str, count: int, rows: list[int], what: str) -> None:
        """A problem with the values' type (not one readable code): once per column,
        counts added over chunks."""
        key = (p.column, "\x00" + kind)
        rec = self.unknown_seen.get(key)
        if rec is None:
            rec = _problem("error", kind, p.column, p.target or "working diagnosis", None, 0,
                           rows, None, "")
            self.unknown_seen[key] = rec
            self.problems.append(rec)
        rec["count"] += count
        n = rec["count"]
        rec["message"] = (f"column '{p.column}' ({'node ' + p.target if p.target else 'working diagnosis'}): "
                          f"{what} ({n} row{'s' if n != 1 else ''}; first rows: "
                          f"{', '.join(map(str, rec['first_rows']))})")

    def _unknown(self, p: _Plan, lab: str, count: int, rows: list[int], valid: list[str]):
        key = (p.column, lab)
        if key in self.unknown_seen:  # another spelling (' presnt') or a later chunk
            rec = self.unknown_seen[key]
            rec["count"] += count
            rec["first_rows"] = sorted({*rec["first_rows"], *rows})[:_N_FIRST]
            self.unknown_seen[key]["message"] = _unknown_msg(p, lab, self.unknown_seen[key]["count"],
                                                             self.unknown_seen[key]["first_rows"],
                                                             valid, self.unknown_seen[key]["suggestion"])
            return
        g = _closest_ci(lab, valid)
        rec = _problem("error", "unknown_code", p.column, p.target or "working diagnosis", lab,
                       count, rows, g, _unknown_msg(p, lab, count, rows, valid, g))
        self.unknown_seen[key] = rec
        self.problems.append(rec)

    def fill_first_rows(self, find: Any) -> None:
        """Grouped input: set the first row numbers of each unknown code from
        ``find(column, label)`` (a list, possibly empty when the source cannot say)."""
        for (col, lab), rec in self.unknown_seen.items():
            p = next(q for q in self.plans if q.column == col)
            valid = list(p.codes) if p.codes is not None else p.labels
            rows = list(find(col, lab))
            rec["first_rows"] = rows
            rec["message"] = _unknown_msg(p, lab, rec["count"], rows, valid, rec["suggestion"])

    def check_chunk(self, final: bool = False) -> None:
        """Raise (with the report so far) when a chunk revealed an error; ``final`` when the
        chunk is known to be the whole table (then the whole-table checks run too)."""
        if self.fatal:
            self.finish(final=final).raise_if_errors()

    def finish(self, final: bool = True) -> Any:
        """Problems that need the whole table (empty table, blank columns) and the summary.

        ``final=False`` (reporting after a chunk) skips the whole-table checks.
        """
        import pandas as pd

        if final:
            self._final_checks()
        return self._report(pd)

    def raise_if_errors(self) -> None:
        """The whole-table checks; raise :class:`DataError` with the full report if any
        problem is an error (the report, and pandas, are only built then)."""
        self._final_checks()
        if self.problems:
            self._report(None).raise_if_errors()

    def _final_checks(self) -> None:
        if getattr(self, "_checked", False):
            return
        self._checked = True
        if self.n_rows == 0:
            self._err("empty_table", None, None, None, 0,
                      f"the audit table {self.source or ''} has no rows: expected at least one "
                      "patient row".replace("  ", " "))
        elif not self.node_plans:
            self._err("no_columns", None, None, None, None,
                      "no audit column maps to a node of the model: expected node names as column "
                      "headers or a mapping file (--mapping)")
        else:
            bad_codes = {k[0] for k in self.unknown_seen}
            for i, p in enumerate(self.plans):
                if self.nonblank[i] == 0 and p.column not in bad_codes:
                    self._err("all_blank", p.column, p.target, None, self.n_rows,
                              f"column '{p.column}' ({'node ' + p.target if p.target else 'diagnosis'}) "
                              f"is blank in all {self.n_rows} rows: expected some recorded values; "
                              "check its codes (blank codes: NA, empty, the mapping's missing:) or "
                              "drop the column / list it under ignore: in the mapping")

    def _report(self, pd: Any) -> Any:
        if pd is None:
            import pandas as pd
        rows = []
        for c, (role, node) in self.roles.items():
            i = next((k for k, p in enumerate(self.plans) if p.column == c), None)
            blank = self.n_rows - int(self.nonblank[i]) if i is not None else 0
            rows.append({"column": c, "role": role, "node": node if role == "node" else (
                "working diagnosis" if role == "diagnosis" else None), "blank": blank,
                "blank_fraction": blank / self.n_rows if self.n_rows else 0.0})
        problems = pd.DataFrame(self.problems, columns=PROBLEM_COLUMNS)
        order = {"error": 0, "warning": 1}
        problems = problems.sort_values("severity", key=lambda s: s.map(order), kind="stable")
        return AuditReport(problems=problems.reset_index(drop=True),
                           columns=pd.DataFrame(rows, columns=["column", "role", "node", "blank",
                                                               "blank_fraction"]),
                           n_rows=self.n_rows, source=self.source)


_ODD_VALUES = {
    "binary_values": "binary values (bytes, e.g. an SQL BLOB or a Parquet binary column): "
                     "expected text codes; cast the column to text",
    "nul_in_value": "a value holds a NUL character: expected text; the data look damaged",
}


def _show(lab: str, width: int = 60) -> str:
    """A value as shown in a message: control characters escaped, long values cut."""
    s = lab if lab.isprintable() else lab.encode("unicode_escape").decode("ascii")
    return s if len(s) <= width else f"{s[:width]}... ({len(lab):,} characters)"


def _closest_ci(lab: str, valid: Sequence[str]) -> str | None:
    low = {v.lower(): v for v in valid}
    if lab.lower() in low:
        return low[lab.lower()]
    g = closest(lab.lower(), list(low))
    return low[g] if g is not None else None


def _unknown_msg(p, lab, count, rows, valid, g) -> str:
    what = f"node {p.target}" if p.target else "working diagnosis"
    shown = ", ".join(valid[:15]) + (", ..." if len(valid) > 15 else "")
    exp = "one of " + shown + (" (the mapping's codes)" if p.codes is not None else "")
    where = f" (first rows: {', '.join(map(str, rows))})" if rows else ""
    return (f"column '{p.column}' ({what}): unknown code '{_show(lab)}' in {count} row"
            f"{'s' if count != 1 else ''}{where}; expected "
            f"{exp}" + (f"; did you mean '{g}'?" if g else "; add it to the mapping's codes"))


@dataclass
class EncodedAudit:
    """An audit translated to engine codes.

    Attributes
    ----------
    codes : ndarray of int8, shape (n_rows, n_columns)
        State index per observed column (``-1`` = blank), in :attr:`columns` order.
    columns : list of str
        The node each column observes.
    cards : list of int
        Number of states of each column's node.
    diagnosis : ndarray of int8 or None
        Index into :attr:`diagnosis_labels` per row (``-1`` = blank).
    diagnosis_labels : list of str
        The origins followed by ``"none"``.
    report : AuditReport
    dataset : str
    kept : DataFrame or None
        Columns carried through unchanged (``keep=``).
    """

    codes: np.ndarray
    columns: list[str]
    cards: list[int]
    diagnosis: np.ndarray | None
    diagnosis_labels: list[str]
    report: AuditReport
    dataset: str
    kept: Any = None
    weights: np.ndarray | None = None

    @property
    def n_rows(self) -> int:
        """Number of rows."""
        return int(self.codes.shape[0])

    @property
    def origins(self) -> list[str]:
        """The model's origins (the diagnosis labels without ``none``)."""
        return self.diagnosis_labels[:-1]


def validate_audit(
    data: Any, model: Any = None, mapping: Any = None, *, table: str | None = None,
    sql: str | None = None, keep: Sequence[str] = (),
) -> AuditReport:
    """Check an audit against the model (and mapping) without raising.

    Returns
    -------
    AuditReport
        ``report.ok`` is False when fitting would refuse the data; ``print(report)``
        lists every problem with its column, values, first rows and a suggestion.
    """
    return _encode(data, model, mapping, table=table, sql=sql, keep=keep, raise_errors=False).report


def encode_audit(
    data: Any, model: Any = None, mapping: Any = None, *, table: str | None = None,
    sql: str | None = None, keep: Sequence[str] = (), dataset: str | None = None,
) -> EncodedAudit:
    """Validate and encode an audit in one pass.

    Parameters
    ----------
    data : DataFrame, path or URL
        See :func:`read_audit`.
    model : optional
        The model (default: the shipped model).
    mapping : path, dict or AuditMapping, optional
        Column and code translation (default: columns are node names, values are states).
    table, sql : str, optional
        For an SQLAlchemy URL.
    keep : list of str
        Columns to carry through unchanged (e.g. a patient id), exempt from mapping.
    dataset : str, optional
        Name recorded in reports and fitted models (default: the file or mapping name).

    Raises
    ------
    DataError
        When any problem is an error; ``err.report`` is the full :class:`AuditReport`.
    """
    return _encode(data, model, mapping, table=table, sql=sql, keep=keep, dataset=dataset)


def _encode(data, model, mapping, *, table=None, sql=None, keep=(), dataset=None,
            raise_errors=True, weight_column=None) -> EncodedAudit:
    mp = load_mapping(mapping)
    df = read_audit(data, table=table, sql=sql)
    name = _source_name(dataset, mp, data, table, sql)
    enc = _Encoder(df.columns, model, mp, keep=keep, source=name, weight_column=weight_column)
    codes, diag, weights = enc.encode(df)  # valid columns are checked even if others are not
    report = enc.finish()
    if raise_errors:
        report.raise_if_errors()
    kept = df[list(keep)].reset_index(drop=True) if keep and all(k in df.columns for k in keep) else None
    return EncodedAudit(codes=codes, columns=list(enc.columns), cards=list(enc.cards),
                        diagnosis=diag, diagnosis_labels=list(enc.diag_labels), report=report,
                        dataset=name, kept=kept, weights=weights)


# ============================================================================ patterns
def pattern_keys(codes: np.ndarray, cards: Sequence[int]) -> np.ndarray:
    """One int64 key per row: mixed radix with ``card + 1`` digits per column (blank = 0).

    When the key would overflow int64, the digits so far are first compressed to their
    rank among the distinct prefixes (``np.unique`` of a 1-D array), so any number of
    columns works and keys still sort like the rows.
    """
    codes = np.asarray(codes)
    n = codes.shape[0]
    key = np.zeros(n, dtype=np.int64)
    bound = 1
    for j, c in enumerate(cards):
        r = int(c) + 1
        if bound * r >= 2**62:
            _, key = np.unique(key, return_inverse=True)
            key = key.astype(np.int64).reshape(-1)
            bound = int(key.max()) + 1 if n else 1
        key *= r
        key += codes[:, j]
        key += 1
        bound *= r
    return key


def group_patterns(
    codes: np.ndarray, cards: Sequence[int], weights: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct rows of ``codes`` with their counts.

    Returns
    -------
    patterns : ndarray, shape (m, k)
        The distinct rows, sorted by their key.
    counts : ndarray, shape (m,)
        How many rows (or the summed ``weights``) share each pattern.
    inverse : ndarray, shape (n,)
        For each input row, the index of its pattern (``patterns[inverse] == codes``).

    Examples
    --------
    >>> import numpy as np
    >>> p, c, inv = group_patterns(np.array([[0, 1], [-1, 1], [0, 1]]), [2, 2])
    >>> p.tolist(), c.tolist(), inv.tolist()
    ([[-1, 1], [0, 1]], [1.0, 2.0], [1, 0, 1])
    """
    codes = np.asarray(codes)
    if codes.shape[0] == 0:
        return codes[:0], np.zeros(0), np.zeros(0, dtype=np.intp)
    key = pattern_keys(codes, cards)
    n = key.shape[0]
    order = np.argsort(key)  # patterns sorted by key; ids by a flag at each new key
    sk = key[order]
    new = np.empty(n, dtype=bool)
    new[0] = True
    np.not_equal(sk[1:], sk[:-1], out=new[1:])
    inverse = np.empty(n, dtype=np.intp)
    inverse[order] = np.cumsum(new) - 1
    first = order[new]  # a row of each pattern
    m = first.shape[0]
    if weights is None:
        counts = np.bincount(inverse, minlength=m).astype(float)
    else:
        counts = np.bincount(inverse, weights=np.asarray(weights, float), minlength=m)
    # column by column (codes from the encoder are column-major): (m, k), columns contiguous
    return np.take(codes.T, first, axis=1).T, counts, inverse


# ============================================================================ counts
# shareable counts live in kneehip_bn.io.counts (verified files, DuckDB/SQL counting,
# minimum counts); re-exported here, where they have always been imported from
from kneehip_bn.io.counts import (  # noqa: E402, F401  (counts imports this module's encoder lazily)
    COUNT_COLUMN,
    COUNTS_FORMAT,
    AuditCounts,
    _counts_from_codes,
    _model_name,
    _states_of,
    audit_counts,
    merge_counts,
    read_counts,
)
