"""explain, link strength and causal paths against brute-force enumeration (the network
``MINI`` of ``mini.py``)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from mini import CASES, ORIGINS, logit, nor, p_on

from basic import BASIC
from kneehip_bn import (
    ImpossibleEvidenceError,
    KneeHipError,
    UnknownNameError,
    explain,
    get_engine,
    next_best_test,
)
from kneehip_bn.teaching.explain import causal_paths, link_strength


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


def test_results_are_pandas(mini):
    assert isinstance(explain({"f1": "present"}, model=mini).table, pd.DataFrame)
    assert isinstance(next_best_test({}, model=mini), pd.DataFrame)
    with pytest.raises(KneeHipError):
        explain({"f1": "present"}, model=42)
