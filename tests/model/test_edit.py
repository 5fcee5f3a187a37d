"""Edits: each returns a new validated spec, marks the entry and keeps the previous value."""

from __future__ import annotations

import pytest

from kneehip_bn import (
    ModelFileError,
    UnknownNameError,
    apply_overrides,
    set_leak,
    set_link,
    set_prior,
    set_row,
)
from kneehip_bn.model.yamlio import dump_spec


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
