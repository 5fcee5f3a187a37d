"""The YAML model file: reading (every problem with its line), writing, round trips."""

from __future__ import annotations

import copy
import os

import numpy as np
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from model_files import load_text, variant

from conftest import TINY_YAML
from kneehip_bn import (
    ModelFileError,
    load_spec,
    save_spec,
    set_leak,
    set_link,
    set_row,
)
from kneehip_bn.model.yamlio import dump_spec, parse_spec


def test_tiny_parses_with_every_field(tiny_spec):
    s = tiny_spec
    assert s.name == "tiny" and s.title == "Tiny test network" and s.default_strength == 10
    assert list(s.nodes) == ["age", "knee_oa", "hip_oa", "gait", "limp", "pain_level"]
    assert s.group("origin") == ["knee_oa", "hip_oa"]
    assert s.nodes["pain_level"].states == ["none", "mild", "severe"]
    assert s.nodes["gait"].kind == "noisy_or" and s.nodes["limp"].kind == "table"
    assert s.strength_of("hip_oa") == 5 and s.strength_of("gait") == 10
    assert s.sources["census"].evidence_id == "P1" and s.sources["census"].kind == "citation"
    assert s.sources["guess"].kind == "elicited"
    links = s.nodes["gait"].noisy_or.links
    assert [(ln.parent, ln.when, ln.p, ln.source) for ln in links] == [
        ("knee_oa", "present", 0.5, "guess"), ("hip_oa", "present", 0.4, "census")]
    row = s.nodes["hip_oa"].table[1]
    assert row.given == {"age": "old"} and row.note == "older hips"
    # one provenance record per number: 2 + 2*2 + 2*2 (two nodes) + 1 leak + 2 links + 2*2 + 2*3
    prov = s.provenance()
    assert len(prov) == 2 + 4 + 4 + 3 + 4 + 6
    assert {r["source_kind"] for r in prov} == {"citation", "elicited"}


def test_malformed_yaml_gives_line_and_column(tmp_path):
    text = variant(("  limp:\n    group: finding", "  limp:\n    group: finding\n   oops: [1, 2"))
    with pytest.raises(ModelFileError, match=r"not valid YAML at line \d+, column \d+: .*check "
                       r"indentation and quoting"):
        load_text(tmp_path, text)


def test_unsafe_yaml_tag_is_refused_and_not_run(tmp_path):
    marker = tmp_path / "pwned"
    text = TINY_YAML.replace("name: tiny", f"name: !!python/object/apply:os.system ['touch {marker}']")
    with pytest.raises(ModelFileError, match=r"unsafe or unknown YAML tag at line 3, column 7: "
                       r".*never contain Python objects"):
        load_text(tmp_path, text)
    assert not marker.exists()


def test_wrong_format_string(tmp_path):
    with pytest.raises(ModelFileError, match=r"at format: expected 'kneehip-bn/1', found "
                       r"'kneehip-bn/2'"):
        load_text(tmp_path, variant(("format: kneehip-bn/1", "format: kneehip-bn/2")))


def test_every_problem_is_listed_together(tmp_path):
    text = variant(("format: kneehip-bn/1", "format: 2"),
                   ("group: finding\n    states: [absent, present]\n    parents: [gait]",
                    "group: symptom\n    states: [absent, present]\n    parents: [gait]"))
    with pytest.raises(ModelFileError, match=r"has 2 problems:\n  - at format.*\n  - at "
                       r"nodes\.limp\.group: expected one of context, origin, mechanism, "
                       r"finding, test, found 'symptom'"):
        load_text(tmp_path, text)


def test_source_needs_citation_or_elicited(tmp_path):
    text = variant(("guess: {elicited: \"A number chosen for the hand-worked test cases\"}",
                    "guess: {note: nothing}"))
    with pytest.raises(ModelFileError, match=r"sources\.guess: expected exactly one of `citation` "
                       r"\(text\) or `elicited`"):
        load_text(tmp_path, text)


def test_missing_file_message(tmp_path):
    with pytest.raises(ModelFileError, match=r"no such file: expected a YAML model file"):
        load_spec(tmp_path / "nope.yaml")


def test_not_a_mapping():
    with pytest.raises(ModelFileError, match=r"expected a mapping with keys format, name"):
        parse_spec([1, 2, 3])


def test_save_refuses_to_overwrite(tiny_spec, tmp_path):
    p = tmp_path / "out.yaml"
    save_spec(tiny_spec, p)
    first = p.read_text()
    edited = set_leak(tiny_spec, "gait", 0.2)
    with pytest.raises(FileExistsError, match=r"exists: expected a new file name.*overwrite=True"):
        save_spec(edited, p)
    assert p.read_text() == first
    save_spec(edited, p, overwrite=True)
    assert load_spec(p).nodes["gait"].noisy_or.leak.p == 0.2


def test_save_is_atomic(tiny_spec, tmp_path, monkeypatch):
    p = tmp_path / "out.yaml"
    save_spec(tiny_spec, p)
    before = p.read_bytes()
    edited = set_leak(tiny_spec, "gait", 0.2)

    def boom(fd):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(os, "fsync", boom)  # fails after the text went into the temp file
    with pytest.raises(OSError, match=r"disk full"):
        save_spec(edited, p, overwrite=True)
    assert p.read_bytes() == before
    assert not [x.name for x in tmp_path.iterdir() if x.name.startswith(".out.yaml")]  # no temp left


def test_save_validates_first(tiny_spec, tmp_path):
    bad = copy.deepcopy(tiny_spec)
    bad.nodes["limp"].table[0].probabilities["present"] = 0.5
    with pytest.raises(ModelFileError, match=r"sum 1\.45 for P\(limp \| gait=absent\)"):
        save_spec(bad, tmp_path / "bad.yaml")
    assert not (tmp_path / "bad.yaml").exists()


def test_tiny_round_trip(tiny_spec, tmp_path):
    p = save_spec(tiny_spec, tmp_path / "again.yaml")
    again = load_spec(p)
    assert again == tiny_spec
    assert dump_spec(again) == dump_spec(tiny_spec)
    assert p.read_text().startswith("# kneehip_bn model file")


def _random_edit(spec, rng: np.random.Generator):
    name = str(rng.choice(list(spec.nodes)))
    node = spec.nodes[name]
    p = float(rng.random())
    if node.noisy_or is not None:
        if rng.random() < 0.5:
            return set_leak(spec, name, p)
        ln = node.noisy_or.links[int(rng.integers(len(node.noisy_or.links)))]
        return set_link(spec, name, ln.parent, p, when=ln.when)
    row = node.table[int(rng.integers(len(node.table)))]
    state = str(rng.choice(node.states))
    return set_row(spec, name, row.given, {state: p})


@given(seed=st.integers(0, 2**32 - 1), n_edits=st.integers(0, 6))
def test_round_trip_after_random_edits(shipped_spec, tmp_path_factory, seed, n_edits):
    rng = np.random.default_rng(seed)
    spec = shipped_spec
    for _ in range(n_edits):
        spec = _random_edit(spec, rng)
    # a fitted entry survives too
    spec = copy.deepcopy(spec)
    leak = spec.nodes["knee_pain"].noisy_or.leak
    leak.fitted = {"expert": leak.p, "expert_source": leak.source, "dataset": "audit.csv",
                   "rows": 5000, "strength": 20, "date": "2026-11-26", "method": "em"}
    leak.source = "fitted"
    path = tmp_path_factory.mktemp("rt") / "m.yaml"
    save_spec(spec, path)
    again = load_spec(path)
    assert again == spec
    assert again.provenance() == spec.provenance()
    for name in spec.nodes:
        for e1, e2 in zip((e for n, _, e in spec.entries() if n == name),
                          (e for n, _, e in again.entries() if n == name)):
            assert (e1.source, e1.edited, e1.fitted, e1.note) == (e2.source, e2.edited, e2.fitted,
                                                                  e2.note)
    # and saving again gives the same text
    path2 = path.with_name("m2.yaml")
    save_spec(again, path2)
    assert path2.read_text() == path.read_text()


def test_yaml_is_plain_data(shipped_spec):
    """What save_spec writes is readable by any YAML reader (safe_load)."""
    from kneehip_bn.model.yamlio import spec_to_yaml

    data = yaml.safe_load(spec_to_yaml(shipped_spec))
    assert data == dump_spec(shipped_spec)
