"""One-way sensitivity and parameter-uncertainty intervals, checked against finite differences
through spec edits, brute-force enumeration with hand-modified tables, and scipy's Beta.

Uses the tiny network of ``conftest.py`` (age -> knee_oa, hip_oa -> gait -> limp;
knee_oa -> pain_level) and random pgmpy networks from ``oracle.py``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import beta

from conftest import tiny_families
from kneehip_bn import (
    Engine,
    EvidenceError,
    KneeHipError,
    UnknownNameError,
    apply_overrides,
    credible_intervals,
    load_spec,
    sensitivity,
)
from kneehip_bn.model.network import cpd_array, noisy_or_array
from kneehip_bn.teaching.robustness import (
    _draw_tables,
    _noisy_or_tables,
    beta_interval,
    model_parameters,
)
from oracle import BruteForce, random_dag_families, to_pgmpy

EV = {"limp": "present", "pain_level": "mild"}


def _post(spec, target, state, ev):
    eng = Engine(spec)
    return float(eng.posterior(ev, [target])[target][eng.state_index[target][state]])


def test_parameters_of_the_tiny_model(tiny_spec):
    p = model_parameters(tiny_spec)
    # age: P(old); knee_oa, hip_oa, limp: P(present) per row; gait: leak + 2 links;
    # pain_level: 3 states x 2 rows
    assert len(p) == 1 + 2 + 2 + 3 + 2 + 6
    assert p.loc["gait.link.knee_oa", "value"] == 0.5
    assert p.loc["hip_oa[age=old].present", "value"] == 0.2
    assert p.loc["hip_oa[age=old].present", "strength"] == 5
    assert p.loc["knee_oa[age=young].present", "strength"] == 10
    assert p.loc["gait.link.hip_oa", "source"] == "census"


def test_derivative_vs_finite_differences_through_spec_edits(tiny_spec):
    s = sensitivity("knee_oa", evidence=EV, model=tiny_spec)
    assert len(s) == 16
    h = 1e-5
    for name, r in s.iterrows():
        x0 = r["value"]
        lo, hi = max(0.0, x0 - h), min(1.0, x0 + h)
        up = _post(apply_overrides(tiny_spec, [f"{name}={hi}"]), "knee_oa", "present", EV)
        down = _post(apply_overrides(tiny_spec, [f"{name}={lo}"]), "knee_oa", "present", EV)
        fd = (up - down) / (hi - lo)
        assert r["derivative"] == pytest.approx(fd, rel=1e-4, abs=1e-7), name
        # the curve is exact: the posterior at both ends of the range, re-evaluated
        for x, col in ((r["lo"], "posterior_lo"), (r["hi"], "posterior_hi")):
            want = _post(apply_overrides(tiny_spec, [f"{name}={x}"]), "knee_oa", "present", EV)
            assert r[col] == pytest.approx(want, abs=1e-10), (name, col)
        assert r["swing"] == pytest.approx(abs(r["posterior_hi"] - r["posterior_lo"]))
    assert (np.diff(s["swing"].to_numpy()) <= 1e-15).all()
    point = _post(tiny_spec, "knee_oa", "present", EV)
    assert s["posterior"].to_numpy() == pytest.approx(np.full(len(s), point), abs=1e-12)
    assert s.attrs["posterior"] == pytest.approx(point, abs=1e-12)


def test_range_vs_brute_force_with_hand_tables(tiny_spec):
    """gait's leak and pain_level's 'mild' row entry, moved by hand in the oracle's tables."""
    s = sensitivity("hip_oa", evidence=EV, model=tiny_spec, interval=0.5)
    fams = tiny_families()

    def oracle_with(node, table):
        return BruteForce([(v, st, pa, table if v == node else t) for v, st, pa, t in fams])

    leak_hi = 0.1 * 1.5
    gait_on = 1 - (1 - leak_hi) * np.array([[1, 0.6], [0.5, 0.5 * 0.6]])  # [knee, hip]
    bf = oracle_with("gait", np.stack([1 - gait_on, gait_on]))
    assert s.loc["gait.leak", "hi"] == pytest.approx(leak_hi)
    assert s.loc["gait.leak", "posterior_hi"] == pytest.approx(
        bf.marginal(["hip_oa"], EV)[1], abs=1e-12)
    # P(mild | knee_oa=present) 0.5 -> 0.25; none and severe keep their 0.2 : 0.3 proportion
    t = np.array([[0.7, 0.2], [0.2, 0.25], [0.1, 0.3]])
    t[[0, 2], 1] = 0.75 * np.array([0.2, 0.3]) / 0.5
    bf = oracle_with("pain_level", t)
    name = "pain_level[knee_oa=present].mild"
    assert s.loc[name, "lo"] == pytest.approx(0.25)
    assert s.loc[name, "posterior_lo"] == pytest.approx(bf.marginal(["hip_oa"], EV)[1],
                                                         abs=1e-12)


def test_beta_and_fraction_intervals(tiny_spec):
    s = sensitivity("knee_oa", evidence=EV, model=tiny_spec, level=0.9)
    lo, hi = beta.ppf([0.05, 0.95], 5 * 0.2, 5 * 0.8)  # hip_oa has strength 5
    assert s.loc["hip_oa[age=old].present", ["lo", "hi"]].tolist() == pytest.approx([lo, hi])
    lo, hi = beta.ppf([0.05, 0.95], 10 * 0.5, 10 * 0.5)  # default strength 10
    assert s.loc["gait.link.knee_oa", ["lo", "hi"]].tolist() == pytest.approx([lo, hi])
    s = sensitivity("knee_oa", evidence=EV, model=tiny_spec, interval=0.2)
    assert s.loc["gait.leak", ["lo", "hi"]].tolist() == pytest.approx([0.08, 0.12])
    assert s.loc["limp[gait=present].present", "hi"] == pytest.approx(0.84)


def test_sensitivity_of_a_pgmpy_network_vs_brute_force():
    """A random pgmpy network (no model file): every CPD entry, checked by finite
    differences on the brute-force joint with the entry moved by hand."""
    fams = random_dag_families(7, n_nodes=5, max_card=3)
    model = to_pgmpy(fams)
    target = fams[0][0]
    last = fams[-1]
    ev = {last[0]: last[1][0]}
    s = sensitivity(target, state=fams[0][1][0], evidence=ev, model=model)
    n_params = sum(int(np.prod(t.shape[1:], dtype=int)) * (1 if t.shape[0] == 2 else t.shape[0])
                   for _, _, _, t in fams)
    assert len(s) == n_params
    by_name = {f[0]: f for f in fams}
    h = 1e-6
    for name, r in s.head(12).iterrows():
        node, state = r["node"], name.rsplit(".", 1)[1]
        v, states, parents, table = by_name[node]
        given = dict(x.split("=") for x in r["given"].split(",")) if r["given"] else {}
        idx = tuple(by_name[p][1].index(given[p]) for p in parents)
        j = states.index(state)

        def post(x, v=v, table=table, idx=idx, j=j):
            t = table.copy()
            col = t[(slice(None), *idx)]
            others = np.arange(len(col)) != j
            col[others] = (1 - x) * col[others] / col[others].sum()
            col[j] = x
            t[(slice(None), *idx)] = col
            bf = BruteForce([(a, b, c, t if a == v else d) for a, b, c, d in fams])
            return bf.marginal([target], ev)[0]

        fd = (post(r["value"] + h) - post(r["value"] - h)) / (2 * h)
        assert r["derivative"] == pytest.approx(fd, rel=1e-4, abs=1e-7), name


def test_sensitivity_errors(tiny_spec):
    with pytest.raises(UnknownNameError, match="did you mean 'knee_oa'"):
        sensitivity("knee_o", evidence=EV, model=tiny_spec)
    with pytest.raises(EvidenceError, match="expected an unobserved node"):
        sensitivity("limp", evidence=EV, model=tiny_spec)
    with pytest.raises(UnknownNameError, match="state of knee_oa"):
        sensitivity("knee_oa", state="yes", model=tiny_spec)
    with pytest.raises(KneeHipError, match="interval: expected 'beta' or a fraction"):
        sensitivity("knee_oa", model=tiny_spec, interval="wide")
    with pytest.raises(UnknownNameError, match=r"did you mean 'gait\.leak'"):
        sensitivity("knee_oa", model=tiny_spec, parameters=["gait.leek"])
    s = sensitivity("knee_oa", model=tiny_spec, parameters=["gait.leak", "age.old"])
    assert set(s.index) == {"gait.leak", "age.old"}


def test_shipped_sensitivity_covers_every_number(shipped_spec):
    s = sensitivity("knee_pathology", evidence={"knee_pain": "present"}, model=shipped_spec)
    prov = shipped_spec.provenance()
    # every noisy-OR number, and every table entry (P(present) only for two-state nodes)
    n_nor = sum(1 for r in prov if r["what"] == "leak" or r["what"].startswith("link "))
    n_tab = sum(1 for r in prov if r["what"] not in ("leak",) and not r["what"].startswith("link ")
                and not (len(shipped_spec.nodes[r["node"]].states) == 2
                         and r["what"] != shipped_spec.nodes[r["node"]].states[1]))
    assert len(s) == n_nor + n_tab
    # structural zero: P(upper root | no radiculopathy) = 0 has an empty Beta range
    z = s.loc["upper_lumbar_root[lumbar_radiculopathy=absent].present"]
    assert z["lo"] == z["hi"] == 0.0 and z["swing"] == 0.0


# ----------------------------------------------------------------------------- uncertainty
def test_credible_intervals_shrink_as_strength_grows(tiny_spec):
    widths = []
    for strength in (5, 50, 500):
        ci = credible_intervals(EV, model=tiny_spec, n_draws=300, seed=1, strength=strength,
                                progress=False)
        assert list(ci.index) == ["knee_oa", "hip_oa"]
        assert ((ci["lo"] <= ci["median"]) & (ci["median"] <= ci["hi"])).all()
        widths.append((ci["hi"] - ci["lo"]).to_numpy())
    assert (widths[0] > widths[1]).all() and (widths[1] > widths[2]).all()
    assert (widths[2] < 0.5 * widths[1]).all()
    ci = credible_intervals(EV, model=tiny_spec, n_draws=300, seed=1, strength=1e5,
                            progress=False)
    assert ci["median"].to_numpy() == pytest.approx(ci["posterior"].to_numpy(), abs=0.005)
    point = _post(tiny_spec, "knee_oa", "present", EV)
    assert ci.loc["knee_oa", "posterior"] == pytest.approx(point, abs=1e-12)


def test_credible_intervals_reproducible_and_draws(tiny_spec):
    a = credible_intervals(EV, model=tiny_spec, n_draws=50, seed=4, progress=False)
    b = credible_intervals(EV, model=tiny_spec, n_draws=50, seed=4, progress=False)
    c = credible_intervals(EV, model=tiny_spec, n_draws=50, seed=5, progress=False)
    assert a.equals(b) and not a.equals(c)
    draws = pd.DataFrame(a.attrs["draws"])
    assert draws.shape == (50, 2) and a.attrs["n_failed"] == 0
    assert draws.median().to_numpy() == pytest.approx(a["median"].to_numpy())
    both = pd.concat({"a": a, "c": c}, axis=1)  # frames with these attrs still combine
    assert both.shape == (2, 12)
    with pytest.raises(KneeHipError, match="n_draws"):
        credible_intervals(EV, model=tiny_spec, n_draws=0)


def test_table_draws_have_the_expert_mean(tiny_spec, shipped_spec):
    eng = Engine(tiny_spec)
    n = 4000
    draws = _draw_tables(tiny_spec, eng, n, np.random.default_rng(0), None, 10.0)
    for node, s in (("knee_oa", 10), ("hip_oa", 5), ("pain_level", 10), ("gait", 10)):
        mean = np.mean([d[node] for d in draws], axis=0)
        expert = cpd_array(tiny_spec, node)
        if node == "gait":  # noisy-OR: links and leak are Beta; check the leak-only entry
            assert mean[1, 0, 0] == pytest.approx(0.1, abs=4 * math.sqrt(0.09 / (s + 1) / n))
            continue
        sd = np.sqrt(expert * (1 - expert) / (s + 1) / n)
        assert np.all(np.abs(mean - expert) <= 4.5 * sd + 1e-12), node
        assert np.allclose(np.sum([d[node] for d in draws[:5]], axis=1), 1.0)
    # structural zeros stay zero
    eng = Engine(shipped_spec)
    draws = _draw_tables(shipped_spec, eng, 20, np.random.default_rng(0), None, 10.0)
    for d in draws:
        assert d["upper_lumbar_root"][1, 0] == 0.0


def test_vectorised_noisy_or_tables_match_the_builder(shipped_spec):
    for name in ("knee_pain", "hip_pain", "trendelenburg_sign"):
        node = shipped_spec.nodes[name]
        nor = node.noisy_or
        tabs = _noisy_or_tables(shipped_spec, node, np.array([nor.leak.p] * 2),
                                [np.array([ln.p] * 2) for ln in nor.links])
        np.testing.assert_allclose(tabs[1], noisy_or_array(shipped_spec, node), atol=1e-15)


def test_engine_with_tables_equals_a_fresh_engine(tiny_spec):
    eng = Engine(tiny_spec)
    before = eng.posterior(EV)
    rng = np.random.default_rng(2)
    fams = tiny_families()
    new = {v: rng.dirichlet(np.ones(len(st)), size=int(np.prod(t.shape[1:], dtype=int))).T
           .reshape(t.shape) for v, st, pa, t in fams if v in ("gait", "knee_oa")}
    swapped = eng.with_tables(new)
    fresh = Engine.from_families([(v, st, pa, new.get(v, t)) for v, st, pa, t in fams])
    bf = BruteForce([(v, st, pa, new.get(v, t)) for v, st, pa, t in fams])
    got, want = swapped.posterior(EV), fresh.posterior(EV)
    for v in want:
        np.testing.assert_allclose(got[v], want[v], atol=1e-12)
        np.testing.assert_allclose(got[v], bf.marginal([v], EV), atol=1e-12)
    after = eng.posterior(EV)  # the original engine is untouched
    for v in before:
        np.testing.assert_array_equal(before[v], after[v])
    with pytest.raises(EvidenceError, match="expected shape"):
        eng.with_tables({"gait": np.ones((2, 2))})
    with pytest.raises(UnknownNameError):
        eng.with_tables({"gaitt": np.ones((2, 2, 2))})


def test_load_spec_fixture_is_fresh(tiny_yaml_path):
    # sensitivity never edits the spec it is given
    spec = load_spec(tiny_yaml_path)
    sensitivity("knee_oa", evidence=EV, model=spec)
    assert spec.nodes["gait"].noisy_or.leak.p == 0.1 and spec.nodes["gait"].noisy_or.leak.source


def test_beta_interval_equals_scipy_stats_beta_ppf():
    """beta_interval goes through scipy.special (fast to import): the same numbers as
    scipy.stats.beta.ppf, which sensitivity used before."""
    rng = np.random.default_rng(0)
    for _ in range(2000):
        x, s = float(rng.random()), float(rng.choice([1, 2, 5, 10, 50, 1000]) * rng.random() + 0.1)
        level = float(rng.choice([0.5, 0.9, 0.95, 0.99]))
        want = beta.ppf([(1 - level) / 2, (1 + level) / 2], s * x, s * (1 - x))
        assert beta_interval(x, s, level) == (float(want[0]), float(want[1]))
    assert beta_interval(0.0, 10.0, 0.95) == (0.0, 0.0)
    assert beta_interval(1.0, 10.0, 0.95) == (1.0, 1.0)
