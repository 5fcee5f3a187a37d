"""The audit validation report: one row per problem, one row per column.

:class:`AuditReport` is what :func:`kneehip_bn.io.encode.validate_audit` returns and what a
:class:`~kneehip_bn.errors.DataError` about an audit carries (``err.report``). Each problem
names its column, the offending values, how many rows, the first row numbers and the
closest valid code (:func:`problem` builds one row).

Examples
--------
>>> import pandas as pd
>>> r = AuditReport(pd.DataFrame([problem("warning", "all_blank", "x", None, None, 3, None,
...                                       None, "column 'x' is blank")],
...                              columns=PROBLEM_COLUMNS), pd.DataFrame(), 3, "demo")
>>> r.ok, str(r).splitlines()[0]
(True, 'Audit demo: 3 rows, 0 columns; 0 error(s), 1 warning(s)')
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kneehip_bn.errors import DataError

__all__ = ["PROBLEM_COLUMNS", "AuditReport", "problem"]

PROBLEM_COLUMNS = ["severity", "problem", "column", "node", "values", "count", "first_rows",
                   "suggestion", "message"]


def problem(severity: str, problem: str, column: str | None, node: str | None, values: Any,
            count: int | None, rows: list[Any] | None, suggestion: str | None,
            message: str) -> dict[str, Any]:
    """One row of :attr:`AuditReport.problems` (the keys of :data:`PROBLEM_COLUMNS`)."""
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
        import html  # stdlib, off the import path (notebooks only)

        return (f"<pre>{html.escape(str(self).splitlines()[0])}</pre>"
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
