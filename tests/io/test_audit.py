"""Tests of kneehip_bn.io.audit: reading (DataFrame, CSV, Parquet, SQLite), mapping,
validation messages, encoding, pattern grouping and shareable counts.

Oracles: hand-made tables with known codes, a pure-Python Counter for pattern grouping,
and round trips (model format -> clinic codes -> mapping -> the same engine codes).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kneehip_bn import DataError, UnknownNameError, load_spec
from kneehip_bn.errors import ParameterError
from kneehip_bn.io.audit_report import AuditReport
from kneehip_bn.io.counting import audit_counts
from kneehip_bn.io.encode import encode_audit, validate_audit
from kneehip_bn.io.mapping import load_mapping, recode_to_audit
from kneehip_bn.io.patterns import group_patterns, pattern_keys
from kneehip_bn.io.sources import iter_audit, read_audit
from kneehip_bn.learning.simulate import DIAGNOSIS_COLUMN, simulate_audit

DATA = Path(__file__).resolve().parents[2] / "data"


@pytest.fixture(scope="module")
def spec():
    return load_spec("knee_hip_basic")


@pytest.fixture(scope="module")
def audit(spec):
    return simulate_audit(400, seed=3, missing=0.2, diagnosis_noise=0.1, model=spec,
                          hidden=("mechanism", "origin"))


def _expected_codes(df, spec):
    out = np.full((len(df), len(df.columns)), -1)
    for j, c in enumerate(df.columns):
        states = spec.nodes[c].states
        for i, v in enumerate(df[c].astype(object)):
            if isinstance(v, str):
                out[i, j] = states.index(v)
    return out


# ------------------------------------------------------------------ encoding
def test_encode_model_format(spec, audit):
    enc = encode_audit(audit, spec)
    nodes = [c for c in audit.columns if c != DIAGNOSIS_COLUMN]
    assert enc.columns == nodes
    assert enc.cards == [len(spec.nodes[c].states) for c in nodes]
    np.testing.assert_array_equal(enc.codes, _expected_codes(audit[nodes], spec))
    labels = [*spec.group("origin"), "none"]
    want = [labels.index(v) if isinstance(v, str) else -1
            for v in audit[DIAGNOSIS_COLUMN].astype(object)]
    np.testing.assert_array_equal(enc.diagnosis, want)
    assert enc.report.ok


def test_blanks_are_missing_not_errors(spec):
    df = pd.DataFrame({"knee_pain": ["present", None, "", "  ", "NA", np.nan, " absent "]})
    enc = encode_audit(df, spec)
    assert enc.codes[:, 0].tolist() == [1, -1, -1, -1, -1, -1, 0]
    row = enc.report.columns.set_index("column").loc["knee_pain"]
    assert row["blank"] == 5 and row["blank_fraction"] == pytest.approx(5 / 7)


def test_numeric_codes_via_mapping(spec):
    df = pd.DataFrame({"KP": [1, 0, np.nan, 1.0]})
    m = {"columns": {"KP": {"node": "knee_pain", "codes": {1: "present", 0: "absent"}}}}
    assert encode_audit(df, spec, m).codes[:, 0].tolist() == [1, 0, -1, 1]


def test_clinic_format_round_trip(spec, audit):
    mapping = load_mapping(DATA / "example_mapping.yaml")
    coded = recode_to_audit(audit, mapping)
    assert "KNEE_PAIN" in coded.columns and set(coded["KNEE_PAIN"].dropna()) <= {"Y", "N"}
    a = encode_audit(audit, spec)
    b = encode_audit(coded, spec, mapping)
    order = [b.columns.index(c) for c in a.columns]
    np.testing.assert_array_equal(a.codes, b.codes[:, order])
    np.testing.assert_array_equal(a.diagnosis, b.diagnosis)
    assert b.dataset == "Example clinic audit (SYNTHETIC, 500 rows)"


def test_shipped_example_clinic_audit_validates(spec):
    enc = encode_audit(DATA / "example_clinic_audit.csv", spec, DATA / "example_mapping.yaml")
    assert enc.n_rows == 500 and len(enc.columns) == 18
    # "NOT DONE" is mapped to blank, so it never appears as a code
    slr = enc.columns.index("straight_leg_raise")
    raw = pd.read_csv(DATA / "example_clinic_audit.csv")["SLR"]
    assert (enc.codes[(raw == "NOT DONE").to_numpy(), slr] == -1).all()
    roles = enc.report.columns.set_index("column")["role"]
    assert roles["PATIENT_ID"] == "ignored" and roles["WORKING_DX"] == "diagnosis"


def test_shipped_synthetic_audit(spec):
    df = read_audit(DATA / "synthetic_audit.csv")
    assert len(df) == 2000
    enc = encode_audit(df, spec)
    assert enc.report.ok and enc.diagnosis is not None


def test_csv_parquet_and_dataframe_agree(spec, audit, tmp_path):
    audit.to_csv(tmp_path / "a.csv", index=False)
    audit.to_parquet(tmp_path / "a.parquet")
    ref = encode_audit(audit, spec).codes
    np.testing.assert_array_equal(encode_audit(tmp_path / "a.csv", spec).codes, ref)
    np.testing.assert_array_equal(encode_audit(str(tmp_path / "a.parquet"), spec).codes, ref)
    chunks = list(iter_audit(tmp_path / "a.parquet", chunksize=150))
    assert [len(c) for c in chunks] == [150, 150, 100]
    chunks = list(iter_audit(tmp_path / "a.csv", chunksize=300))
    assert [len(c) for c in chunks] == [300, 100]


def _sqlite(tmp_path, df, table="audit"):
    import sqlalchemy as sa

    db = tmp_path / "audit.db"
    eng = sa.create_engine(f"sqlite:///{db}")
    df.astype(object).to_sql(table, eng, index=False)
    eng.dispose()
    return f"sqlite:///{db}"


def test_sqlite_table_and_query(spec, audit, tmp_path):
    url = _sqlite(tmp_path, audit)
    ref = encode_audit(audit, spec).codes
    np.testing.assert_array_equal(encode_audit(url, spec, table="audit").codes, ref)
    q = encode_audit(url, spec, sql="SELECT * FROM audit WHERE age_group = '60_plus'")
    assert q.n_rows == int((audit["age_group"] == "60_plus").sum())
    chunks = list(iter_audit(url, table="audit", chunksize=100))
    assert sum(len(c) for c in chunks) == len(audit)


def test_sqlite_errors(spec, audit, tmp_path):
    url = _sqlite(tmp_path, audit)
    with pytest.raises(UnknownNameError, match=r"unknown table 'audti'.*did you mean 'audit'"):
        encode_audit(url, spec, table="audti")
    with pytest.raises(DataError, match="expected exactly one of a table name"):
        encode_audit(url, spec)
    with pytest.raises(DataError, match="no such SQLite file"):
        encode_audit(f"sqlite:///{tmp_path / 'nope.db'}", spec, table="audit")
    with pytest.raises(DataError, match="query 'SELECT knee FROM audti': no such table: audti"):
        encode_audit(url, spec, sql="SELECT knee FROM audti")
    assert not (tmp_path / "nope.db").exists()


# ------------------------------------------------------------------ validation
def test_unknown_code_message(spec):
    df = pd.DataFrame({"knee_pain": ["present", "presnt", "absent", "presnt", "Present"]})
    with pytest.raises(DataError, match=r"unknown code 'presnt' in 2 rows \(first rows: 1, 3\).*"
                                        r"did you mean 'present'") as ei:
        encode_audit(df, spec)
    rep = ei.value.report
    assert isinstance(rep, AuditReport) and not rep.ok
    p = rep.problems
    assert set(p["values"]) == {"presnt", "Present"}
    row = p[p["values"] == "Present"].iloc[0]
    assert row["suggestion"] == "present" and row["first_rows"] == [4] and row["count"] == 1
    assert "and 1 more problem" in str(ei.value)


def test_unknown_code_with_mapping_suggests_code(spec):
    df = pd.DataFrame({"KP": ["Y", "N", "y", "YES"]})
    m = {"columns": {"KP": {"node": "knee_pain", "codes": {"Y": "present", "N": "absent"}}}}
    rep = validate_audit(df, spec, m)
    msgs = " | ".join(rep.problems["message"])
    assert "unknown code 'y' in 1 row (first rows: 2)" in msgs and "did you mean 'Y'" in msgs
    assert "unknown code 'YES'" in msgs


def test_unmapped_column_without_mapping(spec):
    df = pd.DataFrame({"knee_pian": ["present"], "hip_pain": ["absent"]})
    with pytest.raises(DataError, match=r"column 'knee_pian' is not a node.*did you mean 'knee_pain'"):
        encode_audit(df, spec)


def test_unmapped_column_with_mapping(spec):
    df = pd.DataFrame({"KP": ["Y"], "PATIENT": ["p1"]})
    m = {"columns": {"KP": {"node": "knee_pain", "codes": {"Y": "present"}}}}
    with pytest.raises(DataError, match=r"column 'PATIENT' is not in the mapping.*ignore:"):
        encode_audit(df, spec, m)
    m["ignore"] = ["PATIENT"]
    assert encode_audit(df, spec, m).codes.tolist() == [[1]]


def test_column_mapped_twice(spec):
    df = pd.DataFrame({"KP": ["Y"], "KNEE": ["Y"]})
    m = {"columns": {"KP": {"node": "knee_pain", "codes": {"Y": "present"}},
                     "KNEE": {"node": "knee_pain", "codes": {"Y": "present"}}}}
    with pytest.raises(DataError, match="columns 'KP', 'KNEE' are all mapped to node knee_pain"):
        encode_audit(df, spec, m)


def test_duplicate_column_names(spec):
    df = pd.DataFrame([["present", "absent"]], columns=["knee_pain", "knee_pain"])
    with pytest.raises(DataError, match="column 'knee_pain' appears 2 times"):
        encode_audit(df, spec)


def test_empty_table(spec, tmp_path):
    with pytest.raises(DataError, match="has no rows"):
        encode_audit(pd.DataFrame({"knee_pain": pd.Series([], dtype=object)}), spec)
    (tmp_path / "e.csv").write_text("knee_pain,hip_pain\n")
    with pytest.raises(DataError, match="has no rows"):
        encode_audit(tmp_path / "e.csv", spec)


def test_entirely_blank_column(spec):
    df = pd.DataFrame({"knee_pain": ["present", "absent"], "hip_pain": [None, "NA"]})
    with pytest.raises(DataError, match=r"column 'hip_pain' .*is blank in all 2 rows"):
        encode_audit(df, spec)


def test_mapping_unknown_node_and_state(spec):
    df = pd.DataFrame({"KP": ["Y"]})
    with pytest.raises(DataError, match=r"unknown node 'knee_pian'.*did you mean 'knee_pain'"):
        encode_audit(df, spec, {"columns": {"KP": {"node": "knee_pian"}}})
    with pytest.raises(DataError, match=r"code 'Y' maps to 'presnt'.*did you mean 'present'"):
        encode_audit(df, spec, {"columns": {"KP": {"node": "knee_pain",
                                                   "codes": {"Y": "presnt"}}}})
    with pytest.raises(DataError, match=r"maps to 'knee_patholgy', which is not an origin.*did you mean 'knee_pathology'"):
        encode_audit(pd.DataFrame({"KP": ["Y"], "DX": ["K"]}), spec,
                     {"columns": {"KP": {"node": "knee_pain", "codes": {"Y": "present"}},
                                  "DX": {"diagnosis": True, "codes": {"K": "knee_patholgy"}}}})


def test_mapped_column_missing_from_data(spec):
    df = pd.DataFrame({"KNEE_PAIN": ["Y"]})
    m = {"columns": {"KNEE_PIAN": {"node": "knee_pain", "codes": {"Y": "present"}}}}
    with pytest.raises(DataError, match=r"column 'KNEE_PAIN' is not in the mapping.*did you mean "
                                        "'KNEE_PIAN'") as ei:
        encode_audit(df, spec, m)
    warn = ei.value.report.problems.query("severity == 'warning'")["message"].iloc[0]
    assert "column 'KNEE_PIAN' (-> knee_pain) is not in the data" in warn
    m2 = {"columns": {**m["columns"], "KNEE_PAIN": {"node": "hip_pain", "codes": {"Y": "present"}}}}
    enc = encode_audit(df, spec, m2)  # a mapped column a clinic does not record: warning only
    assert enc.columns == ["hip_pain"] and enc.report.ok


def test_mapping_file_problems(spec, tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_mapping(tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("columns: [unclosed\n")
    with pytest.raises(DataError, match="not valid YAML at line"):
        load_mapping(tmp_path / "bad.yaml")
    (tmp_path / "tag.yaml").write_text("columns: !!python/object:os.system {}\n")
    with pytest.raises(DataError, match="unsafe or unknown YAML tag at line 1"):
        load_mapping(tmp_path / "tag.yaml")
    (tmp_path / "yes.yaml").write_text("columns:\n  KP: {node: knee_pain, codes: {yes: present, no: absent}}\n")
    rep = validate_audit(pd.DataFrame({"KP": ["yes"]}), spec, tmp_path / "yes.yaml")
    assert (rep.problems["problem"] == "boolean_code").any()
    assert "quote it" in " ".join(rep.problems["message"])
    m = load_mapping({"columns": {"KP": {"node": "knee_pain"}}, "colums": 1})
    assert "did you mean 'columns'" in m.problems[0]["message"]


def test_report_string_lists_every_problem(spec):
    df = pd.DataFrame({"knee_pain": ["presnt"], "hip_pian": ["absent"]})
    rep = validate_audit(df, spec)
    text = str(rep)
    assert "2 error(s)" in text and "presnt" in text and "hip_pian" in text
    assert rep.to_dict()["ok"] is False


def test_bad_sources(spec, tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_audit(tmp_path / "nothing.csv")
    (tmp_path / "a.xlsx").write_text("x")
    with pytest.raises(DataError, match=r"expected a \.csv, \.tsv or \.parquet file"):
        read_audit(tmp_path / "a.xlsx")
    with pytest.raises(DataError, match="only used with an SQLAlchemy URL"):
        read_audit(pd.DataFrame(), table="x")
    with pytest.raises(DataError, match="database nonsense://: cannot connect"):
        read_audit("nonsense://", table="x")


# ------------------------------------------------------------------ patterns and counts
def test_group_patterns_against_counter():
    rng = np.random.default_rng(0)
    codes = rng.integers(-1, 3, size=(2000, 6))
    cards = [3, 3, 3, 3, 3, 3]
    pats, counts, inv = group_patterns(codes, cards)
    np.testing.assert_array_equal(pats[inv], codes)
    oracle = Counter(map(tuple, codes.tolist()))
    assert dict(zip(map(tuple, pats.tolist()), counts.tolist())) == oracle
    assert counts.sum() == 2000


def test_pattern_keys_compress_when_int64_would_overflow():
    rng = np.random.default_rng(1)
    base = rng.integers(-1, 2, size=(500, 5))
    codes = np.repeat(base, 10, axis=1)[:600] if False else np.tile(base, (1, 10))  # 50 columns
    cards = [2] * 50  # 3**50 > 2**63: needs compression
    keys = pattern_keys(codes, cards)
    _, first, inv = np.unique(keys, return_index=True, return_inverse=True)
    oracle = Counter(map(tuple, codes.tolist()))
    assert len(first) == len(oracle)
    np.testing.assert_array_equal(codes[first][inv.reshape(-1)], codes)
    # keys sort like rows (lexicographic in code + 1)
    rows = [tuple(r) for r in codes[first].tolist()]
    assert rows == sorted(rows)


# shareable counts (saving, reading, merging, DuckDB/SQL counting): tests/io/test_counts*.py


# ------------------------------------------------------------------ rows are what they say
# Every CSV reader (read_audit / validate_audit, iter_audit for fit and counts, the pyarrow
# path of batch and its pandas path) refuses a damaged row with the same one-line message
# naming the line as an editor numbers it. Oracle: the damage is made by hand at a known
# line, the file's bytes are compared before and after, nothing is written.
import hashlib  # noqa: E402
import os  # noqa: E402

from kneehip_bn.io import csv_source  # noqa: E402
from kneehip_bn.io.arrow_csv import iter_csv_coded  # noqa: E402
from kneehip_bn.io.csv_source import max_line_limit  # noqa: E402
from kneehip_bn.learning.batch import write_batch_posteriors  # noqa: E402


@pytest.fixture(scope="module")
def basic():
    return load_spec("knee_hip_basic")


@pytest.fixture(scope="module")
def good_csv(basic, tmp_path_factory):
    """40 rows, 18 columns, blanks, no quotes after the header (the pyarrow path)."""
    df = simulate_audit(40, seed=12, missing=0.15, model=basic, hidden=("mechanism", "origin"))
    path = tmp_path_factory.mktemp("rows") / "good.csv"
    df.to_csv(path, index=False)
    return path


def _lines(path):
    return path.read_bytes().split(b"\n")


def _every_reader(path, model, tmp_path, **kw):
    """The error message of each reader (None when it read the file)."""
    out = {}
    calls = {
        "read_audit": lambda: read_audit(path, **kw),
        "validate_audit": lambda: validate_audit(path, model),
        "iter_audit": lambda: list(iter_audit(path, chunksize=7, **kw)),
        "counts": lambda: audit_counts(path, model, chunksize=7),
        "batch": lambda: write_batch_posteriors(path, tmp_path / "b.csv", model, chunksize=7),
        "batch_pandas": lambda: write_batch_posteriors(path, tmp_path / "p.csv", model,
                                                       chunksize=7, reader="pandas"),
    }
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    for name, call in calls.items():
        try:
            call()
            out[name] = None
        except DataError as exc:
            out[name] = str(exc)
        written = [p for p in (tmp_path / "b.csv", tmp_path / "p.csv") if p.exists()]
        assert not written or out[name] is None, name  # nothing written on an error
        for p in written:
            p.unlink()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before  # the input is untouched
    assert not list(tmp_path.glob(".*.tmp"))
    return out


def _damage(good, tmp_path, name, edit):
    lines = _lines(good)
    data = edit(lines)
    p = tmp_path / name
    p.write_bytes(data if isinstance(data, bytes) else b"\n".join(data))
    return p


def _short(lines, i, keep):
    lines = list(lines)
    lines[i] = b",".join(lines[i].split(b",")[:keep])
    return lines


DAMAGES = {
    # name: (edit of the list of lines, line named, message)
    "short_row": (lambda ls: _short(ls, 5, 5), 6,
                  "expected 18 fields as in the header, found 5; fix or remove the row"),
    "long_row": (lambda ls: [*ls[:9], ls[9] + b",extra", *ls[10:]], 10,
                 "expected 18 fields as in the header, found 19"),
    "cut_mid_row": (lambda ls: b"\n".join(ls[:30]) + b"\n" + b",".join(ls[30].split(b",")[:7]) + b",",
                    31, "expected 18 fields as in the header, found 8; the file ends inside "
                        r"this row \(no line end\): it looks cut short"),
    "nul": (lambda ls: [*ls[:20], ls[20][:3] + b"\x00" + ls[20][3:], *ls[21:]], 21,
            r"a NUL byte at byte 4 of the line: expected text"),
    "not_utf8": (lambda ls: [*ls[:14], ls[14].replace(b",", b",\xe9", 1), *ls[15:]], 15,
                 r"not UTF-8 text \(byte 0xe9 at byte \d+ of the line\): expected UTF-8"),
    "unterminated_quote": (lambda ls: b"\n".join(ls).rstrip(b"\n") + b'\nunder_40,"low', 42,
                           "a quoted field opened on this line never closes"),
    "quoted_short_row": (lambda ls: [*ls[:3], b'"under_40",low', *ls[3:]], 4,
                         "expected 18 fields as in the header, found 2"),
    "whitespace_line": (lambda ls: [*ls[:25], b"   ", *ls[25:]], 26,
                        "expected 18 fields as in the header, found 1"),
}


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_damaged_rows_are_one_error_naming_the_line_on_every_reader(damage, good_csv, basic,
                                                                    tmp_path):
    edit, line, message = DAMAGES[damage]
    path = _damage(good_csv, tmp_path, f"{damage}.csv", edit)
    got = _every_reader(path, basic, tmp_path)
    import re

    for reader, msg in got.items():
        assert msg is not None, f"{reader} read the damaged file without a word"
        assert "\n" not in msg, reader
        assert re.search(rf"{damage}\.csv, line {line}: {message}", msg), (reader, msg)
    assert len({m.split("audit ")[-1] for m in got.values()}) == 1  # one message, all readers


def test_damage_in_a_late_range_and_after_a_quote_names_the_right_line(basic, tmp_path):
    """Many ranges (chunksize 7), a quote in one range (the rest read as a stream) and the
    damage further on: the line number still counts every line of the file."""
    df = simulate_audit(300, seed=4, missing=0.1, model=basic, hidden=("mechanism", "origin"))
    df = df.astype(object)
    df.loc[100, "knee_pain"] = "present"
    path = tmp_path / "late.csv"
    df.to_csv(path, index=False)
    lines = _lines(path)
    lines[120] = lines[120].replace(b"present", b'"present"', 1)  # a quote: stream from here
    lines[250] = b",".join(lines[250].split(b",")[:4])
    path.write_bytes(b"\n".join(lines))
    for reader, msg in _every_reader(path, basic, tmp_path).items():
        assert msg is not None and "late.csv, line 251: expected 18 fields" in msg, reader


def test_blank_lines_quotes_crlf_and_no_final_newline_are_read(good_csv, basic, tmp_path):
    """Not damage: blank lines (skipped, as pandas does), CRLF, a quoted field, no newline
    at the end — every reader gives the rows of the plain file."""
    want = read_audit(good_csv)
    raw = good_csv.read_bytes()
    lines = raw.split(b"\n")
    variants = {
        "blank.csv": b"\n".join([*lines[:10], b"", b"\r", *lines[10:]]) + b"\n",
        "crlf.csv": raw.replace(b"\n", b"\r\n"),
        "quoted.csv": b"\n".join([*lines[:5], b",".join(b'"' + f + b'"' for f in lines[5].split(b",")),
                                  *lines[6:]]),
        "nonl.csv": raw.rstrip(b"\n"),
    }
    for name, data in variants.items():
        p = tmp_path / name
        p.write_bytes(data)
        got = _every_reader(p, basic, tmp_path)
        assert all(v is None for v in got.values()), (name, got)
        pd.testing.assert_frame_equal(read_audit(p).astype(object), want.astype(object))
        assert sum(len(c) for c in iter_audit(p, chunksize=7)) == len(want)


def test_line_length_limit_is_settable_and_a_2gib_line_fails_fast(good_csv, basic, tmp_path,
                                                                  monkeypatch):
    long = tmp_path / "long.csv"
    lines = _lines(good_csv)
    lines[3] = lines[3] + b"x" * 5000  # a 5 kB value in the last field of line 4
    long.write_bytes(b"\n".join(lines))
    msg = r"long\.csv, line 4: longer than the limit of 4,096 bytes: expected rows of text"
    with pytest.raises(DataError, match=msg):
        read_audit(long, max_line_bytes=4096)
    with pytest.raises(DataError, match=msg):
        list(iter_csv_coded(long, chunksize=100, max_line_bytes=4096))
    monkeypatch.setenv("KNEEHIP_MAX_LINE_BYTES", "4096")
    assert max_line_limit() == 4096
    for reader in ("auto", "pandas"):
        with pytest.raises(DataError, match=msg):
            write_batch_posteriors(long, tmp_path / "o.csv", basic, reader=reader)
    got = read_audit(long, max_line_bytes=10_000)  # under the limit: read as it is
    assert len(got) == 40 and got.iloc[2, -1].endswith("x" * 5000)
    monkeypatch.setenv("KNEEHIP_MAX_LINE_BYTES", "lots")
    with pytest.raises(ParameterError, match="KNEEHIP_MAX_LINE_BYTES: expected a positive whole "
                                        "number of bytes, found 'lots'"):
        read_audit(good_csv)
    monkeypatch.delenv("KNEEHIP_MAX_LINE_BYTES")
    monkeypatch.setattr(csv_source, "MAX_LINE_BYTES", 100)
    assert max_line_limit() == 100
    with pytest.raises(ParameterError, match="max_line_bytes: expected a positive"):
        max_line_limit(0)
    monkeypatch.undo()
    # a small file padded to 2 GiB with NUL bytes (sparse: no disk used), and a 3 MB line
    nul = tmp_path / "nul2g.csv"
    nul.write_bytes(good_csv.read_bytes())
    with open(nul, "r+b") as f:
        f.truncate(2 << 30)
    line = tmp_path / "line.csv"
    line.write_bytes(good_csv.read_bytes() + b"a" * (3 << 20))
    for p, msg in ((nul, "a NUL byte at byte 1 of the line"),
                   (line, "longer than the limit of 1,048,576 bytes")):
        for reader in ("auto", "pandas"):
            with pytest.raises(DataError, match=rf"{p.name}, line 42: {msg}"):
                write_batch_posteriors(p, tmp_path / "o.csv", basic, reader=reader)
        with pytest.raises(DataError, match=rf"{p.name}, line 42: {msg}"):
            read_audit(p)
        p.unlink()


def test_empty_blank_and_unterminated_headers(basic, tmp_path):
    cases = {"empty.csv": (b"", r"no column names \(the file is empty\)"),
             "blanks.csv": (b"\n\n", r"no column names \(only 2 blank line"),
             "quote.csv": (b'knee_pain,"hip_pain\npresent,absent\n', "line 1: the header has a "
                                                                     "quote that never closes"),
             "nul.csv": (b"knee\x00pain\npresent\n", "line 1: a NUL byte at byte 5")}
    for name, (data, msg) in cases.items():
        (tmp_path / name).write_bytes(data)
        for reader in ("auto", "pandas"):
            with pytest.raises(DataError, match=msg):
                write_batch_posteriors(tmp_path / name, tmp_path / "o.csv", basic, reader=reader)
        with pytest.raises(DataError, match=msg):
            read_audit(tmp_path / name)
    (tmp_path / "lead.csv").write_bytes(b"\n\nknee_pain,hip_pain\npresent,absent\n")
    assert read_audit(tmp_path / "lead.csv").to_dict("list") == {"knee_pain": ["present"],
                                                                 "hip_pain": ["absent"]}


def test_compressed_csv_is_checked_too(good_csv, basic, tmp_path):
    import gzip

    lines = _short(_lines(good_csv), 7, 3)
    p = tmp_path / "a.csv.gz"
    p.write_bytes(gzip.compress(b"\n".join(lines)))
    with pytest.raises(DataError, match=r"a\.csv\.gz, line 8: expected 18 fields as in the "
                                        "header, found 3"):
        read_audit(p)
    ok = tmp_path / "ok.csv.gz"
    ok.write_bytes(gzip.compress(good_csv.read_bytes()))
    pd.testing.assert_frame_equal(read_audit(ok), read_audit(good_csv))


def test_parquet_and_sql_values_that_are_not_one_code(basic, tmp_path):
    """Nested (list/struct), binary and NUL-holding values are errors naming the column and
    rows, on Parquet, SQL and DataFrames alike (not a traceback, not 'unknown code b'...')."""
    import sqlite3

    import pyarrow as pa
    import pyarrow.parquet as pq

    df = simulate_audit(30, seed=5, missing=0.0, model=basic, hidden=("mechanism", "origin"))
    base = pa.Table.from_pandas(df, preserve_index=False).replace_schema_metadata(None)
    j = base.schema.get_field_index("knee_pain")
    cases = {"list": (pa.array([["present"]] * 30), "values of type ndarray"),
             "struct": (pa.array([{"x": 1}] * 30), "values of type dict"),
             "binary": (pa.array([b"present"] * 30), "binary values"),
             "nul": (pa.array(["pres\x00ent"] * 30), "a value holds a NUL character")}
    for name, (col, msg) in cases.items():
        p = tmp_path / f"{name}.parquet"
        pq.write_table(base.set_column(j, "knee_pain", col), p)
        want = rf"column 'knee_pain' \(node knee_pain\): {msg}.*\(\d+ rows; first rows: 0, 1, 2"
        rep = validate_audit(p, basic)
        assert not rep.ok and rep.errors["message"].str.contains(want).any(), name
        with pytest.raises(DataError, match=want):
            audit_counts(p, basic, chunksize=7)
        with pytest.raises(DataError, match=want):
            write_batch_posteriors(p, tmp_path / "o.csv", basic)
    db = tmp_path / "a.db"
    with sqlite3.connect(db) as con:
        df.astype(object).assign(knee_pain=[b"present"] * 30).to_sql("audit", con, index=False)
    with pytest.raises(DataError, match=r"column 'knee_pain' \(node knee_pain\): binary values"):
        encode_audit(f"sqlite:///{db}", basic, table="audit")
    (tmp_path / "bad.parquet").write_bytes(b"PAR1" + b"\0" * 64 + b"PAR1")
    with pytest.raises(DataError, match="cannot read it as parquet"):
        list(iter_audit(tmp_path / "bad.parquet"))


def test_long_and_control_values_are_shown_short_and_escaped(basic):
    df = pd.DataFrame({"knee_pain": ["x" * 5000, "a\tb"]})
    msgs = " ".join(validate_audit(df, basic).errors["message"])
    assert "unknown code '" + "x" * 60 + "... (5,000 characters)'" in msgs
    assert r"unknown code 'a\tb'" in msgs and len(msgs) < 1000


def test_a_pipe_is_refused_not_read_as_empty(tmp_path, basic):
    fifo = tmp_path / "audit.csv"
    os.mkfifo(fifo)
    for call in (lambda: read_audit(fifo), lambda: list(iter_csv_coded(fifo, chunksize=10)),
                 lambda: write_batch_posteriors(fifo, tmp_path / "o.csv", basic)):
        with pytest.raises(DataError, match=r"audit\.csv: expected a regular file, found a pipe"):
            call()
