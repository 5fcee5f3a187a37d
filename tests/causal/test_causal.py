"""Counterfactuals, PN/PS, Shapley values, flips and MPE against independent oracles.

The structural oracle below (:class:`SCMOracle`) enumerates every exogenous configuration of
a small network written out by hand in this file: each noisy-OR link and leak its own
Bernoulli switch, each full table either the comonotone coupling (one uniform per node, the
state whose cumulative interval holds it) or independent noise per parent configuration
(one independent draw per row). It computes a counterfactual as the ratio of two sums over
the configurations consistent with the evidence; it shares no code with kneehip_bn.

The chain network (``CHAIN_YAML``)::

      a (low/mid/high)     b (absent/present)      roots
          \\  \\           /   |
           \\   c  (noisy-OR: leak .05, a=mid .3, a=high .6, b .5)
            \\  |  \\       |
             \\ |   d  (noisy-OR: leak .1, c .7, b .2)
               e  (full table, 3 states, parents a, c)
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest

from oracle import BruteForce, random_dag_families, to_pgmpy

CHAIN_YAML = """\
format: kneehip-bn/1
name: chain
title: "Chain test network"
default_strength: 10
sources:
  g: {elicited: "test numbers"}
nodes:
  a:
    group: context
    states: [low, mid, high]
    table: {probabilities: {low: 0.5, mid: 0.3, high: 0.2}, source: g}
  b:
    group: origin
    states: [absent, present]
    table: {probabilities: {absent: 0.7, present: 0.3}, source: g}
  h:
    group: origin
    states: [absent, present]
    table: {probabilities: {absent: 0.8, present: 0.2}, source: g}
  c:
    group: mechanism
    states: [absent, present]
    parents: [a, b]
    noisy_or:
      leak: {p: 0.05, source: g}
      links:
        - {parent: a, when: mid, p: 0.3, source: g}
        - {parent: a, when: high, p: 0.6, source: g}
        - {parent: b, when: present, p: 0.5, source: g}
  d:
    group: finding
    states: [absent, present]
    parents: [c, b, h]
    noisy_or:
      leak: {p: 0.1, source: g}
      links:
        - {parent: c, when: present, p: 0.7, source: g}
        - {parent: b, when: present, p: 0.2, source: g}
        - {parent: h, when: present, p: 0.6, source: g}
  e:
    group: finding
    states: [none, some, much]
    parents: [a, c]
    table:
      - {given: {a: low, c: absent}, probabilities: {none: 0.5, some: 0.3, much: 0.2}, source: g}
      - {given: {a: low, c: present}, probabilities: {none: 0.2, some: 0.3, much: 0.5}, source: g}
      - {given: {a: mid, c: absent}, probabilities: {none: 0.2, some: 0.6, much: 0.2}, source: g}
      - {given: {a: mid, c: present}, probabilities: {none: 0.2, some: 0.3, much: 0.5}, source: g}
      - {given: {a: high, c: absent}, probabilities: {none: 0.5, some: 0.3, much: 0.2}, source: g}
      - {given: {a: high, c: present}, probabilities: {none: 0.2, some: 0.6, much: 0.2}, source: g}
  t:
    group: test
    states: [negative, positive]
    parents: [h]
    noisy_or:
      leak: {p: 0.1, source: g}
      links:
        - {parent: h, when: present, p: 0.7, source: g}
"""

AB = ["absent", "present"]


def chain_mechanisms() -> dict:
    """The chain network's mechanisms, typed in by hand (not read through our parser)."""
    e = np.array([[[0.5, 0.3, 0.2], [0.2, 0.3, 0.5]], [[0.2, 0.6, 0.2], [0.2, 0.3, 0.5]],
                  [[0.5, 0.3, 0.2], [0.2, 0.6, 0.2]]])  # [a, c, state]
    return {
        "a": ("root", ["low", "mid", "high"], [0.5, 0.3, 0.2]),
        "b": ("root", AB, [0.7, 0.3]),
        "h": ("root", AB, [0.8, 0.2]),
        "c": ("noisy_or", AB, 0.05, [("a", 1, 0.3), ("a", 2, 0.6), ("b", 1, 0.5)]),
        "d": ("noisy_or", AB, 0.1, [("c", 1, 0.7), ("b", 1, 0.2), ("h", 1, 0.6)]),
        "e": ("table", ["none", "some", "much"], ["a", "c"], np.moveaxis(e, 2, 0)),
        "t": ("noisy_or", ["negative", "positive"], 0.1, [("h", 1, 0.7)]),
    }


def tiny_mechanisms() -> dict:
    """The conftest tiny network (gait a noisy-OR), by hand."""
    return {
        "age": ("root", ["young", "old"], [0.6, 0.4]),
        "knee_oa": ("table", AB, ["age"], np.array([[0.9, 0.6], [0.1, 0.4]])),
        "hip_oa": ("table", AB, ["age"], np.array([[0.95, 0.8], [0.05, 0.2]])),
        "gait": ("noisy_or", AB, 0.1, [("knee_oa", 1, 0.5), ("hip_oa", 1, 0.4)]),
        "limp": ("table", AB, ["gait"], np.array([[0.95, 0.3], [0.05, 0.7]])),
        "pain_level": ("table", ["none", "mild", "severe"], ["knee_oa"],
                       np.array([[0.7, 0.2], [0.2, 0.5], [0.1, 0.3]])),
    }


class SCMOracle:
    """Exact counterfactuals by enumerating every exogenous configuration."""

    def __init__(self, mechs: dict, coupling: str = "comonotone") -> None:
        self.mechs = mechs
        self.order = list(mechs)  # written in topological order
        self.states = {n: m[1] for n, m in mechs.items()}
        self.options = {n: self._options(n, coupling) for n in self.order}

    def _options(self, n: str, coupling: str) -> list[tuple[object, float]]:
        m = self.mechs[n]
        if m[0] == "root":
            return [(i, p) for i, p in enumerate(m[2]) if p > 0]
        if m[0] == "noisy_or":
            k = len(m[3]) + 1
            ps = [m[2]] + [ln[2] for ln in m[3]]
            return [(bits, math.prod(p if b else 1 - p for b, p in zip(bits, ps)))
                    for bits in itertools.product([0, 1], repeat=k)]
        table = m[3]
        cols = table.reshape(table.shape[0], -1)
        if coupling == "independent":  # one independent draw per parent configuration
            out = []
            for choice in itertools.product(range(cols.shape[0]), repeat=cols.shape[1]):
                w = math.prod(cols[s, j] for j, s in enumerate(choice))
                if w > 0:
                    out.append((choice, w))
            return out
        cuts = sorted({0.0, 1.0, *[float(x) for x in np.cumsum(cols, axis=0)[:-1].ravel()]})
        return [((lo + hi) / 2, hi - lo) for lo, hi in itertools.pairwise(cuts) if hi - lo > 1e-15]

    def value(self, n: str, u: object, vals: dict) -> int:
        m = self.mechs[n]
        if m[0] == "root":
            return int(u)  # type: ignore[arg-type]
        if m[0] == "noisy_or":
            on = bool(u[0]) or any(u[i + 1] and vals[p] == w  # type: ignore[index]
                                   for i, (p, w, _) in enumerate(m[3]))
            return 1 if on else 0
        table = m[3]
        cfg = tuple(vals[p] for p in m[2])
        if isinstance(u, tuple):
            return int(u[int(np.ravel_multi_index(cfg, table.shape[1:]))]) if cfg else int(u[0])
        cum = np.cumsum(table[(slice(None), *cfg)])
        return int(min(np.searchsorted(cum, u, side="right"), len(cum) - 1))

    def worlds(self, do: dict[str, int]):
        """Yield (weight, factual values, counterfactual values)."""
        names = self.order
        for combo in itertools.product(*[self.options[n] for n in names]):
            w = math.prod(o[1] for o in combo)
            fact: dict[str, int] = {}
            cf: dict[str, int] = {}
            for n, (u, _) in zip(names, combo):
                fact[n] = self.value(n, u, fact)
                cf[n] = do[n] if n in do else self.value(n, u, cf)
            yield w, fact, cf

    def counterfactual(self, evidence: dict[str, str], do: dict[str, str], target: str):
        di = {k: self.states[k].index(v) for k, v in do.items()}
        ei = {k: self.states[k].index(v) for k, v in evidence.items()}
        num = np.zeros(len(self.states[target]))
        for w, fact, cf in self.worlds(di):
            if all(fact[k] == v for k, v in ei.items()):
                num[cf[target]] += w
        if num.sum() == 0:
            raise ZeroDivisionError("impossible evidence")
        return num / num.sum()


@pytest.fixture
def chain_spec(tmp_path: Path):
    from kneehip_bn import load_spec

    p = tmp_path / "chain.yaml"
    p.write_text(CHAIN_YAML, encoding="utf-8")
    return load_spec(p)


CHAIN_CASES = [
    ({"d": "present"}, {"b": "absent"}, "d"),
    ({"d": "present", "e": "much"}, {"b": "absent"}, "e"),
    ({"d": "present", "a": "high"}, {"a": "low"}, "d"),
    ({"e": "some", "t": "positive", "d": "present"}, {"b": "present"}, "d"),
    ({"d": "absent", "b": "absent"}, {"b": "present"}, "d"),
    ({"d": "present", "e": "none"}, {"a": "mid", "b": "absent"}, "e"),
    ({"d": "present"}, {"c": "absent"}, "d"),
    ({"d": "present", "b": "present"}, {"h": "present"}, "c"),  # c not affected by h
]


@pytest.mark.parametrize("evidence,do,target", CHAIN_CASES)
def test_counterfactual_matches_exogenous_enumeration_chain(chain_spec, evidence, do, target):
    from kneehip_bn import counterfactual

    oracle = SCMOracle(chain_mechanisms())
    r = counterfactual(evidence, do=do, target=target, model=chain_spec)
    np.testing.assert_allclose(r.counterfactual.to_numpy(), oracle.counterfactual(evidence, do, target),
                               atol=1e-12)
    bf = BruteForce([(n, list(s.states), list(s.parents), _cpd(chain_spec, n))
                     for n, s in chain_spec.nodes.items()])
    np.testing.assert_allclose(r.factual.to_numpy(), bf.marginal([target], evidence), atol=1e-12)


def _cpd(spec, n):
    from kneehip_bn.model.tables import cpd_array

    return cpd_array(spec, n)


TINY_CASES = [
    ({"limp": "present"}, {"knee_oa": "absent"}, "limp"),
    ({"limp": "present", "pain_level": "severe"}, {"knee_oa": "absent"}, "gait"),
    ({"limp": "present", "age": "old"}, {"hip_oa": "present"}, "limp"),
    ({"pain_level": "mild"}, {"knee_oa": "present"}, "pain_level"),
    ({"limp": "absent", "pain_level": "none"}, {"age": "old"}, "limp"),
]


@pytest.mark.parametrize("evidence,do,target", TINY_CASES)
def test_counterfactual_matches_exogenous_enumeration_tiny(tiny_spec, evidence, do, target):
    from kneehip_bn import counterfactual

    oracle = SCMOracle(tiny_mechanisms())
    r = counterfactual(evidence, do=do, target=target, model=tiny_spec)
    np.testing.assert_allclose(r.counterfactual.to_numpy(),
                               oracle.counterfactual(evidence, do, target), atol=1e-12)


def test_counterfactual_is_not_the_interventional_answer(chain_spec):
    """Abduction matters: for this patient the answer differs from P(d | do(b=absent))."""
    from kneehip_bn import counterfactual, query

    r = counterfactual({"d": "present"}, do={"b": "absent"}, target="d", model=chain_spec)
    pop = query("d", do={"b": "absent"}, model=chain_spec)
    assert abs(float(r.counterfactual["present"]) - float(pop["present"])) > 0.05
    # with no evidence the counterfactual is the interventional distribution
    r0 = counterfactual({}, do={"b": "absent"}, target="d", model=chain_spec)
    np.testing.assert_allclose(r0.counterfactual.to_numpy(), pop.to_numpy(), atol=1e-12)


def test_counterfactual_on_pgmpy_network_uses_noisy_or_reading(chain_spec):
    """A pgmpy network built from the file keeps the noisy-OR reading (tables match)."""
    from kneehip_bn import build_network, counterfactual

    net = build_network(chain_spec)
    a = counterfactual({"d": "present"}, do={"b": "absent"}, target="d", model=net)
    b = counterfactual({"d": "present"}, do={"b": "absent"}, target="d", model=chain_spec)
    np.testing.assert_allclose(a.counterfactual.to_numpy(), b.counterfactual.to_numpy(), atol=1e-12)


def test_counterfactual_random_networks_full_tables():
    """Networks without a model file: every table read with the comonotone coupling."""
    from kneehip_bn import counterfactual

    rng = np.random.default_rng(5)
    for seed in range(4):
        fams = random_dag_families(seed, n_nodes=5, max_parents=2, max_card=3, max_joint=200)
        net = to_pgmpy(fams)
        mechs = {}
        for v, st, pa, t in fams:
            mechs[v] = ("root", st, list(t)) if not pa else ("table", st, pa, t)
        oracle = SCMOracle(mechs)
        names = [f[0] for f in fams]
        states = {f[0]: f[1] for f in fams}
        target = names[-1]
        cause = names[0]
        ev = {names[-2]: str(rng.choice(states[names[-2]]))} if len(names) > 2 else {}
        do = {cause: states[cause][0]}
        try:
            want = oracle.counterfactual(ev, do, target)
        except ZeroDivisionError:
            continue
        got = counterfactual(ev, do=do, target=target, model=net)
        np.testing.assert_allclose(got.counterfactual.to_numpy(), want, atol=1e-10)


# ----------------------------------------------------------------------------- PN / PS
def _oracle_pn_ps(oracle: SCMOracle, ev: dict, cause: str, finding: str):
    on, off = "present", "absent"
    pn = oracle.counterfactual({**ev, cause: on}, {cause: off}, finding)[0]
    ev_s = {k: v for k, v in ev.items() if k != finding}
    ps = oracle.counterfactual({**ev_s, cause: off, finding: off}, {cause: on}, finding)[1]
    return pn, ps


@pytest.mark.parametrize("ev", [{"d": "present"}, {"d": "present", "e": "much"},
                                {"d": "present", "a": "high", "t": "negative"}])
def test_pn_ps_match_twin_enumeration(chain_spec, ev):
    from kneehip_bn import probability_of_causation

    pc = probability_of_causation("d", "b", ev, model=chain_spec)
    pn, ps = _oracle_pn_ps(SCMOracle(chain_mechanisms()), ev, "b", "d")
    assert pc.pn == pytest.approx(pn, abs=1e-12)
    assert pc.ps == pytest.approx(ps, abs=1e-12)
    bf = BruteForce([(n, list(s.states), list(s.parents), _cpd(chain_spec, n))
                     for n, s in chain_spec.nodes.items()])
    assert pc.p_cause_present == pytest.approx(float(bf.marginal(["b"], ev)[1]), abs=1e-12)
    assert pc.bounds is None  # noisy-OR all the way: point-identified
    assert pc.explanation.startswith("Given these findings, the d ")


def test_pn_bounds_hold_for_every_coupling(tiny_spec):
    """Full tables between cause and finding: the Tian-Pearl bounds must contain the PN of
    the comonotone coupling (ours) and of independent noise per row (another SCM with the
    same tables), computed by enumeration."""
    from kneehip_bn import probability_of_causation

    ev = {"age": "old", "limp": "present"}
    pc = probability_of_causation("limp", "knee_oa", ev, model=tiny_spec)
    assert pc.bounds is not None and "limp" in pc.bounds["full_tables"]
    assert pc.bounds["context"] == {"age": "old"}
    como = SCMOracle(tiny_mechanisms(), "comonotone")
    indep = SCMOracle(tiny_mechanisms(), "independent")
    pn_c, ps_c = _oracle_pn_ps(como, ev, "knee_oa", "limp")
    pn_i, ps_i = _oracle_pn_ps(indep, ev, "knee_oa", "limp")
    assert pc.pn == pytest.approx(pn_c, abs=1e-12)
    assert pc.ps == pytest.approx(ps_c, abs=1e-12)
    assert abs(pn_c - pn_i) > 1e-3  # the coupling matters here
    lo, hi = pc.bounds["pn"]
    slo, shi = pc.bounds["ps"]
    for pn, ps in ((pn_c, ps_c), (pn_i, ps_i)):  # the context is all the evidence but limp
        assert lo - 1e-12 <= pn <= hi + 1e-12
        assert slo - 1e-12 <= ps <= shi + 1e-12
    assert pc.bounds["pn_model"] == pytest.approx(pn_c, abs=1e-12)
    # monotone coupling: PN at the lower bound (Tian-Pearl: identified under monotonicity)
    assert pc.bounds["pn_model"] == pytest.approx(lo, abs=1e-9)


def test_pn_errors(chain_spec):
    from kneehip_bn import EvidenceError, probability_of_causation

    with pytest.raises(EvidenceError, match="expected it present in the evidence"):
        probability_of_causation("d", "b", {"e": "much"}, model=chain_spec)
    with pytest.raises(EvidenceError, match="the cause cannot have produced"):
        probability_of_causation("d", "b", {"d": "present", "b": "absent"}, model=chain_spec)


# ----------------------------------------------------------------------------- Shapley
def _shapley_by_permutations(value, players):
    """Average marginal contribution over all n! orders (direct enumeration)."""
    phi = dict.fromkeys(players, 0.0)
    perms = list(itertools.permutations(players))
    for order in perms:
        have: list[str] = []
        for f in order:
            phi[f] += value([*have, f]) - value(have)
            have.append(f)
    return {f: v / len(perms) for f, v in phi.items()}


def test_shapley_matches_permutation_enumeration(chain_spec):
    from kneehip_bn import shapley

    bf = BruteForce([(n, list(s.states), list(s.parents), _cpd(chain_spec, n))
                     for n, s in chain_spec.nodes.items()])
    ev = {"a": "high", "d": "present", "e": "some", "t": "positive"}
    sh = shapley(ev, model=chain_spec)
    assert sh.context == {"a": "high"} and sh.method == "exact"
    for diag in ("b", "h"):
        def v(s, diag=diag):
            p = float(bf.marginal([diag], {"a": "high", **{f: ev[f] for f in s}})[1])
            return math.log(p / (1 - p))

        want = _shapley_by_permutations(v, ["d", "e", "t"])
        for f, x in want.items():
            assert sh.values.loc[f, diag] == pytest.approx(x, abs=1e-10)
        assert sh.values[diag].sum() == pytest.approx(v(["d", "e", "t"]) - v([]), abs=1e-10)
        assert sh.loo.loc["d", diag] == pytest.approx(v(["d", "e", "t"]) - v(["e", "t"]), abs=1e-10)


def test_shapley_sampling_close_to_exact_on_shipped_model():
    from kneehip_bn import shapley

    case = {"age_group": "60_plus", "knee_pain": "present", "knee_effusion": "present",
            "hip_pain": "present", "antalgic_gait_observed": "present",
            "joint_line_tenderness": "present", "low_back_pain": "absent",
            "fadir_test": "negative", "radiating_leg_pain": "absent"}
    exact = shapley(case, model="knee_hip_basic")
    mc = shapley(case, model="knee_hip_basic", exact_max=4, n_permutations=600, seed=3)
    assert exact.stderr is None and mc.stderr is not None
    z = (mc.values - exact.values).abs() / np.maximum(mc.stderr, 1e-9)
    assert float(z.max().max()) < 5
    gap = mc.values.sum() - (mc.total - mc.base)
    assert float(gap.abs().max()) < 1e-9  # efficiency holds for every sampled order


def test_shapley_agrees_with_pyagrum_conditional_shap(chain_spec):
    """pyAgrum's ConditionalShapValues(logit=True) uses the same value function (log-odds
    given the observed subset); its players are every observed column, so the context is a
    player there: compare on a case without context."""
    gum = pytest.importorskip("pyagrum")
    import pandas as pd
    from pyagrum.explain import ConditionalShapValues

    from kneehip_bn import export_network, shapley

    ev = {"d": "present", "e": "some", "t": "positive"}
    sh = shapley(ev, diagnosis="h", model=chain_spec)
    path = Path(chain_spec.path).with_suffix(".bif")
    export_network(chain_spec, path)
    bn = gum.loadBN(str(path))
    expl = ConditionalShapValues(bn, "h", logit=True).compute(
        (pd.DataFrame([{**ev, "a": "low", "b": "absent", "c": "absent"}])[list(ev)], True))
    present = bn.variable("h").labels().index("present")
    got = {f: float(np.ravel(expl[present][f])[0]) for f in ev}  # values per target state
    for f in ev:
        assert got[f] == pytest.approx(sh.values.loc[f, "h"], abs=1e-6)


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


# ----------------------------------------------------------------------------- MPE
def _brute_mpe(bf: BruteForce, ev: dict):
    j = bf.joint(ev)
    flat = np.argsort(-j.ravel(), kind="stable")
    pe = j.sum()
    out = []
    for idx in flat[:2]:
        st = np.unravel_index(idx, j.shape)
        out.append(({v: bf.states[v][s] for v, s in zip(bf.variables, st) if v not in ev},
                    float(j.ravel()[idx] / pe)))
    return out


@pytest.mark.parametrize("seed", range(6))
def test_mpe_matches_brute_force_random(seed):
    from kneehip_bn import mpe

    fams = random_dag_families(seed, n_nodes=7, max_card=3, max_joint=3000)
    bf = BruteForce(fams)
    rng = np.random.default_rng(seed)
    v = bf.variables[-1]
    ev = {v: str(rng.choice(bf.states[v]))}
    (best, p1), (_second, p2) = _brute_mpe(bf, ev)
    r = mpe(ev, model=to_pgmpy(fams))
    assert r.probability == pytest.approx(p1, rel=1e-10)
    assert r.second_probability == pytest.approx(p2, rel=1e-10)
    if p1 > p2 * (1 + 1e-9):
        assert r.assignment == best


def test_mpe_tiny_and_chain(tiny_spec, chain_spec, tiny_oracle):
    from kneehip_bn import mpe

    (best, p1), (_, p2) = _brute_mpe(tiny_oracle, {"limp": "present", "pain_level": "mild"})
    r = mpe({"limp": "present", "pain_level": "mild"}, model=tiny_spec)
    assert r.assignment == best and r.probability == pytest.approx(p1, rel=1e-12)
    assert r.second_probability == pytest.approx(p2, rel=1e-12)
    bf = BruteForce([(n, list(s.states), list(s.parents), _cpd(chain_spec, n))
                     for n, s in chain_spec.nodes.items()])
    (best, p1), _ = _brute_mpe(bf, {"d": "present", "e": "much"})
    r = mpe({"d": "present", "e": "much"}, model=chain_spec)
    assert r.assignment == best and r.probability == pytest.approx(p1, rel=1e-12)


def test_mpe_matches_pgmpy_map_query_on_basic():
    """pgmpy's map_query builds the joint of the query variables, so the case observes
    every finding and test (15 unobserved nodes)."""
    import warnings

    from pgmpy.inference import VariableElimination

    from kneehip_bn import build_network, load_spec, mpe

    spec = load_spec("knee_hip_basic")
    net = build_network(spec)
    ev = {n: ("present" if n in ("knee_pain", "hip_pain", "knee_effusion",
                                 "antalgic_gait_observed") else s.states[0])
          for n, s in spec.nodes.items() if s.group in ("finding", "test")}
    r = mpe(ev, model=spec)
    free = [n for n in spec.nodes if n not in ev]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        q = VariableElimination(net).map_query(variables=free, evidence=ev, show_progress=False)
    assert r.assignment == {n: q[n] for n in r.assignment}
    assert set(r.assignment) == set(free)


# ----------------------------------------------------------------------------- red flags
def test_red_flags_lead_every_text_and_dict(chain_spec, tmp_path):
    import kneehip_bn as kb

    p = tmp_path / "flag.yaml"
    p.write_text(CHAIN_YAML.replace("  t:\n    group: test\n",
                                    "  t:\n    group: test\n    red_flag: true\n"), encoding="utf-8")
    spec = kb.load_spec(p)
    ev = {"d": "present", "t": "positive"}
    results = [kb.counterfactual(ev, do={"b": "absent"}, target="d", model=spec),
               kb.probability_of_causation("d", "b", ev, model=spec),
               kb.shapley(ev, model=spec), kb.flip(ev, "b", model=spec), kb.mpe(ev, model=spec)]
    for r in results:
        assert str(r).startswith("REFER: red flag (t)"), type(r).__name__
        d = r.to_dict()
        assert d["red_flags"] == ["t"] and next(iter(d)) == "warning"
    assert kb.mpe({"d": "present"}, model=spec).to_dict()["red_flags"] == []


# ----------------------------------------------------------------------------- pyAgrum
def _explicit_scm_bn(mechs):
    """The explicit-noise SCM as a pyAgrum BN: each node's exogenous noise a root (one
    categorical node holding every switch of a noisy-OR), every other node deterministic."""
    import pyagrum as gum

    bn = gum.BayesNet("scm")
    orc = SCMOracle(mechs)
    for n, m in mechs.items():
        if m[0] == "root":
            bn.add(gum.LabelizedVariable(n, n, list(m[1])))
            continue
        opts = orc.options[n]
        u = f"U_{n}"
        bn.add(gum.LabelizedVariable(u, u, [f"u{i}" for i in range(len(opts))]))
        bn.add(gum.LabelizedVariable(n, n, list(m[1])))
    for n, m in mechs.items():
        if m[0] == "root":
            bn.cpt(n).fillWith([float(x) for x in m[2]])
            continue
        u = f"U_{n}"
        pars = [ln[0] for ln in m[3]] if m[0] == "noisy_or" else list(m[2])
        pars = list(dict.fromkeys(pars))
        for p in pars:
            bn.addArc(p, n)
        bn.addArc(u, n)
        opts = orc.options[n]
        bn.cpt(u).fillWith([w for _, w in opts])
        cpt = bn.cpt(n)
        for pv in itertools.product(*[range(len(mechs[p][1])) for p in pars]):
            for k, (uu, _) in enumerate(opts):
                vals = dict(zip(pars, pv))
                s = orc.value(n, uu, vals)
                inst = {p: int(x) for p, x in vals.items()}
                inst[u] = k
                for st in range(len(m[1])):
                    cpt[{**inst, n: st}] = 1.0 if st == s else 0.0
    return bn




def _factorised_abduction(orc, ev, do, tgt):
    """Abduction by each exogenous root's own posterior (as pyAgrum does)."""
    di = {k: orc.states[k].index(v) for k, v in do.items()}
    ei = {k: orc.states[k].index(v) for k, v in ev.items()}
    names = orc.order
    combos = list(itertools.product(*[range(len(orc.options[n])) for n in names]))
    post = {n: np.zeros(len(orc.options[n])) for n in names}
    for combo in combos:
        w = np.prod([orc.options[n][k][1] for n, k in zip(names, combo)])
        fact = {}
        for n, k in zip(names, combo):
            fact[n] = orc.value(n, orc.options[n][k][0], fact)
        if all(fact[k] == v for k, v in ei.items()):
            for n, k in zip(names, combo):
                post[n][k] += w
    for n in names:
        post[n] /= post[n].sum()
    out = np.zeros(len(orc.states[tgt]))
    for combo in combos:
        w = np.prod([post[n][k] for n, k in zip(names, combo)])
        cf = {}
        for n, k in zip(names, combo):
            cf[n] = di[n] if n in di else orc.value(n, orc.options[n][k][0], cf)
        out[cf[tgt]] += w
    return out


def test_counterfactual_against_pyagrum_where_definitions_match(chain_spec):
    """pyAgrum's counterfactual (twin network, abduction = each parentless node's prior
    replaced by its own posterior) on the explicit-noise SCM. When the evidence makes the
    exogenous roots independent (every parent of the observed nodes observed) it is the exact
    counterfactual and equals ours. Otherwise it drops the posterior dependence between the
    roots: it then equals the factorised-abduction oracle, and differs from ours (and from
    the exact enumeration)."""
    gum = pytest.importorskip("pyagrum")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import pyagrum.causal as csl
    from kneehip_bn import counterfactual

    mechs = chain_mechanisms()
    cm = gum.CausalModel(_explicit_scm_bn(mechs))
    orc = SCMOracle(mechs)

    def pyagrum_cf(ev, do, tgt):
        t = csl.counterfactual(cm, profile=ev, on=tgt, whatif=set(do), values=do)
        return np.asarray(t.tolist(), dtype=float)

    ev = {"a": "high", "b": "present", "h": "absent", "c": "present", "d": "present"}
    ours = counterfactual(ev, do={"c": "absent"}, target="d", model=chain_spec)
    np.testing.assert_allclose(pyagrum_cf(ev, {"c": "absent"}, "d"),
                               ours.counterfactual.to_numpy(), atol=1e-9)
    ev = {"d": "present"}
    ours = counterfactual(ev, do={"b": "absent"}, target="d", model=chain_spec)
    pa = pyagrum_cf(ev, {"b": "absent"}, "d")
    np.testing.assert_allclose(pa, _factorised_abduction(orc, ev, {"b": "absent"}, "d"), atol=1e-9)
    assert abs(pa[1] - float(ours.counterfactual["present"])) > 0.1


# ----------------------------------------------------------------------------- properties
@pytest.mark.parametrize("evidence", [{"d": "present"}, {"e": "much", "t": "positive"},
                                      {"d": "absent", "e": "none", "a": "mid"}])
def test_consistency_do_what_was_seen_changes_nothing(chain_spec, evidence):
    """Counterfactual consistency: imagining the state the patient actually has gives the
    factual posterior, for every target."""
    from kneehip_bn import counterfactual, query

    for cause, state in (("b", "present"), ("h", "absent"), ("c", "present")):
        ev = {**evidence, cause: state}
        for target in ("c", "d", "e"):
            if target == cause:
                continue
            r = counterfactual(ev, do={cause: state}, target=target, model=chain_spec)
            np.testing.assert_allclose(r.counterfactual.to_numpy(),
                                       query(target, ev, model=chain_spec).to_numpy(), atol=1e-12)


def test_mpe_with_do_matches_brute_force(tiny_spec, tiny_oracle):
    from kneehip_bn import mpe

    ev, do = {"limp": "present"}, {"knee_oa": "absent"}
    j = tiny_oracle.joint(ev, do)
    idx = np.unravel_index(int(np.argmax(j)), j.shape)
    want = {v: tiny_oracle.states[v][s] for v, s in zip(tiny_oracle.variables, idx)
            if v not in ev and v not in do}
    r = mpe(ev, model=tiny_spec, do=do)
    assert r.assignment == want
    assert r.probability == pytest.approx(float(j.max() / j.sum()), rel=1e-12)


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


@pytest.mark.parametrize("seed", range(5))
def test_counterfactual_random_noisy_or_networks(seed):
    """Random small networks mixing noisy-OR nodes (links on multi-state parents included)
    and full tables, written as a model file, against the exogenous enumeration."""
    from kneehip_bn import counterfactual
    from kneehip_bn.model.yamlio import parse_spec

    rng = np.random.default_rng(100 + seed)
    nodes, mechs = {}, {}
    names = ["n0", "n1", "n2", "n3", "n4"]
    for i, n in enumerate(names):
        states = ["s0", "s1", "s2"] if i == 0 else AB
        if i < 2:
            p = rng.dirichlet(np.ones(len(states)))
            p[-1] = 1 - p[:-1].sum()
            nodes[n] = {"group": "origin", "states": states,
                        "table": {"probabilities": dict(zip(states, p.tolist())), "source": "g"}}
            mechs[n] = ("root", states, p.tolist())
            continue
        parents = sorted(rng.choice(i, size=min(i, 2), replace=False).tolist())
        pnames = [names[j] for j in parents]
        if i != 3:  # noisy-OR, one link per 'on' state of each parent
            links, mlinks = [], []
            for pn in pnames:
                pst = nodes[pn]["states"]
                for w in range(1, len(pst)):
                    q = float(rng.uniform(0.1, 0.9))
                    links.append({"parent": pn, "when": pst[w], "p": q, "source": "g"})
                    mlinks.append((pn, w, q))
            leak = float(rng.uniform(0.02, 0.3))
            nodes[n] = {"group": "finding", "states": AB, "parents": pnames,
                        "noisy_or": {"leak": {"p": leak, "source": "g"}, "links": links}}
            mechs[n] = ("noisy_or", AB, leak, mlinks)
        else:  # a full table
            cards = [len(nodes[p]["states"]) for p in pnames]
            table = np.empty((2, *cards))
            rows = []
            for cfg in itertools.product(*[range(c) for c in cards]):
                q = float(rng.uniform(0.05, 0.95))
                table[(0, *cfg)], table[(1, *cfg)] = 1 - q, q
                rows.append({"given": {p: nodes[p]["states"][k] for p, k in zip(pnames, cfg)},
                             "probabilities": {"absent": 1 - q, "present": q}, "source": "g"})
            nodes[n] = {"group": "mechanism", "states": AB, "parents": pnames, "table": rows}
            mechs[n] = ("table", AB, pnames, table)
    spec = parse_spec({"format": "kneehip-bn/1", "name": f"r{seed}", "sources": {
        "g": {"elicited": "random test numbers"}}, "nodes": nodes})
    oracle = SCMOracle(mechs)
    ev = {"n4": "present"}
    for do in ({"n0": "s0"}, {"n1": "absent"}, {"n2": "absent"}):
        for target in ("n3", "n4"):
            want = oracle.counterfactual(ev, do, target)
            got = counterfactual(ev, do=do, target=target, model=spec)
            np.testing.assert_allclose(got.counterfactual.to_numpy(), want, atol=1e-12)
