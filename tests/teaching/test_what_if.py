"""what_if and parse_scenario against brute-force enumeration (``MINI`` of ``mini.py``)."""

from __future__ import annotations

import pytest
from mini import mini_families

from kneehip_bn import (
    EvidenceError,
    ImpossibleEvidenceError,
    UnknownNameError,
    get_engine,
    set_prior,
    what_if,
)
from kneehip_bn.teaching.what_if import parse_scenario
from oracle import BruteForce


def test_what_if_vs_brute_force(mini, bf):
    base = {"f1": "present", "f2": "present"}
    df = what_if(base, {
        "more": {"add": {"t1": "positive"}},
        "less": {"remove": ["f2"]},
        "older": {"context": {"ctx": "b"}},
        "treated": {"do": {"o1": "absent"}, "remove": "f2"},
        "observed_absent": {"add": {"o1": "absent"}, "remove": "f2"},
        "leak": {"set": ["m.leak=0.2"]},
        "as_text": "add=f3=severe;remove=f1",
    }, model=mini, targets=["o1", "o2", "f2", "f3=mild", "ctx=b"])
    assert list(df.columns) == ["base", "more", "less", "older", "treated", "observed_absent",
                                "leak", "as_text"]
    assert list(df.index) == ["o1", "o2", "f2", "f3=mild", "ctx=b"]
    bf_leak = BruteForce(mini_families(m_leak=0.2))
    want = {
        "base": (bf, base, None),
        "more": (bf, {**base, "t1": "positive"}, None),
        "less": (bf, {"f1": "present"}, None),
        "older": (bf, {**base, "ctx": "b"}, None),
        "treated": (bf, {"f1": "present"}, {"o1": "absent"}),
        "observed_absent": (bf, {"f1": "present", "o1": "absent"}, None),
        "leak": (bf_leak, base, None),
        "as_text": (bf, {"f2": "present", "f3": "severe"}, None),
    }
    for col, (oracle, ev, do) in want.items():
        for t, (node, k) in {"o1": ("o1", 1), "o2": ("o2", 1), "f2": ("f2", 1),
                             "f3=mild": ("f3", 1), "ctx=b": ("ctx", 1)}.items():
            assert df.loc[t, col] == pytest.approx(
                float(oracle.marginal([node], ev, do=do)[k]), abs=1e-12), (col, t)
    # after do(o1), f1 says nothing about o1's cause ctx (the prior); observing o1 does
    assert df.loc["ctx=b", "treated"] == pytest.approx(0.3, abs=1e-12)
    assert df.loc["ctx=b", "treated"] != pytest.approx(df.loc["ctx=b", "observed_absent"],
                                                       abs=1e-3)
    assert "do(o1=absent)" in df.attrs["descriptions"]["treated"]


def test_what_if_set_on_a_spec_with_a_cached_engine(mini):
    """Regression: an edited copy of a spec must not reuse the original's compiled engine."""
    get_engine(mini)
    edited = set_prior(mini, "o2", 0.6)
    assert get_engine(edited).posterior({}, ["o2"])["o2"][1] == pytest.approx(0.6)
    df = what_if({}, {"x": {"set": ["o2=0.6"]}}, model=mini, targets=["o2"])
    assert df.loc["o2", "base"] == pytest.approx(0.3) and df.loc["o2", "x"] == pytest.approx(0.6)


def test_what_if_errors(mini):
    with pytest.raises(UnknownNameError, match="did you mean 'add'"):
        what_if({"f1": "present"}, {"x": {"ad": {"f2": "present"}}}, model=mini)
    with pytest.raises(EvidenceError, match="remove: expected an observed node"):
        what_if({"f1": "present"}, {"x": {"remove": ["f2"]}}, model=mini)
    with pytest.raises(EvidenceError, match="context: expected a context node"):
        what_if({}, {"x": {"context": {"f1": "present"}}}, model=mini)
    with pytest.raises(EvidenceError, match="found it twice"):
        what_if({}, {"base": {"add": {"f1": "present"}}}, model=mini)
    with pytest.raises(EvidenceError, match="both observed and intervened"):
        what_if({"o1": "present"}, {"x": {"do": {"o1": "absent"}}}, model=mini)
    with pytest.raises(UnknownNameError, match="did you mean 'f2'"):
        what_if({}, {"x": {"add": {"f22": "present"}}}, model=mini)
    with pytest.raises(UnknownNameError, match="targets"):
        what_if({}, {}, model=mini, targets=["nope"])
    with pytest.raises(ImpossibleEvidenceError, match="scenario 'x'"):
        what_if({"o2": "absent"}, {"x": {"add": {"z": "present"}}}, model=mini)


def test_parse_scenario():
    assert parse_scenario("treated:do=knee_pathology=absent;remove=hip_pain,knee_pain") == (
        "treated", {"do": ["knee_pathology=absent"], "remove": ["hip_pain", "knee_pain"]})
    _, sc = parse_scenario("x:set=knee_pathology[age_group=60_plus,b=c].present=0.4,a.leak=0.1")
    assert sc == {"set": ["knee_pathology[age_group=60_plus,b=c].present=0.4", "a.leak=0.1"]}
    with pytest.raises(EvidenceError, match="no ':' after the name"):
        parse_scenario("treated do=knee_pathology=absent")
    with pytest.raises(UnknownNameError, match="did you mean 'add'"):
        parse_scenario("x:addd=knee_effusion=present")
    with pytest.raises(EvidenceError, match="expected NODE=STATE, found 'knee_effusion'"):
        parse_scenario("x:add=knee_effusion")
    with pytest.raises(EvidenceError, match="empty name"):
        parse_scenario(":add=a=b")
    with pytest.raises(EvidenceError, match="without '='"):
        parse_scenario("x:add")
