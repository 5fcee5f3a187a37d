"""Shareable counts (kneehip_bn.io.counts): counted by DuckDB, pandas or the database alike,
saved and read back verified, merged with checks, released under a minimum count.

Oracles: the pandas path (``engine="pandas"``, chunked rows through the encoder, the
reference the package had before DuckDB) for every DuckDB count; a pure-Python Counter
over the rows for the pattern table; hand-worked tables for generalisation; a fit from
the raw rows for the fit from generalised counts.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

import kneehip_bn as kb
from kneehip_bn import DataError, cli
from kneehip_bn.errors import ParameterError
from kneehip_bn.io.counting import audit_counts
from kneehip_bn.io.counts import AuditCounts, checksum, generalise, merge_counts, model_hash
from kneehip_bn.io.counts_file import read_counts

DATA = Path(__file__).resolve().parents[2] / "data"
MODEL = "knee_hip_basic"


@pytest.fixture(scope="module")
def basic():
    return kb.load_spec(MODEL)


@pytest.fixture(scope="module")
def audit(basic):
    return kb.simulate_audit(600, seed=7, missing=0.2, diagnosis_noise=0.1, model=basic,
                             hidden=("mechanism", "origin"))


def same(a: AuditCounts, b: AuditCounts) -> None:
    assert a.columns == b.columns and a.states == b.states
    np.testing.assert_array_equal(a.patterns, b.patterns)
    np.testing.assert_array_equal(a.counts, b.counts)
    assert a.n_rows == b.n_rows and a.datasets == b.datasets and a.model == b.model
    assert a.model_hash == b.model_hash


def counter_oracle(df: pd.DataFrame, states: dict[str, list[str]], columns: list[str]):
    """Distinct patterns by a plain Counter over the rows (state labels, None = blank)."""
    rows = df[columns].astype(object).where(df[columns].notna(), None).itertuples(index=False)
    c = Counter(tuple(None if v is None else states[k].index(v) for k, v in zip(columns, r))
                for r in rows)
    return {tuple(-1 if x is None else x for x in k): v for k, v in c.items()}


# ------------------------------------------------------------------ DuckDB == pandas
@pytest.mark.parametrize("name, mapping", [("synthetic_audit.csv", None),
                                           ("example_clinic_audit.csv", "example_mapping.yaml")])
def test_duckdb_counts_equal_pandas_on_the_shipped_audits(name, mapping, tmp_path):
    mp = DATA / mapping if mapping else None
    ref = audit_counts(DATA / name, MODEL, mp, engine="pandas")
    same(audit_counts(DATA / name, MODEL, mp), ref)
    # the same table as Parquet, through DuckDB
    pd.read_csv(DATA / name, keep_default_na=False, na_values=[""]).to_parquet(tmp_path / "a.parquet")
    got = audit_counts(tmp_path / "a.parquet", MODEL, mp, dataset=ref.datasets[0])
    same(got, ref)
    assert ref.counts.sum() == ref.n_rows == len(pd.read_csv(DATA / name))


def test_duckdb_counts_equal_a_counter_over_the_rows(basic, audit, tmp_path):
    audit.to_csv(tmp_path / "a.csv", index=False)
    c = audit_counts(tmp_path / "a.csv", basic)
    oracle = counter_oracle(audit, c.states, c.columns)
    assert dict(zip(map(tuple, c.patterns.tolist()), c.counts.tolist())) == oracle
    assert c.n_rows == 600 and c.model_hash == model_hash(basic)


STATES = {"knee_pain": ["absent", "present"], "hip_pain": ["absent", "present"],
          "age_group": ["under_40", "40_59", "60_plus"]}
VALUES = st.sampled_from(["absent", "present", "under_40", "40_59", "60_plus", "", " present",
                          "NA", "presnt", "n/a", "1", "2.0", "True"])


@settings(max_examples=25, deadline=None, phases=[Phase.explicit, Phase.generate])  # no slow shrink
@given(data=st.data())
def test_duckdb_and_pandas_agree_on_generated_files(data, tmp_path_factory):
    """A clear error with the same message (and first rows) or the same counts."""
    cols = data.draw(st.lists(st.sampled_from(sorted(STATES)), min_size=1, max_size=3,
                              unique=True))
    n = data.draw(st.integers(0, 30))
    rows = [[data.draw(VALUES) for _ in cols] for _ in range(n)]
    d = tmp_path_factory.mktemp("gen")
    text = ",".join(cols) + "\n" + "".join(",".join(r) + "\n" for r in rows)
    (d / "a.csv").write_text(text)
    results = []
    for engine in ("pandas", "duckdb"):
        try:
            results.append(audit_counts(d / "a.csv", MODEL, engine=engine))
        except DataError as exc:
            results.append(exc)
    a, b = results
    assert type(a) is type(b), (a, b)
    if isinstance(a, DataError):
        assert str(a) == str(b)
        assert a.report.problems.to_dict("records") == b.report.problems.to_dict("records")
    else:
        same(a, b)


def test_unknown_codes_name_the_first_rows_on_every_path(tmp_path, audit):
    df = audit.copy()
    df["knee_pain"] = df["knee_pain"].astype(object)
    df.loc[[3, 17, 40, 41, 90, 91], "knee_pain"] = "presnt"
    df.to_csv(tmp_path / "bad.csv", index=False)
    df.to_parquet(tmp_path / "bad.parquet")
    msgs = set()
    for src in ("bad.csv", "bad.parquet"):
        for engine in ("pandas", "duckdb"):
            with pytest.raises(DataError, match=r"unknown code 'presnt' in 6 rows \(first rows: "
                                                r"3, 17, 40, 41, 90\).*did you mean 'present'"):
                audit_counts(tmp_path / src, MODEL, engine=engine, dataset="x")
            try:
                audit_counts(tmp_path / src, MODEL, engine=engine, dataset="x")
            except DataError as exc:
                msgs.add(str(exc))
    assert len(msgs) == 1  # one message, whichever path and format


def _write_parts(audit, tmp_path):
    """The audit in three parts, as ``part{i}.csv`` and as ``hive/clinic={A,B,C}/``
    Parquet files; the parts' row indices."""
    parts = np.array_split(np.arange(len(audit)), 3)
    for i, idx in enumerate(parts):
        audit.iloc[idx].to_csv(tmp_path / f"part{i}.csv", index=False)
        sub = tmp_path / "hive" / f"clinic={'ABC'[i]}"
        sub.mkdir(parents=True)
        audit.iloc[idx].to_parquet(sub / "data.parquet")
    return parts


def test_globs_and_hive_partitions_count_like_the_whole(basic, audit, tmp_path):
    whole = audit_counts(audit, basic, dataset="all")
    _write_parts(audit, tmp_path)
    same(audit_counts(str(tmp_path / "part*.csv"), basic, dataset="all"), whole)
    # hive keys become a column: refused unless mapped or ignored
    with pytest.raises(DataError, match="column 'clinic' is not a node"):
        audit_counts(tmp_path / "hive", basic, dataset="all")
    same(audit_counts(tmp_path / "hive", basic, {"ignore": ["clinic"]}, dataset="all"), whole)


def test_multi_file_problems_are_named(audit, tmp_path):
    audit.iloc[:10].to_csv(tmp_path / "a1.csv", index=False)
    audit.iloc[10:20].drop(columns="hip_pain").to_csv(tmp_path / "a2.csv", index=False)
    with pytest.raises(DataError, match=r"a2.csv: expected the same columns as .*a1.csv"):
        audit_counts(str(tmp_path / "a*.csv"), MODEL)
    with pytest.raises(DataError, match="no file matches the pattern"):
        audit_counts(str(tmp_path / "zz*.csv"), MODEL)
    bad = audit.iloc[:10].copy()
    bad["knee_pain"] = bad["knee_pain"].astype(object)
    bad.loc[bad.index[4], "knee_pain"] = "presnt"
    bad.to_csv(tmp_path / "b2.csv", index=False)
    audit.iloc[:10].to_csv(tmp_path / "b1.csv", index=False)
    with pytest.raises(DataError, match=r"in 1 row \(first rows: b2.csv:4\)"):
        audit_counts(str(tmp_path / "b*.csv"), MODEL)


def test_damaged_csv_rows_are_one_clear_error(tmp_path):
    (tmp_path / "r.csv").write_text("knee_pain,hip_pain\npresent,absent\nabsent\n")
    before = (tmp_path / "r.csv").read_bytes()
    with pytest.raises(DataError, match=r"r.csv, line 3: expected 2 fields as in the header, "
                                        r"found 1"):
        audit_counts(tmp_path / "r.csv", MODEL)
    assert (tmp_path / "r.csv").read_bytes() == before


def test_empty_and_blank_tables_give_the_usual_errors(tmp_path):
    (tmp_path / "e.csv").write_text("knee_pain,hip_pain\n")
    with pytest.raises(DataError, match="has no rows"):
        audit_counts(tmp_path / "e.csv", MODEL)
    (tmp_path / "b.csv").write_text("knee_pain,hip_pain\npresent,\nabsent,NA\n")
    with pytest.raises(DataError, match=r"column 'hip_pain' \(node hip_pain\) is blank in all 2 rows"):
        audit_counts(tmp_path / "b.csv", MODEL)


def test_duckdb_memory_limit_is_checked():
    with pytest.raises(ParameterError, match="DuckDB: cannot start with memory_limit='lots'"):
        audit_counts(DATA / "synthetic_audit.csv", MODEL, memory_limit="lots")


# ------------------------------------------------------------------ files: round trip
@pytest.mark.parametrize("name", ["c.json", "c.csv", "c.parquet"])
def test_counts_files_round_trip_withchecksum(audit, tmp_path, name):
    c = audit_counts(audit, MODEL, dataset="clinic A", min_count=3)
    c.save(tmp_path / name)
    back = read_counts(tmp_path / name, MODEL)
    same(back, c)
    assert back.privacy == c.privacy and back.min_count == 3
    with pytest.raises(FileExistsError, match="overwrite=True"):
        c.save(tmp_path / name)


def _json(tmp_path, audit, **kw):
    c = audit_counts(audit.iloc[:200], MODEL, dataset="clinic A", **kw)
    c.save(tmp_path / "a.json")
    return json.loads((tmp_path / "a.json").read_text())


def _write(path: Path, d: dict, resign: bool = True) -> Path:
    if resign:
        d = {**d, "checksum": checksum({k: v for k, v in d.items() if k != "checksum"})}
    path.write_text(json.dumps(d))
    return path


def _rename_column(d, new):
    old = "knee_pain"
    d["columns"] = [new if c == old else c for c in d["columns"]]
    d["states"][new] = d["states"].pop(old)
    return d


def _edit(key, value):
    def f(d):
        d[key] = value
        return d
    return f


def _edit_first(key, value):
    def f(d):
        d[key][0] = value
        return d
    return f


BAD = [  # (what, edit of the JSON, resign, message)
    ("rows lots", _edit("rows", "lots"), True, r"rows: expected a whole number of rows, found 'lots'"),
    ("rows 1e300", _edit("rows", 1e300), True, r"rows: expected a whole number of rows from 0 to 2\*\*53"),
    ("rows wrong", _edit("rows", 999999), True, r"rows: 999999 rows stated, but the counts add up to 200"),
    ("rows negative", _edit("rows", -1), True, r"rows: expected a whole number of rows from 0"),
    ("count negative", _edit_first("counts", -1), True, r"counts\[0\]: expected a whole number of rows from 1"),
    ("count fraction", _edit_first("counts", 1.5), True, r"counts\[0\]: expected a whole number of rows, found 1.5"),
    ("count 1e300", _edit_first("counts", 1e300), True, r"counts\[0\]: expected a whole number of rows from 1 to 2\*\*53"),
    ("count text", _edit_first("counts", "lots"), True, r"counts\[0\]: expected a whole number of rows, found 'lots'"),
    ("count zero", _edit_first("counts", 0), True, r"counts\[0\]: expected a whole number of rows from 1"),
    ("count bool", _edit_first("counts", True), True, r"counts\[0\]: expected a whole number of rows, found True"),
    ("checksum", _edit_first("counts", 7), False, r"checksum mismatch: .*damaged or edited"),
    ("model name", _edit("model", "some_other_model"), True, r"made with model 'some_other_model', not 'knee_hip_basic'"),
    ("model version", _edit("model_hash", "sha256:" + "0" * 64), True, r"made with another version of model 'knee_hip_basic'"),
    ("unknown state", lambda d: (d["patterns"][0].__setitem__(0, "presnt"), d)[1], True, r"pattern 0, column '.*': unknown state 'presnt'"),
    ("ragged", lambda d: (d["patterns"][0].pop(), d)[1], True, r"pattern 0: expected \d+ values \(one per column\)"),
    ("fewer counts", lambda d: (d["counts"].pop(), d)[1], True, r"expected one count per pattern"),
    ("datasets text", _edit("datasets", "clinic"), True, r"datasets: expected a list of distinct dataset names, found clinic"),
    ("datasets twice", _edit("datasets", ["a", "a"]), True, r"datasets: expected a list of distinct"),
    ("old format", _edit("format", "kneehip-counts/1"), True, r"format 'kneehip-counts/1' has no checksum .* cannot be verified"),
    ("other format", _edit("format", "other"), True, r"expected format 'kneehip-counts/2', found 'other'"),
    ("unknown field", _edit("strenght", 3), True, r"unknown fields \['strenght'\]"),
    ("missing field", lambda d: (d.pop("states"), d)[1], True, r"missing fields \['states'\]"),
    ("column twice", lambda d: (d["columns"].__setitem__(1, d["columns"][0]), d)[1], True, r"columns: '.*' is listed twice"),
    ("unknown column", lambda d: _rename_column(d, "knee_pian"), True, r"column 'knee_pian' is not a node of model 'knee_hip_basic'; did you mean 'knee_pain'"),
    ("states differ", lambda d: (d["states"].__setitem__(d["columns"][0], ["no", "yes"]), d)[1], True, r"states \['no', 'yes'\] differ from the model's"),
    ("duplicate pattern", lambda d: (d["patterns"].__setitem__(1, list(d["patterns"][0])), d)[1], True, r"a pattern is listed twice"),
    ("min count lie", _edit("privacy", {"min_count": 50}), True, r"a pattern has \d+ rows although the file says no pattern has fewer than min_count 50"),
]


@pytest.mark.parametrize("what, edit, resign, match", BAD, ids=[b[0] for b in BAD])
def test_bad_counts_files_are_one_clear_error(what, edit, resign, match, audit, tmp_path):
    d = _json(tmp_path, audit)
    p = _write(tmp_path / "bad.json", edit(json.loads(json.dumps(d))), resign=resign)
    before = p.read_bytes()
    with pytest.raises(DataError, match=match):
        read_counts(p, MODEL)
    assert p.read_bytes() == before


def test_bad_counts_files_fail_at_the_cli_with_exit_1(audit, tmp_path, capsys):
    d = _json(tmp_path, audit)
    d["rows"] = 999999
    p = _write(tmp_path / "t.json", d)
    before = p.read_bytes()
    assert cli.main(["fit", "--counts", str(p), "--model", MODEL, "-o", str(tmp_path / "t.yaml"),
                     "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: counts file") and "999999 rows stated" in err
    assert "Traceback" not in err and not (tmp_path / "t.yaml").exists()
    assert p.read_bytes() == before


def test_csv_and_parquet_counts_without_metadata_are_refused(tmp_path):
    (tmp_path / "c.csv").write_text("knee_pain,count\npresent,2\n")
    with pytest.raises(DataError, match=r"expected a first line '# kneehip-counts \{...\}'"):
        read_counts(tmp_path / "c.csv", MODEL)
    pd.DataFrame({"knee_pain": ["present"], "count": [2]}).to_parquet(tmp_path / "c.parquet")
    with pytest.raises(DataError, match="expected kneehip_counts metadata"):
        read_counts(tmp_path / "c.parquet", MODEL)
    (tmp_path / "c.json").write_bytes(b"\xff\xfe{")
    with pytest.raises(DataError, match="not valid UTF-8 JSON"):
        read_counts(tmp_path / "c.json", MODEL)


def test_a_hand_edited_csv_counts_file_fails_itschecksum(audit, tmp_path):
    c = audit_counts(audit.iloc[:100], MODEL, dataset="A")
    c.save(tmp_path / "c.csv")
    lines = (tmp_path / "c.csv").read_text().splitlines()
    head, row = lines[1].split(","), lines[2].split(",")
    row[-1] = str(int(row[-1]) + 1)
    (tmp_path / "c.csv").write_text("\n".join([*lines[:2], ",".join(row), *lines[3:]]) + "\n")
    assert head[-1] == "count"
    with pytest.raises(DataError, match="checksum mismatch"):
        read_counts(tmp_path / "c.csv", MODEL)


MUTATIONS = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 10**6), st.integers(1, 255)),
    st.tuples(st.just("cut"), st.integers(0, 10**6), st.just(0)),
    st.tuples(st.just("field"), st.sampled_from(sorted(["rows", "counts", "patterns", "model",
                                                        "datasets", "columns", "states",
                                                        "privacy", "model_hash", "format"])),
              st.recursive(st.none() | st.booleans() | st.integers(-3, 10**20)
                           | st.floats(allow_nan=False) | st.text(max_size=5),
                           lambda x: st.lists(x, max_size=3)
                           | st.dictionaries(st.text(max_size=3), x, max_size=2), max_leaves=6)),
)


@settings(max_examples=60, deadline=None, phases=[Phase.explicit, Phase.generate])
@given(mutation=MUTATIONS, resign=st.booleans())
def test_damaged_counts_files_give_a_clear_error_or_the_exact_answer(mutation, resign,
                                                                     tmp_path_factory):
    d = tmp_path_factory.mktemp("dmg")
    df = pd.DataFrame({"knee_pain": ["present", "absent", None, "present"],
                       "hip_pain": ["absent", None, "present", "absent"]})
    ref = audit_counts(df, MODEL, dataset="A")
    ref.save(d / "c.json")
    raw = (d / "c.json").read_bytes()
    kind, a, b = mutation
    if kind == "flip":
        i = a % len(raw)
        data = raw[:i] + bytes([raw[i] ^ b]) + raw[i + 1:]
    elif kind == "cut":
        data = raw[:a % len(raw)]
    else:
        obj = json.loads(raw)
        obj[a] = b
        if resign:
            obj["checksum"] = checksum({k: v for k, v in obj.items() if k != "checksum"})
        data = json.dumps(obj).encode()
    (d / "m.json").write_bytes(data)
    try:
        got = read_counts(d / "m.json", MODEL)
    except DataError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("counts file ")
    else:
        same(got, ref)
    assert (d / "m.json").read_bytes() == data


# ------------------------------------------------------------------ merging
def test_merge_checks_datasets_models_and_versions(audit, tmp_path):
    a = audit_counts(audit.iloc[:300], MODEL, dataset="A")
    b = audit_counts(audit.iloc[300:], MODEL, dataset="B")
    m = merge_counts([a, b])
    same_rows = audit_counts(audit, MODEL, dataset="x")
    np.testing.assert_array_equal(m.patterns, same_rows.patterns)
    np.testing.assert_array_equal(m.counts, same_rows.counts)
    assert m.datasets == ["A", "B"] and m.n_rows == 600
    with pytest.raises(DataError, match=r"dataset 'A' is in tables 1 and 2: expected each dataset once"):
        merge_counts([a, a])
    renamed = audit_counts(audit.iloc[:300], MODEL, dataset="A again")
    with pytest.raises(DataError, match="hold the same counts under different dataset names"):
        merge_counts([a, renamed])
    edited = kb.set_prior(kb.load_spec(MODEL), "lumbar_radiculopathy", 0.05)
    other_version = audit_counts(audit.iloc[300:], edited, dataset="C")
    assert other_version.model == a.model and other_version.model_hash != a.model_hash
    with pytest.raises(DataError, match="different versions of model 'knee_hip_basic'"):
        merge_counts([a, other_version])
    other_model = AuditCounts(a.columns, a.states, a.patterns, a.counts, a.n_rows, ["D"],
                              model="knee_hip_v9", model_hash=a.model_hash)
    with pytest.raises(DataError, match=r"different models \(knee_hip_basic, knee_hip_v9\)"):
        merge_counts([a, other_model])


def test_merge_counts_union_of_columns():
    a = audit_counts(pd.DataFrame({"knee_pain": ["present", "absent", "present"]}), MODEL,
                     dataset="a")
    b = audit_counts(pd.DataFrame({"hip_pain": ["absent"], "knee_pain": ["present"]}), MODEL,
                     dataset="b")
    m = merge_counts([a, b])
    assert m.columns == ["knee_pain", "hip_pain"] and m.n_rows == 4
    got = {tuple(p): c for p, c in zip(m.patterns.tolist(), m.counts.tolist())}
    assert got == {(0, -1): 1.0, (1, -1): 2.0, (1, 0): 1.0}


def test_cli_merge_refuses_the_same_file_twice(audit, tmp_path, capsys):
    audit.iloc[:100].to_csv(tmp_path / "full.csv", index=False)
    assert cli.main(["counts", str(tmp_path / "full.csv"), "--model", MODEL, "-o",
                     str(tmp_path / "a.json"), "--dataset-name", "A"]) == 0
    before = (tmp_path / "a.json").read_bytes()
    assert cli.main(["merge-counts", str(tmp_path / "a.json"), str(tmp_path / "a.json"),
                     "--model", MODEL, "-o", str(tmp_path / "twice.json")]) == 1
    err = capsys.readouterr().err
    assert "dataset 'A' is in tables 1 and 2" in err and "Traceback" not in err
    assert not (tmp_path / "twice.json").exists()
    assert (tmp_path / "a.json").read_bytes() == before
    # counts of one model read with another: refused
    assert cli.main(["merge-counts", str(tmp_path / "a.json"), "-o", str(tmp_path / "o.json")]) == 1
    assert re.search(r"made with model 'knee_hip_basic', not 'knee_hip'", capsys.readouterr().err)


# ------------------------------------------------------------------ minimum counts
def test_generalise_hand_worked():
    # columns a (x/y), b (u/v); values: a=x in 6 of 10 rows, b=u in 9 of 10
    c = AuditCounts(["a", "b"], {"a": ["x", "y"], "b": ["u", "v"]},
                    np.array([[0, 0], [0, 1], [1, 0]]), np.array([5.0, 1.0, 4.0]), 10)
    g = generalise(c, 5)
    # shares: a=x 6/10, a=y 4/10, b=u 9/10, b=v 1/10; self-information -log2(share):
    # a=x 0.74, a=y 1.32, b=u 0.15, b=v 3.32 bits. Round 1 (rare: (x,v) 1 row, (y,u) 4 rows):
    # (x,v) loses a=x -> (-,v); (y,u) loses b=u -> (y,-). Round 2: (-,v) -> (-,-) 1 row,
    # (y,-) -> (-,-) 4 rows: merged, 5 rows. (x,u) had 5 rows all along.
    assert {tuple(p): n for p, n in zip(g.patterns.tolist(), g.counts.tolist())} == {
        (0, 0): 5.0, (-1, -1): 5.0}
    assert g.privacy["suppressed_rows"] == 0 and g.privacy["generalised_rows"] == 5
    assert g.privacy["blanked_cells"] == {"a": 5, "b": 5}
    assert g.counts.sum() == g.n_rows == 10


@settings(max_examples=30, deadline=None)
@given(k=st.integers(1, 8), seed=st.integers(0, 10**6))
def test_generalised_counts_keep_every_row_and_release_nothing_rare(k, seed):
    rng = np.random.default_rng(seed)
    cards = [2, 3, 2, 2]
    codes = np.stack([rng.integers(-1, c, size=80) for c in cards], axis=1)
    from kneehip_bn.io.patterns import group_patterns

    pats, cnt, _ = group_patterns(codes, cards)
    cols = ["a", "b", "c", "d"]
    c = AuditCounts(cols, {x: [str(i) for i in range(n)] for x, n in zip(cols, cards)},
                    pats.astype(np.int8), cnt, 80)
    g = generalise(c, k)
    assert (g.counts >= k).all()
    assert g.counts.sum() + g.privacy["suppressed_rows"] == 80
    for j, x in enumerate(cols):  # cells only ever blanked, never changed
        before = np.bincount(codes[:, j][codes[:, j] >= 0], minlength=cards[j])
        after = np.bincount(g.patterns[:, j][g.patterns[:, j] >= 0],
                            weights=g.counts[g.patterns[:, j] >= 0], minlength=cards[j])
        assert (after <= before).all()
        assert before.sum() - after.sum() == g.privacy["blanked_cells"].get(x, 0)
    if k == 1:
        np.testing.assert_array_equal(g.patterns, c.patterns)


def test_merged_counts_keep_the_strictest_min_count(audit):
    a = audit_counts(audit.iloc[:300], MODEL, dataset="A", min_count=3)
    b = audit_counts(audit.iloc[300:], MODEL, dataset="B", min_count=5)
    raw = audit_counts(audit.iloc[:50], MODEL, dataset="C")
    m = merge_counts([a, b, raw])
    assert m.min_count == 5 and (m.counts >= 5).all()
    assert m.counts.sum() + m.privacy["suppressed_rows"] == m.n_rows == 650


def test_fit_from_generalised_counts_stays_close_to_the_fit_from_rows(basic):
    """The README figures: fitted probabilities from min-count-5 counts against the fit
    from the raw rows, on a SYNTHETIC 5000-row audit of 8 columns (10% blanks, mechanisms
    and origins hidden). Measured 2026-12-02: max |diff| 0.27 (one entry of one table),
    mean 0.014, origins' tables max 0.09; two raw audits of the same size differ by max
    0.055, mean 0.007. Generalisation blanks the rare patterns' cells, so the blanks are
    not at random and EM is pulled somewhat: the bounds below are what it must not exceed.
    """
    from kneehip_bn.model.tables import cpd_array

    cols = ["age_group", "activity_level", "knee_pain", "hip_pain", "low_back_pain",
            "radiating_leg_pain", "knee_effusion", "antalgic_gait_observed"]
    df = kb.simulate_audit(5000, seed=21, missing=0.1, model=basic,
                           hidden=("mechanism", "origin"))[cols]
    kw = dict(progress=False, holdout=0, max_iter=100, tol=1e-6)
    raw = kb.PriorFitter(basic, **kw).fit(df)
    gen_counts = audit_counts(df, basic, dataset="x", min_count=5)
    assert (gen_counts.counts >= 5).all() and gen_counts.privacy["generalised_rows"] > 1000
    gen = kb.PriorFitter(basic, **kw).fit(gen_counts)
    diffs = {n: np.abs(cpd_array(raw.spec_, n) - cpd_array(gen.spec_, n)) for n in basic.nodes}
    worst = max(float(d.max()) for d in diffs.values())
    mean = float(np.mean(np.concatenate([d.ravel() for d in diffs.values()])))
    origins = max(float(diffs[n].max()) for n in basic.group("origin"))
    print(f"\nmin_count 5: {gen_counts.privacy['generalised_rows']} of 5000 rows generalised; "
          f"fitted probabilities differ by max {worst:.4f}, mean {mean:.4f}, origins max "
          f"{origins:.4f}")
    assert worst < 0.35 and mean < 0.03 and origins < 0.15


def test_cli_counts_min_count_reports_what_was_generalised(audit, tmp_path, capsys):
    audit.to_csv(tmp_path / "a.csv", index=False)
    assert cli.main(["counts", str(tmp_path / "a.csv"), "--model", MODEL, "--min-count", "5",
                     "-o", str(tmp_path / "a.json")]) == 0
    out = capsys.readouterr().out
    assert re.search(r"min count 5: \d+ rows in \d+ rare patterns generalised", out)
    c = read_counts(tmp_path / "a.json", MODEL)
    assert c.min_count == 5 and (c.counts >= 5).all()
    assert cli.main(["counts", str(tmp_path / "a.csv"), "--model", MODEL, "--min-count", "0",
                     "-o", str(tmp_path / "b.json")]) == 1
    assert "--min-count: expected a whole number" in capsys.readouterr().err


def test_progress_bar_while_duckdb_counts(audit, tmp_path, capsys):
    audit.to_parquet(tmp_path / "a.parquet")
    quiet = audit_counts(tmp_path / "a.parquet", MODEL, dataset="a")
    shown = audit_counts(tmp_path / "a.parquet", MODEL, dataset="a", progress=True)
    same(shown, quiet)
    assert "counting a.parquet (DuckDB, 2 passes)" in capsys.readouterr().err


def test_a_nul_padded_csv_is_refused_by_duckdb_counting_too(tmp_path):
    """DuckDB skips NUL bytes; the counting path scans for them first and gives the
    package reader's message naming the line (``truncate -s`` padding, as in the review)."""
    src = Path(__file__).resolve().parents[2] / "data" / "synthetic_audit.csv"
    p = tmp_path / "padded.csv"
    p.write_bytes(b"".join(src.read_bytes().splitlines(keepends=True)[:21]))
    with open(p, "r+b") as fh:
        fh.truncate(8 << 20)
    before = p.read_bytes()
    with pytest.raises(DataError, match=r"padded\.csv, line 22: a NUL byte"):
        audit_counts(p, "knee_hip_basic")
    assert p.read_bytes() == before


def _reference_text(c: AuditCounts, kind: str) -> bytes:
    """The counts file as written whole (json.dumps of the full body), before the writer
    streamed it block by block."""
    import hashlib

    cols = [np.array([*c.states[k], None], dtype=object)[c.patterns[:, j].astype(np.intp)]
            for j, k in enumerate(c.columns)]
    body = {"format": "kneehip-counts/2", "model": c.model, "model_hash": c.model_hash,
            "rows": int(c.n_rows), "datasets": list(c.datasets), "columns": list(c.columns),
            "states": {k: list(c.states[k]) for k in c.columns},
            "patterns": list(map(list, zip(*cols))),
            "counts": c.counts.astype(np.int64).tolist(), "privacy": c.privacy}
    canon = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                       allow_nan=False).encode("utf-8")
    d = {**body, "checksum": "sha256:" + hashlib.sha256(canon).hexdigest()}
    if kind == "json":
        return json.dumps(d).encode("utf-8")
    meta = {k: v for k, v in d.items() if k not in ("patterns", "counts")}
    return ("# kneehip-counts " + json.dumps(meta) + "\n"
            + c.to_frame().to_csv(index=False)).encode("utf-8")


@pytest.mark.parametrize("kind", ["json", "csv"])
def test_counts_files_written_block_by_block_are_the_whole_texts(basic, tmp_path, kind):
    """Over 65,536 patterns (more than one block), and none: byte for byte the text
    json.dumps / to_csv of the whole table gives, and read back verified."""
    from kneehip_bn.io.patterns import group_patterns

    eng = kb.get_engine(basic)
    cols = list(eng.variables)[:14]
    cards = [len(eng.states[c]) for c in cols]
    rng = np.random.default_rng(5)
    codes = np.stack([rng.integers(-1, k, 90_000) for k in cards], axis=1)
    pats, cnt, _ = group_patterns(codes, cards)
    assert pats.shape[0] > 65_536
    for m in (pats.shape[0], 0):
        c = AuditCounts(cols, {x: list(eng.states[x]) for x in cols}, pats[:m].astype(np.int8),
                        cnt[:m], int(cnt[:m].sum()), ["d"], basic.name, model_hash(basic),
                        {"min_count": 1, "generalised_rows": 0} if m else None)
        path = c.save(tmp_path / f"c{m}.{kind}")
        assert path.read_bytes() == _reference_text(c, kind)
        if m:
            same(read_counts(path, basic), c)


def test_folders_and_globs_stream_row_by_row_as_duckdb_counts_them(basic, audit, tmp_path):
    """The streaming reader takes the same folders and globs as DuckDB (hive keys as
    columns, files in name order): counts equal, and a batch over a folder is the batch of
    its rows in that order; files with other columns are refused naming the file."""
    from kneehip_bn.learning.batch import batch_posteriors, write_batch_posteriors

    parts = _write_parts(audit, tmp_path)
    glob = str(tmp_path / "part*.csv")
    same(audit_counts(glob, basic, engine="pandas", dataset="all"),
         audit_counts(glob, basic, engine="duckdb", dataset="all"))
    ign = {"ignore": ["clinic"]}
    with pytest.raises(DataError, match="column 'clinic' is not a node"):
        audit_counts(tmp_path / "hive", basic, engine="pandas", dataset="all")
    same(audit_counts(tmp_path / "hive", basic, ign, engine="pandas", dataset="all"),
         audit_counts(tmp_path / "hive", basic, ign, engine="duckdb", dataset="all"))
    out = tmp_path / "post.parquet"
    write_batch_posteriors(tmp_path / "hive", out, basic, ign, keep=["clinic"])
    got = pd.read_parquet(out)
    ref = batch_posteriors(audit.reset_index(drop=True), basic)
    assert list(got["clinic"]) == [c for i, idx in enumerate(parts) for c in "ABC"[i] * len(idx)]
    for col in ref.columns:
        np.testing.assert_allclose(got[col].to_numpy(float), ref[col].to_numpy(float),
                                   atol=1e-12, err_msg=col)
    audit.iloc[:5].drop(columns="hip_pain").to_csv(tmp_path / "part9.csv", index=False)
    with pytest.raises(DataError, match=r"part9.csv: expected the same columns as .*part0.csv"):
        audit_counts(glob, basic, engine="pandas")
    bad = tmp_path / "hive" / "clinic=D"
    bad.mkdir()
    (bad / "data.parquet").write_bytes(b"not parquet")
    before = (bad / "data.parquet").read_bytes()
    with pytest.raises(DataError, match=r"hive: cannot read .*parquet|data.parquet"):
        write_batch_posteriors(tmp_path / "hive", tmp_path / "p2.parquet", basic, ign)
    assert not (tmp_path / "p2.parquet").exists()
    assert (bad / "data.parquet").read_bytes() == before


def test_a_batch_over_no_files_is_one_clear_error(basic, audit, tmp_path):
    """``batch`` over an empty folder, a glob that matches nothing or files of two kinds:
    one line saying what was expected, no output made, the inputs unchanged."""
    from kneehip_bn.learning.batch import write_batch_posteriors

    (tmp_path / "empty").mkdir()
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    audit.iloc[:5].to_csv(mixed / "a.csv", index=False)
    audit.iloc[:5].to_parquet(mixed / "b.parquet")
    before = {p: p.read_bytes() for p in mixed.iterdir()}
    out = tmp_path / "post.parquet"
    for src, match in ((tmp_path / "empty", r"empty: no \.parquet or \.csv files in it"),
                       (str(tmp_path / "nomatch*.parquet"), "no file matches the pattern"),
                       (str(mixed / "*"), "expected files of one kind, found csv, parquet")):
        with pytest.raises(DataError, match=match):
            write_batch_posteriors(src, out, basic)
        assert not out.exists()
    assert {p: p.read_bytes() for p in mixed.iterdir()} == before
