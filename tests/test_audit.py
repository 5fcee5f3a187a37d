"""Tests of kneehip_bn.audit: reading (DataFrame, CSV, Parquet, SQLite), mapping,
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
from kneehip_bn.audit import (
    AuditCounts,
    AuditReport,
    audit_counts,
    encode_audit,
    group_patterns,
    iter_audit,
    load_mapping,
    merge_counts,
    pattern_keys,
    read_audit,
    read_counts,
    recode_to_audit,
    validate_audit,
)
from kneehip_bn.simulate import DIAGNOSIS_COLUMN, simulate_audit

DATA = Path(__file__).resolve().parents[1] / "data"


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


def test_counts_save_and_read_round_trip(spec, audit, tmp_path):
    c = audit_counts(audit, spec, dataset="clinic A")
    assert c.n_rows == 400 and c.counts.sum() == 400 and c.datasets == ["clinic A"]
    for name in ("c.json", "c.csv", "c.parquet"):
        c.save(tmp_path / name)
        back = read_counts(tmp_path / name, spec)
        assert back.columns == c.columns
        np.testing.assert_array_equal(back.patterns, c.patterns)
        np.testing.assert_array_equal(back.counts, c.counts)
        assert back.n_rows == 400
    assert read_counts(tmp_path / "c.json", spec).datasets == ["clinic A"]
    with pytest.raises(FileExistsError, match="overwrite=True"):
        c.save(tmp_path / "c.json")


def test_streamed_counts_equal_one_shot(spec, audit, tmp_path):
    audit.to_parquet(tmp_path / "a.parquet")
    whole = audit_counts(audit, spec)
    streamed = audit_counts(tmp_path / "a.parquet", spec, chunksize=37)
    np.testing.assert_array_equal(whole.patterns, streamed.patterns)
    np.testing.assert_array_equal(whole.counts, streamed.counts)
    assert streamed.n_rows == 400


def test_merge_counts_union_of_columns(spec):
    a = audit_counts(pd.DataFrame({"knee_pain": ["present", "absent", "present"]}), spec)
    b = audit_counts(pd.DataFrame({"hip_pain": ["absent"], "knee_pain": ["present"]}), spec)
    m = merge_counts([a, b])
    assert m.columns == ["knee_pain", "hip_pain"] and m.n_rows == 4
    got = {tuple(p): c for p, c in zip(m.patterns.tolist(), m.counts.tolist())}
    assert got == {(0, -1): 1.0, (1, -1): 2.0, (1, 0): 1.0}


def test_merge_counts_rejects_different_states():
    a = AuditCounts(["x"], {"x": ["a", "b"]}, np.array([[0]]), np.array([1.0]), 1)
    b = AuditCounts(["x"], {"x": ["a", "c"]}, np.array([[0]]), np.array([1.0]), 1)
    with pytest.raises(DataError, match="column x has states"):
        merge_counts([a, b])


def test_bad_counts_files(spec, tmp_path):
    (tmp_path / "c.csv").write_text("knee_pain\npresent\n")
    with pytest.raises(DataError, match="expected a 'count' column"):
        read_counts(tmp_path / "c.csv", spec)
    (tmp_path / "d.csv").write_text("knee_pain,count\npresent,2\nabsent,-1\n")
    with pytest.raises(DataError, match="expected non-negative numbers"):
        read_counts(tmp_path / "d.csv", spec)
    (tmp_path / "e.json").write_text('{"format": "other"}')
    with pytest.raises(DataError, match="kneehip-counts/1"):
        read_counts(tmp_path / "e.json", spec)
