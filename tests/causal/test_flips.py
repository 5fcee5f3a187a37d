"""flip: every single number and smallest set of findings that flips a conclusion, checked
by enumeration and by applying each edit."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from scm_oracle import (
    AB,
    chain_spec_file,
)

from oracle import BruteForce, to_pgmpy


@pytest.fixture
def chain_spec(tmp_path: Path):
    return chain_spec_file(tmp_path)


# ----------------------------------------------------------------------------- flip
def _goal(spec, ev, target, goal, thr=0.5):
    from kneehip_bn import diagnose

    o = diagnose(ev, model=spec).origins
    if goal == "leads":
        return o.index[0] == target and o["posterior"].iloc[0] > o["posterior"].iloc[1]
    return float(o.loc[target, "posterior"]) >= thr


@pytest.mark.parametrize("goal", ["leads", "threshold"])
def test_every_flip_verified_and_none_missed(chain_spec, goal):
    """Each proposed --set reaches the goal (applied with apply_overrides, re-queried with
    diagnose); every parameter whose grid scan reaches the goal is listed."""
    from kneehip_bn import apply_overrides, flip
    from kneehip_bn.teaching.robustness import model_parameters

    ev = {"d": "present", "t": "negative", "e": "much"}
    fl = flip(ev, "h", goal=goal, model=chain_spec)
    want_now = _goal(chain_spec, ev, "h", goal)
    assert fl.met_now == want_now
    assert len(fl.parameters) > 0
    for _, r in fl.parameters.iterrows():
        edited = apply_overrides(chain_spec, [r["set"]])
        assert _goal(edited, ev, "h", goal) != want_now, r["set"]
        assert r["interval_distance"] >= 0
    listed = set(fl.parameters["parameter"])
    params = model_parameters(chain_spec)
    for name in params.index:
        reach = False
        for x in np.linspace(0, 1, 21):
            try:
                edited = apply_overrides(chain_spec, [f"{name}={x:.6f}"])
                reach = _goal(edited, ev, "h", goal) != want_now
            except Exception:
                continue
            if reach:
                break
        if reach:
            assert name in listed, name


def test_finding_flips_are_smallest_by_enumeration(chain_spec):
    from kneehip_bn import flip

    ev = {"a": "high", "d": "present", "t": "negative", "e": "much"}
    fl = flip(ev, "h", model=chain_spec)
    assert fl.findings
    k = len(fl.findings[0])
    players = ["d", "t", "e"]
    states = {n: list(s.states) for n, s in chain_spec.nodes.items()}
    want_now = _goal(chain_spec, ev, "h", "leads")
    found_by_enum = []
    for size in range(1, k + 1):
        for combo in itertools.combinations(players, size):
            for alt in itertools.product(*[[s for s in states[f] if s != ev[f]] for f in combo]):
                ev2 = {**ev, **dict(zip(combo, alt))}
                if _goal(chain_spec, ev2, "h", "leads") != want_now:
                    found_by_enum.append((size, tuple(sorted(zip(combo, alt)))))
    assert min(s for s, _ in found_by_enum) == k  # none smaller exists
    got = {tuple(sorted((c["node"], c["to"]) for c in s)) for s in fl.findings}
    assert got == {c for s, c in found_by_enum if s == k}


def test_flip_on_shipped_model_verified():
    from kneehip_bn import apply_overrides, flip, load_spec

    spec = load_spec("knee_hip_basic")
    ev = {"knee_pain": "present", "knee_effusion": "present", "hip_pain": "present",
          "antalgic_gait_observed": "present"}
    fl = flip(ev, "hip_pathology", goal="threshold", model=spec)
    assert len(fl.parameters) >= 1
    for s in fl.parameters["set"]:
        assert _goal(apply_overrides(spec, [s]), ev, "hip_pathology", "threshold")
    d = fl.to_dict()
    assert set(d) >= {"target", "goal", "parameters", "findings"}
    assert set(d["parameters"][0]) >= {"set", "current", "needed", "interval_distance"}

def test_flip_on_network_without_model_file():
    """A pgmpy network (no model file): every CPD entry is a number; each proposed edit,
    applied to the tables by hand, reaches the goal by brute force."""
    from kneehip_bn import flip

    fams = [("r1", AB, [], np.array([0.7, 0.3])), ("r2", AB, [], np.array([0.6, 0.4])),
            ("f", AB, ["r1", "r2"], np.array([[[0.9, 0.5], [0.4, 0.2]], [[0.1, 0.5], [0.6, 0.8]]]))]
    net = to_pgmpy(fams)
    fl = flip({"f": "present"}, "r1", goal="leads", model=net)
    assert len(fl.parameters)
    for _, r in fl.parameters.iterrows():
        name, x = r["set"].rsplit("=", 1)
        tables = {v: t.copy() for v, _, _, t in fams}
        node = r["node"]
        t = tables[node]
        if "[" in name:  # NODE[p=s,...].present
            given = dict(kv.split("=") for kv in name[name.index("[") + 1:name.index("]")].split(","))
            idx = tuple(int(given[p] == "present") for p in dict(fams_parents(fams))[node])
        else:
            idx = ()
        t[(1, *idx)] = float(x)
        t[(0, *idx)] = 1 - float(x)
        bf = BruteForce([(v, st, pa, tables[v]) for v, st, pa, _ in fams])
        p1 = float(bf.marginal(["r1"], {"f": "present"})[1])
        p2 = float(bf.marginal(["r2"], {"f": "present"})[1])
        assert (p1 > p2) != fl.met_now, r["set"]


def fams_parents(fams):
    return [(v, pa) for v, _, pa, _ in fams]


def test_flip_goal_forms_and_interval(chain_spec):
    from scipy.stats import beta

    from kneehip_bn import KneeHipError, flip

    ev = {"d": "present", "t": "negative", "e": "much"}
    a = flip(ev, "h", goal="P(h) >= 0.3", model=chain_spec, max_findings=0)
    b = flip(ev, "h", goal="threshold", threshold=0.3, model=chain_spec, max_findings=0)
    assert a.goal == b.goal and list(a.parameters["set"]) == list(b.parameters["set"])
    assert flip(ev, "h", goal="h leads", model=chain_spec).goal.startswith("h ")
    with pytest.raises(KneeHipError, match="expected P\\(h\\)"):
        flip(ev, "h", goal="P(b) >= 0.3", model=chain_spec)
    for _, r in a.parameters.iterrows():  # the 95% Beta interval of the table's strength (10)
        lo, hi = beta.ppf([0.025, 0.975], 10 * r["current"], 10 * (1 - r["current"]))
        assert (r["lo"], r["hi"]) == pytest.approx((lo, hi), abs=1e-9)
        side = hi - r["current"] if r["needed"] > r["current"] else r["current"] - lo
        assert r["interval_distance"] == pytest.approx(abs(r["needed"] - r["current"]) / side)
