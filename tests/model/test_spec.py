"""The model file: parsing, one test per validation message, edits, saving, round trips."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from conftest import EVIDENCE_MD, REPO, TINY_YAML
from kneehip_bn import (
    ModelFileError,
    UnknownNameError,
    apply_overrides,
    load_spec,
    save_spec,
    set_leak,
    set_link,
    set_prior,
    set_row,
    validate_spec,
)
from kneehip_bn.model.yamlio import dump_spec, parse_spec


def variant(*pairs: tuple[str, str]) -> str:
    """TINY_YAML with each ``old`` replaced by ``new`` (each ``old`` must occur once)."""
    text = TINY_YAML
    for old, new in pairs:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return text


def load_text(tmp_path: Path, text: str, name: str = "m.yaml"):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return load_spec(p)


LIMP_ROWS = """      - given: {gait: absent}
        probabilities: {absent: 0.95, present: 0.05}
        source: guess
      - given: {gait: present}
        probabilities: {absent: 0.3, present: 0.7}
        source: guess
"""


# ----------------------------------------------------------------------------- parsing
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


def test_node_and_group_lookup_errors(tiny_spec):
    with pytest.raises(UnknownNameError, match=r"unknown node 'hip_ao'.*did you mean 'hip_oa'"):
        tiny_spec.node("hip_ao")
    with pytest.raises(UnknownNameError, match=r"unknown group 'orgin'.*did you mean 'origin'"):
        tiny_spec.group("orgin")


# ----------------------------------------------------------------------------- one test per message
def test_unknown_parent_suggests(tmp_path):
    with pytest.raises(ModelFileError, match=r"nodes\.limp\.parents: expected names of nodes "
                       r"defined in this file, found 'giat'; did you mean 'gait'\?"):
        load_text(tmp_path, variant(("parents: [gait]", "parents: [giat]")))


def test_unknown_source_suggests(tmp_path):
    text = variant(("leak: {p: 0.1, source: guess}", "leak: {p: 0.1, source: gues}"))
    with pytest.raises(ModelFileError, match=r"nodes\.gait\.noisy_or\.leak\.source: expected the "
                       r"id of an entry in `sources`, found 'gues'; did you mean 'guess'\?"):
        load_text(tmp_path, text)


def test_missing_source(tmp_path):
    text = variant(("leak: {p: 0.1, source: guess}", "leak: {p: 0.1}"))
    with pytest.raises(ModelFileError, match=r"every number needs a source"):
        load_text(tmp_path, text)


def test_cycle_is_shown(tmp_path):
    text = variant(
        ("parents: [knee_oa, hip_oa]", "parents: [knee_oa, hip_oa, limp]"),
        ("        - {parent: hip_oa, p: 0.4, source: census}\n",
         "        - {parent: hip_oa, p: 0.4, source: census}\n"
         "        - {parent: limp, p: 0.1, source: guess}\n"))
    with pytest.raises(ModelFileError, match=r"expected a directed acyclic graph, found 'the cycle "
                       r"(gait -> limp -> gait|limp -> gait -> limp)'; remove one"):
        load_text(tmp_path, text)


def test_row_not_summing_to_one_names_node_and_configuration(tmp_path):
    text = variant(("{absent: 0.95, present: 0.05}\n        source: guess\n      - given: {gait",
                    "{absent: 0.95, present: 0.06}\n        source: guess\n      - given: {gait"))
    with pytest.raises(ModelFileError, match=r"nodes\.limp\.table\[0\]\.probabilities: expected "
                       r"probabilities summing to 1 \(within 1e-9\), found 'sum 1\.01 for "
                       r"P\(limp \| gait=absent\)'"):
        load_text(tmp_path, text)


def test_tiny_rounding_error_is_rejected(tmp_path):
    text = variant(("{none: 0.7, mild: 0.2, severe: 0.1}", "{none: 0.7, mild: 0.2, severe: 0.10000001}"))
    with pytest.raises(ModelFileError, match=r"sum 1\.00000001 for P\(pain_level \| knee_oa=absent\)"):
        load_text(tmp_path, text)


def test_missing_parent_configuration(tmp_path):
    text = variant((LIMP_ROWS, LIMP_ROWS.split("      - given: {gait: present}")[0]))
    with pytest.raises(ModelFileError, match=r"nodes\.limp\.table: expected one row per parent "
                       r"configuration, found 'no row for gait=present'"):
        load_text(tmp_path, text)


def test_duplicate_configuration(tmp_path):
    text = variant((LIMP_ROWS, LIMP_ROWS + LIMP_ROWS.split("      - given: {gait: present}")[0]))
    with pytest.raises(ModelFileError, match=r"nodes\.limp\.table\[2\]\.given: expected each "
                       r"parent configuration once, found 'gait=absent again \(first at row 0\)'"):
        load_text(tmp_path, text)


def test_unknown_state_in_given_suggests(tmp_path):
    text = variant(("given: {gait: present}", "given: {gait: presnt}"))
    with pytest.raises(ModelFileError, match=r"nodes\.limp\.table\[1\]\.given\.gait: expected a "
                       r"state of gait.*found 'presnt'; did you mean 'present'\?"):
        load_text(tmp_path, text)


def test_unknown_state_in_probabilities_suggests(tmp_path):
    text = variant(("{none: 0.2, mild: 0.5, severe: 0.3}", "{none: 0.2, mild: 0.5, sever: 0.3}"))
    with pytest.raises(ModelFileError, match=r"pain_level\.table\[1\]\.probabilities: expected one "
                       r"probability per state.*missing \['severe'\], unknown \['sever'\]\"; "
                       r"did you mean 'severe'\?"):
        load_text(tmp_path, text)


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


def test_noisy_or_on_three_state_node(tmp_path):
    rows = TINY_YAML[TINY_YAML.index("  pain_level:"):]
    new = ("  pain_level:\n    group: finding\n    states: [none, mild, severe]\n"
           "    parents: [knee_oa]\n    noisy_or:\n      leak: {p: 0.1, source: guess}\n"
           "      links:\n        - {parent: knee_oa, p: 0.5, source: guess}\n")
    with pytest.raises(ModelFileError, match=r"nodes\.pain_level\.noisy_or: expected a two-state "
                       r"node for noisy-OR, found \['none', 'mild', 'severe'\]; use a full `table`"):
        load_text(tmp_path, variant((rows, new)))


def test_link_to_a_non_parent(tmp_path):
    text = variant(("- {parent: hip_oa, p: 0.4, source: census}",
                    "- {parent: hip_oa, p: 0.4, source: census}\n"
                    "        - {parent: age, when: old, p: 0.1, source: guess}"))
    with pytest.raises(ModelFileError, match=r"gait\.noisy_or\.links\[2\]\.parent: expected one "
                       r"of the node's parents \['knee_oa', 'hip_oa'\], found 'age'"):
        load_text(tmp_path, text)


def test_missing_link_for_a_parent(tmp_path):
    text = variant(("        - {parent: hip_oa, p: 0.4, source: census}\n", ""))
    with pytest.raises(ModelFileError, match=r"gait\.noisy_or\.links: expected at least one link "
                       r"for parent 'hip_oa', found 'none'; add a link or remove the parent"):
        load_text(tmp_path, text)


@pytest.mark.parametrize("where, old, new, bad", [
    ("gait.noisy_or.links[1].p", "hip_oa, p: 0.4", "hip_oa, p: 1.5", "1.5"),
    ("gait.noisy_or.leak.p", "leak: {p: 0.1", "leak: {p: -0.1", "-0.1"),
    ("pain_level.table[0].probabilities.none", "{none: 0.7, mild: 0.2, severe: 0.1}",
     "{none: 1.1, mild: -0.2, severe: 0.1}", "1.1"),
    ("limp.table[1].probabilities.present", "{absent: 0.3, present: 0.7}",
     "{absent: 0.3, present: '0.7'}", "'0.7'"),
])
def test_probabilities_out_of_range(tmp_path, where, old, new, bad):
    import re

    with pytest.raises(ModelFileError, match=re.escape(
            f"{where}: expected a probability between 0 and 1, found {bad}")):
        load_text(tmp_path, variant((old, new)))


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


# ----------------------------------------------------------------------------- edits
def test_edits_mark_user_and_keep_previous(tiny_spec):
    s = set_prior(tiny_spec, "hip_oa", {"present": 0.3}, given={"age": "old"})
    row = s.nodes["hip_oa"].table[1]
    assert row.source == "user" and row.probabilities == {"absent": 0.7, "present": 0.3}
    assert row.edited["previous"] == {"absent": 0.8, "present": 0.2}
    assert row.edited["previous_source"] == "guess" and "date" in row.edited
    assert s.nodes["hip_oa"].table[0].source == "guess"  # other rows untouched
    assert tiny_spec.nodes["hip_oa"].table[1].source == "guess"  # the original is unchanged
    # a second edit keeps the original provenance
    s2 = set_prior(s, "hip_oa", 0.25, given={"age": "old"})
    assert s2.nodes["hip_oa"].table[1].edited["previous_source"] == "guess"
    assert s2.nodes["hip_oa"].table[1].edited["previous"] == {"absent": 0.8, "present": 0.2}
    s3 = set_link(tiny_spec, "gait", "hip_oa", 0.2)
    ln = s3.nodes["gait"].noisy_or.links[1]
    assert (ln.p, ln.source, ln.edited["previous"], ln.edited["previous_source"]) == (
        0.2, "user", 0.4, "census")
    s4 = set_leak(tiny_spec, "gait", 0.2)
    lk = s4.nodes["gait"].noisy_or.leak
    assert (lk.p, lk.source, lk.edited["previous"]) == (0.2, "user", 0.1)


def test_partial_row_keeps_proportions(tiny_spec):
    s = set_row(tiny_spec, "pain_level", {"knee_oa": "present"}, {"severe": 0.5})
    p = s.nodes["pain_level"].table[1].probabilities
    assert p["severe"] == 0.5
    assert p["none"] / p["mild"] == pytest.approx(0.2 / 0.5)
    assert sum(p.values()) == 1.0
    # a partial configuration matches all rows that agree with it
    s2 = set_prior(tiny_spec, "knee_oa", 0.25)
    assert [r.probabilities["present"] for r in s2.nodes["knee_oa"].table] == [0.25, 0.25]


@pytest.mark.parametrize("call, exc, pattern", [
    (lambda s: set_prior(s, "gait", 0.2), ModelFileError,
     r"at nodes\.gait: expected a full table to set a row, found a noisy-OR table; use set_link"),
    (lambda s: set_link(s, "limp", "gait", 0.2), ModelFileError,
     r"at nodes\.limp: expected a noisy-OR table to set a link, found a full table; use set_row"),
    (lambda s: set_leak(s, "limp", 0.2), ModelFileError,
     r"at nodes\.limp: expected a noisy-OR table to set a leak, found a full table"),
    (lambda s: set_link(s, "gait", "hip_oa", 1.2), ModelFileError,
     r"at nodes\.gait: expected a link probability in \[0, 1\], found 1\.2"),
    (lambda s: set_leak(s, "gait", -0.1), ModelFileError,
     r"expected a leak probability in \[0, 1\], found -0\.1"),
    (lambda s: set_link(s, "gait", "age", 0.2), UnknownNameError,
     r"unknown parent of gait 'age'"),
    (lambda s: set_link(s, "gait", "hip_oa", 0.2, when="presnt"), UnknownNameError,
     r"unknown linked state of hip_oa in gait 'presnt'.*did you mean 'present'"),
    (lambda s: set_prior(s, "knee_oa", 1.5), ModelFileError,
     r"expected a probability between 0 and 1 for state 'present', found 1\.5"),
    (lambda s: set_prior(s, "pain_level", 0.3), ModelFileError,
     r"expected a mapping state -> probability for a node with 3 states, found the single "
     r"number 0\.3"),
    (lambda s: set_prior(s, "pain_level", {"mild": 0.7, "severe": 0.6}), ModelFileError,
     r"expected the given probabilities to sum to at most 1, found 1\.3"),
    (lambda s: set_prior(s, "knee_oa", {"absent": 0.7, "present": 0.6}), ModelFileError,
     r"expected probabilities summing to 1, found sum 1\.3"),
    (lambda s: set_prior(s, "knee_oa", {"presnt": 0.6}), UnknownNameError,
     r"unknown state of knee_oa 'presnt'.*did you mean 'present'"),
    (lambda s: set_row(s, "knee_oa", {"ag": "old"}, 0.3), UnknownNameError,
     r"unknown parent of knee_oa 'ag'.*did you mean 'age'"),
    (lambda s: set_row(s, "knee_oa", {"age": "olde"}, 0.3), UnknownNameError,
     r"unknown state of age 'olde'.*did you mean 'old'"),
    (lambda s: set_prior(s, "knee_ao", 0.3), UnknownNameError,
     r"unknown node 'knee_ao'.*did you mean 'knee_oa'"),
])
def test_edit_errors(tiny_spec, call, exc, pattern):
    before = dump_spec(tiny_spec)
    with pytest.raises(exc, match=pattern):
        call(tiny_spec)
    assert dump_spec(tiny_spec) == before


def test_apply_overrides_forms(tiny_spec):
    s = apply_overrides(tiny_spec, [
        "knee_oa=0.3", "pain_level.severe=0.5", "hip_oa[age=old].present=0.35",
        "gait.leak=0.15", "gait.link.hip_oa=0.45", "gait.link.knee_oa:present=0.55"])
    assert [r.probabilities["present"] for r in s.nodes["knee_oa"].table] == [0.3, 0.3]
    assert [r.probabilities["severe"] for r in s.nodes["pain_level"].table] == [0.5, 0.5]
    assert [r.probabilities["present"] for r in s.nodes["hip_oa"].table] == [0.05, 0.35]
    nor = s.nodes["gait"].noisy_or
    assert (nor.leak.p, nor.links[0].p, nor.links[1].p) == (0.15, 0.55, 0.45)
    assert all(e.source == "user" for _, _, e in s.entries()
               if _ in ("knee_oa", "pain_level", "gait"))


@pytest.mark.parametrize("item, exc, pattern", [
    ("knee_oa", ModelFileError, r"override 'knee_oa': expected NODE=P.*found no '='"),
    ("knee_oa=high", ModelFileError, r"expected a probability after the last '=', found 'high'"),
    ("hip_oa[age].present=0.3", ModelFileError, r"expected PARENT=STATE inside \[\], found 'age'"),
    ("knee_oa.a.b.c=0.3", ModelFileError, r"override 'knee_oa\.a\.b\.c=0\.3': expected NODE=P"),
    ("kne_oa=0.3", UnknownNameError, r"unknown node 'kne_oa'.*did you mean 'knee_oa'"),
    ("knee_oa.presnt=0.3", UnknownNameError,
     r"override 'knee_oa\.presnt=0\.3': unknown state of knee_oa 'presnt'.*'present'"),
    ("gait.link.hip=0.3", UnknownNameError, r"unknown parent of gait 'hip'.*did you mean 'hip_oa'"),
    ("gait.leak=2", ModelFileError, r"expected a leak probability in \[0, 1\], found 2\.0"),
])
def test_apply_overrides_errors(tiny_spec, item, exc, pattern):
    with pytest.raises(exc, match=pattern):
        apply_overrides(tiny_spec, [item])


# ----------------------------------------------------------------------------- saving
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


# ----------------------------------------------------------------------------- shipped model
def test_shipped_model_is_valid_and_fully_sourced(shipped_spec):
    assert validate_spec(shipped_spec) is shipped_spec
    assert len(shipped_spec.nodes) == 31
    for g, n in {"context": 2, "origin": 5, "mechanism": 8, "finding": 12, "test": 4}.items():
        assert len(shipped_spec.group(g)) == n, g
    for rec in shipped_spec.provenance():
        assert rec["source_kind"] in ("citation", "elicited"), rec
        assert rec["source_text"], rec
    for sid, src in shipped_spec.sources.items():
        if sid in ("user", "fitted"):
            continue
        assert bool(src.citation) != bool(src.elicited), sid
    used = {e.source for _, _, e in shipped_spec.entries()}
    assert used <= set(shipped_spec.sources)


def test_shipped_evidence_ids_exist_in_evidence_md(shipped_spec):
    import re

    try:
        text = EVIDENCE_MD.read_text(encoding="utf-8")
    except OSError:
        pytest.skip(f"{EVIDENCE_MD} not readable")
    defined = set(re.findall(r"^\|\s*([PXMTR]\d+)\s*\|", text, flags=re.M))
    assert len(defined) > 50
    cited = set()
    for sid, src in shipped_spec.sources.items():
        ids = re.findall(r"\b([PXMTR]\d+)\b", str(src.evidence_id or ""))
        cited.update((sid, i) for i in ids)
    assert cited
    missing = sorted(f"{sid}: {i}" for sid, i in cited if i not in defined)
    assert not missing, missing


def test_shipped_model_loads_from_an_installed_layout(tmp_path):
    """Install layout without a build backend: the package plus kneehip_bn/data/knee_hip.yaml
    (what pyproject's force-include puts in the wheel); load_spec() must find it there."""
    import shutil
    import subprocess
    import sys
    import tomllib

    cfg = tomllib.loads((REPO / "pyproject.toml").read_text())
    include = cfg["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]
    assert include == {"models/knee_hip.yaml": "kneehip_bn/data/knee_hip.yaml",
                       "models/knee_hip_basic.yaml": "kneehip_bn/data/knee_hip_basic.yaml"}
    site = tmp_path / "site"
    shutil.copytree(REPO / "src" / "kneehip_bn", site / "kneehip_bn",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (site / "kneehip_bn" / "data").mkdir()
    for src, dst in include.items():
        shutil.copy(REPO / src, site / dst)
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import kneehip_bn.model.spec as s; import kneehip_bn.model.yamlio as y; "
            "p = s.default_model_path(); spec = y.load_spec(); print(p); print(len(spec.nodes)); "
            "print(s.shipped_model_path('knee_hip_basic'))")
    out = subprocess.run([sys.executable, "-c", code, str(site)], capture_output=True, text=True,
                         cwd=tmp_path, timeout=60)
    assert out.returncode == 0, out.stderr
    path, n, basic = out.stdout.split()
    assert Path(path) == site / "kneehip_bn" / "data" / "knee_hip.yaml"
    assert int(n) == len(load_spec().nodes)
    assert Path(basic) == site / "kneehip_bn" / "data" / "knee_hip_basic.yaml"


def test_yaml_is_plain_data(shipped_spec):
    """What save_spec writes is readable by any YAML reader (safe_load)."""
    from kneehip_bn.model.yamlio import spec_to_yaml

    data = yaml.safe_load(spec_to_yaml(shipped_spec))
    assert data == dump_spec(shipped_spec)
