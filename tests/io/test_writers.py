"""Tests of kneehip_bn.io.writers: table outputs (CSV/Parquet, atomic) and the fast-CSV test."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kneehip_bn.errors import OutputExistsError, ParameterError
from kneehip_bn.io.sources import fast_csv_sep
from kneehip_bn.io.writers import (
    STATUS_LABELS,
    TableWriter,
    table_format,
    write_table,
)


@pytest.mark.parametrize("name", ["t.csv", "t.parquet"])
def test_write_table_round_trip_and_never_over_a_file(tmp_path, name):
    df = pd.DataFrame({"knee_pain": pd.Categorical(["present", None, "absent"]),
                       "p": [0.25, 0.5, 1e-300]})
    out = tmp_path / name
    write_table(df, str(out))
    back = pd.read_csv(out) if name.endswith(".csv") else pd.read_parquet(out)
    assert back["p"].tolist() == [0.25, 0.5, 1e-300]
    assert back["knee_pain"].astype(object).where(back["knee_pain"].notna(), None).tolist() == [
        "present", None, "absent"]
    with pytest.raises(OutputExistsError):
        write_table(df, str(out))
    write_table(df.head(1), str(out), overwrite=True)
    assert len(pd.read_csv(out) if name.endswith(".csv") else pd.read_parquet(out)) == 1


def test_table_format_names_the_option():
    assert table_format("A.PQ") == "parquet" and table_format("a.txt") == "csv"
    with pytest.raises(ParameterError, match=r"--output a.json: expected a .csv or .parquet "
                                             r"file name, found '.json'"):
        table_format("a.json")


def test_fast_csv_sep(tmp_path):
    (tmp_path / "a.csv").write_text("x\n")
    (tmp_path / "a.tsv").write_text("x\n")
    (tmp_path / "a.parquet").write_text("x\n")
    assert fast_csv_sep(tmp_path / "a.csv", None, None) == ","
    assert fast_csv_sep(str(tmp_path / "a.tsv"), None, None) == "\t"
    assert fast_csv_sep(tmp_path / "a.parquet", None, None) is None
    assert fast_csv_sep(tmp_path / "missing.csv", None, None) is None
    assert fast_csv_sep(tmp_path / "a.csv", "audit", None) is None
    assert fast_csv_sep(pd.DataFrame(), None, None) is None


def test_table_writer_blanks_impossible_rows_and_writes_the_status(tmp_path):
    out = tmp_path / "p.csv"
    w = TableWriter(out, "csv", [], ["a", "b"], status=True)
    mat = np.array([[0.1, 0.2], [np.nan, np.nan]])
    w.write(mat, [], None, np.array([0, 1], dtype=np.int8))
    w.close()
    assert out.read_text().splitlines() == ["a,b,status", "0.1,0.2,ok", f",,{STATUS_LABELS[1]}"]
