"""Hostile YAML: model files and mappings read by the one strict loader (kneehip_bn._util.strict_yaml).

Each case: exit status 1, one ``error:`` line matching the expected message, the input
byte-identical afterwards. A Hypothesis test damages the tiny model file and a mapping at
random: the answer is a clear error or the exact answer, never a traceback, never a
change to the input.
"""

from __future__ import annotations

import re

import pytest
from harden_util import one_line_error, run, snapshot
from hypothesis import given
from hypothesis import strategies as st

import kneehip_bn._util.strict_yaml as ky
from conftest import TINY_YAML
from kneehip_bn import load_spec
from kneehip_bn.errors import DataError, KneeHipError, ModelFileError
from kneehip_bn.io.mapping import load_mapping


def _edit(old: str, new: str) -> str:
    assert TINY_YAML.count(old) == 1, old
    return TINY_YAML.replace(old, new)


def _bomb(key: str) -> str:
    text = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    prev = "a"
    for n in "bcdefghi":
        text += f"{n}: &{n} [{','.join(['*' + prev] * 9)}]\n"
        prev = n
    base = "".join(ln for ln in TINY_YAML.splitlines(True) if not ln.startswith(f"{key}:"))
    return base + text + f"{key}: *i\n"


MODEL_CASES = {
    "duplicate field": (
        _edit("  knee_oa:\n    group: origin\n", "  knee_oa:\n    group: origin\n    group: context\n"),
        r"duplicate key 'group' at line 18 \(first at line 17\)"),
    "duplicate node": (
        TINY_YAML + "  age:\n    group: context\n    states: [a, b]\n    table: {probabilities: {a: 1, b: 0}, source: guess}\n",
        r"duplicate key 'age' at line \d+ \(first at line 10\)"),
    "misspelt node field": (
        _edit("    strength: 5\n", "    strenght: 5\n"),
        r"nodes.hip_oa \(line 31\): expected a known field .*found 'strenght'; did you mean 'strength'\?"),
    "misspelt top field": (
        _edit('title: "Tiny test network"', 'titel: "Tiny test network"'),
        r"at the top level \(line 4\).*found 'titel'; did you mean 'title'\?"),
    "misspelt link field": (
        _edit("{parent: hip_oa, p: 0.4, source: census}", "{parent: hip_oa, pp: 0.4, p: 0.4, source: census}"),
        r"noisy_or.links\[1\].*found 'pp'; did you mean 'p'\?"),
    "misspelt leak field": (
        _edit("leak: {p: 0.1, source: guess}", "leak: {p: 0.1, source: guess, nte: x}"),
        r"noisy_or.leak .*found 'nte'; did you mean 'note'\?"),
    "misspelt noisy-or field": (
        _edit("      leak: {p: 0.1", "      on_stat: present\n      leak: {p: 0.1"),
        r"gait.noisy_or \(line \d+\).*found 'on_stat'; did you mean 'on_state'\?"),
    "misspelt row field": (
        _edit("        note: \"older hips\"", "        nots: \"older hips\""),
        r"hip_oa.table\[1\] \(line \d+\).*found 'nots'; did you mean 'note'\?"),
    "misspelt source field": (
        _edit('census: {citation: "Made-up census 2020"', 'census: {citation: "Made-up census 2020", evidence_ib: P2'),
        r"sources.census .*found 'evidence_ib'; did you mean 'evidence_id'\?"),
    "misspelt scope field": (
        TINY_YAML + "scope: {min_agee: 18}\n",
        r"at scope .*found 'min_agee'; did you mean 'min_age'\?"),
    "alias bomb in name": (_bomb("name"), r"line \d+, column \d+: expected plain YAML without aliases"),
    "alias bomb in title": (_bomb("title"), r"expected plain YAML without aliases"),
    "merge key": (TINY_YAML + "extra: &x {a: 1}\n", r"found 'extra'"),
    "5001-digit integer": (
        _edit("default_strength: 10", "default_strength: " + "7" * 5001),
        r"line 5, column 19: expected an integer of at most 100 digits, found one of 5001"),
    "python tag": (
        _edit("name: tiny", "name: !!python/object/apply:os.system ['true']"),
        r"unsafe or unknown YAML tag at line 3"),
    "binary tag": (_edit("name: tiny", "name: !!binary aGk="), r"unsafe or unknown YAML tag"),
    "deep nesting": (TINY_YAML + "x: " + "[" * 100 + "]" * 100 + "\n", r"nested|nesting"),
    "not YAML": (TINY_YAML + "  broken: [\n", r"not valid YAML at line \d+"),
}


@pytest.mark.parametrize("case", sorted(MODEL_CASES))
def test_damaged_model_file_is_one_clear_error(case, tmp_path, capsys):
    text, pattern = MODEL_CASES[case]
    f = tmp_path / "m.yaml"
    f.write_text(text, encoding="utf-8")
    before = snapshot(tmp_path)
    for argv in (["validate", f], ["diagnose", "--model", f]):
        code, _, err = run(capsys, *argv)
        assert code == 1
        line = one_line_error(err)
        assert re.search(pattern, err), err
        assert len(line) < 2000
    with pytest.raises(ModelFileError, match=pattern):
        load_spec(f)
    assert snapshot(tmp_path) == before


def test_the_tiny_model_itself_loads(tmp_path):
    # the damaged cases above are all edits of a file that is valid
    f = tmp_path / "m.yaml"
    f.write_text(TINY_YAML)
    assert list(load_spec(f).nodes) == ["age", "knee_oa", "hip_oa", "gait", "limp", "pain_level"]


@pytest.mark.parametrize("data,pattern", [
    (b"format: kneehip-bn/1\x00\x01\x02", r"NUL byte at offset 20 \(line 1\).*binary"),
    ("name: caf\xe9\n".encode("latin-1"), r"expected UTF-8 text, found the byte 0xe9 at offset 9"),
])
def test_binary_and_non_utf8_model_files(data, pattern, tmp_path, capsys):
    f = tmp_path / "m.yaml"
    f.write_bytes(data)
    code, _, err = run(capsys, "validate", f)
    assert code == 1
    assert re.search(pattern, one_line_error(err)), err
    assert f.read_bytes() == data


def test_utf8_bom_is_accepted(tmp_path):
    f = tmp_path / "m.yaml"
    f.write_bytes(b"\xef\xbb\xbf" + TINY_YAML.encode())
    assert load_spec(f).name == "tiny"


def test_device_and_directory_as_model(tmp_path, capsys):
    code, _, err = run(capsys, "diagnose", "--model", "/dev/zero")
    assert code == 1
    assert "model file /dev/zero: expected a regular model file, found a character device" \
        in one_line_error(err)
    code, _, err = run(capsys, "validate", tmp_path)
    assert code == 1
    assert "found a directory" in one_line_error(err)


def test_empty_model_name_is_refused(capsys):
    for argv in (["validate", ""], ["diagnose", "--model", ""]):
        code, _, err = run(capsys, *argv)
        assert code == 1
        assert "found an empty string" in one_line_error(err)


def test_size_limits(tmp_path, monkeypatch, capsys):
    f = tmp_path / "m.yaml"
    f.write_text(TINY_YAML)
    monkeypatch.setattr(ky, "MAX_FILE_BYTES", 1000)
    code, _, err = run(capsys, "validate", f)
    assert code == 1
    assert re.search(r"expected a model file of at most 1,000 bytes, found \d{1},\d{3} bytes",
                     one_line_error(err))
    monkeypatch.undo()
    f.write_text(_edit('title: "Tiny test network"', "title: " + "x" * 100_001))
    with pytest.raises(ModelFileError, match=r"line 4, column 8: expected a value of at most "
                                             r"100,000 characters, found 100,001"):
        load_spec(f)


# ------------------------------------------------------------------------ mappings
MAPPING_CASES = {
    "duplicate column": ("format: kneehip-audit-mapping/1\ncolumns:\n  KP: {node: knee_pain}\n"
                         "  KP: {node: hip_pain}\n",
                         r"duplicate key 'KP' at line 4 \(first at line 3\)"),
    "duplicate code": ("columns:\n  KP: {node: knee_pain, codes: {Y: present, Y: absent}}\n",
                       r"duplicate key 'Y' at line 2 \(first at line 2\)"),
    "alias bomb in dataset": (
        "a: &a [x, x, x]\nb: &b [*a, *a, *a]\ndataset: *b\ncolumns: {}\n",
        r"line 2, column 8: expected plain YAML without aliases"),
    "binary": ("\x00\x01garbage", r"NUL byte at offset 0"),
    "python tag": ("columns: !!python/object/apply:os.system ['true']\n",
                   r"unsafe or unknown YAML tag at line 1"),
}


@pytest.mark.parametrize("case", sorted(MAPPING_CASES))
def test_damaged_mapping_is_one_clear_error(case, tmp_path):
    text, pattern = MAPPING_CASES[case]
    f = tmp_path / "map.yaml"
    f.write_bytes(text.encode("utf-8"))
    before = snapshot(tmp_path)
    with pytest.raises(DataError, match=r"mapping file .*map.yaml: .*" + pattern):
        load_mapping(f)
    assert snapshot(tmp_path) == before


def test_misspelt_mapping_key_names_the_closest(tmp_path):
    f = tmp_path / "map.yaml"
    f.write_text("columns:\n  KP: {node: knee_pain, code: {Y: present}}\nignor: [id]\n")
    m = load_mapping(f)
    msgs = [p["message"] for p in m.problems]
    assert any("unknown key 'code'" in s and "did you mean 'codes'?" in s for s in msgs), msgs
    assert any("unknown key 'ignor'" in s and "did you mean 'ignore'?" in s for s in msgs), msgs


def test_binary_mapping_at_the_cli(tmp_path, capsys):
    data = tmp_path / "a.csv"
    data.write_text("knee_pain,hip_pain\npresent,absent\n")
    mp = tmp_path / "map.yaml"
    mp.write_bytes(bytes(range(256)))
    before = snapshot(tmp_path)
    code, _, err = run(capsys, "check", data, "--mapping", mp, "--model", "knee_hip_basic")
    assert code == 1
    assert "NUL byte at offset 0" in one_line_error(err)
    assert snapshot(tmp_path) == before


# ------------------------------------------------------------------------ property-based
def _damage(text: str, data) -> str:
    """Delete, duplicate or replace a random slice of the text."""
    i = data.draw(st.integers(0, len(text)))
    j = data.draw(st.integers(i, min(len(text), i + 40)))
    how = data.draw(st.sampled_from(["delete", "duplicate", "replace", "insert"]))
    if how == "delete":
        return text[:i] + text[j:]
    if how == "duplicate":
        return text[:j] + text[i:j] + text[j:]
    junk = data.draw(st.text(alphabet=st.sampled_from(list(":-[]{}&*!|>'\"#\n ,ab0.9\x00\t")),
                             max_size=12))
    return text[:i] + junk + (text[j:] if how == "replace" else text[i:])


@given(st.data())
def test_damaged_model_file_property(tmp_path_factory, data):
    d = tmp_path_factory.mktemp("p")
    f = d / "m.yaml"
    text = _damage(TINY_YAML, data)
    raw = text.encode("utf-8", "surrogatepass")
    f.write_bytes(raw)
    try:
        spec = load_spec(f)
    except KneeHipError as exc:
        assert str(exc).strip()
    else:  # the exact answer: what a plain YAML reader gives, parsed the same way
        import yaml

        from kneehip_bn.model.yamlio import parse_spec

        assert spec == parse_spec(yaml.safe_load(text))
    assert f.read_bytes() == raw


@given(st.data())
def test_damaged_mapping_property(tmp_path_factory, data):
    text = ("format: kneehip-audit-mapping/1\ndataset: clinic\nmissing: ['?']\n"
            "ignore: [PATIENT_ID]\ncolumns:\n  KP: {node: knee_pain, codes: {Y: present, N: absent}}\n"
            "  DX: {diagnosis: true, codes: {KNEE: knee_pathology, OTHER: none}}\n")
    d = tmp_path_factory.mktemp("p")
    f = d / "map.yaml"
    bad = _damage(text, data)
    f.write_bytes(bad.encode("utf-8", "surrogatepass"))
    try:
        m = load_mapping(f)
    except DataError as exc:
        assert str(exc).startswith(f"mapping file {f}: ")
    else:
        import yaml

        m2 = load_mapping(yaml.safe_load(bad))
        assert (m.columns, m.ignore, m.missing, m.dataset) == \
            (m2.columns, m2.ignore, m2.missing, m2.dataset)
    assert f.read_bytes() == bad.encode("utf-8", "surrogatepass")
