"""The learning commands through the ``kneehip`` entry point (cli.main), as a user runs them.

Each result is checked against the Python API (an independent path to the same numbers)
or against the files written.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from basic import BASIC, main_basic
from kneehip_bn import load_spec
from kneehip_bn.learning.batch import batch_posteriors
from kneehip_bn.model.tables import cpd_array

DATA = Path(__file__).resolve().parents[2] / "data"


@pytest.fixture(scope="module")
def audit_csv(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    p = d / "audit.csv"
    assert main_basic(["simulate", "--n", "300", "--seed", "2", "--missing", "0.1",
                     "--diagnosis-noise", "0.1", "--hide", "mechanism", "origin",
                     "--output", str(p)]) == 0
    return p


def test_simulate_writes_the_requested_table(audit_csv, capsys, tmp_path):
    df = pd.read_csv(audit_csv)
    assert len(df) == 300 and "working_diagnosis" in df.columns and "knee_pathology" not in df
    assert 0.05 < df.drop(columns="age_group").isna().to_numpy().mean() < 0.15
    assert main_basic(["simulate", "--n", "10", "--seed", "1", "--output",
                     str(tmp_path / "s.parquet")]) == 0
    assert "SYNTHETIC" in capsys.readouterr().out
    assert len(pd.read_parquet(tmp_path / "s.parquet")) == 10


def test_fit_writes_model_report_and_plot(audit_csv, tmp_path, capsys):
    out = tmp_path / "fitted.yaml"
    rc = main_basic(["fit", str(audit_csv), "--strength", "40", "--freeze", "age_group",
                   "--max-iter", "4", "--tol", "1e-12", "--output", str(out),
                   "--report", str(tmp_path / "r.json"), "--plot", str(tmp_path / "f.png"),
                   "--quiet"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "Tables where the audit most disagrees" in text and f"wrote {out}" in text
    spec = load_spec(out)
    assert spec.nodes["knee_pain"].noisy_or.leak.source == "fitted"
    assert spec.nodes["knee_pain"].noisy_or.leak.fitted["strength"] == 40
    assert spec.nodes["age_group"].table[0].source != "fitted"  # frozen
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["rows"] == 300 and rep["iterations"] == 4 and rep["holdout"]
    assert (tmp_path / "f.png").stat().st_size > 10_000


def test_fit_json_and_same_numbers_as_api(audit_csv, tmp_path, capsys):
    from kneehip_bn.learning.fitter import PriorFitter

    rc = main_basic(["fit", str(audit_csv), "--max-iter", "3", "--tol", "1e-12", "--holdout", "0",
                   "--output", str(tmp_path / "a.yaml"), "--json", "--quiet"])
    assert rc == 0
    d = json.loads(capsys.readouterr().out)
    assert d["output"] == str(tmp_path / "a.yaml") and d["holdout"] is None
    api = PriorFitter(model=BASIC, progress=False, max_iter=3, tol=1e-12, holdout=0).fit(audit_csv)
    got = load_spec(tmp_path / "a.yaml")
    for n in got.nodes:
        np.testing.assert_allclose(cpd_array(got, n), cpd_array(api.spec_, n), atol=1e-15)


def test_fit_from_sqlite_and_mapping(tmp_path, capsys):
    import sqlalchemy as sa

    df = pd.read_csv(DATA / "example_clinic_audit.csv", dtype=str, keep_default_na=False)
    eng = sa.create_engine(f"sqlite:///{tmp_path / 'audit.db'}")
    df.to_sql("audit", eng, index=False)
    eng.dispose()
    rc = main_basic(["fit", f"sqlite:///{tmp_path / 'audit.db'}", "--table", "audit",
                   "--mapping", str(DATA / "example_mapping.yaml"), "--max-iter", "2",
                   "--holdout", "0", "--output", str(tmp_path / "f.yaml"), "--quiet"])
    assert rc == 0, capsys.readouterr().err
    spec = load_spec(tmp_path / "f.yaml")
    assert spec.nodes["knee_pain"].noisy_or.leak.fitted["dataset"] == \
        "Example clinic audit (SYNTHETIC, 500 rows)"
    assert spec.nodes["knee_pain"].noisy_or.leak.fitted["rows"] == 500


def test_check_command(audit_csv, capsys):
    assert main_basic(["check", str(audit_csv), "--all"]) == 0
    out = capsys.readouterr().out
    assert "implied independencies among observed columns" in out and "q_value" in out
    assert main_basic(["check", str(audit_csv), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["rows"] == 300 and d["tests"] > 10 and isinstance(d["results"], list)


def test_batch_command_matches_api(audit_csv, tmp_path, capsys):
    out = tmp_path / "post.csv"
    assert main_basic(["batch", str(audit_csv), "--output", str(out)]) == 0
    assert "300 rows" in capsys.readouterr().out
    got = pd.read_csv(out)
    want = batch_posteriors(pd.read_csv(audit_csv), model=BASIC)
    assert list(got.columns) == list(want.columns)
    np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), atol=1e-15)
    assert main_basic(["batch", str(audit_csv), "--output", str(out)]) == 1
    assert "exists" in capsys.readouterr().err


def test_counts_merge_and_fit_from_counts(audit_csv, tmp_path, capsys):
    df = pd.read_csv(audit_csv)
    df.iloc[:120].to_csv(tmp_path / "a.csv", index=False)
    df.iloc[120:].to_csv(tmp_path / "b.csv", index=False)
    assert main_basic(["counts", str(tmp_path / "a.csv"), "--output", str(tmp_path / "a.json")]) == 0
    assert main_basic(["counts", str(tmp_path / "b.csv"), "--output", str(tmp_path / "b.csv.json"),
                     "--dataset-name", "clinic B"]) == 0
    assert "no patient-level records" in capsys.readouterr().out
    assert main_basic(["merge-counts", str(tmp_path / "a.json"), str(tmp_path / "b.csv.json"),
                     "--output", str(tmp_path / "ab.parquet")]) == 0
    assert "300 rows from 2 files" in capsys.readouterr().out
    common = ["--max-iter", "3", "--tol", "1e-12", "--holdout", "0", "--quiet"]
    assert main_basic(["fit", "--counts", str(tmp_path / "ab.parquet"), "--output",
                     str(tmp_path / "c.yaml"), *common]) == 0
    assert main_basic(["fit", str(audit_csv), "--output", str(tmp_path / "d.yaml"), *common]) == 0
    c, d = load_spec(tmp_path / "c.yaml"), load_spec(tmp_path / "d.yaml")
    for n in c.nodes:
        np.testing.assert_array_equal(cpd_array(c, n), cpd_array(d, n))
    assert c.nodes["age_group"].table[0].fitted["dataset"] == "a.csv + clinic B"


@pytest.mark.parametrize("argv, match", [
    (["fit", "--output", "x.yaml"], "expected exactly one of DATA"),
    (["fit", "missing.csv", "--output", "x.yaml"], "no such file"),
    (["fit", "{csv}", "--strengths", "knee_pain", "--output", "x.yaml"], "expected NODE=N"),
    (["fit", "{csv}", "--freeze", "knee_pian", "--output", "x.yaml"], "did you mean 'knee_pain'"),
    (["fit", "sqlite:///{db}", "--output", "x.yaml"], "expected exactly one of a table name"),
    (["batch", "{bad}", "--output", "p.csv"], r"unknown code 'presnt' in 1 row \(first rows: 1\)"),
    (["check", "{bad}"], "did you mean 'present'"),
    (["simulate", "--n", "0", "--output", "s.csv"], "--n: expected a number of patients from 1"),
    (["counts", "{csv}", "--mapping", "nomap.yaml", "--output", "c.json"], "mapping file"),
])
def test_errors_exit_1_with_one_line(argv, match, audit_csv, tmp_path, capsys, monkeypatch):
    import re

    monkeypatch.chdir(tmp_path)
    pd.DataFrame({"knee_pain": ["present", "presnt"]}).to_csv(tmp_path / "bad.csv", index=False)
    (tmp_path / "db.db").write_bytes(b"")
    argv = [a.format(csv=audit_csv, bad=tmp_path / "bad.csv", db=tmp_path / "db.db") for a in argv]
    assert main_basic(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and re.search(match, err), err
    assert "Traceback" not in err
    assert not (tmp_path / "x.yaml").exists()


def test_fit_refuses_to_overwrite(audit_csv, tmp_path, capsys):
    (tmp_path / "x.yaml").write_text("keep me")
    assert main_basic(["fit", str(audit_csv), "--output", str(tmp_path / "x.yaml"), "--quiet"]) == 1
    assert "pass --overwrite" in capsys.readouterr().err
    assert (tmp_path / "x.yaml").read_text() == "keep me"


def test_ignore_lets_an_id_column_through_and_changes_nothing_else(audit_csv, tmp_path, capsys):
    df = pd.read_csv(audit_csv)
    with_id = tmp_path / "with_id.csv"
    df.insert(0, "patient_id", [f"P{i:05d}" for i in range(len(df))])
    df.to_csv(with_id, index=False)
    # without --ignore the extra column is refused, with the way out in the message
    assert main_basic(["batch", str(with_id), "--output", str(tmp_path / "x.csv")]) == 1
    assert "column 'patient_id' is not a node of the model" in capsys.readouterr().err
    # with --ignore: the same posteriors as the file without the column
    assert main_basic(["batch", str(with_id), "--ignore", "patient_id",
                     "--output", str(tmp_path / "ignored.csv")]) == 0
    assert main_basic(["batch", str(audit_csv), "--output", str(tmp_path / "plain.csv")]) == 0
    a = pd.read_csv(tmp_path / "ignored.csv")
    b = pd.read_csv(tmp_path / "plain.csv")
    np.testing.assert_allclose(a.to_numpy(), b.to_numpy(), rtol=0, atol=1e-12)
    # and fitting: the same fitted numbers
    for src, out in ((with_id, "f1.yaml"), (audit_csv, "f2.yaml")):
        extra = ["--ignore", "patient_id"] if src == with_id else []
        assert main_basic(["fit", str(src), *extra, "--max-iter", "3", "--holdout", "0",
                         "--output", str(tmp_path / out), "--quiet"]) == 0
    s1, s2 = load_spec(tmp_path / "f1.yaml"), load_spec(tmp_path / "f2.yaml")
    for node in ("knee_pain", "knee_pathology", "age_group"):
        np.testing.assert_allclose(cpd_array(s1, node), cpd_array(s2, node), atol=1e-12)


def test_a_mapping_of_only_ignore_reads_node_named_columns(audit_csv, tmp_path):
    from kneehip_bn.io.encode import encode_audit

    df = pd.read_csv(audit_csv)
    df["visit"] = "2025-01-01"
    enc = encode_audit(df, BASIC, {"format": "kneehip-audit-mapping/1", "ignore": ["visit"]})
    plain = encode_audit(df.drop(columns="visit"), BASIC, None)
    assert enc.columns == plain.columns
    np.testing.assert_array_equal(enc.codes, plain.codes)


def test_cli_lists_every_audit_problem_not_only_the_first(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("knee_pain,hip_pian\nyes,present\n,absent\n")
    assert main_basic(["fit", str(bad), "--output", str(tmp_path / "o.yaml")]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("error: ") and "more problem(s)" in err[0]
    also = [line for line in err if line.startswith("  also: ")]
    assert len(also) >= 1
    text = "\n".join(err)
    assert "unknown code 'yes'" in text and "did you mean 'hip_pain'" in text
    assert not (tmp_path / "o.yaml").exists()  # nothing written on bad input


@pytest.mark.parametrize("command", [
    ["fit", "--output", "x.yaml", "--quiet"], ["check"], ["batch", "--output", "p.csv"],
    ["counts", "--output", "c.json"],
])
def test_max_line_bytes_reaches_the_audit_reader(command, audit_csv, tmp_path, capsys,
                                                  monkeypatch):
    import os

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KNEEHIP_MAX_LINE_BYTES", raising=False)
    argv = [command[0], str(audit_csv), *command[1:], "--ignore", "working_diagnosis"]
    assert main_basic([*argv, "--max-line-bytes", "64"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: audit file ") and "line 1: longer than the limit of 64 bytes" in err
    assert "KNEEHIP_MAX_LINE_BYTES" not in os.environ  # restored after the command
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setenv("KNEEHIP_MAX_LINE_BYTES", "64")  # the flag wins over the variable
    assert main_basic([*argv, "--max-line-bytes", "100000"]) == 0, capsys.readouterr().err
    assert os.environ["KNEEHIP_MAX_LINE_BYTES"] == "64"
