"""Teaching tools (explain, what-if, next best test, conflict) against brute-force enumeration.

The test network ``MINI`` (model-file form) and its tables typed in by hand (``mini_families``,
the oracle's input; noisy-OR tables written out with their formula, not through our code)::

        ctx                      context  (a 0.7 / b 0.3)
         |
         o1 ------> o3           origins  (o1 by ctx: 0.2 / 0.4; o2 0.3; o3 | o1: 0.1 / 0.5)
         | \\        |  \\
         |  m <- o2 |   t1       m: noisy-OR leak 0.05, o1 0.6, o2 0.3;  t1 (test) | o3
         | / \\   |  \\ |          z | o2: structural zero (z absent when o2 absent)
        f1   f2  z  f3          f1 | o1, m;  f2 | m, o3;  f3 (none/mild/severe) | o2
                 |
                 t2              t2 (test) | z
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from basic import BASIC
from kneehip_bn import (
    EvidenceError,
    ImpossibleEvidenceError,
    KneeHipError,
    UnknownNameError,
    conflict,
    explain,
    get_engine,
    load_spec,
    next_best_test,
    set_prior,
    what_if,
)
from kneehip_bn.inference.sampling import forward_sample
from kneehip_bn.teaching.reasoning import (
    causal_paths,
    link_strength,
    parse_scenario,
)
from oracle import BruteForce

MINI = """\
format: kneehip-bn/1
name: mini
default_strength: 10
sources:
  s: {elicited: "numbers made up for the tests"}
nodes:
  ctx:
    group: context
    states: [a, b]
    table: {probabilities: {a: 0.7, b: 0.3}, source: s}
  o1:
    group: origin
    states: [absent, present]
    parents: [ctx]
    table:
      - {given: {ctx: a}, probabilities: {absent: 0.8, present: 0.2}, source: s}
      - {given: {ctx: b}, probabilities: {absent: 0.6, present: 0.4}, source: s}
  o2:
    group: origin
    states: [absent, present]
    table: {probabilities: {absent: 0.7, present: 0.3}, source: s}
  o3:
    group: origin
    states: [absent, present]
    parents: [o1]
    table:
      - {given: {o1: absent}, probabilities: {absent: 0.9, present: 0.1}, source: s}
      - {given: {o1: present}, probabilities: {absent: 0.5, present: 0.5}, source: s}
  m:
    group: mechanism
    states: [absent, present]
    parents: [o1, o2]
    noisy_or:
      leak: {p: 0.05, source: s}
      links:
        - {parent: o1, p: 0.6, source: s}
        - {parent: o2, p: 0.3, source: s}
  z:
    group: mechanism
    states: [absent, present]
    parents: [o2]
    table:
      - {given: {o2: absent}, probabilities: {absent: 1.0, present: 0.0}, source: s}
      - {given: {o2: present}, probabilities: {absent: 0.6, present: 0.4}, source: s}
  f1:
    group: finding
    states: [absent, present]
    parents: [o1, m]
    noisy_or:
      leak: {p: 0.1, source: s}
      links:
        - {parent: o1, p: 0.7, source: s}
        - {parent: m, p: 0.4, source: s}
  f2:
    group: finding
    states: [absent, present]
    parents: [m, o3]
    noisy_or:
      leak: {p: 0.05, source: s}
      links:
        - {parent: m, p: 0.5, source: s}
        - {parent: o3, p: 0.6, source: s}
  f3:
    group: finding
    states: [none, mild, severe]
    parents: [o2]
    table:
      - {given: {o2: absent}, probabilities: {none: 0.6, mild: 0.3, severe: 0.1}, source: s}
      - {given: {o2: present}, probabilities: {none: 0.2, mild: 0.3, severe: 0.5}, source: s}
  t1:
    group: test
    states: [negative, positive]
    parents: [o3]
    noisy_or:
      leak: {p: 0.2, source: s}
      links:
        - {parent: o3, p: 0.7, source: s}
  t2:
    group: test
    states: [negative, positive]
    parents: [z]
    noisy_or:
      leak: {p: 0.05, source: s}
      links:
        - {parent: z, p: 0.9, source: s}
"""

ORIGINS = ["o1", "o2", "o3"]
AB = ["absent", "present"]
NP = ["negative", "positive"]


def nor(leak: float, *ps: float) -> np.ndarray:
    """Noisy-OR table (2, 2, ..., 2): P(off | u) = (1 - leak) * prod over active links (1 - p)."""
    k = len(ps)
    off = np.full([2] * k, 1.0 - leak)
    for j, p in enumerate(ps):
        shape = [1] * k
        shape[j] = 2
        off = off * np.array([1.0, 1.0 - p]).reshape(shape)
    return np.stack([off, 1.0 - off])


def mini_families(m_leak: float = 0.05):
    return [
        ("ctx", ["a", "b"], [], np.array([0.7, 0.3])),
        ("o1", AB, ["ctx"], np.array([[0.8, 0.6], [0.2, 0.4]])),
        ("o2", AB, [], np.array([0.7, 0.3])),
        ("o3", AB, ["o1"], np.array([[0.9, 0.5], [0.1, 0.5]])),
        ("m", AB, ["o1", "o2"], nor(m_leak, 0.6, 0.3)),
        ("z", AB, ["o2"], np.array([[1.0, 0.6], [0.0, 0.4]])),
        ("f1", AB, ["o1", "m"], nor(0.1, 0.7, 0.4)),
        ("f2", AB, ["m", "o3"], nor(0.05, 0.5, 0.6)),
        ("f3", ["none", "mild", "severe"], ["o2"], np.array([[0.6, 0.2], [0.3, 0.3], [0.1, 0.5]])),
        ("t1", NP, ["o3"], nor(0.2, 0.7)),
        ("t2", NP, ["z"], nor(0.05, 0.9)),
    ]


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    p = tmp_path_factory.mktemp("mini") / "mini.yaml"
    p.write_text(MINI, encoding="utf-8")
    return load_spec(p)


@pytest.fixture(scope="module")
def bf():
    return BruteForce(mini_families())


def on(node: str) -> int:
    """Index of the "on" state: present/positive (second), or the last state (f3: severe)."""
    return 2 if node == "f3" else 1


def logit(p: float) -> float:
    return math.log(p) - math.log1p(-p)


def p_on(bf: BruteForce, node: str, evidence, do=None) -> float:
    return float(bf.marginal([node], evidence, do=do)[on(node)])


def entropy(p: np.ndarray) -> float:
    p = np.asarray(p, dtype=float).ravel()
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


CASES = [
    {"f1": "present", "f2": "present"},
    {"f1": "present", "f3": "severe", "t1": "negative"},
    {"ctx": "b", "f2": "present", "t2": "positive", "f3": "mild"},
    {"f1": "absent", "f2": "present", "t1": "positive", "f3": "none"},
]


def test_mini_spec_matches_the_hand_tables(mini, bf):
    prior = get_engine(mini).prior_marginals()
    for v in bf.variables:
        np.testing.assert_allclose(prior[v], bf.marginal([v]), atol=1e-12)


# ----------------------------------------------------------------------------- explain
@pytest.mark.parametrize("ev", CASES)
def test_weight_of_evidence_vs_brute_force(mini, bf, ev):
    ex = explain(ev, model=mini)
    assert len(ex.table) == len(ev) * len(ORIGINS)
    for _, r in ex.table.iterrows():
        rest = {k: v for k, v in ev.items() if k != r["finding"]}
        p_with = p_on(bf, r["origin"], ev)
        p_without = p_on(bf, r["origin"], rest)
        assert r["posterior"] == pytest.approx(p_with, abs=1e-12)
        assert r["posterior_without"] == pytest.approx(p_without, abs=1e-12)
        want = logit(p_with) - logit(p_without)
        assert r["woe"] == pytest.approx(want, abs=1e-9)
        assert r["woe_bits"] == pytest.approx(want / math.log(2), abs=1e-9)
        assert r["odds_factor"] == pytest.approx(math.exp(want), rel=1e-9)
    # origins ranked by posterior, total change from the prior
    post = {o: p_on(bf, o, ev) for o in ORIGINS}
    assert ex.leading == sorted(ORIGINS, key=lambda o: -post[o])
    for o in ORIGINS:
        assert ex.origins.loc[o, "total_woe"] == pytest.approx(
            logit(post[o]) - logit(p_on(bf, o, {})), abs=1e-9)
    woe = ex.woe("bits")
    assert list(woe.index) == list(ev) and list(woe.columns) == ex.leading


def test_weight_of_evidence_under_do(mini, bf):
    ev = {"f1": "present", "f3": "severe"}
    ex = explain(ev, model=mini, do={"o3": "present"})
    assert "o3" not in set(ex.table["origin"])  # intervened origins are not explained
    r = ex.table.query("finding == 'f1' and origin == 'o1'").iloc[0]
    do = {"o3": "present"}
    want = logit(p_on(bf, "o1", ev, do)) - logit(p_on(bf, "o1", {"f3": "severe"}, do))
    assert r["woe"] == pytest.approx(want, abs=1e-9)


def test_path_rule_vs_hand_computation(mini, bf):
    ev = {"f1": "present", "f2": "present", "t1": "positive"}
    ex = explain(ev, model=mini)
    post = bf.posterior(ev)
    # causal powers: noisy-OR links are their p; o1 -> o3 (full table) is (0.5 - 0.1) / 0.9
    assert link_strength(mini, "o1", "m") == pytest.approx(0.6)
    assert link_strength(mini, "m", "f2") == pytest.approx(0.5)
    assert link_strength(mini, "o1", "o3") == pytest.approx(0.4 / 0.9)
    assert link_strength(mini, "o2", "z") == pytest.approx(0.4)
    # f2 and o1: two paths, score = product of powers x P(intermediate present | e)
    via_m = 0.6 * post["m"][1] * 0.5
    via_o3 = (0.4 / 0.9) * post["o3"][1] * 0.6
    want = ["o1", "m", "f2"] if via_m > via_o3 else ["o1", "o3", "f2"]
    assert ex.paths[("f2", "o1")] == want
    row = ex.table.query("finding == 'f2' and origin == 'o1'").iloc[0]
    assert row["path_score"] == pytest.approx(max(via_m, via_o3), rel=1e-9)
    assert row["path"] == " -> ".join(want) and row["direction"] == "effect"
    # f1 and o1: the direct link (0.7) beats o1 -> m -> f1 (0.6 x P(m) x 0.4 < 0.24)
    assert ex.paths[("f1", "o1")] == ["o1", "f1"]
    # t1 is not a descendant of o2 (nor o2 of t1): no path, acts through explaining away
    assert ex.paths[("t1", "o2")] is None
    assert ex.table.query("finding == 't1' and origin == 'o2'")["direction"].iloc[0] == "none"
    assert sorted(map(tuple, causal_paths(mini, "o1", "f2"))) == [
        ("o1", "m", "f2"), ("o1", "o3", "f2")]
    # highlighted edges: the paths of findings that moved the leading origin >= 1.25-fold
    lead = ex.leading[0]
    want_edges = set()
    for f in ev:
        r = ex.table.query("finding == @f and origin == @lead").iloc[0]
        if abs(r["woe"]) >= math.log(1.25) and ex.paths[(f, lead)]:
            want_edges |= set(itertools.pairwise(ex.paths[(f, lead)]))
    assert set(ex.highlight_edges()) == want_edges and want_edges


def test_link_strength_follows_swapped_tables(mini):
    eng = get_engine(mini)
    assert link_strength(eng, "m", "f2") == pytest.approx(0.5)
    swapped = eng.with_tables({"f2": nor(0.05, 0.9, 0.6)})
    assert link_strength(swapped, "m", "f2") == pytest.approx(0.9)
    assert link_strength(eng, "m", "f2") == pytest.approx(0.5)


def test_context_is_explained_as_a_cause(mini):
    ex = explain({"ctx": "b", "f1": "present"}, model=mini)
    r = ex.table.query("finding == 'ctx' and origin == 'o1'").iloc[0]
    assert r["direction"] == "cause" and r["path"] == "ctx -> o1"


def test_summary_sentences(mini, bf):
    ev = {"f1": "present", "f3": "severe"}
    ex = explain(ev, model=mini)
    lead = ex.leading[0]
    factor = (p_on(bf, lead, ev) / (1 - p_on(bf, lead, ev))) / (
        p_on(bf, lead, {"f3": "severe"}) / (1 - p_on(bf, lead, {"f3": "severe"})))
    assert f"Leading origin: {lead}" in ex.summary
    assert f"F1 = present raised the odds of {lead} {factor:.1f}-fold" in ex.summary
    assert "not a medical device" in ex.summary
    assert str(ex).startswith(ex.summary)
    html = ex._repr_html_()
    assert "<table" in html and "Leading origin" in html
    d = ex.to_dict()
    assert len(d["weights"]) == len(ex.table) and d["evidence"] == ev


def test_explain_edge_cases(mini):
    ex = explain({}, model=mini)
    assert ex.table.empty and "at its prior" in ex.summary
    ex = explain({"o1": "present", "f2": "present"}, model=mini)
    assert "o1" not in set(ex.table["origin"])  # observed origins are not explained
    with pytest.raises(UnknownNameError, match="did you mean 'f1'"):
        explain({"f11": "present"}, model=mini)
    with pytest.raises(UnknownNameError, match="state of f3"):
        explain({"f3": "present"}, model=mini)
    with pytest.raises(ImpossibleEvidenceError):
        explain({"o2": "absent", "z": "present"}, model=mini)


def test_explain_shipped_example():
    ex = explain({"knee_effusion": "present", "knee_pain": "present", "hip_pain": "present"},
                 model=BASIC)
    assert ex.leading[0] == "knee_pathology"
    assert ex.paths[("knee_effusion", "knee_pathology")] == ["knee_pathology", "knee_effusion"]
    assert ex.paths[("hip_pain", "knee_pathology")][0] == "knee_pathology"
    assert "Knee effusion = present raised the odds of knee pathology" in ex.summary


# ----------------------------------------------------------------------------- what-if
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


# ----------------------------------------------------------------------------- next test
def _eig_oracle(bf: BruteForce, ev, cand):
    origins = [o for o in ORIGINS if o not in ev]
    h0 = entropy(bf.marginal(origins, ev))
    pf = bf.marginal([cand], ev)
    gain = h0 - sum(pf[f] * entropy(bf.marginal(origins, {**ev, cand: bf.states[cand][f]}))
                    for f in range(len(pf)) if pf[f] > 0)

    def leader(e):
        return max(origins, key=lambda o: bf.marginal([o], e)[1])

    lead0 = leader(ev)
    change = sum(pf[f] for f in range(len(pf))
                 if pf[f] > 0 and leader({**ev, cand: bf.states[cand][f]}) != lead0)
    return gain, change, h0


@pytest.mark.parametrize("ev", [{}, {"f1": "present"}, {"f1": "present", "f3": "severe"},
                                {"o1": "present", "f2": "absent"}])
def test_expected_information_gain_vs_enumeration(mini, bf, ev):
    df = next_best_test(ev, model=mini)
    cands = [n for n in ["f1", "f2", "f3", "t1", "t2"] if n not in ev]
    assert sorted(df.index) == sorted(cands)
    gains = df["expected_information_gain"].to_numpy()
    assert (np.diff(gains) <= 1e-12).all()
    for c in cands:
        gain, change, h0 = _eig_oracle(bf, ev, c)
        assert df.loc[c, "expected_information_gain"] == pytest.approx(gain, abs=1e-9), c
        assert df.loc[c, "p_change_leading"] == pytest.approx(change, abs=1e-9), c
        assert df.loc[c, "p_on"] == pytest.approx(p_on(bf, c, ev), abs=1e-12)
        assert 0 <= df.loc[c, "expected_information_gain"] <= h0 + 1e-12
    assert df.attrs["entropy_bits"] == pytest.approx(h0, abs=1e-9)


def test_next_best_test_costs_candidates_do(mini, bf):
    df = next_best_test({"f1": "present"}, model=mini, candidates=["t1", "f3"],
                        costs={"t1": 4.0})
    assert list(df.columns[:2]) == ["expected_information_gain", "p_on"]
    assert sorted(df.index) == ["f3", "t1"]
    assert df.loc["t1", "gain_per_cost"] == pytest.approx(df.loc["t1",
                                                                 "expected_information_gain"] / 4)
    assert df.loc["f3", "cost"] == 1.0
    # under an intervention the origins' joint comes from the mutilated network
    df = next_best_test({"f2": "present"}, model=mini, do={"o1": "present"})
    origins = ["o2", "o3"]
    h0 = entropy(bf.marginal(origins, {"f2": "present"}, do={"o1": "present"}))
    assert df.attrs["entropy_bits"] == pytest.approx(h0, abs=1e-9)
    with pytest.raises(EvidenceError, match="already observed"):
        next_best_test({"f1": "present"}, model=mini, candidates=["f1"])
    with pytest.raises(UnknownNameError, match="did you mean 't1'"):
        next_best_test({}, model=mini, candidates=["tt1"])
    with pytest.raises(EvidenceError, match="positive number"):
        next_best_test({}, model=mini, costs={"t1": 0})
    with pytest.raises(ImpossibleEvidenceError, match="probability zero"):
        next_best_test({"o2": "absent", "z": "present"}, model=mini)


def test_next_best_test_shipped_model_radiculopathy():
    df = next_best_test({"low_back_pain": "present", "radiating_leg_pain": "present"}, model=BASIC)
    assert len(df) == 12 + 4 - 2 and df.attrs["entropy_bits"] > 0
    assert (df["expected_information_gain"] >= 0).all()


# ----------------------------------------------------------------------------- conflict
def _conf_oracle(bf: BruteForce, ev) -> float:
    lp = sum(math.log2(bf.marginal([k])[bf.states[k].index(v)]) for k, v in ev.items())
    return lp - math.log2(bf.probability(ev))


@pytest.mark.parametrize("ev", [CASES[0], CASES[1], {"t2": "positive", "f3": "none"},
                                {"f1": "absent", "f2": "present", "t1": "positive"}])
def test_conflict_vs_brute_force(mini, bf, ev):
    c = conflict(ev, model=mini)
    assert c.conflict == pytest.approx(_conf_oracle(bf, ev), abs=1e-9)
    assert c.flagged == (_conf_oracle(bf, ev) > 0)
    for k, r in c.contributions.iterrows():
        rest = {a: b for a, b in ev.items() if a != k}
        p_i = bf.marginal([k])[bf.states[k].index(ev[k])]
        p_rest = bf.marginal([k], rest)[bf.states[k].index(ev[k])]
        assert r["prior"] == pytest.approx(p_i, abs=1e-12)
        assert r["given_rest"] == pytest.approx(p_rest, abs=1e-12)
        assert r["contribution"] == pytest.approx(math.log2(p_i / p_rest), abs=1e-9)
        assert r["contribution"] == pytest.approx(
            _conf_oracle(bf, ev) - (_conf_oracle(bf, rest) if rest else 0.0), abs=1e-9)


def test_conflict_flags_contradictory_findings(mini, bf):
    # t2 positive points to o2 present, f3 none to o2 absent: less likely together
    ev = {"t2": "positive", "f3": "none"}
    assert _conf_oracle(bf, ev) > 0
    c = conflict(ev, model=mini)
    assert c.flagged and "CONFLICT" in str(c)
    assert not conflict({"f1": "present", "f2": "present"}, model=mini).flagged


def test_conflict_tail_probability_vs_exact_enumeration(mini, bf):
    ev = {"t2": "positive", "f3": "none", "f1": "absent"}
    c = conflict(ev, model=mini, n_sim=4000, seed=3)
    obs = _conf_oracle(bf, ev)
    names = list(ev)
    tail = 0.0
    for combo in itertools.product(*[bf.states[n] for n in names]):
        e = dict(zip(names, combo))
        p = bf.probability(e)
        if p > 0 and _conf_oracle(bf, e) >= obs - 1e-12:
            tail += p
    sd = math.sqrt(tail * (1 - tail) / 4000)
    assert abs(c.p_value - tail) < 4 * sd + 1e-9
    assert len(c.simulated) == 4000
    d = c.to_dict()
    assert d["flagged"] == c.flagged and len(d["contributions"]) == 3


def test_forward_sample_matches_the_priors(mini, bf):
    eng = get_engine(mini)
    s = forward_sample(eng, 40000, np.random.default_rng(0))
    for v in bf.variables:
        f = np.bincount(s[:, eng.index[v]], minlength=len(bf.states[v])) / len(s)
        p = bf.marginal([v])
        assert np.all(np.abs(f - p) <= 4.5 * np.sqrt(p * (1 - p) / len(s)) + 1e-12), v
    # structural zero respected; do() fixes a node and cuts its parents
    assert not ((s[:, eng.index["o2"]] == 0) & (s[:, eng.index["z"]] == 1)).any()
    s = forward_sample(eng, 20000, np.random.default_rng(1), do={"o3": "present"})
    assert (s[:, eng.index["o3"]] == 1).all()
    f_o1 = s[:, eng.index["o1"]].mean()
    assert abs(f_o1 - bf.marginal(["o1"])[1]) < 4.5 * math.sqrt(0.25 / 20000)


def test_conflict_errors(mini):
    with pytest.raises(EvidenceError, match="at least one finding"):
        conflict({}, model=mini)
    with pytest.raises(ImpossibleEvidenceError):
        conflict({"o2": "absent", "t2": "positive", "z": "present"}, model=mini)
    with pytest.raises(UnknownNameError, match="did you mean 't2'"):
        conflict({"t22": "positive"}, model=mini)


def test_results_are_pandas(mini):
    assert isinstance(explain({"f1": "present"}, model=mini).table, pd.DataFrame)
    assert isinstance(next_best_test({}, model=mini), pd.DataFrame)
    with pytest.raises(KneeHipError):
        explain({"f1": "present"}, model=42)
