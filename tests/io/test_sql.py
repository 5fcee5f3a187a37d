"""SQL sources are read-only by construction (kneehip_bn.io.sql), tested on real SQLite and
DuckDB database files: every hostile query of the reliability review is refused before it
reaches the database, the database file is byte-identical afterwards and nothing is
written next to it; counting runs as a GROUP BY inside the database and gives the same
counts as the rows.

Oracles: the DataFrame the database was made from (counts through pandas), the database
file's bytes and its folder listing before and after.
"""

from __future__ import annotations

import sqlite3

import duckdb
import numpy as np
import pytest

import kneehip_bn as kb
from kneehip_bn import DataError, cli
from kneehip_bn.io.counting import audit_counts
from kneehip_bn.io.encode import encode_audit
from kneehip_bn.io.sql import check_select, grouped_rows, open_readonly

MODEL = "knee_hip_basic"


@pytest.fixture(scope="module")
def audit():
    return kb.simulate_audit(300, seed=4, missing=0.15, model=kb.load_spec(MODEL),
                             hidden=("mechanism", "origin"))


def _sqlite_db(path, df):
    con = sqlite3.connect(path)
    df.astype(object).where(df.notna(), None).to_sql("audit", con, index=False)
    con.commit()
    con.close()
    return f"sqlite:///{path}"


def _duckdb_db(path, df):
    con = duckdb.connect(str(path))
    con.register("df", df.astype(object).where(df.notna(), None))
    con.execute("CREATE TABLE audit AS SELECT * FROM df")
    con.close()
    return f"duckdb:///{path}"


@pytest.fixture(params=["sqlite", "duckdb"])
def db(request, audit, tmp_path):
    d = tmp_path / "dbdir"
    d.mkdir()
    path = d / ("audit.db" if request.param == "sqlite" else "audit.duckdb")
    url = (_sqlite_db if request.param == "sqlite" else _duckdb_db)(path, audit)
    return request.param, url, path


def snapshot(path):
    return path.read_bytes(), sorted(p.name for p in path.parent.iterdir())


HOSTILE = [
    ("DROP TABLE audit", r"found a DROP statement"),
    ("VACUUM INTO 'stolen.db'", r"found a VACUUM statement"),
    ("ATTACH DATABASE 'other.db' AS o", r"found a ATTACH statement"),
    ("CREATE TABLE t AS SELECT * FROM audit", r"found a CREATE statement"),
    ("INSERT INTO audit (knee_pain) VALUES ('present')", r"found a INSERT statement"),
    ("UPDATE audit SET knee_pain = 'absent'", r"found a UPDATE statement"),
    ("DELETE FROM audit", r"found a DELETE statement"),
    ("PRAGMA writable_schema = 1", r"found a PRAGMA statement"),
    ("COPY audit TO 'stolen.csv'", r"found a COPY statement"),
    ("SELECT * INTO t2 FROM audit", r"found SELECT … INTO"),
    ("WITH d AS (DELETE FROM audit RETURNING *) SELECT * FROM d", r"found a DELETE statement inside"),
    ("SELECT * FROM audit; DROP TABLE audit", r"found 2 statements \(a SELECT, a DROP statement\)"),
    ("SELECT * FROM audit -- harmless\n; DROP TABLE audit", r"found 2 statements"),
    ("SELECT * FROM audit /* ; */ ; VACUUM INTO 'x.db'", r"found 2 statements"),
    ("DETACH DATABASE o", r"found a DETACH statement"),
    ("", r"found an empty query"),
    ("  ;  -- nothing", r"found no statement"),
    ("SELEC * FROM audit", r"found .*"),
]


@pytest.mark.parametrize("sql, match", HOSTILE, ids=[h[0][:30] for h in HOSTILE])
def test_hostile_queries_are_refused_and_the_database_is_unchanged(sql, match, db, capsys):
    _kind, url, path = db
    before = snapshot(path)
    with pytest.raises(DataError, match=match):
        audit_counts(url, MODEL, sql=sql)
    with pytest.raises(DataError, match=match):
        encode_audit(url, MODEL, sql=sql)
    # and every command, as the review ran them
    out = path.parent / "p.csv"
    for argv in (["check", url, "--sql", sql], ["counts", url, "--sql", sql, "-o", str(out)],
                 ["batch", url, "--sql", sql, "-o", str(out)],
                 ["fit", url, "--sql", sql, "-o", str(path.parent / "f.yaml"), "--quiet"]):
        assert cli.main([*argv, "--model", MODEL]) == 1
        err = capsys.readouterr().err
        if sql == "":  # the CLI refuses an empty option value at the door, before the parser
            assert err.startswith("error: --sql: expected a value, found an empty string"), err
        else:
            assert err.startswith("error: --sql: expected exactly one SELECT") and "nothing was run" in err
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert snapshot(path) == before  # byte-identical, and nothing written beside it


def test_a_hostile_table_name_is_an_unknown_table(db):
    _, url, path = db
    before = snapshot(path)
    with pytest.raises(kb.KneeHipError, match=r"unknown table .audit; DROP TABLE audit."):
        audit_counts(url, MODEL, table="audit; DROP TABLE audit")
    with pytest.raises(kb.KneeHipError, match=r"unknown table .audti.*did you mean .audit."):
        encode_audit(url, MODEL, table="audti")
    assert snapshot(path) == before


def test_the_connection_itself_refuses_writes(db):
    """Beneath the parser: the read-only connection (mode=ro + authorizer for SQLite,
    read_only=True for DuckDB) refuses a write sent straight to it."""
    kind, url, path = db
    before = snapshot(path)
    with open_readonly(url) as con:
        for stmt in ("DROP TABLE audit", "CREATE TABLE t (x INTEGER)",
                     "INSERT INTO audit (knee_pain) VALUES ('present')"):
            with pytest.raises(con.errors()):
                con._run(stmt)
        if kind == "duckdb":  # files and extensions are off too
            with pytest.raises(duckdb.Error):
                con._run(f"SELECT * FROM read_csv('{path}')")
    assert snapshot(path) == before


def test_missing_database_files_are_not_created(tmp_path):
    for url, what in ((f"sqlite:///{tmp_path / 'nope.db'}", "no such SQLite file"),
                      (f"duckdb:///{tmp_path / 'nope.duckdb'}", "no such DuckDB file")):
        with pytest.raises(DataError, match=what):
            audit_counts(url, MODEL, table="audit")
    assert list(tmp_path.iterdir()) == []


def test_counts_in_the_database_equal_counts_of_the_rows(db, audit):
    _kind, url, path = db
    before = snapshot(path)
    ref = audit_counts(audit, MODEL, dataset="A")
    for kw in ({"table": "audit"}, {"sql": "SELECT * FROM audit"},
               {"sql": "WITH a AS (SELECT * FROM audit) SELECT * FROM a"}):
        got = audit_counts(url, MODEL, dataset="A", **kw)
        np.testing.assert_array_equal(got.patterns, ref.patterns)
        np.testing.assert_array_equal(got.counts, ref.counts)
        assert got.n_rows == 300 and got.columns == ref.columns
    sub = audit_counts(url, MODEL, sql="SELECT * FROM audit WHERE age_group = '60_plus'")
    assert sub.n_rows == int((audit["age_group"] == "60_plus").sum())
    assert snapshot(path) == before


def test_only_distinct_patterns_leave_the_database(db, audit):
    _, url, _ = db
    cols, frame, counts = grouped_rows(url, "audit", None, lambda c: ["age_group", "knee_pain"])
    assert len(frame) == len(audit[["age_group", "knee_pain"]].drop_duplicates())  # not 300 rows
    assert counts.sum() == 300 and list(frame.columns) == ["age_group", "knee_pain"]
    assert "hip_pain" in cols


def test_unknown_codes_in_a_database_are_reported_without_row_numbers(tmp_path, audit):
    df = audit.copy()
    df["knee_pain"] = df["knee_pain"].astype(object)
    df.loc[[2, 9], "knee_pain"] = "presnt"
    url = _sqlite_db(tmp_path / "bad.db", df)
    # a table has no row order: the message gives the rows affected, not their numbers
    with pytest.raises(DataError, match=r"unknown code 'presnt' in 2 rows; expected one of absent, "
                                        r"present; did you mean 'present'"):
        audit_counts(url, MODEL, table="audit")
    # reading rows (fit, batch) still numbers them
    with pytest.raises(DataError, match=r"in 2 rows \(first rows: 2, 9\)"):
        encode_audit(url, MODEL, table="audit")


def test_fit_and_batch_read_rows_from_a_duckdb_file(audit, tmp_path):
    url = _duckdb_db(tmp_path / "a.duckdb", audit)
    enc = encode_audit(url, MODEL, table="audit")
    np.testing.assert_array_equal(enc.codes, encode_audit(audit, MODEL).codes)


@pytest.mark.parametrize("sql, dialect, want", [
    ("SELECT * FROM audit;", "sqlite", "SELECT * FROM audit"),
    ("select a from t union select a from u", "duckdb", "SELECT a FROM t UNION SELECT a FROM u"),
    ("SELECT 1 -- trailing comment", "sqlite", "SELECT 1 /* trailing comment */"),
    ("WITH x AS (SELECT 1 AS a) SELECT a FROM x", "postgres", "WITH x AS (SELECT 1 AS a) SELECT a FROM x"),
])
def test_check_select_returns_what_will_run(sql, dialect, want):
    assert check_select(sql, dialect) == want
