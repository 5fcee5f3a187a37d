"""Validating and encoding an audit: column plans, chunk encoding, the one streaming loop.

The audit's columns are first planned (:class:`ColumnPlanner`: which column observes which
node, from the data's header, the model and the mapping; unmapped, unknown, duplicated
columns are problems), then encoded chunk by chunk (:class:`ChunkEncoder`: codes to engine
state indices through pandas Categoricals or the fast path's dictionaries, ``-1`` = blank,
without Python loops over rows; unknown codes counted with their first rows and the
closest valid code). Nothing is silently dropped; blanks are missing values, not errors.

- :func:`validate_audit` checks an audit without raising and returns the
  :class:`~kneehip_bn.io.audit_report.AuditReport`;
- :func:`encode_audit` validates and encodes a whole table (:class:`EncodedAudit`);
- :func:`stream_encoded` is the one streaming loop (read, encode, check each chunk, then
  the whole-table checks) behind counting, fitting and batch posteriors: memory bounded
  by the chunk size.

Examples
--------
>>> import pandas as pd
>>> df = pd.DataFrame({"knee_pain": ["present", None, "absent"],
...                    "age_group": ["60_plus", "under_40", None]})
>>> enc = encode_audit(df, model="knee_hip_basic")
>>> enc.columns, enc.codes.tolist()
(['knee_pain', 'age_group'], [[1, 2], [-1, 0], [0, -1]])
>>> bad = pd.DataFrame({"knee_pain": ["present", "presnt"]})
>>> print(validate_audit(bad, model="knee_hip_basic").problems.loc[0, "message"])  # doctest: +ELLIPSIS
column 'knee_pain' (node knee_pain): unknown code 'presnt' in 1 row (first rows: 1); expected one of absent, present; did you mean 'present'?
>>> [len(ch) for ch in stream_encoded(df, "knee_hip_basic", chunksize=2)]
[2, 1]
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from kneehip_bn._util.progress import progress_bar
from kneehip_bn.errors import closest
from kneehip_bn.inference.cache import get_engine
from kneehip_bn.inference.queries import as_model, node_groups
from kneehip_bn.io.arrow_csv import CodedColumn
from kneehip_bn.io.audit_report import PROBLEM_COLUMNS, AuditReport, problem
from kneehip_bn.io.mapping import DEFAULT_MISSING, AuditMapping, ColumnMap, load_mapping, norm_code
from kneehip_bn.io.sources import is_categorical, iter_coded, read_audit, single_chunk, source_name
from kneehip_bn.model.spec import DIAGNOSIS_COLUMN, NO_DIAGNOSIS

__all__ = ["ChunkEncoder", "ColumnPlan", "ColumnPlanner", "EncodedAudit", "EncodedChunk",
           "encode_audit", "stream_encoded", "unknown_msg", "validate_audit"]

_N_FIRST = 5


@dataclass
class ColumnPlan:
    """How one audit column is read: as node ``target`` (``role="node"``) or as the working
    diagnosis; ``labels`` are the valid states, ``codes`` the mapping's codes (or None)."""

    column: str
    role: str  # node | diagnosis
    target: str | None
    labels: list[str]
    codes: dict[str, str | None] | None


class ColumnPlanner:
    """The column plans of an audit: which column observes which node, from the data's
    column names, the model and the mapping; the columns' problems in ``problems``."""

    def __init__(self, data_columns: Sequence[Any], model: Any, mapping: AuditMapping | None,
                 keep: Sequence[str] = (), weight_column: str | None = None) -> None:
        m = as_model(model)
        self.engine = get_engine(m)
        groups = node_groups(m)
        self.origins = [n for n in groups if groups[n] == "origin"]
        self.diag_labels = [*self.origins, NO_DIAGNOSIS]
        self.problems: list[dict[str, Any]] = list(mapping.problems) if mapping else []
        self.plans: list[ColumnPlan] = []
        self.roles: dict[str, tuple[str, str | None]] = {}
        self.keep = [str(k) for k in keep]
        self.weight_column = weight_column
        cols = [str(c) for c in data_columns]
        seen = self._check_names(cols)
        if mapping is not None:
            self._plan_mapped(mapping, cols, seen)
        else:
            self._plan_named(cols, seen)
        for k in self.keep:
            if k in seen:
                self.roles[k] = ("kept", None)
        self._check_targets()
        self.node_plans = [p for p in self.plans if p.role == "node"]
        dx = [p for p in self.plans if p.role == "diagnosis"]
        self.diag_plan = dx[0] if dx else None
        self.columns = [p.target for p in self.node_plans]
        self.cards = [int(self.engine.card[self.engine.index[c]]) for c in self.columns]

    def _check_names(self, cols: list[str]) -> dict[str, int]:
        """How often each column name occurs; repeated names and missing kept columns."""
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
        return seen

    def _plan_mapped(self, mapping: AuditMapping, cols: list[str], seen: dict[str, int]) -> None:
        """Plans from a mapping: its columns, then columns named like a node, then the rest
        (unmapped: an error)."""
        variables = self.engine.variables
        for c in mapping.ignore:
            if c not in seen:
                g = closest(c, cols)
                self.problems.append(problem(
                    "warning", "missing_column", c, None, None, None, None, g,
                    f"mapping: ignored column '{c}' is not in the data"
                    + (f"; did you mean '{g}'?" if g else "")))
        for c, cm in mapping.columns.items():
            if seen.get(c, 0) > 1:
                continue
            if c not in seen:  # a warning: a shared mapping may list more columns
                g = closest(c, [x for x in cols if x not in mapping.columns])
                self.problems.append(problem(
                    "warning", "missing_column", c, cm.node, None, None, None, g,
                    f"mapping: column '{c}' (-> {cm.node or 'diagnosis'}) is not in the "
                    f"data, so that node stays unobserved"
                    + (f"; did you mean '{g}'?" if g else "")))
                continue
            self._plan_from_map(cm, variables)
        mapped_nodes = {cm.node for cm in mapping.columns.values()}
        dx_mapped = any(cm.role == "diagnosis" for cm in mapping.columns.values())
        for c in seen:
            if c in mapping.columns or c in mapping.ignore or c in self.keep or c == self.weight_column:
                continue
            # a column already named like a node (or the working diagnosis) that no
            # other column is mapped to is read as it is
            if seen[c] == 1 and c not in mapped_nodes and not (c == DIAGNOSIS_COLUMN and dx_mapped):
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

    def _plan_named(self, cols: list[str], seen: dict[str, int]) -> None:
        """Plans without a mapping: every column must be named like a node."""
        for c in seen:
            if c in self.keep or c == self.weight_column or seen[c] > 1:
                continue
            if not self._plan_as_named(c):
                g = closest(c, [*self.engine.variables, DIAGNOSIS_COLUMN])
                self._err("unmapped_column", c, None, None, None,
                          f"column '{c}' is not a node of the model: expected node names as "
                          "column headers (or a mapping file)"
                          + (f"; did you mean '{g}'?" if g else "; drop the column or map it"), g)
                self.roles[c] = ("unmapped", None)

    def _check_targets(self) -> None:
        """Columns mapped twice (two audit columns -> one node, or two diagnosis columns)."""
        by_target: dict[str, list[str]] = {}
        for p in self.plans:
            by_target.setdefault(p.target or "(diagnosis)", []).append(p.column)
        for t, cs in by_target.items():
            if len(cs) > 1:
                self._err("mapped_twice", ", ".join(cs), None if t == "(diagnosis)" else t, None, None,
                          f"columns {', '.join(repr(c) for c in cs)} are all mapped to "
                          f"{'the working diagnosis' if t == '(diagnosis)' else 'node ' + t}: "
                          "expected each node from one column; keep one and ignore the others")

    def _plan_as_named(self, c: str) -> bool:
        """Plan column ``c`` under its own name (a node, or the working diagnosis)."""
        if c in self.engine.index:
            self._add_plan(ColumnPlan(c, "node", c, list(self.engine.states[c]), None))
        elif c == DIAGNOSIS_COLUMN:
            self._add_plan(ColumnPlan(c, "diagnosis", None, self.diag_labels, None))
        else:
            return False
        return True

    def _err(self, kind: str, column: str | None, node: str | None, values: Any,
             count: int | None, msg: str, suggestion: str | None = None,
             rows: list[int] | None = None) -> None:
        self.problems.append(problem("error", kind, column, node, values, count, rows,
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
        self._add_plan(ColumnPlan(c, cm.role, target, labels, cm.codes))

    def _add_plan(self, p: ColumnPlan) -> None:
        self.plans.append(p)
        self.roles[p.column] = (p.role, p.target)

    @property
    def fatal(self) -> bool:
        """True when a problem found so far is an error."""
        return any(p["severity"] == "error" for p in self.problems)


class ChunkEncoder(ColumnPlanner):
    """Encodes chunk after chunk by the column plans (:class:`ColumnPlanner`), tallying
    blanks and unknown codes over the whole audit for the report."""

    def __init__(self, data_columns: Sequence[Any], model: Any, mapping: AuditMapping | None,
                 keep: Sequence[str] = (), source: str = "", weight_column: str | None = None,
                 extra_missing: Iterable[str] = ()) -> None:
        super().__init__(data_columns, model, mapping, keep=keep, weight_column=weight_column)
        self.source = source
        self.missing = set(DEFAULT_MISSING) | set(mapping.missing if mapping else ()) | set(
            extra_missing)
        self.nonblank = np.zeros(len(self.plans), dtype=np.int64)
        self.unknown_seen: dict[tuple[str, str], dict[str, Any]] = {}
        self.n_rows = 0
        self.encoded = False
        self._mult: np.ndarray | None = None
        self._checked = False

    def encode(self, df: Any, offset: int = 0, multiplicity: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
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

    def _weights(self, df: Any, offset: int) -> np.ndarray:
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

    def _encode_column(self, s: Any, p: ColumnPlan, offset: int) -> np.ndarray:
        if isinstance(s, CodedColumn):
            cc, cats = s.codes, s.labels
        elif is_categorical(s):
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
            lab = norm_code(raw)
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
            mult = self._mult
            counts = np.bincount(cc[cc >= 0], minlength=len(cats), weights=None if mult is None
                                 else mult[cc >= 0]).astype(np.int64)
            # a dictionary (categorical, pyarrow) may list values no row of this chunk has
            unknown = [i for i in unknown if counts[i] > 0]
            valid = list(p.codes) if p.codes is not None else p.labels
            for i in unknown:
                lab = norm_code(cats[i])
                rows = [] if mult is not None else (np.flatnonzero(cc == i)[:_N_FIRST] + offset).tolist()
                self._unknown(p, str(lab), int(counts[i]), rows, valid)
            out = np.where(out == -2, -1, out)
        return out.astype(np.int8)

    def _bad_values(self, p: ColumnPlan, kind: str, count: int, rows: list[int], what: str) -> None:
        """A problem with the values' type (not one readable code): once per column,
        counts added over chunks."""
        key = (p.column, "\x00" + kind)
        rec = self.unknown_seen.get(key)
        if rec is None:
            rec = problem("error", kind, p.column, p.target or "working diagnosis", None, 0,
                           rows, None, "")
            self.unknown_seen[key] = rec
            self.problems.append(rec)
        rec["count"] += count
        n = rec["count"]
        rec["message"] = (f"column '{p.column}' ({'node ' + p.target if p.target else 'working diagnosis'}): "
                          f"{what} ({n} row{'s' if n != 1 else ''}; first rows: "
                          f"{', '.join(map(str, rec['first_rows']))})")

    def _unknown(self, p: ColumnPlan, lab: str, count: int, rows: list[int],
                 valid: list[str]) -> None:
        key = (p.column, lab)
        if key in self.unknown_seen:  # another spelling (' presnt') or a later chunk
            rec = self.unknown_seen[key]
            rec["count"] += count
            rec["first_rows"] = sorted({*rec["first_rows"], *rows})[:_N_FIRST]
            self.unknown_seen[key]["message"] = unknown_msg(p, lab, self.unknown_seen[key]["count"],
                                                             self.unknown_seen[key]["first_rows"],
                                                             valid, self.unknown_seen[key]["suggestion"])
            return
        g = _closest_ci(lab, valid)
        rec = problem("error", "unknown_code", p.column, p.target or "working diagnosis", lab,
                       count, rows, g, unknown_msg(p, lab, count, rows, valid, g))
        self.unknown_seen[key] = rec
        self.problems.append(rec)

    def fill_first_rows(self, find: Any) -> None:
        """Grouped input: set the first row numbers of each unknown code from
        ``find(column, label)`` (a list, possibly empty when the source cannot say), then
        list the unknown codes as reading rows lists them: by column, then first row (a
        grouped result comes back in no particular order)."""
        for (col, lab), rec in self.unknown_seen.items():
            p = next(q for q in self.plans if q.column == col)
            valid = list(p.codes) if p.codes is not None else p.labels
            rows = list(find(col, lab))
            rec["first_rows"] = rows
            rec["message"] = unknown_msg(p, lab, rec["count"], rows, valid, rec["suggestion"])
        plans = [*self.node_plans, *([self.diag_plan] if self.diag_plan is not None else [])]
        order = {p.column: i for i, p in enumerate(plans)}
        slots = [i for i, pr in enumerate(self.problems) if pr["problem"] == "unknown_code"]
        recs = sorted((self.problems[i] for i in slots),
                      key=lambda r: (order.get(r["column"], len(order)),
                                     _row_key(r["first_rows"]), str(r["values"])))
        for i, r in zip(slots, recs):
            self.problems[i] = r

    def check_chunk(self, final: bool = False) -> None:
        """Raise (with the report so far) when a chunk revealed an error; ``final`` when the
        chunk is known to be the whole table (then the whole-table checks run too)."""
        if self.fatal:
            self.finish(final=final).raise_if_errors()

    def finish(self, final: bool = True) -> Any:
        """Problems that need the whole table (empty table, blank columns) and the summary.

        ``final=False`` (reporting after a chunk) skips the whole-table checks.
        """
        if final:
            self._final_checks()
        return self._report()

    def raise_if_errors(self) -> None:
        """The whole-table checks; raise :class:`DataError` with the full report if any
        problem is an error (the report, and pandas, are only built then)."""
        self._final_checks()
        if self.problems:
            self._report().raise_if_errors()

    def _final_checks(self) -> None:
        if self._checked:
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

    def _report(self) -> AuditReport:
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
    """The closest valid code, case aside."""
    low = {v.lower(): v for v in valid}
    if lab.lower() in low:
        return low[lab.lower()]
    g = closest(lab.lower(), list(low))
    return low[g] if g is not None else None


def unknown_msg(p: ColumnPlan, lab: str, count: int, rows: Sequence[Any], valid: Sequence[str],
                g: str | None) -> str:
    """The message of an unknown code in column plan ``p`` (``g``: the closest valid code)."""
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


def _encode(data: Any, model: Any, mapping: Any, *, table: str | None = None,
            sql: str | None = None, keep: Sequence[str] = (), dataset: str | None = None,
            raise_errors: bool = True, weight_column: str | None = None) -> EncodedAudit:
    mp = load_mapping(mapping)
    df = read_audit(data, table=table, sql=sql)
    name = source_name(dataset, mp, data, table, sql)
    enc = ChunkEncoder(df.columns, model, mp, keep=keep, source=name, weight_column=weight_column)
    codes, diag, weights = enc.encode(df)  # valid columns are checked even if others are not
    report = enc.finish()
    if raise_errors:
        report.raise_if_errors()
    kept = df[list(keep)].reset_index(drop=True) if keep and all(k in df.columns for k in keep) else None
    return EncodedAudit(codes=codes, columns=list(enc.columns), cards=list(enc.cards),
                        diagnosis=diag, diagnosis_labels=list(enc.diag_labels), report=report,
                        dataset=name, kept=kept, weights=weights)


def _row_key(rows: list[Any]) -> tuple:
    if not rows:
        return (2, "", 0)
    r = rows[0]
    if isinstance(r, str):  # "file:row" of a multi-file source
        f, _, n = r.rpartition(":")
        return (1, f, int(n) if n.isdigit() else 0)
    return (0, "", int(r))


# ============================================================================ streaming
@dataclass
class EncodedChunk:
    """One chunk of an audit, read and encoded (see :func:`stream_encoded`).

    Attributes
    ----------
    encoder : ChunkEncoder
        The encoder of the whole stream (``columns``, ``cards``, ``diag_labels``, and the
        report once the stream is read: ``encoder.finish()``).
    frame : DataFrame or CodedFrame
        The chunk as read (kept columns: ``frame[name]``).
    codes, diagnosis, weights
        As :meth:`ChunkEncoder.encode` returns them.
    offset : int
        The audit row number of the chunk's first row.
    """

    encoder: ChunkEncoder
    frame: Any
    codes: np.ndarray
    diagnosis: np.ndarray | None
    weights: np.ndarray | None
    offset: int

    def __len__(self) -> int:
        return len(self.frame)


def stream_encoded(
    data: Any, model: Any = None, mapping: Any = None, *, table: str | None = None,
    sql: str | None = None, chunksize: int = 500_000, keep: Sequence[str] = (),
    dataset: str | None = None, reader: str = "auto", progress: bool | None = False,
    desc: str = "reading audit",
) -> Iterator[EncodedChunk]:
    """Read, validate and encode an audit chunk by chunk: the one streaming loop.

    Each chunk of :func:`kneehip_bn.io.sources.iter_coded` (``reader="auto"``: the
    pyarrow fast path for a plain CSV file; ``"pandas"``: the reference reader) is encoded
    by one :class:`ChunkEncoder` and checked: a chunk revealing an error raises at once
    (a DataFrame read in one chunk gets the whole-table checks too). Once every chunk has
    been handed over, the whole-table checks run (empty table, blank columns) and any
    error raises :class:`~kneehip_bn.errors.DataError` with the full report. Memory is
    bounded by ``chunksize``.

    Parameters
    ----------
    data, model, mapping, table, sql, keep, dataset
        As for :func:`encode_audit` (``keep``: columns carried in ``chunk.frame``).
    chunksize : int
        Rows per chunk at most.
    reader : {"auto", "pandas"}
        Which CSV reader (``auto``: pyarrow when it reads the file exactly as pandas).
    progress : bool
        A progress bar (rows) labelled ``desc``.

    Yields
    ------
    EncodedChunk
        At least one (an empty one for an empty table, before the error about it).
    """
    mp = load_mapping(mapping)
    name = source_name(dataset, mp, data, table, sql)
    final = single_chunk(data, chunksize)
    enc = None
    offset = 0
    bar = progress_bar(enabled=progress, desc=desc, unit="rows")
    try:
        for chunk in iter_coded(data, table=table, sql=sql, chunksize=chunksize, text=keep,
                                reader=reader):
            if enc is None:
                enc = ChunkEncoder(chunk.columns, model, mp, keep=keep, source=name)
            codes, diag, weights = enc.encode(chunk, offset)
            enc.check_chunk(final=final)
            yield EncodedChunk(enc, chunk, codes, diag, weights, offset)
            offset += len(chunk)
            bar.update(len(chunk))
    finally:
        bar.close()
    assert enc is not None
    enc.raise_if_errors()
