"""The pyarrow CSV path of ``kneehip batch`` (``iter_csv_coded`` + ``TableWriter``) against
the pandas path it replaces: same codes, same problems, same posteriors, same bytes.

The pandas path (``pandas.read_csv`` + ``pandas.factorize``) is the reference; it is forced
with the documented ``reader="pandas"`` parameter of :func:`write_batch_posteriors`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kneehip_bn import DataError, load_spec
from kneehip_bn.io.arrow_csv import CodedFrame, iter_csv_coded, labels_like_pandas
from kneehip_bn.io.encode import ChunkEncoder
from kneehip_bn.io.mapping import load_mapping, norm_code
from kneehip_bn.io.sources import iter_audit
from kneehip_bn.io.writers import TableWriter
from kneehip_bn.learning.batch import write_batch_posteriors
from kneehip_bn.learning.simulate import simulate_audit


@pytest.fixture(scope="module")
def spec():
    return load_spec("knee_hip_basic")


def _both_encodings(path, spec, mapping=None, chunksize=10**6, keep=()):
    """(codes, problems) from the pandas reader and from the pyarrow reader."""
    out = []
    for chunks in (iter_audit(path, chunksize=chunksize),
                   iter_csv_coded(path, chunksize=chunksize, text=keep)):
        enc, codes = None, []
        offset = 0
        for ch in chunks:
            if enc is None:
                enc = ChunkEncoder(list(ch.columns), spec, load_mapping(mapping), keep=keep)
            codes.append(enc.encode(ch, offset)[0])
            offset += len(ch)
        enc.finish()  # the whole-table checks
        probs = [(p["problem"], p["column"], p["values"], p["count"], p["first_rows"], p["message"])
                 for p in enc.problems]
        out.append((np.vstack(codes), sorted(probs, key=str)))
    return out


def test_values_typed_like_pandas(tmp_path):
    """Columns of integers, decimals, booleans, mixed text and blanks normalise to the same
    labels as pandas' type inference gives them."""
    cols = {
        "ints": ["1", "0", "", "01", "+2"],
        "floats": ["1.0", "0.5", "", "2", "1e1"],
        "bools": ["TRUE", "false", "", "True", "FALSE"],
        "mixed": ["a", "1", "", "1.0", "TRUE"],
        "spaces": [" 1", "2 ", "", "3", "4"],
        "text": ["present", "absent", "", "NA", "n/a"],
    }
    path = tmp_path / "t.csv"
    pd.DataFrame(cols).to_csv(path, index=False)
    want = pd.read_csv(path, keep_default_na=False, na_values=[""])
    frame = next(iter_csv_coded(path, chunksize=100))
    for c in cols:
        col = frame[c]
        got = [norm_code(col.labels[i]) for i in col.codes]
        exp = [norm_code(x) for x in want[c].tolist()]
        assert got == exp, c


@given(vals=st.lists(st.sampled_from(["1", "0", "", "1.5", "TRUE", "false", "x", "-3", " 7",
                                      "1e3", ".5", "True"]), min_size=1, max_size=12))
def test_labels_like_pandas_property(vals, tmp_path_factory):
    path = tmp_path_factory.mktemp("p") / "c.csv"
    pd.DataFrame({"c": vals, "d": ["k"] * len(vals)}).to_csv(path, index=False)
    want = [norm_code(x) for x in pd.read_csv(path, keep_default_na=False, na_values=[""])["c"]]
    col = next(iter_csv_coded(path, chunksize=100))["c"]
    assert [norm_code(col.labels[i]) for i in col.codes] == want
    assert labels_like_pandas([]) == []


@pytest.mark.parametrize("chunksize", [7, 100, 10**6])
def test_same_codes_and_problems_as_pandas(spec, tmp_path, chunksize):
    """Model-format audit with blanks, NA codes, an unknown code and a working diagnosis;
    and the clinic format through a mapping (numeric-looking and text codes)."""
    df = simulate_audit(60, seed=3, missing=0.2, model=spec, hidden=("mechanism", "origin"))
    df = df.astype(object)
    df.loc[5, "knee_pain"] = "NA"
    df.loc[17, "hip_pain"] = "yes"
    df.loc[40, "hip_pain"] = "yes"
    path = tmp_path / "a.csv"
    df.to_csv(path, index=False)
    (pc, pp), (fc, fp) = _both_encodings(path, spec, chunksize=chunksize)
    np.testing.assert_array_equal(pc, fc)
    assert pp == fp and any(p[0] == "unknown_code" for p in pp)
    repo = Path(__file__).resolve().parents[2]
    (pc, pp), (fc, fp) = _both_encodings(repo / "data" / "example_clinic_audit.csv", spec,
                                         mapping=repo / "data" / "example_mapping.yaml",
                                         chunksize=chunksize)
    np.testing.assert_array_equal(pc, fc)
    assert pp == fp


def test_batch_file_identical_to_pandas_path(spec, tmp_path):
    """Whole files: bytes equal to the pandas path's output (CSV; with a kept id column
    whose text pandas would also keep), values equal in Parquet; TSV too."""
    df = simulate_audit(9000, seed=5, missing=0.1, model=spec, hidden=("mechanism", "origin"))
    src, src_id = tmp_path / "a.csv", tmp_path / "id.csv"
    df.to_csv(src, index=False)
    df.to_csv(tmp_path / "a.tsv", index=False, sep="\t")
    df.insert(0, "patient", [f"P{i:05d}" for i in range(len(df))])
    df.to_csv(src_id, index=False)
    fast = {}
    for out, kw in (("f1.csv", {}), ("f3.parquet", {}), ("f4.csv", {"chunksize": 1000})):
        fast[out] = write_batch_posteriors(src, tmp_path / out, spec, **kw)[0]
    fast["keep"] = write_batch_posteriors(src_id, tmp_path / "f2.csv", spec, keep=["patient"])[0]
    fast["tsv"] = write_batch_posteriors(tmp_path / "a.tsv", tmp_path / "f5.csv", spec)[0]
    slow = write_batch_posteriors(src, tmp_path / "s1.csv", spec, reader="pandas")[0]
    slow_keep = write_batch_posteriors(src_id, tmp_path / "s2.csv", spec, keep=["patient"],
                                       reader="pandas")[0]
    assert fast["f1.csv"].read_bytes() == slow.read_bytes()
    # chunks of 1000 rows take the row-by-row engine pass: equal to rounding
    np.testing.assert_allclose(pd.read_csv(fast["f4.csv"]), pd.read_csv(slow), rtol=0, atol=1e-14)
    assert fast["tsv"].read_bytes() == slow.read_bytes()
    assert fast["keep"].read_bytes() == slow_keep.read_bytes()
    got = pd.read_parquet(fast["f3.parquet"])
    want = pd.read_csv(slow)
    np.testing.assert_array_equal(got.to_numpy(), want.to_numpy())  # exact: floats round trip
    assert len(want) == len(df)


def test_files_pyarrow_would_read_differently_go_through_pandas(spec, tmp_path):
    """Duplicate headers, a quoted line break in a kept column, Latin-1 text: the pandas
    path takes over and the answer (or the error) is what pandas gives."""
    df = simulate_audit(50, seed=8, missing=0.1, model=spec, hidden=("mechanism", "origin"))
    df.insert(0, "note", ["ok"] * 50)
    df.loc[3, "note"] = "two\nlines"
    src = tmp_path / "n.csv"
    df.to_csv(src, index=False)
    path, n = write_batch_posteriors(src, tmp_path / "n_out.csv", spec, keep=["note"])
    got = pd.read_csv(path)
    assert n == 50 and got.loc[3, "note"] == "two\nlines"
    lat = tmp_path / "l.csv"
    df.drop(columns="note").assign(who="Jérôme").to_csv(lat, index=False, encoding="latin-1")
    for reader in ("auto", "pandas"):  # Latin-1: refused, naming the line and the byte
        with pytest.raises(DataError, match=r"l\.csv, line 2: not UTF-8 text \(byte 0xe9 at "
                                            r"byte \d+ of the line\): expected UTF-8"):
            write_batch_posteriors(lat, tmp_path / "l_out.csv", spec, reader=reader)
    dup = tmp_path / "d.csv"
    text = src.read_text().splitlines()
    dup.write_text("\n".join([text[0].replace("note", "knee_pain", 1), *text[1:]]) + "\n")
    with pytest.raises(DataError, match="column 'knee_pain' appears 2 times in the data"):
        write_batch_posteriors(dup, tmp_path / "d_out.csv", spec)
    assert not list(tmp_path.glob(".*tmp"))


def test_line_endings_byte_order_mark_and_last_line(spec, tmp_path):
    """CRLF line ends, a UTF-8 byte-order mark, no newline at the end: the same output as
    the plain file, and as the pandas path gives."""
    df = simulate_audit(5000, seed=9, missing=0.1, model=spec, hidden=("mechanism", "origin"))
    plain = tmp_path / "plain.csv"
    df.to_csv(plain, index=False)
    raw = plain.read_bytes()
    variants = {"crlf.csv": raw.replace(b"\n", b"\r\n"), "bom.csv": b"\xef\xbb\xbf" + raw,
                "nonl.csv": raw.rstrip(b"\n")}
    want = write_batch_posteriors(plain, tmp_path / "want.csv", spec)[0].read_bytes()
    for name, data in variants.items():
        (tmp_path / name).write_bytes(data)
        got = write_batch_posteriors(tmp_path / name, tmp_path / f"out_{name}", spec)[0]
        assert got.read_bytes() == want, name
    for name in variants:
        got = write_batch_posteriors(tmp_path / name, tmp_path / f"pd_{name}", spec,
                                     reader="pandas")[0]
        assert got.read_bytes() == want, name


def test_writer_pattern_text_shared_equals_direct(tmp_path):
    """Rows given as patterns plus an index: the bytes equal formatting every row, and
    every float reads back exactly."""
    rng = np.random.default_rng(0)
    pats = np.asfortranarray(rng.random((300, 3)))
    pats[0] = [0.0, 1.0, 1e-300]
    inv = rng.integers(0, 300, 120_000)
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    w = TableWriter(a, "csv", [], ["x", "y", "z"])
    w.write(pats, [], inv)  # 300 patterns, 120,000 rows
    w.close()
    w = TableWriter(b, "csv", [], ["x", "y", "z"])
    w.write(np.asfortranarray(pats[inv]), [])  # every row formatted
    w.close()
    assert a.read_bytes() == b.read_bytes()
    lines = a.read_text().splitlines()[1:]
    back = np.array([[float(x) for x in ln.split(",")] for ln in lines])  # correctly rounded
    np.testing.assert_array_equal(back, pats[inv])


def test_unknown_code_in_a_late_chunk_reports_rows_and_leaves_no_file(spec, tmp_path):
    df = simulate_audit(3000, seed=2, missing=0.1, model=spec, hidden=("mechanism", "origin"))
    df = df.astype(object)
    df.loc[2500, "fadir_test"] = "posittive"
    src = tmp_path / "u.csv"
    df.to_csv(src, index=False)
    with pytest.raises(DataError, match=r"unknown code 'posittive' in 1 row \(first rows: 2500\)"
                       r".*did you mean 'positive'"):
        write_batch_posteriors(src, tmp_path / "u_out.csv", spec, chunksize=1000)
    assert not (tmp_path / "u_out.csv").exists() and not list(tmp_path.glob(".u_out*"))


def test_coded_frame_is_enough_of_a_dataframe():
    from kneehip_bn.io.arrow_csv import CodedColumn

    fr = CodedFrame(["a"], {"a": CodedColumn(np.array([0, 1], dtype=np.int32), ["x", "y"])}, 2)
    assert len(fr) == 2 and "a" in fr and "b" not in fr and fr["a"].labels == ["x", "y"]


def test_kept_column_missing_from_the_file_is_an_error(spec, tmp_path):
    """Both read paths name a kept column the file lacks, and write nothing."""
    df = simulate_audit(300, seed=4, missing=0.1, model=spec, hidden=("mechanism", "origin"))
    df.insert(0, "patient", [f"P{i:04d}" for i in range(len(df))])
    src = tmp_path / "k.csv"
    df.to_csv(src, index=False)
    for tag in ("auto", "pandas"):
        with pytest.raises(DataError, match="kept column 'not_there' is not in the data"):
            write_batch_posteriors(src, tmp_path / f"k_{tag}.csv", spec,
                                   keep=["not_there", "patient"], reader=tag)
        assert not (tmp_path / f"k_{tag}.csv").exists(), tag


def test_stream_encoded_hands_over_every_row_once_when_the_fast_path_gives_up(spec, tmp_path):
    """A quote character far into the file: the pyarrow path hands over its first parts,
    then pandas reads on from the next row (no row twice, none lost, the same codes)."""
    from kneehip_bn.io.arrow_csv import CodedFrame as Coded
    from kneehip_bn.io.encode import stream_encoded

    n = 150_000
    df = pd.DataFrame({"knee_pain": np.where(np.arange(n) % 3 == 0, "present", "absent"),
                       "hip_pain": np.where(np.arange(n) % 5 == 0, "", "absent")})
    df.loc[120_000, "hip_pain"] = '"absent"'  # quoted: only pandas reads quotes
    path = tmp_path / "quoted_late.csv"
    path.write_text(df.to_csv(index=False).replace('"""absent"""', '"absent"'))
    got = list(stream_encoded(path, spec, chunksize=50_000))
    ref = list(stream_encoded(path, spec, chunksize=50_000, reader="pandas"))
    assert isinstance(got[0].frame, Coded) and not isinstance(got[-1].frame, Coded)
    assert [c.offset for c in got] == list(np.cumsum([0, *[len(c) for c in got[:-1]]]))
    np.testing.assert_array_equal(np.vstack([c.codes for c in got]),
                                  np.vstack([c.codes for c in ref]))
    assert sum(len(c) for c in got) == n
