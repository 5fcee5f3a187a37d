"""The column mapping: an audit's own column names and codes -> the model's nodes and states.

A mapping file is YAML (read by the one strict loader, :mod:`kneehip_bn._util.strict_yaml`)::

    format: kneehip-audit-mapping/1
    dataset: "Example clinic audit (synthetic)"
    missing: ["not recorded", "?"]      # extra codes meaning blank in every column
    ignore: [PATIENT_ID]                # columns deliberately not used
    columns:
      KNEE_PAIN: {node: knee_pain, codes: {Y: present, N: absent}}
      WORKING_DX: {diagnosis: true, codes: {KNEE_OA: knee_pathology, OTHER: none}}

:func:`load_mapping` reads it into an :class:`AuditMapping`; problems with the mapping
itself are kept on ``mapping.problems`` and reported with the data's by
:func:`kneehip_bn.io.encode.validate_audit`. :func:`recode_to_audit` goes the other way.

Examples
--------
>>> m = load_mapping({"columns": {"KNEE": {"node": "knee_pain", "codes": {"Y": "present"}}}})
>>> m.columns["KNEE"].node, m.columns["KNEE"].codes, m.problems
('knee_pain', {'Y': 'present'}, [])
>>> norm_code(" Y "), norm_code(2.0), norm_code(float("nan"))
('Y', '2', None)
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kneehip_bn._util.strict_yaml import YAMLInputError, load_yaml, unknown_fields
from kneehip_bn.errors import DataError, closest
from kneehip_bn.io.audit_report import problem
from kneehip_bn.model.spec import DIAGNOSIS_COLUMN

__all__ = ["DEFAULT_MISSING", "MAPPING_FORMAT", "AuditMapping", "ColumnMap", "load_mapping",
           "norm_code", "recode_to_audit"]

#: codes read as blank in every column (pandas' default NA strings); a mapping may add more
DEFAULT_MISSING = frozenset({
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND",
    "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
})
MAPPING_FORMAT = "kneehip-audit-mapping/1"
_TOP_KEYS = ["format", "dataset", "missing", "ignore", "columns"]
_COLUMN_KEYS = ["node", "codes", "diagnosis", "note"]


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

    Build it with :func:`load_mapping` from a YAML file (the format is in this module's
    docstring) or the same structure as a dict; a code may also map to ``missing``, e.g.
    ``SLR: {node: straight_leg_raise, codes: {POS: positive, NEG: negative, "NOT DONE":
    missing}}``.
    """

    columns: dict[str, ColumnMap] = field(default_factory=dict)
    ignore: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    dataset: str | None = None
    source: str | None = None
    problems: list[dict[str, Any]] = field(default_factory=list)


def norm_code(x: Any) -> str | None:
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
    if mapping is None or isinstance(mapping, AuditMapping):
        return mapping
    raw, source = _read_mapping(mapping)
    where = f"mapping file {source}" if source else "mapping"
    if not isinstance(raw, Mapping):
        raise DataError(f"{where}: expected a mapping with keys columns (and optionally "
                        f"dataset, missing, ignore), found {type(raw).__name__}")
    m = AuditMapping(source=source, dataset=raw.get("dataset"))

    def bad(column: str | None, msg: str, suggestion: str | None = None) -> None:
        m.problems.append(problem("error", "bad_mapping", column, None, None, None, None,
                                  suggestion, f"{where}: {msg}"))

    cols = _top_level(raw, m, bad)
    for col, entry in cols.items():
        cm = _column_map(str(col), entry, where, m.problems, bad)
        if cm is None:
            continue
        if cm.column in m.ignore:
            bad(cm.column, f"columns.{cm.column}: the column is both mapped and listed under "
                           "ignore; expected one of the two")
        m.columns[cm.column] = cm
    return m


def _read_mapping(mapping: Any) -> tuple[Any, str | None]:
    """(the raw mapping, the file it was read from or None)."""
    if not isinstance(mapping, (str, os.PathLike)):
        return mapping, None
    p = Path(mapping)
    if not p.exists():
        raise DataError(f"mapping file {p}: no such file; expected a YAML mapping of audit "
                        "columns to model nodes (see data/example_mapping.yaml)")
    try:
        return load_yaml(p, what="mapping file").data, str(p)  # the one strict loader
    except YAMLInputError as exc:
        raise DataError(f"mapping file {p}: {exc}") from None


def _top_level(raw: Mapping[str, Any], m: AuditMapping, bad: Callable[..., None]
               ) -> Mapping[Any, Any]:
    """Check the top-level keys (format, missing, ignore) into ``m``; the ``columns:``."""
    for k, hint in unknown_fields(raw, _TOP_KEYS):
        bad(None, f"unknown key '{k}': expected format, dataset, missing, ignore, columns; "
            + hint, closest(k, _TOP_KEYS))
    fmt = raw.get("format", MAPPING_FORMAT)
    if fmt != MAPPING_FORMAT:
        bad(None, f"format: expected '{MAPPING_FORMAT}', found {fmt!r}")
    miss = raw.get("missing", []) or []
    if not isinstance(miss, list):
        bad(None, f"missing: expected a list of codes meaning blank, found {miss!r}")
        miss = []
    m.missing = [x for x in (norm_code(v) for v in miss) if x is not None]
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
    return cols


def _column_map(col: str, entry: Any, where: str, probs: list[dict[str, Any]],
                bad: Callable[..., None]) -> ColumnMap | None:
    """One ``columns:`` entry as a :class:`ColumnMap`, or None (a problem recorded)."""
    if isinstance(entry, str):  # shorthand  KNEE_PAIN: knee_pain
        entry = {"node": entry}
    if not isinstance(entry, Mapping):
        bad(col, f"columns.{col}: expected {{node: NAME, codes: {{...}}}} or "
                 f"{{diagnosis: true, codes: {{...}}}}, found {entry!r}")
        return None
    for k, hint in unknown_fields(entry, _COLUMN_KEYS):
        bad(col, f"columns.{col}: unknown key '{k}': expected node, codes, diagnosis, note; "
            + hint)
    is_dx = bool(entry.get("diagnosis", False))
    node = entry.get("node")
    if is_dx == (node is not None):
        bad(col, f"columns.{col}: expected exactly one of `node: NAME` or `diagnosis: true`, "
                 f"found {'both' if is_dx else 'neither'}")
        return None
    codes = entry.get("codes")
    cm = ColumnMap(column=col, role="diagnosis" if is_dx else "node",
                   node=None if is_dx else str(node))
    if codes is None:
        return cm
    if not isinstance(codes, Mapping):
        bad(col, f"columns.{col}.codes: expected a mapping audit code -> state, found {codes!r}")
        return None
    cm.codes = _codes(cm, codes, where, probs)
    return cm


def _codes(cm: ColumnMap, codes: Mapping[Any, Any], where: str,
           probs: list[dict[str, Any]]) -> dict[str, str | None]:
    """A column's ``codes:`` as ``{audit code: state or None}`` (``missing`` = blank)."""
    out: dict[str, str | None] = {}
    for k, v in codes.items():
        if isinstance(k, bool):
            probs.append(problem(
                "warning", "boolean_code", cm.column, cm.node, str(k), None, None, None,
                f"{where}: columns.{cm.column}.codes: YAML read an unquoted yes/no/on/off/"
                f"true/false code as the boolean {k}; it matches only True/False values; "
                "quote it ('yes': present) to match the text"))
        kk = norm_code(k)
        target = None if v is None or (isinstance(v, str) and v == "missing") else str(v)
        out["" if kk is None else kk] = target
    return out


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
