"""diagnose / query / do(): against brute force, pgmpy CausalInference and a mutilated network."""

from __future__ import annotations

import math
import warnings

import networkx as nx
import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from basic import BASIC
from conftest import tiny_families
from kneehip_bn import (
    Diagnosis,
    Engine,
    EvidenceError,
    ImpossibleEvidenceError,
    KneeHipError,
    UnknownNameError,
    build_network,
    diagnose,
    query,
)
from kneehip_bn.inference.queries import (
    as_model,
    node_groups,
    on_state,
    parse_assignments,
    resolve_evidence,
)
from oracle import BruteForce, random_dag_families, to_pgmpy

IMPOSSIBLE = {"lumbar_radiculopathy": "absent", "upper_lumbar_root": "present"}


# ----------------------------------------------------------------------------- diagnose
def test_diagnose_tiny_vs_brute_force(tiny_spec, tiny_oracle):
    ev = {"limp": "present", "pain_level": "mild"}
    dx = diagnose(ev, model=tiny_spec)
    assert isinstance(dx, Diagnosis)
    assert list(dx.origins.columns) == ["prior", "posterior", "odds_ratio"]
    post = tiny_oracle.posterior(ev)
    prior = tiny_oracle.posterior({})
    want = sorted(["knee_oa", "hip_oa"], key=lambda n: -post[n][1])
    assert list(dx.origins.index) == want
    for n in ("knee_oa", "hip_oa"):
        pr, po = prior[n][1], post[n][1]
        row = dx.origins.loc[n]
        assert row.prior == pytest.approx(pr, abs=1e-12)
        assert row.posterior == pytest.approx(po, abs=1e-12)
        assert row.odds_ratio == pytest.approx((po / (1 - po)) / (pr / (1 - pr)), rel=1e-10)
    assert list(dx.mechanisms.index) == ["gait"]
    assert dx.mechanisms.loc["gait", "posterior"] == pytest.approx(post["gait"][1], abs=1e-12)
    d = dx.to_dict()
    assert [o["name"] for o in d["origins"]] == want
    assert d["mechanisms"]["gait"] == pytest.approx(post["gait"][1])
    assert d["evidence"] == ev and d["do"] == {}
    text = str(dx)
    assert "Findings: limp=present, pain_level=mild" in text and "knee_oa" in text
    html = dx._repr_html_()  # works with or without jinja2 (pandas Styler)
    assert "<b>Origins</b>" in html and "<b>Mechanisms</b>" in html
    assert f"{post['knee_oa'][1]:.3f}" in html and "hip_oa" in html


def test_diagnose_accepts_strings_pairs_and_models(tiny_spec, tiny_yaml_path):
    a = diagnose(["limp=present"], model=tiny_spec).origins
    b = diagnose([("limp", "present")], model=tiny_yaml_path).origins
    c = diagnose({"limp": "present"}, model=build_network(tiny_spec)).origins
    d = diagnose({"limp": "present"}, model=str(tiny_yaml_path)).origins
    for other in (b, c, d):
        pd.testing.assert_frame_equal(a, other)


def test_diagnose_ranking_is_sorted_on_shipped(shipped_spec):
    dx = diagnose({"knee_pain": "present", "hip_pain": "present"}, model=shipped_spec)
    post = dx.origins["posterior"].to_numpy()
    assert (np.diff(post) <= 0).all()
    assert set(dx.origins.index) == set(shipped_spec.group("origin"))
    assert set(dx.mechanisms.index) == set(shipped_spec.group("mechanism"))


def test_diagnose_custom_origins_and_unknown(tiny_spec):
    dx = diagnose({}, model=tiny_spec, origins=["gait"], mechanisms=[])
    assert list(dx.origins.index) == ["gait"] and dx.mechanisms.empty
    with pytest.raises(UnknownNameError, match=r"unknown node 'giat'.*did you mean 'gait'"):
        diagnose({}, model=tiny_spec, origins=["giat"])


# ----------------------------------------------------------------------------- query
def test_query_tiny_vs_brute_force(tiny_spec, tiny_oracle):
    s = query("pain_level", {"limp": "present", "age": "old"}, model=tiny_spec)
    assert isinstance(s, pd.Series) and s.name == "pain_level"
    assert list(s.index) == ["none", "mild", "severe"] and s.index.name == "state"
    np.testing.assert_allclose(s.to_numpy(), tiny_oracle.posterior(
        {"limp": "present", "age": "old"})["pain_level"], atol=1e-12)
    d = query("age", do={"knee_oa": "present"}, model=tiny_spec)
    assert d["old"] == pytest.approx(0.4, abs=1e-15)
    o = query("age", {"knee_oa": "present"}, model=tiny_spec)
    assert o["old"] == pytest.approx(8 / 11, abs=1e-15)


# ----------------------------------------------------------------------------- do()
def _mutilate(model, do):
    """The mutilated pgmpy network, built by hand: point masses, incoming edges removed."""
    from pgmpy.factors.discrete import TabularCPD

    m = model.copy()
    for x, s in do.items():
        for p in list(m.predecessors(x)):
            m.remove_edge(p, x)
        old = m.get_cpds(x)
        m.remove_cpds(old)
        states = list(old.state_names[x])
        m.add_cpds(TabularCPD(x, len(states), [[1.0 if t == s else 0.0] for t in states],
                              state_names={x: states}))
    assert m.check_model()
    return m


DO_CASES = [
    ("hip_pain", {"knee_pathology": "absent"}),
    ("hip_pain", {"knee_pathology": "present"}),
    ("knee_pain", {"hip_muscle_weakness": "present"}),
    ("knee_pain", {"hip_pathology": "present"}),
    ("contralateral_hip_pain", {"weight_shift": "present"}),
    ("hip_pain", {"altered_gait": "present"}),
    ("antalgic_gait_observed", {"knee_pathology": "absent", "hip_pathology": "absent"}),
    ("trendelenburg_sign", {"hip_muscle_weakness": "absent"}),
    ("knee_pain", {"activity_level": "high_impact"}),
    ("femoral_nerve_stretch", {"lumbar_radiculopathy": "present"}),
]


def test_do_matches_pgmpy_causal_inference(shipped_model):
    from pgmpy.inference import CausalInference

    ci = CausalInference(shipped_model)
    answered = 0
    for target, do in DO_CASES:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                theirs = ci.query([target], do=do, show_progress=False)
        except ValueError as exc:  # e.g. "There is a direct edge ..."
            assert "Invalid causal query" in str(exc)
            continue
        ours = query(target, do=do, model=shipped_model)
        vals = [theirs.get_value(**{target: s}) for s in ours.index]
        np.testing.assert_allclose(ours.to_numpy(), vals, atol=1e-10, err_msg=f"{target} {do}")
        answered += 1
    assert answered >= 8


def test_do_with_evidence_matches_mutilated_network(shipped_model):
    """With evidence, do() conditions in the mutilated network (VE on it by hand).

    pgmpy's CausalInference uses the evidence only to weight the adjustment set, so it is
    not the oracle here.
    """
    from pgmpy.inference import VariableElimination

    evidences = [{"fadir_test": "positive"}, {"knee_effusion": "present", "age_group": "60_plus"},
                 {"low_back_pain": "present", "antalgic_gait_observed": "present"}]
    for (target, do), ev in zip(DO_CASES, evidences * 4):
        if set(ev) & set(do) or target in ev:
            continue
        mut = _mutilate(shipped_model, do)
        want = VariableElimination(mut).query([target], evidence=ev, show_progress=False)
        ours = query(target, ev, do=do, model=shipped_model)
        vals = [want.get_value(**{target: s}) for s in ours.index]
        np.testing.assert_allclose(ours.to_numpy(), vals, atol=1e-10, err_msg=f"{target} {do} {ev}")


def test_do_differs_from_seeing(shipped_spec):
    """Observing knee pathology tells about age; intervening on it does not."""
    seen = query("age_group", {"knee_pathology": "present"}, model=shipped_spec)
    done = query("age_group", do={"knee_pathology": "present"}, model=shipped_spec)
    prior = query("age_group", model=shipped_spec)
    np.testing.assert_allclose(done.to_numpy(), prior.to_numpy(), atol=1e-14)
    assert seen["60_plus"] > prior["60_plus"] + 0.05


@given(seed=st.integers(0, 2**32 - 1), pick=st.integers(0, 10**6), state=st.integers(0, 3))
def test_do_never_changes_ancestors(seed, pick, state):
    fams = random_dag_families(seed)
    eng = Engine.from_families(fams)
    g = nx.DiGraph([(p, v) for v, _, ps, _ in fams for p in ps])
    g.add_nodes_from(f[0] for f in fams)
    x = fams[pick % len(fams)][0]
    do = {x: eng.states[x][state % len(eng.states[x])]}
    prior = eng.prior_marginals()
    after = eng.posterior({}, do=do)
    for a in nx.ancestors(g, x):
        np.testing.assert_allclose(after[a], prior[a], atol=1e-12)
    np.testing.assert_allclose(after[x], np.eye(len(eng.states[x]))[state % len(eng.states[x])])


def test_do_never_changes_ancestors_on_shipped(shipped_engine, shipped_model):
    prior = shipped_engine.prior_marginals()
    for x in ["knee_pathology", "altered_gait", "hip_joint_stress", "upper_lumbar_root",
              "knee_pain"]:
        for s in shipped_engine.states[x]:
            after = shipped_engine.posterior({}, do={x: s})
            for a in nx.ancestors(shipped_model, x):
                np.testing.assert_allclose(after[a], prior[a], atol=1e-12, err_msg=f"{a} do {x}")


def test_do_on_random_networks_vs_causal_inference():
    from pgmpy.inference import CausalInference

    answered = 0
    for seed in range(300, 312):
        fams = random_dag_families(seed, n_nodes=6, max_card=3)
        model = to_pgmpy(fams)
        oracle = BruteForce(fams)
        ci = CausalInference(model)
        x, y = fams[1][0], fams[-1][0]
        do = {x: fams[1][1][-1]}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                theirs = ci.query([y], do=do, show_progress=False)
        except ValueError:
            continue
        ours = query(y, do=do, model=model)
        vals = [theirs.get_value(**{y: s}) for s in ours.index]
        np.testing.assert_allclose(ours.to_numpy(), vals, atol=1e-10)
        np.testing.assert_allclose(ours.to_numpy(), oracle.posterior({}, [y], do=do)[y], atol=1e-12)
        answered += 1
    assert answered >= 6


# ----------------------------------------------------------------------------- errors
def test_impossible_evidence_in_diagnose_and_query():
    with pytest.raises(ImpossibleEvidenceError, match=r"impossible evidence.*upper_lumbar_root"):
        diagnose(IMPOSSIBLE, model=BASIC)
    with pytest.raises(ImpossibleEvidenceError, match=r"probability zero"):
        query("knee_pain", IMPOSSIBLE, model=BASIC)
    with pytest.raises(ImpossibleEvidenceError, match=r"under do\(lumbar_radiculopathy=absent\)"):
        query("knee_pain", {"upper_lumbar_root": "present"}, do={"lumbar_radiculopathy": "absent"},
              model=BASIC)


def test_evidence_errors():
    with pytest.raises(UnknownNameError, match=r"evidence: unknown node 'knee_pian'.*'knee_pain'"):
        diagnose({"knee_pian": "present"}, model=BASIC)
    with pytest.raises(UnknownNameError,
                       match=r"evidence: unknown state of knee_pain 'presnt'.*did you mean 'present'"):
        diagnose(["knee_pain=presnt"], model=BASIC)
    with pytest.raises(UnknownNameError, match=r"do: unknown node 'knee_patho'"):
        query("hip_pain", do={"knee_patho": "absent"}, model=BASIC)
    with pytest.raises(EvidenceError, match=r"knee_pain given twice with different states"):
        diagnose(["knee_pain=present", "knee_pain=absent"], model=BASIC)
    with pytest.raises(EvidenceError, match=r"knee_pain is both observed and intervened on"):
        query("hip_pain", {"knee_pain": "present"}, do={"knee_pain": "absent"}, model=BASIC)
    with pytest.raises(EvidenceError, match=r"evidence 'knee_pain': expected NAME=STATE .*found no '='"):
        diagnose(["knee_pain"])
    with pytest.raises(EvidenceError, match=r"more than one '='"):
        diagnose(["knee_pain=present=yes"])
    with pytest.raises(EvidenceError, match=r"both parts non-empty"):
        diagnose(["knee_pain="])
    with pytest.raises(UnknownNameError, match=r"unknown node 'hip_pian'.*did you mean 'hip_pain'"):
        query("hip_pian", model=BASIC)
    with pytest.raises(KneeHipError, match=r"model: expected a pgmpy DiscreteBayesianNetwork"):
        diagnose({}, model=42)


def test_helpers():
    assert on_state(["absent", "present"]) == "present"
    assert on_state(["negative", "positive"]) == "positive"
    assert on_state(["low", "high"]) == "high"
    assert parse_assignments([" a = b ", "c=d"]) == [("a", "b"), ("c", "d")]
    eng = Engine.from_families(tiny_families())
    assert resolve_evidence(eng, ["limp=present", "limp=present"]) == {"limp": "present"}
    assert resolve_evidence(eng, None) == {}
    assert as_model(None) is as_model(None)
    assert node_groups(BASIC)["knee_pathology"] == "origin"
    groups = node_groups(eng)
    assert groups["age"] == "origin" and groups["limp"] == "finding"


def test_log_probability_is_consistent_with_diagnosis(tiny_spec, tiny_oracle):
    eng = Engine(tiny_spec)
    assert math.exp(eng.log_probability({"limp": "present"})) == pytest.approx(
        tiny_oracle.probability({"limp": "present"}), abs=1e-14)
