"""Hostile input: damaged CSV files (issue 10, "rows are what they say").

Property: for a valid audit file damaged once (cut at any byte, a byte deleted, a byte
inserted — separator, line end, carriage return, NUL, quote, space, a non-UTF-8 byte —, a
line duplicated, dropped or joined to the next) every reader either gives **the exact
answer** or **one clear error**, never a traceback, never a change to the input, never
output left behind:

- ``read_audit``, ``validate_audit``, ``encode_audit``, ``audit_counts`` and
  ``kneehip batch`` (through ``kneehip_bn.cli.main``, pyarrow path; and the pandas
  reader of ``write_batch_posteriors``).

The oracle is independent of the readers: a character-level CSV state machine written
here (RFC 4180 quoting as pandas and the csv module apply it) splits the damaged bytes
into records with the line each starts on. When a record has the wrong number of fields,
a quote never closes, a line holds a NUL byte or a lone carriage return, or the bytes are
not UTF-8, every reader must refuse with a message naming that line. Otherwise the
expected engine codes come from the records and the model's state lists; an unknown
code, an empty table or a column blank in every row must be refused (any clear error);
else the codes, the pattern counts and the posteriors must equal the oracle's (the
posteriors of ``kneehip batch`` against ``batch_posteriors`` on the oracle's DataFrame).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kneehip_bn import DataError, batch_posteriors, load_spec
from kneehip_bn.cli import main
from kneehip_bn.io.counting import audit_counts
from kneehip_bn.io.encode import encode_audit, validate_audit
from kneehip_bn.io.mapping import DEFAULT_MISSING
from kneehip_bn.io.sources import read_audit
from kneehip_bn.learning.batch import write_batch_posteriors
from kneehip_bn.learning.simulate import simulate_audit

SPEC = load_spec("knee_hip_basic")
_DF = simulate_audit(25, seed=21, missing=0.15, model=SPEC, hidden=("mechanism", "origin"))
_DF = _DF.astype(object)
_DF.iloc[3, 2] = "NA"  # a code read as blank
BASE = _DF.to_csv(index=False).encode()
N_FIELDS = len(_DF.columns)
HEADER = list(_DF.columns)


# ------------------------------------------------------------------------ the oracle
def oracle(data: bytes) -> tuple[str, object]:
    """("line", L) when the file is structurally damaged at line L; else ("records",
    [fields of each data record]) or ("header", fields) when the header changed."""
    for k, ln in enumerate(data.split(b"\n"), 1):
        if b"\0" in ln:
            return "line", k
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return "line", data.count(b"\n", 0, exc.start) + 1
    text = text.removeprefix("\ufeff")
    recs: list[tuple[int, list[str], bool]] = []  # (start line, fields, blank)
    field: list[str] = []
    rec: list[str] = []
    state = "start"
    line = start = 1
    quoted_any = False
    i = 0
    while i < len(text):
        ch = text[i]
        i += 1
        if state == "quoted":
            if ch == '"':
                state = "after_quote"
            else:
                field.append(ch)
                line += ch == "\n"
            continue
        if state == "after_quote":
            if ch == '"':
                field.append('"')
                state = "quoted"
                continue
            state = "field"
        if ch == '"' and state == "start":
            state, quoted_any = "quoted", True
            continue
        if ch == "\r" and text[i:i + 1] == "\n":
            continue
        if ch == "\r":  # a lone carriage return outside quotes
            return "line", line
        if ch == ",":
            rec.append("".join(field))
            field, state = [], "start"
            continue
        if ch == "\n":
            rec.append("".join(field))
            recs.append((start, rec, rec == [""] and not quoted_any))
            field, rec, state, quoted_any = [], [], "start", False
            line += 1
            start = line
            continue
        field.append(ch)
        state = "field"
    if state == "quoted":
        return "line", start
    if field or rec or state != "start":
        rec.append("".join(field))
        recs.append((start, rec, rec == [""] and not quoted_any))
    recs = [r for r in recs if not r[2]]  # blank lines are skipped
    if not recs:
        return "header", []
    if recs[0][1] != HEADER:
        return "header", recs[0][1]
    for st_line, fields, _ in recs[1:]:
        if len(fields) != N_FIELDS:
            return "line", st_line
    return "records", [r[1] for r in recs[1:]]


def expected_codes(records: list[list[str]]) -> np.ndarray | None:
    """Engine codes of the records (None when a code is unknown or a column all blank)."""
    out = np.full((len(records), N_FIELDS), -1, dtype=np.int8)
    for j, c in enumerate(HEADER):
        states = SPEC.nodes[c].states
        for i, rec in enumerate(records):
            v = rec[j].strip()
            if v == "" or v in DEFAULT_MISSING:
                continue
            if v not in states:
                return None
            out[i, j] = states.index(v)
    if not len(records) or (out < 0).all(axis=0).any():
        return None
    return out


# ------------------------------------------------------------------------ damage
@st.composite
def damaged(draw):
    data = BASE
    lines = data.split(b"\n")
    kind = draw(st.sampled_from(["cut", "delete", "insert", "dup_line", "drop_line", "join"]))
    if kind == "cut":
        data = data[:draw(st.integers(len(lines[0]) + 1, len(data)))]
    elif kind == "delete":
        p = draw(st.integers(0, len(data) - 1))
        data = data[:p] + data[p + 1:]
    elif kind == "insert":
        p = draw(st.integers(0, len(data)))
        b = draw(st.sampled_from([b",", b"\n", b"\r", b"\0", b'"', b" ", b"\xe9", b"\r\n", b"x"]))
        data = data[:p] + b + data[p:]
    else:
        k = draw(st.integers(1, len(lines) - 2))
        if kind == "dup_line":
            lines = [*lines[:k], lines[k], *lines[k:]]
        elif kind == "drop_line":
            lines = [*lines[:k], *lines[k + 1:]]
        else:
            lines = [*lines[:k], lines[k] + lines[k + 1], *lines[k + 2:]]
        data = b"\n".join(lines)
    return kind, data


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _cli(argv: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(argv)
    return code, err.getvalue()


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=damaged())
def test_damaged_csv_clear_error_or_exact_answer(case, tmp_path_factory):
    kind, data = case
    d = tmp_path_factory.mktemp("h")
    path = d / "audit.csv"
    path.write_bytes(data)
    before = _sha(path)
    verdict, what = oracle(data)
    results: dict[str, object] = {}
    for name, call in {
        "read_audit": lambda: read_audit(path),
        "validate_audit": lambda: validate_audit(path, SPEC),
        "encode_audit": lambda: encode_audit(path, SPEC),
        "audit_counts": lambda: audit_counts(path, SPEC, chunksize=7),
        "batch_pandas": lambda: write_batch_posteriors(path, d / "p.csv", SPEC, chunksize=7,
                                                       reader="pandas"),
    }.items():
        try:
            results[name] = call()
        except DataError as exc:  # anything else is a traceback: the test fails
            results[name] = exc
    code, err = _cli(["batch", str(path), "--model", "knee_hip_basic", "-o", str(d / "b.csv")])
    assert code in (0, 1) and "Traceback" not in err
    assert _sha(path) == before, "an input was changed"
    assert not list(d.glob(".*.tmp")), "a temporary file was left"
    if code == 1:
        assert err.startswith("error: ") and not (d / "b.csv").exists()
    if isinstance(results["batch_pandas"], DataError):
        assert not (d / "p.csv").exists()

    if verdict == "line":  # structural damage: every reader names the line
        tag = f"audit.csv, line {what}: "
        for name in ("read_audit", "encode_audit", "audit_counts", "batch_pandas"):
            assert isinstance(results[name], DataError) and tag in str(results[name]), \
                (kind, name, results[name])
        assert isinstance(results["validate_audit"], DataError)
        assert tag in str(results["validate_audit"])
        assert code == 1 and tag in err.splitlines()[0], err
        return
    if verdict == "header":  # a damaged header: refused (an unknown column), not read silently
        assert isinstance(results["encode_audit"], DataError)
        assert code == 1
        return
    records = what
    want = expected_codes(records)
    if want is None:  # unknown code, empty table, all-blank column: refused
        for name in ("encode_audit", "audit_counts", "batch_pandas"):
            assert isinstance(results[name], DataError), (kind, name)
        assert not results["validate_audit"].ok
        assert code == 1
        return
    # the exact answer
    df = results["read_audit"]
    assert isinstance(df, pd.DataFrame) and list(df.columns) == HEADER
    got_text = [[("" if pd.isna(v) else str(v)) for v in row] for row in df.astype(object).values]
    assert got_text == [[v for v in r] for r in records]
    assert results["validate_audit"].ok
    enc = results["encode_audit"]
    np.testing.assert_array_equal(enc.codes, want)
    counts = results["audit_counts"]
    assert Counter({tuple(r): c for r, c in zip(counts.patterns.tolist(), counts.counts)}) == \
        Counter(map(tuple, want.tolist()))
    assert code == 0
    oracle_df = pd.DataFrame(records, columns=HEADER).replace("", None)
    ref = batch_posteriors(oracle_df, SPEC)
    for out in (d / "b.csv", d / "p.csv"):
        got = pd.read_csv(out)
        assert len(got) == len(records)
        np.testing.assert_allclose(got.to_numpy(), ref.to_numpy(), rtol=0, atol=1e-12)


def test_the_oracle_itself():
    """The oracle on hand-made cases (so a wrong oracle cannot pass silently)."""
    h = ",".join(HEADER).encode()
    first = [SPEC.nodes[c].states[0] for c in HEADER]
    row = ",".join(first).encode()
    assert oracle(h + b"\n" + row + b"\n")[0] == "records"
    assert oracle(h + b"\n" + row + b"\n" + row[:20]) == ("line", 3)
    assert oracle(h + b"\n" + row + b"\n\n" + row + b"\n")[0] == "records"
    assert oracle(h + b'\n"' + row + b"\n") == ("line", 2)
    assert oracle(h + b"\n" + row + b"\n" + row.replace(b"a", b"\0", 1)) == ("line", 3)
    assert oracle(h + b"\n" + row.replace(b"a", b"\r", 1)) == ("line", 2)
    assert oracle(h + b"\n" + row + b"\n" + row.replace(b"a", b"\xe9", 1)) == ("line", 3)
    q = b",".join([b'"a""b"'] + [x.encode() for x in first[1:]])
    assert oracle(h + b"\n" + q + b"\n") == ("records", [['a"b', *first[1:]]])
    assert oracle(b"x,y\n1,2\n") == ("header", ["x", "y"])
    assert expected_codes([first]).tolist() == [[0] * N_FIELDS]
    assert expected_codes([["nope"] * N_FIELDS]) is None
    assert expected_codes([["NA", *first[1:]]]) is None  # a column blank in every row


@pytest.mark.parametrize("reader", ["auto", "pandas"])
def test_base_file_is_read_exactly(reader, tmp_path):
    """The undamaged file: the exact answer on both batch readers (so the property above
    is not vacuous: most damage is checked against real answers)."""
    p = tmp_path / "a.csv"
    p.write_bytes(BASE)
    out, n = write_batch_posteriors(p, tmp_path / "o.csv", SPEC, reader=reader)
    ref = batch_posteriors(_DF.replace("NA", None), SPEC)
    np.testing.assert_allclose(pd.read_csv(out).to_numpy(), ref.to_numpy(), rtol=0, atol=1e-12)
    assert n == len(_DF)
